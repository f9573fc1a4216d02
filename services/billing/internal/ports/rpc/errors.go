package rpc

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/idempotency"
	"github.com/trellis-health/trellis/pkg/rpc"

	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// domainError maps billing's domain errors to Connect codes, the same way for every procedure
// of every area. Messages never carry values: a validation error names each field and rule
// (invalid_argument with field violations); forbidden and conflict errors say which rule
// refused (they are written without values); anything unexpected is logged with op and
// answered "internal error".
func domainError(ctx context.Context, log *slog.Logger, op string, err error) error {
	var ve *domain.ValidationError
	switch {
	case errors.As(err, &ve):
		vs := make([]rpc.FieldViolation, len(ve.Violations))
		for i, v := range ve.Violations {
			vs[i] = rpc.FieldViolation{Field: v.Field, Rule: v.Rule, Msg: v.Msg}
		}
		return rpc.InvalidArgument(vs...)
	case errors.Is(err, domain.ErrInvalid):
		return connect.NewError(connect.CodeInvalidArgument, err)
	case errors.Is(err, domain.ErrForbidden):
		return connect.NewError(connect.CodePermissionDenied, err)
	case errors.Is(err, domain.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, errors.New("not found"))
	case errors.Is(err, domain.ErrConflict):
		return connect.NewError(connect.CodeFailedPrecondition, err)
	case errors.Is(err, idempotency.ErrKeyReused):
		// Not already_exists: a client might take that for success.
		return connect.NewError(connect.CodeFailedPrecondition, err)
	default:
		log.ErrorContext(ctx, op+" failed", "error", err)
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
}

// caller is the authenticated caller of a procedure (the auth interceptor has run), or
// unauthenticated when there is none.
func caller(ctx context.Context) (*auth.Principal, error) {
	p := auth.PrincipalFrom(ctx)
	if p == nil {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("no caller"))
	}
	return p, nil
}
