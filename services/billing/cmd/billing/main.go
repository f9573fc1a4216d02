// Command billing runs the billing service: it opens patient accounts for new enrollments and
// serves them, payers, contracts and the self-pay sliding scale (BillingService).
// `billing [serve|migrate|seed-demo|encrypt-fields]`; `billing --help`.
package main

import (
	"context"
	"os"
	"time"

	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/rpc"
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
	// Who billing is on its 837 claim files (wire_claims.go).
	X12SubmitterID    string `env:"BILLING_X12_SUBMITTER_ID" default:"TRELLIS" help:"837 submitter id (ISA06, GS02, NM1*41), agreed with each payer or clearinghouse"`
	X12SubmitterName  string `env:"BILLING_X12_SUBMITTER_NAME" default:"Trellis Health" help:"837 submitter name (NM1*41) and contact (PER)"`
	X12SubmitterPhone string `env:"BILLING_X12_SUBMITTER_PHONE" default:"8005550100" help:"837 submitter contact phone (PER04), digits only"`
	X12Usage          string `env:"BILLING_X12_USAGE" default:"T" help:"837 usage indicator (ISA15): T test or P production"`
	// The patient statement cycle (wire_remittance.go).
	StatementCycle         time.Duration `env:"BILLING_STATEMENT_CYCLE" default:"720h" help:"at most one statement per patient account within this period (a remittance that moves a balance to the patient issues one at once)"`
	StatementCheckInterval time.Duration `env:"BILLING_STATEMENT_CHECK_INTERVAL" default:"1h" help:"how often the statement cycle looks for accounts due a statement"`
	// 835 uploads per caller (the token's subject), a token bucket; over it the answer is
	// resource_exhausted (HTTP 429) with Retry-After (wire_remittance.go, docs/security.md#limits).
	UploadRatePerMinute int `env:"BILLING_UPLOAD_RATE_PER_MINUTE" default:"60" help:"835 uploads (UploadRemittance) per caller per minute (0: no limit)"`
	UploadBurst         int `env:"BILLING_UPLOAD_BURST" default:"60" help:"835 uploads a caller may make at once"`
	// Field encryption of dates of birth and member ids (fields.go, docs/security.md#field-encryption).
	FieldKeys    string `env:"FIELD_KEYS" secret:"true" help:"field encryption keys, kid:base64 (32 bytes) comma separated, the first seals new values; required unless AUTH_DEV_MODE=true (then fixed dev keys)"`
	FieldHashKey string `env:"FIELD_HASH_KEY" secret:"true" help:"key of the lookup hashes of encrypted fields (base64, at least 32 bytes); required with FIELD_KEYS"`
}

func main() {
	// `billing era inspect <file>` needs no database or broker (era.go): run it before
	// service.Main, which connects to Postgres for every command.
	if len(os.Args) > 1 && os.Args[1] == "era" {
		os.Exit(runEra(os.Args[2:], os.Stdout, os.Stderr))
	}
	var cfg Config
	service.Main(spec(&cfg), &cfg)
}

// spec describes billing; cfg is the configuration service.Main (or a test) loads before it
// calls Setup.
func spec(cfg *Config) service.Spec {
	return service.Spec{
		Name:        "billing",
		Summary:     "patient accounts, charges, claims and remittances",
		DefaultAddr: ":8083",
		// The common 10, plus a connection for each partition of billing--attendance and
		// billing--costs.
		DefaultDBMaxConns: 10 + 2*events.AttendancePartitions,
		Migrations:        migrations.FS,
		Consumes:          []string{"scheduling", "intake"},
		Policy:            policy(),
		Setup:             func(ctx context.Context, p *service.Platform) error { return setup(ctx, p, cfg) },
		Commands: map[string]func(context.Context, *service.Platform, []string) error{
			"seed-demo": seedDemo,   // seed.go
			"era":       eraCommand, // era.go: `billing era inspect <file>`
			// Encrypts what is still plaintext; -rotate after a key change (fields.go).
			"encrypt-fields": func(ctx context.Context, p *service.Platform, args []string) error {
				return encryptFields(ctx, p, cfg, args)
			},
		},
	}
}

// patientLedger is the patient ledger (self-pay charges and the statement cycle) the charges
// and remittance areas share.
func patientLedger(p *service.Platform, cfg *Config) *app.PatientLedger {
	return app.NewPatientLedger(p.Store, postgres.NewLedger(), app.New(postgres.NewAccounts(p.Store)), cfg.StatementCycle)
}

// policy is the role policy of every billing procedure: the accounts and configuration
// procedures, then each area's (wire_*.go).
func policy() rpc.Policy {
	all := rpc.Policy{}
	for _, part := range []rpc.Policy{rpcport.Policy, chargesPolicy, claimsPolicy, remittancePolicy, costsPolicy} {
		for procedure, roles := range part {
			all[procedure] = roles
		}
	}
	return all
}

func setup(ctx context.Context, p *service.Platform, cfg *Config) error {
	k, err := keyring(cfg)
	if err != nil {
		return err
	}
	// Clinic isolation (docs/security.md, "Row-level security"): every transaction sets the
	// clinic scope of its context, which the row-level security policies of migration 00011
	// compare clinic_id with. Calls carry the caller's clinics, consumers run in system scope
	// (pkg/bus), and the background work here declares it (auth.WithSystemScope); anything
	// else sees no clinic's rows.
	p.Store.EnableClinicScope()
	// The adapters read only the encrypted columns' values once this pass is done.
	if err := encryptAtStart(ctx, p, k); err != nil {
		return err
	}
	a := app.New(postgres.NewAccounts(p.Store))
	p.Consume(events.EnrollmentsConfig(), events.NewEnrollments(a, p.Log).Handle)
	conf := app.NewConfiguration(p.Store, postgres.NewConfig(p.Store))
	p.Server.Handle(billingv1connect.NewBillingServiceHandler(rpcport.NewServer(a, conf, p.Log), p.Server.HandlerOptions()...))
	for _, area := range []func(context.Context, *service.Platform, *Config, *fieldcrypt.Keyring) error{setupCharges, setupClaims, setupRemittance, setupCosts} {
		if err := area(ctx, p, cfg, k); err != nil {
			return err
		}
	}
	return nil
}
