package rpc

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"buf.build/go/protovalidate"
	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/telemetry"
)

// Policy maps each procedure ("/pkg.Service/Method") to the roles allowed to call it. A
// procedure missing from the policy is refused: access is granted explicitly or not at all.
type Policy map[string][]string

// HeaderCorrelationID lets a caller tie the events its request causes to its own flow. When
// absent (or not a UUID) the request's own id is used. It is echoed on the response.
const HeaderCorrelationID = "Correlation-Id"

// causeInterceptor gives every request an id and a correlation id, recorded in the context so
// that events emitted while handling it carry them (bus.WithCause).
func causeInterceptor() connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			requestID := bus.NewID()
			correlationID := req.Header().Get(HeaderCorrelationID)
			if _, err := uuid.Parse(correlationID); err != nil {
				correlationID = requestID
			}
			resp, err := next(bus.WithCause(ctx, correlationID, requestID), req)
			if resp != nil {
				resp.Header().Set(HeaderCorrelationID, correlationID)
			}
			return resp, err
		}
	}
}

// authInterceptor authenticates the bearer token and authorizes the procedure by role.
func authInterceptor(v *auth.Verifier, policy Policy) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			raw, ok := strings.CutPrefix(req.Header().Get("Authorization"), "Bearer ")
			if !ok || raw == "" {
				return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("missing bearer token"))
			}
			p, err := v.Verify(ctx, raw)
			if err != nil {
				return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("invalid or expired token"))
			}
			roles, listed := policy[req.Spec().Procedure]
			if !listed || !p.HasRole(roles...) {
				return nil, connect.NewError(connect.CodePermissionDenied, errors.New("your role may not call "+req.Spec().Procedure))
			}
			return next(auth.WithPrincipal(ctx, p), req)
		}
	}
}

// refuseStreaming fails closed for streaming procedures: the interceptors above are unary
// only, so a streaming handler would otherwise run unauthenticated and unvalidated.
type refuseStreaming struct{}

func (refuseStreaming) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return next }

func (refuseStreaming) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (refuseStreaming) WrapStreamingHandler(connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(_ context.Context, conn connect.StreamingHandlerConn) error {
		return connect.NewError(connect.CodeUnimplemented,
			errors.New("streaming procedures are not supported: "+conn.Spec().Procedure))
	}
}

// validateInterceptor checks protovalidate rules on every request message.
func validateInterceptor(v protovalidate.Validator) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if m, ok := req.Any().(proto.Message); ok {
				if err := v.Validate(m); err != nil {
					return nil, FromValidation(err)
				}
			}
			return next(ctx, req)
		}
	}
}

// observeInterceptor records RED metrics and one log line per call (procedure, code,
// duration; never request contents).
func observeInterceptor(m *telemetry.Metrics, log *slog.Logger) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			start := time.Now()
			resp, err := next(ctx, req)
			code := "ok"
			if err != nil {
				code = connect.CodeOf(err).String()
			}
			proc := req.Spec().Procedure
			m.RPCRequests.WithLabelValues(proc, code).Inc()
			m.RPCDurationSeconds.WithLabelValues(proc).Observe(time.Since(start).Seconds())
			level := slog.LevelInfo
			if code == "internal" || code == "unknown" || code == "unavailable" {
				level = slog.LevelError
			}
			attrs := []any{"procedure", proc, "code", code, "duration_ms", time.Since(start).Milliseconds()}
			if code == "unknown" {
				// An error the handler did not classify: operators need it, but Postgres
				// messages can quote input values, so for those only the SQL state and the
				// names of the constraint, table and column are logged.
				attrs = append(attrs, "error", pg.Redact(err))
			}
			log.Log(ctx, level, "rpc", attrs...)
			if code == "unknown" {
				// Hide unexpected internals (they may quote SQL values) behind a generic error.
				return nil, connect.NewError(connect.CodeInternal, errors.New("internal error"))
			}
			return resp, err
		}
	}
}
