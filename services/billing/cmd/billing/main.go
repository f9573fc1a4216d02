// Command billing runs the billing service: it opens patient accounts for new enrollments and
// serves them, payers, contracts and the self-pay sliding scale (BillingService).
// `billing [serve|migrate|seed-demo]`; `billing --help`.
package main

import (
	"context"

	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"

	"github.com/trellis-health/trellis/services/billing/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/billing/internal/app"
	"github.com/trellis-health/trellis/services/billing/internal/ports/events"
	rpcport "github.com/trellis-health/trellis/services/billing/internal/ports/rpc"
	"github.com/trellis-health/trellis/services/billing/migrations"
)

// Config is billing's configuration (`billing --help` lists it).
type Config struct {
	service.Base
}

func main() {
	var cfg Config
	service.Main(spec(), &cfg)
}

func spec() service.Spec {
	return service.Spec{
		Name:        "billing",
		Summary:     "patient accounts, charges, claims and remittances",
		DefaultAddr: ":8083",
		Migrations:  migrations.FS,
		Consumes:    []string{"scheduling"},
		Policy:      rpcport.Policy,
		Setup:       setup,
		Commands: map[string]func(context.Context, *service.Platform, []string) error{
			"seed-demo": seedDemo, // seed.go
		},
	}
}

func setup(_ context.Context, p *service.Platform) error {
	a := app.New(postgres.NewAccounts(p.Pool))
	p.Consume(events.EnrollmentsConfig(), events.NewEnrollments(a, p.Log).Handle)
	cfg := app.NewConfiguration(p.Store, postgres.NewConfig(p.Pool))
	p.Server.Handle(billingv1connect.NewBillingServiceHandler(rpcport.NewServer(a, cfg, p.Log), p.Server.HandlerOptions()...))
	return nil
}
