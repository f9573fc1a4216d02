package main

import (
	"context"

	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/rpc"
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"

	"github.com/trellis-health/trellis/services/billing/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/billing/internal/app"
	"github.com/trellis-health/trellis/services/billing/internal/ports/events"
	rpcport "github.com/trellis-health/trellis/services/billing/internal/ports/rpc"
)

// chargesPolicy: the roles allowed to call each procedure of the charges area: billing,
// operators and admins read; billing and admins record authorizations.
var chargesPolicy = rpc.Policy{
	billingv1connect.ChargesServiceListChargesProcedure:         {rpcport.RoleBilling, rpcport.RoleOperator, rpcport.RoleAdmin},
	billingv1connect.ChargesServiceListAuthorizationsProcedure:  {rpcport.RoleBilling, rpcport.RoleOperator, rpcport.RoleAdmin},
	billingv1connect.ChargesServiceUpsertAuthorizationProcedure: {rpcport.RoleBilling, rpcport.RoleAdmin},
}

// setupCharges wires the charges area: charges from attendance, coverage and consent copies, authorizations.
func setupCharges(_ context.Context, p *service.Platform, cfg *Config, k *fieldcrypt.Keyring) error {
	charges := app.NewCharges(p.Store, postgres.NewCharges(p.Store, k), patientLedger(p, cfg))
	p.Consume(events.AttendanceConfig(), events.NewAttendance(charges, p.Log).Handle)
	p.Consume(events.CoverageConfig(), events.NewCoverage(charges, p.Log).Handle)
	p.Consume(events.ConsentConfig(), events.NewConsent(charges, p.Log).Handle)
	p.Consume(events.ContractsConfig(), events.NewContracts(charges, p.Log).Handle)
	p.Server.Handle(billingv1connect.NewChargesServiceHandler(rpcport.NewChargesServer(charges, p.Log), p.Server.HandlerOptions()...))
	return nil
}
