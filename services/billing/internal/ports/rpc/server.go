// Package rpc serves BillingService over Connect.
package rpc

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/rpc"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"

	"github.com/trellis-health/trellis/services/billing/internal/app"
	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// Server implements billingv1connect.BillingServiceHandler. Authentication, the role policy
// and request validation run before it (pkg/rpc interceptors).
// Each feature adds its methods in its own file; a procedure without one answers unimplemented.
type Server struct {
	billingv1connect.UnimplementedBillingServiceHandler
	app *app.App
	cfg *app.Configuration
	log *slog.Logger
}

// Roles that call billing.
const (
	RoleBilling  = "billing"
	RoleOperator = "operator"
	RoleAdmin    = "admin"
)

// Policy: the roles allowed to call each procedure (anything missing is refused).
var Policy = rpc.Policy{
	billingv1connect.BillingServiceGetAccountProcedure:      {RoleBilling, RoleAdmin},
	billingv1connect.BillingServiceUpsertPayerProcedure:     {RoleBilling, RoleAdmin},
	billingv1connect.BillingServiceListPayersProcedure:      {RoleBilling, RoleOperator, RoleAdmin},
	billingv1connect.BillingServiceUpsertContractProcedure:  {RoleBilling, RoleAdmin},
	billingv1connect.BillingServiceListContractsProcedure:   {RoleBilling, RoleOperator, RoleAdmin},
	billingv1connect.BillingServiceSetSlidingScaleProcedure: {RoleBilling, RoleAdmin},
	billingv1connect.BillingServiceGetSlidingScaleProcedure: {RoleBilling, RoleOperator, RoleAdmin},
}

// NewServer returns the handler implementation.
func NewServer(a *app.App, cfg *app.Configuration, log *slog.Logger) *Server {
	return &Server{app: a, cfg: cfg, log: log}
}

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
