package rpc

import (
	"context"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"

	"github.com/trellis-health/trellis/services/scheduling/internal/app"
)

// GetPatientCompliance returns the weekly attended time, attendance history and risk of the
// patient's current active enrollment. The request names a patient, not a clinic: a patient
// with no active enrollment in a clinic the caller can see is not_found.
func (s *Server) GetPatientCompliance(ctx context.Context, req *connect.Request[schedulingv1.GetPatientComplianceRequest]) (*connect.Response[schedulingv1.GetPatientComplianceResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.app.PatientCompliance(ctx, p, req.Msg.GetPatientId())
	if err != nil {
		return nil, s.fail(ctx, "enrollment", err)
	}
	out := &schedulingv1.GetPatientComplianceResponse{EnrollmentId: c.EnrollmentID, ProgramCode: c.ProgramCode, History: c.History}
	for _, w := range c.Weeks {
		out.Weeks = append(out.Weeks, &schedulingv1.ComplianceWeek{
			Week: int32(w.Week), FromDate: w.From.Format(time.DateOnly), ToDate: w.To.Format(time.DateOnly),
			AttendedMinutes: int32(w.AttendedMinutes), MinimumMinutes: int32(w.MinimumMinutes), StepDown: w.StepDown,
			MeetsMinimum: w.MeetsMinimum, Complete: w.Complete,
		})
	}
	if ep := c.Episode; ep != nil {
		out.AtRisk, out.RiskReasons, out.AtRiskSince = true, app.RiskReasonsProto(ep.Reasons), timestamppb.New(ep.Since)
	}
	return connect.NewResponse(out), nil
}
