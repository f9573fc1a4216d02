package stack

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/auth"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/intake/v1/intakev1connect"
)

// Token mints a dev token for the stack (issuer trellis-dev, audience trellis).
func (s *Stack) Token(subject string, roles, clinics []string, ttl time.Duration) (string, error) {
	return auth.MintDev([]byte(s.Opts.DevKey), "trellis-dev", "trellis", subject, roles, clinics, ttl)
}

// DemoPatient is a fictional admission used by `make run` and the tests.
type DemoPatient struct {
	Given, Family, DOB, Email, ClinicID, Track string
}

// DemoPatients are fictional people at the demo clinics seeded by `intake seed-demo`.
var DemoPatients = []DemoPatient{
	{"Alex", "Rivera", "1988-04-12", "alex.rivera@example.com", "0190a000-0000-7000-8000-000000000001", "adult-evening"},
	{"Sam", "Okafor", "1995-09-30", "sam.okafor@example.com", "0190a000-0000-7000-8000-000000000002", "adult-day"},
	{"Jordan", "Lee", "1979-01-05", "jordan.lee@example.com", "0190a000-0000-7000-8000-000000000003", "adult-evening"},
}

// AdmitDemoPatients admits the demo patients through intake's API; the idempotency keys are
// fixed, so running the stack again does not admit them twice.
func (s *Stack) AdmitDemoPatients(ctx context.Context) error {
	tok, err := s.Token("devstack-demo", []string{"admin"}, []string{auth.AllClinics}, time.Hour)
	if err != nil {
		return err
	}
	client := intakev1connect.NewIntakeServiceClient(http.DefaultClient, s.URL("intake"))
	start := time.Now().AddDate(0, 0, 3).Format(time.DateOnly)
	// The fixed patients are admitted once per database; a walk-in is admitted on every run,
	// so each `make run` shows a fresh admission flowing through all services (trace and email).
	now := time.Now().UTC()
	patients := append([]DemoPatient{}, DemoPatients...)
	keys := make([]string, 0, len(patients)+1)
	for i := range patients {
		keys = append(keys, fmt.Sprintf("devstack-demo-%d", i+1))
	}
	patients = append(patients, DemoPatient{"Casey", "Morgan", "1990-06-01",
		fmt.Sprintf("walk-in-%s@example.com", now.Format("20060102-150405")), DemoPatients[0].ClinicID, "adult-evening"})
	keys = append(keys, "devstack-walk-in-"+now.Format(time.RFC3339Nano))
	for i, p := range patients {
		req := connect.NewRequest(&intakev1.AdmitPatientRequest{
			GivenName: p.Given, FamilyName: p.Family, DateOfBirth: p.DOB, ContactEmail: p.Email,
			ClinicId: p.ClinicID, ProgramTrack: p.Track, StartDate: start,
			IdempotencyKey: keys[i],
		})
		req.Header().Set("Authorization", "Bearer "+tok)
		if _, err := client.AdmitPatient(ctx, req); err != nil {
			if connect.CodeOf(err) == connect.CodeFailedPrecondition {
				continue // admitted by an earlier run, with that day's start date
			}
			return fmt.Errorf("admit demo patient %d: %w", i+1, err)
		}
	}
	return nil
}
