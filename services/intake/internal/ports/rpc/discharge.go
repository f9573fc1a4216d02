package rpc

import (
	"context"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/idempotency"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/services/intake/internal/app"
)

// DischargePatient ends an episode of care. The episode's clinic is checked once it is loaded
// (inside the use case): an episode of a clinic the caller may not see is not_found, so
// callers cannot probe which episode ids exist.
func (h *Handler) DischargePatient(ctx context.Context, req *connect.Request[intakev1.DischargePatientRequest]) (*connect.Response[intakev1.DischargePatientResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	hash, err := idempotency.RequestHash(req.Spec().Procedure, m, func(c *intakev1.DischargePatientRequest) { c.IdempotencyKey = "" })
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	out, err := h.intake.DischargePatient(ctx, app.DischargePatient{
		Caller:         p.Subject,
		IdempotencyKey: m.GetIdempotencyKey(),
		RequestHash:    hash,
		CanSeeClinic:   p.CanSeeClinic,
		EpisodeID:      m.GetEpisodeId(),
		Reason:         m.GetReason(),
		DischargeDate:  m.GetDischargeDate(),
		Note:           m.GetNote(),
	})
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return connect.NewResponse(out), nil
}
