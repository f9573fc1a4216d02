package main

import (
	"context"

	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"

	"github.com/trellis-health/trellis/services/billing/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/billing/internal/app"
	"github.com/trellis-health/trellis/services/billing/internal/ports/events"
	rpcport "github.com/trellis-health/trellis/services/billing/internal/ports/rpc"
)

// costsPolicy: the roles allowed to call each procedure of the costs area: operators, billing
// and admins read reports; billing and admins set rates and fixed costs; billing, intake
// coordinators and admins estimate and compare.
var costsPolicy = rpcport.CostsPolicy

// setupCosts wires the costs area: cost of care delivered and patient cost estimates.
func setupCosts(_ context.Context, p *service.Platform, _ *Config, _ *fieldcrypt.Keyring) error {
	costs := app.NewCosts(p.Store, postgres.NewCosts(p.Store), postgres.NewConfig(p.Store))
	p.Consume(events.CostsConfig(), events.NewCosts(costs, p.Log).Handle)
	p.Server.Handle(billingv1connect.NewCostsServiceHandler(rpcport.NewCostsServer(costs, p.Log), p.Server.HandlerOptions()...))
	return nil
}
