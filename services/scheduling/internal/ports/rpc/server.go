// Package rpc serves SchedulingService over Connect.
package rpc

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/rpc"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1/schedulingv1connect"

	"github.com/trellis-health/trellis/services/scheduling/internal/app"
	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
)

// Server implements schedulingv1connect.SchedulingServiceHandler. Authentication, the role
// policy and request validation run before it (pkg/rpc interceptors).
// Each feature adds its methods in its own file; a procedure without one answers unimplemented.
type Server struct {
	schedulingv1connect.UnimplementedSchedulingServiceHandler
	app *app.App
	log *slog.Logger
}

// Roles that call scheduling.
const (
	RoleScheduler         = "scheduler"
	RoleClinician         = "clinician"
	RoleOperator          = "operator"
	RoleIntakeCoordinator = "intake_coordinator"
	RoleAdmin             = "admin"
)

// Policy: the roles allowed to call each procedure (anything missing is refused). Clinic
// access is checked in each handler against the record it touches.
var Policy = rpc.Policy{
	schedulingv1connect.SchedulingServiceUpsertClinicProcedure:    {RoleOperator, RoleAdmin},
	schedulingv1connect.SchedulingServiceListClinicsProcedure:     {RoleScheduler, RoleClinician, RoleOperator, RoleIntakeCoordinator, RoleAdmin},
	schedulingv1connect.SchedulingServiceUpsertRoomProcedure:      {RoleOperator, RoleScheduler, RoleAdmin},
	schedulingv1connect.SchedulingServiceUpsertClinicianProcedure: {RoleOperator, RoleScheduler, RoleAdmin},
	schedulingv1connect.SchedulingServiceListCliniciansProcedure:  {RoleScheduler, RoleClinician, RoleOperator, RoleAdmin},
	schedulingv1connect.SchedulingServiceUpsertProgramProcedure:   {RoleOperator, RoleAdmin},
	schedulingv1connect.SchedulingServiceListProgramsProcedure:    {RoleScheduler, RoleClinician, RoleOperator, RoleIntakeCoordinator, RoleAdmin},
	schedulingv1connect.SchedulingServiceUpsertTrackProcedure:     {RoleOperator, RoleScheduler, RoleAdmin},
	schedulingv1connect.SchedulingServiceListTracksProcedure:      {RoleScheduler, RoleClinician, RoleOperator, RoleIntakeCoordinator, RoleAdmin},
	schedulingv1connect.SchedulingServiceGetEnrollmentProcedure:   {RoleScheduler, RoleClinician, RoleIntakeCoordinator, RoleAdmin},
	schedulingv1connect.SchedulingServiceListWaitlistProcedure:    {RoleScheduler, RoleClinician, RoleOperator, RoleIntakeCoordinator, RoleAdmin},
	schedulingv1connect.SchedulingServiceSwitchTrackProcedure:     {RoleScheduler, RoleAdmin},
}

// NewServer returns the handler implementation.
func NewServer(a *app.App, log *slog.Logger) *Server { return &Server{app: a, log: log} }

// GetEnrollment returns the patient's current enrollment in a clinic the caller can see.
//
// Clinic visibility: an enrollment in a clinic the caller may not see is reported as
// not_found, exactly like an absent one, never as permission_denied. The request names only a
// patient, so a distinct code would tell a caller from another clinic that the patient is
// treated somewhere (for an SUD program that is itself protected information, 42 CFR Part 2).
// permission_denied is kept for the role check, which does not depend on the data.
func (s *Server) GetEnrollment(ctx context.Context, req *connect.Request[schedulingv1.GetEnrollmentRequest]) (*connect.Response[schedulingv1.GetEnrollmentResponse], error) {
	p := auth.PrincipalFrom(ctx)
	if p == nil {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("no caller"))
	}
	e, err := s.app.GetEnrollment(ctx, p, req.Msg.GetPatientId())
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return nil, connect.NewError(connect.CodeNotFound, errors.New("enrollment not found"))
	case err != nil:
		s.log.ErrorContext(ctx, "get enrollment failed", "error", err)
		return nil, connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
	return connect.NewResponse(&schedulingv1.GetEnrollmentResponse{Enrollment: &schedulingv1.Enrollment{
		EnrollmentId: e.ID,
		PatientId:    e.PatientID,
		ClinicId:     e.ClinicID,
		ProgramTrack: e.ProgramTrack,
		StartDate:    e.StartDate.Format(domain.DateLayout),
		Status:       e.Status,
	}}), nil
}
