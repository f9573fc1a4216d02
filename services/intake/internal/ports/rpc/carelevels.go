package rpc

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/services/intake/internal/domain"
	"github.com/trellis-health/trellis/services/intake/internal/domain/asam"
)

// ListCareLevels lists the levels of care of a criteria edition (asam.Current when none is
// named). The list is reference data of no clinic, so there is no clinic check; the role check
// has run in the platform's interceptor.
func (h *Handler) ListCareLevels(ctx context.Context, req *connect.Request[intakev1.ListCareLevelsRequest]) (*connect.Response[intakev1.ListCareLevelsResponse], error) {
	if _, err := caller(ctx); err != nil {
		return nil, err
	}
	edition := req.Msg.GetEdition()
	if edition == "" {
		edition = asam.Current
	}
	levels, err := asam.Levels(edition)
	if errors.Is(err, asam.ErrUnknownEdition) {
		err = &domain.ValidationError{Violations: []domain.Violation{{
			Field: "edition", Rule: "edition.known", Msg: "no level list for this edition",
		}}}
	}
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	out := &intakev1.ListCareLevelsResponse{Levels: make([]*intakev1.CareLevel, len(levels))}
	for i, l := range levels {
		out.Levels[i] = &intakev1.CareLevel{Edition: edition, Code: l.Code, Name: l.Name}
	}
	return connect.NewResponse(out), nil
}
