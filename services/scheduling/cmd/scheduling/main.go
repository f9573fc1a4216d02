// Command scheduling runs the scheduling service: it serves clinic configuration (clinics,
// rooms, clinicians, programs, tracks), enrolls admitted patients in their program track and
// serves enrollments (SchedulingService). `scheduling [serve|migrate|seed-demo]`;
// `scheduling --help` lists the configuration.
package main

import (
	"context"

	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1/schedulingv1connect"

	"github.com/trellis-health/trellis/services/scheduling/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/scheduling/internal/app"
	"github.com/trellis-health/trellis/services/scheduling/internal/ports/events"
	rpcport "github.com/trellis-health/trellis/services/scheduling/internal/ports/rpc"
	"github.com/trellis-health/trellis/services/scheduling/migrations"
)

// Config is scheduling's configuration (`scheduling --help` lists it).
type Config struct {
	service.Base
}

func main() {
	var cfg Config
	service.Main(spec(), &cfg)
}

func spec() service.Spec {
	return service.Spec{
		Name:        "scheduling",
		Summary:     "enrollments of admitted patients in program tracks",
		DefaultAddr: ":8082",
		Migrations:  migrations.FS,
		Consumes:    []string{"intake"},
		Policy:      rpcport.Policy,
		Setup:       setup,
		Commands: map[string]func(context.Context, *service.Platform, []string) error{
			"seed-demo": seedDemo, // seed.go
		},
	}
}

func setup(_ context.Context, p *service.Platform) error {
	a := newApp(p)
	p.Consume(events.AdmissionsConfig(), events.NewAdmissions(a, p.Log).Handle)
	p.Consume(events.DischargesConfig(), events.NewDischarges(a, p.Log).Handle)
	p.Server.Handle(schedulingv1connect.NewSchedulingServiceHandler(rpcport.NewServer(a, p.Log), p.Server.HandlerOptions()...))
	return nil
}

// newApp builds the application layer over the platform's store and pool (serve and the
// subcommands share it).
func newApp(p *service.Platform) *app.App {
	return app.New(p.Store, postgres.NewEnrollments(p.Pool)).WithConfiguration(postgres.NewConfig(p.Pool)).
		WithAppointments(postgres.NewAppointments(p.Pool), p.Log).WithAttendance(postgres.NewAttendance(p.Pool))
}
