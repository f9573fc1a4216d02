package rpc

import (
	"context"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/idempotency"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/services/intake/internal/app"
	"github.com/trellis-health/trellis/services/intake/internal/domain"
)

// SetCoverage adds a coverage or, with coverage_id, changes one of the patient's.
func (h *Handler) SetCoverage(ctx context.Context, req *connect.Request[intakev1.SetCoverageRequest]) (*connect.Response[intakev1.SetCoverageResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	hash, err := idempotency.RequestHash(req.Spec().Procedure, m, func(c *intakev1.SetCoverageRequest) { c.IdempotencyKey = "" })
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	rel, elig, prio := app.CoverageCodes(m.GetSubscriberRelationship(), m.GetEligibility(), m.GetPriority())
	c, replayed, err := h.intake.SetCoverage(ctx, app.SetCoverage{
		Caller: p.Subject, IdempotencyKey: m.GetIdempotencyKey(), RequestHash: hash, CanSee: p.CanSeeClinic,
		PatientID: m.GetPatientId(), CoverageID: m.GetCoverageId(),
		Input: domain.CoverageInput{
			PayerID: m.GetPayerId(), Plan: m.GetPlan(), MemberID: m.GetMemberId(), GroupNumber: m.GetGroupNumber(),
			SubscriberRelationship: rel, EffectiveFrom: m.GetEffectiveFrom(), EffectiveTo: m.GetEffectiveTo(),
			Eligibility: elig, Priority: prio,
		},
	})
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return connect.NewResponse(&intakev1.SetCoverageResponse{Coverage: c, Replayed: replayed}), nil
}

// ListCoverage lists a patient's coverages by priority.
func (h *Handler) ListCoverage(ctx context.Context, req *connect.Request[intakev1.ListCoverageRequest]) (*connect.Response[intakev1.ListCoverageResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := h.intake.ListCoverage(ctx, req.Msg.GetPatientId(), p.CanSeeClinic)
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return connect.NewResponse(&intakev1.ListCoverageResponse{Coverages: cs}), nil
}
