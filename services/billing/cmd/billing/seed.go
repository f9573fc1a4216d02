package main

import (
	"context"
	"fmt"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/service"

	"github.com/trellis-health/trellis/services/billing/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/billing/internal/app"
	"github.com/trellis-health/trellis/services/billing/internal/domain"
	"github.com/trellis-health/trellis/services/billing/internal/x12"
)

// The demo clinics (intake's and scheduling's demo packages use the same ids).
var demoClinics = []string{
	"0190a000-0000-7000-8000-000000000001", // Riverside Health Center
	"0190a000-0000-7000-8000-000000000002", // Lakeview Clinic
	"0190a000-0000-7000-8000-000000000003", // Desert Bloom
}

var demoPayers = []domain.Payer{
	{Code: "medicaid-il", Name: "Illinois Medicaid", Kind: domain.KindMedicaid, X12PayerID: "ILMCD"},
	{Code: "acme-health", Name: "Acme Health", Kind: domain.KindCommercial, X12PayerID: "ACME1"},
	{Code: "self-pay", Name: "Self-pay", Kind: domain.KindSelfPay},
}

// demoProviders are the demo clinics' billing providers (fake NPIs that pass the check digit).
var demoProviders = []domain.BillingProvider{
	{ClinicID: demoClinics[0], Name: "Riverside Health Center", NPI: "1990000014", TaxID: "990000001", Taxonomy: "261QR0405X",
		AddressLine: "100 River Rd", City: "Springfield", State: "IL", PostalCode: "62701"},
	{ClinicID: demoClinics[1], Name: "Lakeview Clinic", NPI: "1990000022", TaxID: "990000002", Taxonomy: "261QR0405X",
		AddressLine: "200 Lake Shore Dr", City: "Chicago", State: "IL", PostalCode: "60611"},
	{ClinicID: demoClinics[2], Name: "Desert Bloom", NPI: "1990000030", TaxID: "990000003", Taxonomy: "261QR0405X",
		AddressLine: "300 Mesa Ave", City: "Peoria", State: "IL", PostalCode: "61602"},
}

// demoTiers: <=100% FPL 75% off, <=200% 50%, <=300% 25%; above the last tier no discount.
var demoTiers = []domain.Tier{{MaxFPLPercent: 100, DiscountPercent: 75}, {MaxFPLPercent: 200, DiscountPercent: 50}, {MaxFPLPercent: 300, DiscountPercent: 25}}

// demoContracts are each clinic's Medicaid per-diem and Acme per-service contracts, with fixed
// ids (0190a000-0000-7000-8000-0000000b<clinic><n>) so a rerun updates them.
func demoContracts() []domain.Contract {
	var out []domain.Contract
	for i, clinic := range demoClinics {
		out = append(out, domain.Contract{
			ID: fmt.Sprintf("0190a000-0000-7000-8000-0000000b%d001", i+1), PayerID: "medicaid-il", ClinicID: clinic,
			Mode: domain.ModePerDiem, ClaimType: domain.ClaimInstitutional, PerDiemMinimumMinutes: 180,
			BelowMinimum: domain.BelowBillNothing, TimelyFilingDays: 180, EffectiveFrom: "2026-01-01",
			Codes: []domain.ServiceCode{{Service: domain.ServicePerDiem, ProcedureCode: "H0015", RevenueCode: "0906", RateCents: 25000}},
		}, domain.Contract{
			ID: fmt.Sprintf("0190a000-0000-7000-8000-0000000b%d002", i+1), PayerID: "acme-health", ClinicID: clinic,
			Mode: domain.ModePerService, ClaimType: domain.ClaimProfessional, TimelyFilingDays: 90, EffectiveFrom: "2026-01-01",
			Codes: []domain.ServiceCode{
				{Service: domain.ServiceGroup, ProcedureCode: "90853", RateCents: 8500},
				{Service: domain.ServiceIndividual, ProcedureCode: "90832", RateCents: 7000, MinMinutes: 16, MaxMinutes: 37},
				{Service: domain.ServiceIndividual, ProcedureCode: "90834", RateCents: 9500, MinMinutes: 38, MaxMinutes: 52},
				{Service: domain.ServiceIndividual, ProcedureCode: "90837", RateCents: 13000, MinMinutes: 53},
				{Service: domain.ServiceFamily, ProcedureCode: "90847", RateCents: 11000},
				{Service: domain.ServiceMedication, ProcedureCode: "99213", RateCents: 9000},
			},
		})
	}
	return out
}

// seedDemo configures the demo payers, contracts and sliding scale through the same use cases
// as the API. Every id is fixed: a second run changes nothing and emits nothing. The
// ContractConfigured events of the first run wait in the outbox for the service's relay.
func seedDemo(ctx context.Context, p *service.Platform, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("seed-demo takes no arguments, got %q", args)
	}
	// A command is background work: system scope, with the store scoped like the service's
	// (Setup, which enables it, does not run for commands; an unscoped transaction would see
	// none of the rows the policies of migration 00011 cover, and could write none).
	p.Store.EnableClinicScope()
	ctx = auth.WithSystemScope(ctx)
	cfg := app.NewConfiguration(p.Store, postgres.NewConfig(p.Store))
	operator := &auth.Principal{Subject: "seed-demo", Roles: []string{"admin"}, Clinics: []string{auth.AllClinics}}
	for _, payer := range demoPayers {
		if _, err := cfg.UpsertPayer(ctx, operator, payer); err != nil {
			return fmt.Errorf("payer %s: %w", payer.Code, err)
		}
	}
	changed := 0
	for _, c := range demoContracts() {
		_, ch, err := cfg.UpsertContract(ctx, operator, c)
		if err != nil {
			return fmt.Errorf("contract %s: %w", c.ID, err)
		}
		if ch {
			changed++
		}
	}
	if err := cfg.SetSlidingScale(ctx, operator, demoTiers); err != nil {
		return fmt.Errorf("sliding scale: %w", err)
	}
	// Only billing providers are set here: the claim file sender is not used.
	// Nor are the field-encryption keys: billing providers hold no encrypted field.
	claims := app.NewClaims(p.Store, postgres.NewClaims(p.Store, nil), x12.Write837, app.X12Sender{})
	for _, bp := range demoProviders {
		if _, err := claims.SetBillingProvider(ctx, operator, bp); err != nil {
			return fmt.Errorf("billing provider %s: %w", bp.ClinicID, err)
		}
	}
	p.Log.InfoContext(ctx, "demo billing configuration seeded", "payers", len(demoPayers),
		"contracts", len(demoContracts()), "contracts_changed", changed, "sliding_scale_tiers", len(demoTiers))
	return nil
}
