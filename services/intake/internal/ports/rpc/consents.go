package rpc

import (
	"context"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/idempotency"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/services/intake/internal/app"
	"github.com/trellis-health/trellis/services/intake/internal/domain"
)

// GrantConsent records a new consent version for a patient. The clinic check is against the
// patient's clinic: a patient the caller cannot see is not_found, as is an unknown one.
func (h *Handler) GrantConsent(ctx context.Context, req *connect.Request[intakev1.GrantConsentRequest]) (*connect.Response[intakev1.GrantConsentResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	hash, err := idempotency.RequestHash(req.Spec().Procedure, m, func(c *intakev1.GrantConsentRequest) { c.IdempotencyKey = "" })
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	in := domain.ConsentInput{
		Scopes:            app.ScopeCodes(m.GetScopes()),
		Channels:          app.ChannelCodes(m.GetChannels()),
		ConfidentialEmail: m.GetConfidentialEmail(),
		ConfidentialPhone: m.GetConfidentialPhone(),
		QuietHours:        domain.QuietHours{Start: m.GetQuietHours().GetStart(), End: m.GetQuietHours().GetEnd()},
		Language:          m.GetLanguage(),
	}
	for _, r := range m.GetNamedRecipients() {
		in.NamedRecipients = append(in.NamedRecipients, domain.NamedRecipient{Name: r.GetName(), Relationship: r.GetRelationship()})
	}
	if m.GetEffectiveFrom() != nil {
		in.EffectiveFrom = m.GetEffectiveFrom().AsTime()
	}
	if m.GetExpiresAt() != nil {
		in.ExpiresAt = m.GetExpiresAt().AsTime()
	}
	c, replayed, err := h.intake.GrantConsent(ctx, app.GrantConsent{
		Caller: p.Subject, IdempotencyKey: m.GetIdempotencyKey(), RequestHash: hash,
		CanSee: p.CanSeeClinic, PatientID: m.GetPatientId(), Input: in,
	})
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return connect.NewResponse(&intakev1.GrantConsentResponse{Consent: c, Replayed: replayed}), nil
}

// RevokeConsent revokes the active consent from a given time (protovalidate has required the
// confirmation that a written revocation was received).
func (h *Handler) RevokeConsent(ctx context.Context, req *connect.Request[intakev1.RevokeConsentRequest]) (*connect.Response[intakev1.RevokeConsentResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	r := domain.Revocation{Reason: m.GetReason()}
	if m.GetEffectiveAt() != nil {
		r.EffectiveAt = m.GetEffectiveAt().AsTime()
	}
	c, err := h.intake.RevokeConsent(ctx, app.RevokeConsent{
		Caller: p.Subject, CanSee: p.CanSeeClinic, ConsentID: m.GetConsentId(), Revocation: r,
	})
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return connect.NewResponse(&intakev1.RevokeConsentResponse{Consent: c}), nil
}

// ListConsents lists a patient's consent versions, newest first.
func (h *Handler) ListConsents(ctx context.Context, req *connect.Request[intakev1.ListConsentsRequest]) (*connect.Response[intakev1.ListConsentsResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := h.intake.ListConsents(ctx, req.Msg.GetPatientId(), p.CanSeeClinic)
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return connect.NewResponse(&intakev1.ListConsentsResponse{Consents: cs}), nil
}
