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
	"github.com/trellis-health/trellis/services/billing/internal/x12"
)

// claimsPolicy: the roles allowed to call each procedure of the claims area.
var claimsPolicy = rpcport.ClaimsPolicy

// setupClaims wires the claims area: claim files (X12 837), billing providers, diagnoses,
// patient identities (from intake) and disclosures.
func setupClaims(_ context.Context, p *service.Platform, cfg *Config, k *fieldcrypt.Keyring) error {
	sender := app.X12Sender{SubmitterID: cfg.X12SubmitterID, SubmitterName: cfg.X12SubmitterName,
		SubmitterPhone: cfg.X12SubmitterPhone, Usage: cfg.X12Usage}
	claims := app.NewClaims(p.Store, postgres.NewClaims(p.Store, k), x12.Write837, sender)
	p.Consume(events.IdentityConfig(), events.NewIdentities(claims, p.Log).Handle)
	p.Server.Handle(billingv1connect.NewClaimsServiceHandler(rpcport.NewClaimsServer(claims, p.Log), p.Server.HandlerOptions()...))
	return nil
}
