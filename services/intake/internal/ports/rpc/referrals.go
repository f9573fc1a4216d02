package rpc

import (
	"context"
	"slices"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/idempotency"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/services/intake/internal/app"
	"github.com/trellis-health/trellis/services/intake/internal/domain"
)

// The referral funnel: the queue, status moves, the assessment and refer-out. Authentication,
// the role check and protovalidate have run in the platform's interceptors. A call naming a
// clinic is refused (permission_denied) before anything else when the caller may not see it; a
// call naming a referral answers not_found for a referral of a clinic the caller may not see.

// CreateReferral puts a first contact or referral in the queue.
func (h *Handler) CreateReferral(ctx context.Context, req *connect.Request[intakev1.CreateReferralRequest]) (*connect.Response[intakev1.CreateReferralResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	if !p.CanSeeClinic(m.GetClinicId()) {
		return nil, errClinic()
	}
	hash, err := idempotency.RequestHash(req.Spec().Procedure, m, func(c *intakev1.CreateReferralRequest) { c.IdempotencyKey = "" })
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	in := domain.ReferralInput{
		ClinicID: m.GetClinicId(), Source: app.SourceCode(m.GetSource()),
		GivenName: m.GetGivenName(), FamilyName: m.GetFamilyName(), DateOfBirth: m.GetDateOfBirth(),
		Phone: m.GetPhone(), Email: m.GetEmail(), PreferredTrack: app.TrackCode(m.GetPreferredTrack()), Notes: m.GetNotes(),
	}
	if m.FirstContactAt != nil {
		at := m.GetFirstContactAt().AsTime()
		in.FirstContactAt = &at
	}
	out, err := h.intake.CreateReferral(ctx, app.CreateReferral{
		Caller: p.Subject, Sees: p, IdempotencyKey: m.GetIdempotencyKey(), RequestHash: hash, Input: in,
	})
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return connect.NewResponse(out), nil
}

// GetReferral returns one referral.
func (h *Handler) GetReferral(ctx context.Context, req *connect.Request[intakev1.GetReferralRequest]) (*connect.Response[intakev1.GetReferralResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	r, err := h.intake.GetReferral(ctx, p, req.Msg.GetReferralId())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return connect.NewResponse(&intakev1.GetReferralResponse{Referral: r}), nil
}

// ListReferrals lists the queue of the named clinic, or of every clinic the caller may see.
func (h *Handler) ListReferrals(ctx context.Context, req *connect.Request[intakev1.ListReferralsRequest]) (*connect.Response[intakev1.ListReferralsResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	q := app.ListReferrals{
		Sees: p, MinAgeDays: int(m.GetMinAgeDays()), MaxAgeDays: int(m.GetMaxAgeDays()),
		PageSize: int(m.GetPageSize()), PageToken: m.GetPageToken(),
	}
	switch {
	case m.GetClinicId() != "":
		if !p.CanSeeClinic(m.GetClinicId()) {
			return nil, errClinic()
		}
		q.ClinicIDs = []string{m.GetClinicId()}
	case slices.Contains(p.Clinics, auth.AllClinics):
		q.AllClinics = true
	default:
		// Only ids: a token naming something else grants nothing to list.
		for _, c := range p.Clinics {
			if uuid.Validate(c) == nil {
				q.ClinicIDs = append(q.ClinicIDs, c)
			}
		}
	}
	for _, s := range m.GetStatuses() {
		if st := app.StatusCode(s); !slices.Contains(q.Statuses, st) {
			q.Statuses = append(q.Statuses, st)
		}
	}
	out, err := h.intake.ListReferrals(ctx, q)
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return connect.NewResponse(out), nil
}

// ChangeReferralStatus moves a referral to contacted, screened or closed.
func (h *Handler) ChangeReferralStatus(ctx context.Context, req *connect.Request[intakev1.ChangeReferralStatusRequest]) (*connect.Response[intakev1.ChangeReferralStatusResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	r, err := h.intake.ChangeReferralStatus(ctx, app.ChangeReferralStatus{
		Caller: p.Subject, Sees: p, ReferralID: m.GetReferralId(), To: app.StatusCode(m.GetStatus()), Reason: m.GetReason(),
	})
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return connect.NewResponse(&intakev1.ChangeReferralStatusResponse{Referral: r}), nil
}

// RecordAssessment records an ASAM assessment of a screened referral.
func (h *Handler) RecordAssessment(ctx context.Context, req *connect.Request[intakev1.RecordAssessmentRequest]) (*connect.Response[intakev1.RecordAssessmentResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	hash, err := idempotency.RequestHash(req.Spec().Procedure, m, func(c *intakev1.RecordAssessmentRequest) { c.IdempotencyKey = "" })
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	in := domain.AssessmentInput{
		Edition: m.GetEdition(), Population: app.PopulationCode(m.GetPopulation()), Withdrawal: app.WithdrawalCode(m.GetWithdrawal()),
		CoOccurring: app.ConditionCodes(m.GetCoOccurring()), OverrideLevel: m.GetOverrideLevel(), OverrideReason: m.GetOverrideReason(),
	}
	for _, d := range m.GetDimensions() {
		in.Dimensions = append(in.Dimensions, domain.DimensionInput{Dimension: int(d.GetDimension()), Rating: int(d.GetRating()), Notes: d.GetNotes()})
	}
	out, err := h.intake.RecordAssessment(ctx, app.RecordAssessment{
		Caller: p.Subject, Sees: p, IdempotencyKey: m.GetIdempotencyKey(), RequestHash: hash, ReferralID: m.GetReferralId(), Input: in,
	})
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return connect.NewResponse(out), nil
}

// ReferOut decides a screened or assessed referral goes to another level of care or provider.
func (h *Handler) ReferOut(ctx context.Context, req *connect.Request[intakev1.ReferOutRequest]) (*connect.Response[intakev1.ReferOutResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	hash, err := idempotency.RequestHash(req.Spec().Procedure, m, func(c *intakev1.ReferOutRequest) { c.IdempotencyKey = "" })
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	out, err := h.intake.ReferOut(ctx, app.ReferOut{
		Caller: p.Subject, Sees: p, IdempotencyKey: m.GetIdempotencyKey(), RequestHash: hash, ReferralID: m.GetReferralId(),
		Input: domain.ReferOutInput{Level: m.GetLevel(), Destination: m.GetDestination(), Reason: m.GetReason()},
	})
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return connect.NewResponse(out), nil
}
