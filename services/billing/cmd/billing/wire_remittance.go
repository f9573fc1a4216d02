package main

import (
	"context"
	"slices"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/rpc"
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"

	"github.com/trellis-health/trellis/services/billing/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/billing/internal/app"
	rpcport "github.com/trellis-health/trellis/services/billing/internal/ports/rpc"
)

// remittancePolicy: the roles allowed to call each procedure of the remittance area: billing
// and admin post remittances, work the queues and write off (and list write-offs); operators
// also read lists, queues, aging and balances. An upload also needs every clinic ("*"): one
// 835 pays claims of many clinics.
var remittancePolicy = rpcport.RemittancePolicy

// setupRemittance wires the remittance area: 835 remittance upload and posting,
// reconciliation, work queues and write-offs, receivables, and patient statements (with their
// cycle).
func setupRemittance(_ context.Context, p *service.Platform, cfg *Config, k *fieldcrypt.Keyring) error {
	a := app.NewRemittances(p.Store, postgres.NewRemittances(p.Store, k))
	ledger := patientLedger(p, cfg)
	// Uploads are limited per caller; the limiter runs after authentication (it keys on the
	// token's subject), being inside the platform's interceptors.
	uploads := auth.NewLimiter(cfg.UploadRatePerMinute, cfg.UploadBurst).UnaryInterceptor(billingv1connect.RemittanceServiceUploadRemittanceProcedure)
	// An 835 can be large (100,000 service lines are ~15-20 MB): UploadRemittance alone takes
	// requests up to rpc.MaxUploadBytes; the area's other procedures keep rpc.MaxRequestBytes.
	opts := append(slices.Clone(p.Server.HandlerOptions()), connect.WithInterceptors(uploads),
		rpc.WithRequestLimit(rpc.MaxUploadBytes, billingv1connect.RemittanceServiceUploadRemittanceProcedure))
	p.Server.Handle(billingv1connect.NewRemittanceServiceHandler(rpcport.NewRemittanceServer(a, ledger, p.Log), opts...))
	// The statement cycle is network-wide background work: system scope (every clinic's accounts).
	p.Go(func(ctx context.Context) error {
		return ledger.RunStatementCycle(auth.WithSystemScope(ctx), cfg.StatementCheckInterval, func(err error) {
			p.Log.ErrorContext(ctx, "statement cycle failed; retrying at the next check", "error", err)
		})
	})
	return nil
}
