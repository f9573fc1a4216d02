// Package rpc serves BillingService over Connect.
package rpc

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/auth"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"

	"github.com/trellis-health/trellis/services/billing/internal/app"
	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// Server implements billingv1connect.BillingServiceHandler. Authentication, the role policy
// and request validation run before it (pkg/rpc interceptors).
type Server struct {
	app *app.App
	log *slog.Logger
}

// NewServer returns the handler implementation.
func NewServer(a *app.App, log *slog.Logger) *Server { return &Server{app: a, log: log} }

// GetAccount returns the patient's account at a clinic the caller can see.
//
// Clinic visibility: an account at a clinic the caller may not see is reported as not_found,
// exactly like an absent one, never as permission_denied. The request names only a patient,
// so a distinct code would tell a caller from another clinic that the patient is treated
// somewhere (for an SUD program that is itself protected information, 42 CFR Part 2).
// permission_denied is kept for the role check, which does not depend on the data.
func (s *Server) GetAccount(ctx context.Context, req *connect.Request[billingv1.GetAccountRequest]) (*connect.Response[billingv1.GetAccountResponse], error) {
	p := auth.PrincipalFrom(ctx)
	if p == nil {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("no caller"))
	}
	a, err := s.app.GetAccount(ctx, p, req.Msg.GetPatientId())
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return nil, connect.NewError(connect.CodeNotFound, errors.New("account not found"))
	case err != nil:
		s.log.ErrorContext(ctx, "get account failed", "error", err)
		return nil, connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
	return connect.NewResponse(&billingv1.GetAccountResponse{Account: &billingv1.Account{
		AccountId:    a.ID,
		PatientId:    a.PatientID,
		ClinicId:     a.ClinicID,
		BalanceCents: a.BalanceCents,
		Status:       a.Status,
	}}), nil
}
