package rpc

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/idempotency"
	"github.com/trellis-health/trellis/pkg/rpc"
	"github.com/trellis-health/trellis/services/intake/internal/domain"
)

// fail turns a use case's error into a Connect error: rule violations name each field and rule;
// a reused idempotency key or a forbidden state is failed_precondition; anything unexpected is
// logged (ids and SQL states only) and hidden behind a generic internal error.
func (h *Handler) fail(ctx context.Context, err error) error {
	var ve *domain.ValidationError
	var pe *domain.PreconditionError
	switch {
	case errors.As(err, &ve):
		vs := make([]rpc.FieldViolation, len(ve.Violations))
		for i, v := range ve.Violations {
			vs[i] = rpc.FieldViolation{Field: v.Field, Rule: v.Rule, Msg: v.Msg}
		}
		return rpc.InvalidArgument(vs...)
	case errors.Is(err, idempotency.ErrKeyReused):
		// failed_precondition rather than already_exists: the request is well formed, but the
		// state of the key (bound to another request) forbids it; already_exists would suggest
		// the record being created exists, which a client might take for success.
		return connect.NewError(connect.CodeFailedPrecondition, err)
	case errors.As(err, &pe):
		return connect.NewError(connect.CodeFailedPrecondition, pe)
	case errors.Is(err, domain.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, errors.New("not found"))
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	default:
		h.log.ErrorContext(ctx, "intake call failed", "error", err)
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
}

// caller returns the authenticated principal (the platform's interceptor guarantees one).
func caller(ctx context.Context) (*auth.Principal, error) {
	p := auth.PrincipalFrom(ctx)
	if p == nil {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("no caller"))
	}
	return p, nil
}

// errClinic is the answer when the caller may not act on a clinic.
func errClinic() error {
	return connect.NewError(connect.CodePermissionDenied, errors.New("you may not act on this clinic"))
}
