package main

import (
	"context"

	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"

	"github.com/trellis-health/trellis/services/billing/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/billing/internal/app"
	rpcport "github.com/trellis-health/trellis/services/billing/internal/ports/rpc"
)

// remittancePolicy: the roles allowed to call each procedure of the remittance area: billing
// and admin post remittances and work the queues; operators also read lists, queues, aging
// and balances. An upload also needs every clinic ("*"): one 835 pays claims of many clinics.
var remittancePolicy = rpcport.RemittancePolicy

// setupRemittance wires the remittance area: 835 remittance upload and posting, reconciliation, work queues, receivables, statements.
func setupRemittance(_ context.Context, p *service.Platform, _ *Config) error {
	a := app.NewRemittances(p.Store, postgres.NewRemittances(p.Pool))
	p.Server.Handle(billingv1connect.NewRemittanceServiceHandler(rpcport.NewRemittanceServer(a, p.Log), p.Server.HandlerOptions()...))
	return nil
}
