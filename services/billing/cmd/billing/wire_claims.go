package main

import (
	"context"

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

// claimsConfig is the loaded configuration main runs with (service.Main loads it before
// setup); nil (tests) means the defaults of Config's tags.
var claimsConfig *Config

// x12Sender is who billing is on its 837 files.
func x12Sender() app.X12Sender {
	s := app.X12Sender{SubmitterID: "TRELLIS", SubmitterName: "Trellis Health", SubmitterPhone: "8005550100", Usage: "T"}
	if c := claimsConfig; c != nil {
		s = app.X12Sender{SubmitterID: c.X12SubmitterID, SubmitterName: c.X12SubmitterName, SubmitterPhone: c.X12SubmitterPhone,
			Usage: c.X12Usage}
	}
	return s
}

// setupClaims wires the claims area: claim files (X12 837), billing providers, diagnoses,
// patient identities (from intake) and disclosures.
func setupClaims(_ context.Context, p *service.Platform) error {
	claims := app.NewClaims(p.Store, postgres.NewClaims(p.Pool), x12.Write837, x12Sender())
	p.Consume(events.IdentityConfig(), events.NewIdentities(claims, p.Log).Handle)
	p.Server.Handle(billingv1connect.NewClaimsServiceHandler(rpcport.NewClaimsServer(claims, p.Log), p.Server.HandlerOptions()...))
	return nil
}
