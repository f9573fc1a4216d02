package rpc

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/idempotency"
	"github.com/trellis-health/trellis/pkg/rpc"
	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
)

// fail maps a use case error to its Connect error, for every procedure: broken rules name
// each field and rule; a state that forbids the call, or a reused idempotency key, is
// failed_precondition; a clinic the caller may not see (when the request names it) is
// permission_denied; an absent record, or one of a clinic the caller may not see, is
// not_found; anything unexpected is logged (ids and SQL states only) and hidden behind a
// generic internal error. what names the record for messages and logs.
func (s *Server) fail(ctx context.Context, what string, err error) error {
	var ve *domain.ValidationError
	var pe *domain.PreconditionError
	switch {
	case errors.As(err, &ve):
		vs := make([]rpc.FieldViolation, len(ve.Violations))
		for i, v := range ve.Violations {
			vs[i] = rpc.FieldViolation{Field: v.Field, Rule: v.Rule, Msg: v.Msg}
		}
		return rpc.InvalidArgument(vs...)
	case errors.As(err, &pe):
		return connect.NewError(connect.CodeFailedPrecondition, pe)
	case errors.Is(err, idempotency.ErrKeyReused):
		// Not already_exists: a client might take that for success.
		return connect.NewError(connect.CodeFailedPrecondition, err)
	case errors.Is(err, domain.ErrPermissionDenied):
		return connect.NewError(connect.CodePermissionDenied, errors.New("no access to this clinic"))
	case errors.Is(err, domain.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, errors.New(what+" not found"))
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	default:
		s.log.ErrorContext(ctx, what+" call failed", "error", err)
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
}
