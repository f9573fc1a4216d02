package rpc

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/rpc"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"

	"github.com/trellis-health/trellis/services/billing/internal/app"
	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// costsRoleIntakeCoordinator prepares estimates before admission.
const costsRoleIntakeCoordinator = "intake_coordinator"

// CostsPolicy: operators read cost reports; billing staff set rates and fixed costs; billing
// staff and intake coordinators estimate what a patient will owe.
var CostsPolicy = rpc.Policy{
	billingv1connect.CostsServiceSetCostRateProcedure:         {RoleBilling, RoleAdmin},
	billingv1connect.CostsServiceSetFixedCostProcedure:        {RoleBilling, RoleAdmin},
	billingv1connect.CostsServiceGetCostReportProcedure:       {RoleOperator, RoleBilling, RoleAdmin},
	billingv1connect.CostsServiceEstimatePatientCostProcedure: {RoleBilling, costsRoleIntakeCoordinator, RoleAdmin},
	billingv1connect.CostsServiceCompareEstimateProcedure:     {RoleBilling, costsRoleIntakeCoordinator, RoleAdmin},
}

// CostsServer implements billingv1connect.CostsServiceHandler. Authentication, the role policy
// and request validation run before it; clinic access is checked here (a clinic the caller
// cannot see answers permission_denied, like the configuration procedures; an estimate at
// such a clinic answers not_found).
type CostsServer struct {
	costs *app.Costs
	log   *slog.Logger
}

var _ billingv1connect.CostsServiceHandler = (*CostsServer)(nil)

// NewCostsServer returns the handler implementation.
func NewCostsServer(c *app.Costs, log *slog.Logger) *CostsServer {
	return &CostsServer{costs: c, log: log}
}

func costsCaller(ctx context.Context) (*auth.Principal, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// SetCostRate sets a clinician's (or the clinic default) hourly cost.
func (s *CostsServer) SetCostRate(ctx context.Context, req *connect.Request[billingv1.SetCostRateRequest]) (*connect.Response[billingv1.SetCostRateResponse], error) {
	p, err := costsCaller(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.costs.SetCostRate(ctx, p, domain.CostRate{ClinicID: req.Msg.GetClinicId(), ClinicianID: req.Msg.GetClinicianId(),
		HourlyCostCents: req.Msg.GetHourlyCostCents()})
	if err != nil {
		return nil, domainError(ctx, s.log, "set cost rate", err)
	}
	return connect.NewResponse(&billingv1.SetCostRateResponse{ClinicId: r.ClinicID, ClinicianId: r.ClinicianID, HourlyCostCents: r.HourlyCostCents}), nil
}

// SetFixedCost sets (0 cents: removes) a fixed monthly cost.
func (s *CostsServer) SetFixedCost(ctx context.Context, req *connect.Request[billingv1.SetFixedCostRequest]) (*connect.Response[billingv1.SetFixedCostResponse], error) {
	p, err := costsCaller(ctx)
	if err != nil {
		return nil, err
	}
	f, err := s.costs.SetFixedCost(ctx, p, domain.FixedCost{ClinicID: req.Msg.GetClinicId(), Month: req.Msg.GetMonth(),
		Label: req.Msg.GetLabel(), AmountCents: req.Msg.GetAmountCents()})
	if err != nil {
		return nil, domainError(ctx, s.log, "set fixed cost", err)
	}
	return connect.NewResponse(&billingv1.SetFixedCostResponse{ClinicId: f.ClinicID, Month: f.Month[:7], Label: f.Label, AmountCents: f.AmountCents}), nil
}

// GetCostReport returns the cost report of a date range.
func (s *CostsServer) GetCostReport(ctx context.Context, req *connect.Request[billingv1.GetCostReportRequest]) (*connect.Response[billingv1.GetCostReportResponse], error) {
	p, err := costsCaller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	rep, err := s.costs.CostReport(ctx, p, m.GetFrom(), m.GetTo(), m.GetClinicId(), app.CostGroupFromProto(m.GetGroupBy()))
	if err != nil {
		return nil, domainError(ctx, s.log, "cost report", err)
	}
	out := &billingv1.GetCostReportResponse{Total: app.CostRowToProto(rep.Total), SessionsWithoutRate: rep.SessionsWithoutRate}
	for _, r := range rep.Rows {
		out.Rows = append(out.Rows, app.CostRowToProto(r))
	}
	return connect.NewResponse(out), nil
}

// EstimatePatientCost estimates, stores and returns what a planned program will cost.
func (s *CostsServer) EstimatePatientCost(ctx context.Context, req *connect.Request[billingv1.EstimatePatientCostRequest]) (*connect.Response[billingv1.EstimatePatientCostResponse], error) {
	p, err := costsCaller(ctx)
	if err != nil {
		return nil, err
	}
	e, err := s.costs.Estimate(ctx, p, app.EstimateInputFromProto(req.Msg))
	if err != nil {
		return nil, domainError(ctx, s.log, "estimate patient cost", err)
	}
	s.log.InfoContext(ctx, "patient cost estimated", "estimate_id", e.ID, "clinic_id", e.ClinicID, "good_faith", e.GoodFaith)
	return connect.NewResponse(&billingv1.EstimatePatientCostResponse{Estimate: app.EstimateToProto(e)}), nil
}

// CompareEstimate compares a stored estimate with the actual charges so far.
func (s *CostsServer) CompareEstimate(ctx context.Context, req *connect.Request[billingv1.CompareEstimateRequest]) (*connect.Response[billingv1.CompareEstimateResponse], error) {
	p, err := costsCaller(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.costs.CompareEstimate(ctx, p, req.Msg.GetEstimateId(), req.Msg.GetPatientId())
	if err != nil {
		return nil, domainError(ctx, s.log, "compare estimate", err)
	}
	return connect.NewResponse(&billingv1.CompareEstimateResponse{
		Estimate:                   app.EstimateToProto(c.Estimate),
		PatientId:                  c.PatientID,
		ChargedCents:               c.ChargedCents,
		PatientResponsibilityCents: c.PatientResponsibilityCents,
		ChargedDifferenceCents:     c.ChargedDifferenceCents,
		PatientDifferenceCents:     c.PatientDifferenceCents,
		ExceedsGoodFaithThreshold:  c.ExceedsGoodFaithThreshold,
	}), nil
}
