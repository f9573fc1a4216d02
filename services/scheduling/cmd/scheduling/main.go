// Command scheduling runs the scheduling service: it serves clinic configuration (clinics,
// rooms, clinicians, programs, tracks), enrolls admitted patients in their program track and
// serves enrollments (SchedulingService); intake's consents decide family sessions. `scheduling [serve|migrate|seed-demo]`;
// `scheduling --help` lists the configuration.
package main

import (
	"context"
	"time"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1/schedulingv1connect"

	"github.com/trellis-health/trellis/services/scheduling/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/scheduling/internal/app"
	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
	"github.com/trellis-health/trellis/services/scheduling/internal/ports/events"
	rpcport "github.com/trellis-health/trellis/services/scheduling/internal/ports/rpc"
	"github.com/trellis-health/trellis/services/scheduling/migrations"
)

// Config is scheduling's configuration (`scheduling --help` lists it).
type Config struct {
	service.Base
	// Compliance and risk (docs/scheduling.md, "Compliance and risk").
	RiskConsecutiveAbsences int           `env:"RISK_CONSECUTIVE_ABSENCES" default:"2" help:"absences running (excused ones skipped) that flag a patient at risk"`
	RiskWeeksUnderMinimum   int           `env:"RISK_WEEKS_UNDER_MINIMUM" default:"2" help:"complete program weeks running under the weekly minimum that flag a patient at risk"`
	StepDownWeeks           int           `env:"STEP_DOWN_WEEKS" default:"2" help:"last weeks of a program that count as meeting the weekly minimum (0: none)"`
	ComplianceInterval      time.Duration `env:"COMPLIANCE_INTERVAL" default:"24h" help:"how often active enrollments are evaluated for risk and completion (also once at start)"`
}

// risk is the at-risk rules' configuration.
func (c *Config) risk() domain.RiskConfig {
	return domain.RiskConfig{ConsecutiveAbsences: c.RiskConsecutiveAbsences, WeeksUnderMinimum: c.RiskWeeksUnderMinimum,
		StepDownWeeks: c.StepDownWeeks}
}

func main() {
	var cfg Config
	service.Main(specWith(&cfg, nil), &cfg)
}

// spec is the service with the compliance configuration by default.
func spec() service.Spec { return specWith(nil, nil) }

// specWith is the service configured by cfg once loaded (nil: the defaults). Tests pass
// onApp to reach the app the service runs (e.g. to sweep compliance as of a chosen time).
func specWith(cfg *Config, onApp func(*app.App)) service.Spec {
	return service.Spec{
		Name:        "scheduling",
		Summary:     "enrollments of admitted patients in program tracks",
		DefaultAddr: ":8082",
		Migrations:  migrations.FS,
		Consumes:    []string{"intake"},
		Policy:      rpcport.Policy,
		Setup: func(ctx context.Context, p *service.Platform) error {
			return setup(ctx, p, cfg, onApp)
		},
		Commands: map[string]func(context.Context, *service.Platform, []string) error{
			"seed-demo": seedDemo, // seed.go
		},
	}
}

func setup(_ context.Context, p *service.Platform, cfg *Config, onApp func(*app.App)) error {
	risk, every := domain.DefaultRiskConfig(), 24*time.Hour
	if cfg != nil {
		risk, every = cfg.risk(), cfg.ComplianceInterval
	}
	if every <= 0 {
		every = 24 * time.Hour
	}
	a := newApp(p).WithCompliance(postgres.NewCompliance(p.Store), risk)
	if onApp != nil {
		onApp(a)
	}
	// The sweep evaluates every clinic's enrollments: system scope (consumers have it already).
	p.Go(func(ctx context.Context) error {
		return a.RunComplianceWorker(auth.WithSystemScope(ctx), every, time.Now, p.Log)
	})
	p.Consume(events.AdmissionsConfig(), events.NewAdmissions(a, p.Log).Handle)
	p.Consume(events.DischargesConfig(), events.NewDischarges(a, p.Log).Handle)
	p.Consume(events.ConsentsConfig(), events.NewConsents(a, p.Log).Handle)
	p.Server.Handle(schedulingv1connect.NewSchedulingServiceHandler(rpcport.NewServer(a, p.Log), p.Server.HandlerOptions()...))
	return nil
}

// newApp builds the application layer over the platform's store (serve and the subcommands
// share it). Every transaction of the store carries the clinic scope of its context (the
// caller's token, or auth.WithSystemScope), which the tables' row-level security policies
// compare with (migration 00009); the repositories read through the store, never the pool.
func newApp(p *service.Platform) *app.App {
	p.Store.EnableClinicScope()
	appts := postgres.NewAppointments(p.Store)
	return app.New(p.Store, postgres.NewEnrollments(p.Store)).WithConfiguration(postgres.NewConfig(p.Store)).
		WithAppointments(appts, p.Log).WithFamilyConsents(appts).WithAttendance(postgres.NewAttendance())
}
