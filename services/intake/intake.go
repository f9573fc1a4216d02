// Package intake wires the intake service: its API, schema and subcommands, as a service.Spec
// that cmd/intake runs and that tests (and the end-to-end suite) can run in-process.
package intake

import (
	"context"
	"fmt"
	"time"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/fieldcrypt/backfill"
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/proto/gen/trellis/intake/v1/intakev1connect"
	"github.com/trellis-health/trellis/services/intake/demo"
	"github.com/trellis-health/trellis/services/intake/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/intake/internal/app"
	"github.com/trellis-health/trellis/services/intake/internal/domain"
	"github.com/trellis-health/trellis/services/intake/internal/ports/events"
	"github.com/trellis-health/trellis/services/intake/internal/ports/rpc"
	"github.com/trellis-health/trellis/services/intake/migrations"
)

// Subjects intake publishes on (see docs/events.md for all of them).
const (
	SubjectPatientAdmitted                = app.SubjectPatientAdmitted
	SubjectPatientContactRecorded         = app.SubjectPatientContactRecorded
	SubjectPatientBillingIdentityRecorded = app.SubjectPatientBillingIdentityRecorded
)

// FieldKeys points at the field-encryption settings (docs/security.md#field-encryption), read
// when the service starts: cmd/intake's FIELD_KEYS, FIELD_HASH_KEY and AUTH_DEV_MODE.
type FieldKeys struct {
	Keys, HashKey *string
	DevMode       *bool
}

// Spec describes the intake service. retention points at how long idempotency keys are kept
// (IDEMPOTENCY_RETENTION in cmd/intake's Config); it is read when the service starts, after
// the configuration is loaded. nil or zero means app.DefaultIdempotencyRetention (30 days).
// The fields are encrypted with the fixed dev keys (fieldcrypt.Dev): SpecWithKeys is the
// service with configured keys.
func Spec(retention *time.Duration) service.Spec { return SpecWithKeys(retention, nil) }

// SpecWithKeys is Spec with field-encryption keys from the configuration: keys nil means the
// fixed dev keys; empty keys are a configuration error naming the variable, unless dev mode
// is on, which takes the dev keys.
func SpecWithKeys(retention *time.Duration, keys *FieldKeys) service.Spec {
	keyring := func() (*fieldcrypt.Keyring, error) {
		if keys == nil {
			return fieldcrypt.Dev(), nil
		}
		deref := func(s *string) string {
			if s == nil {
				return ""
			}
			return *s
		}
		return fieldcrypt.Load(deref(keys.Keys), deref(keys.HashKey), keys.DevMode != nil && *keys.DevMode)
	}
	return service.Spec{
		Name:        "intake",
		Summary:     "Intake: admits patients to a clinic's program track and announces each admission.",
		DefaultAddr: ":8081",
		Migrations:  migrations.FS,
		// Clinics come from scheduling (ClinicConfigured, consumer intake--clinics).
		Consumes: []string{"scheduling"},
		Policy:   rpc.Policy,
		Setup:    func(ctx context.Context, p *service.Platform) error { return setup(ctx, p, retention, keyring) },
		Commands: map[string]func(context.Context, *service.Platform, []string) error{
			// The demo clinics, for a stack without scheduling; scheduling's ClinicConfigured
			// is how clinics normally arrive (and wins over seeding).
			"seed-demo": seedDemo,
			// Encrypts what is still plaintext; -rotate, -rehash for key changes.
			"encrypt-fields": func(ctx context.Context, p *service.Platform, args []string) error {
				return encryptFields(ctx, p, args, keyring)
			},
		},
	}
}

func setup(ctx context.Context, p *service.Platform, retention *time.Duration, keyring func() (*fieldcrypt.Keyring, error)) error {
	keep := app.DefaultIdempotencyRetention
	if retention != nil && *retention != 0 {
		keep = *retention
	}
	if keep < app.MinIdempotencyRetention {
		return fmt.Errorf("IDEMPOTENCY_RETENTION is %s; it must be at least %s (clients retry calls for that long)", keep, app.MinIdempotencyRetention)
	}
	k, err := keyring()
	if err != nil {
		return err
	}
	// Clinic isolation (docs/security.md, "Row-level security"): every transaction sets the
	// clinic scope of its context, which the row-level security policies of migration 00008
	// compare clinic_id with. Calls carry the caller's clinics; background work below declares
	// system scope (every clinic); anything else sees no clinic's rows.
	p.Store.EnableClinicScope()
	// Rows written before field encryption (or by an older binary) are encrypted before the
	// service serves: it reads only the encrypted columns. Quick when there are none.
	if err := backfill.AtStart(ctx, p.Log, p.Pool, k, postgres.EncryptFields); err != nil {
		return err
	}
	uc := app.New(p.Store, postgres.Repository{Crypt: k}, p.Log, time.Now)
	path, h := intakev1connect.NewIntakeServiceHandler(rpc.NewHandler(uc, p.Log), p.Server.HandlerOptions()...)
	p.Server.Handle(path, h)
	p.Consume(events.ClinicsConfig(), events.NewClinics(uc, p.Log).Handle)
	// The stored responses of idempotency keys hold PHI: they are deleted after the retention.
	p.Go(func(ctx context.Context) error {
		return uc.RunIdempotencyPruner(auth.WithSystemScope(ctx), keep, app.PruneInterval)
	})
	return nil
}

// encryptFields is `intake encrypt-fields [-rotate] [-rehash]`: it encrypts what is still
// plaintext, and re-encrypts under the active key (-rotate) or recomputes the lookup hashes
// (-rehash) after a key change; it prints counts, never values.
func encryptFields(ctx context.Context, p *service.Platform, args []string, keyring func() (*fieldcrypt.Keyring, error)) error {
	return backfill.Command(ctx, p.Log, p.Pool, args, true, keyring, postgres.EncryptFields)
}

// seedDemo upserts the demo clinics (fixed ids, see package demo); running it again is
// harmless, and it leaves alone a clinic scheduling has configured.
func seedDemo(ctx context.Context, p *service.Platform, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("seed-demo takes no arguments, got %q", args)
	}
	clinics := make([]domain.Clinic, 0, len(demo.Clinics))
	for _, c := range demo.Clinics {
		dc, err := domain.NewClinic(c.ID, c.Name, c.TimeZone)
		if err != nil {
			return err
		}
		clinics = append(clinics, dc)
	}
	if err := postgres.UpsertClinics(ctx, p.Pool, clinics); err != nil {
		return err
	}
	p.Log.InfoContext(ctx, "demo clinics seeded", "clinics", len(clinics))
	return nil
}
