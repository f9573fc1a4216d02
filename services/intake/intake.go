// Package intake wires the intake service: its API, schema and subcommands, as a service.Spec
// that cmd/intake runs and that tests (and the end-to-end suite) can run in-process.
package intake

import (
	"context"
	"fmt"
	"time"

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

// Spec describes the intake service. retention points at how long idempotency keys are kept
// (IDEMPOTENCY_RETENTION in cmd/intake's Config); it is read when the service starts, after
// the configuration is loaded. nil or zero means app.DefaultIdempotencyRetention (30 days).
func Spec(retention *time.Duration) service.Spec {
	return service.Spec{
		Name:        "intake",
		Summary:     "Intake: admits patients to a clinic's program track and announces each admission.",
		DefaultAddr: ":8081",
		Migrations:  migrations.FS,
		// Clinics come from scheduling (ClinicConfigured, consumer intake--clinics).
		Consumes: []string{"scheduling"},
		Policy:   rpc.Policy,
		Setup:    func(ctx context.Context, p *service.Platform) error { return setup(ctx, p, retention) },
		Commands: map[string]func(context.Context, *service.Platform, []string) error{
			// The demo clinics, for a stack without scheduling; scheduling's ClinicConfigured
			// is how clinics normally arrive (and wins over seeding).
			"seed-demo": seedDemo,
		},
	}
}

func setup(_ context.Context, p *service.Platform, retention *time.Duration) error {
	keep := app.DefaultIdempotencyRetention
	if retention != nil && *retention != 0 {
		keep = *retention
	}
	if keep < app.MinIdempotencyRetention {
		return fmt.Errorf("IDEMPOTENCY_RETENTION is %s; it must be at least %s (clients retry calls for that long)", keep, app.MinIdempotencyRetention)
	}
	uc := app.New(p.Store, postgres.Repository{}, p.Log, time.Now)
	path, h := intakev1connect.NewIntakeServiceHandler(rpc.NewHandler(uc, p.Log), p.Server.HandlerOptions()...)
	p.Server.Handle(path, h)
	p.Consume(events.ClinicsConfig(), events.NewClinics(uc, p.Log).Handle)
	// The stored responses of idempotency keys hold PHI: they are deleted after the retention.
	p.Go(func(ctx context.Context) error { return uc.RunIdempotencyPruner(ctx, keep, app.PruneInterval) })
	return nil
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
