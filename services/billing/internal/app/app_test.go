package app_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/testkit"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"

	"github.com/trellis-health/trellis/services/billing/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/billing/internal/app"
	"github.com/trellis-health/trellis/services/billing/internal/domain"
	"github.com/trellis-health/trellis/services/billing/migrations"
)

const (
	patient = "0192f0c0-0000-7000-8000-0000000000b1"
	clinicA = "0192f0c0-0000-7000-8000-0000000000c1"
	clinicB = "0192f0c0-0000-7000-8000-0000000000c2"
)

func setup(t *testing.T) (*pgxpool.Pool, *bus.Store, *app.App) {
	t.Helper()
	ctx := context.Background()
	pool := testkit.Pool(t, "billing")
	if err := bus.Migrate(ctx, pool, "billing", nil); err != nil {
		t.Fatal(err)
	}
	if err := pg.Migrate(ctx, pool, "billing", "goose_db_version", migrations.FS, nil); err != nil {
		t.Fatal(err)
	}
	// The store is scoped as the service's is (row-level security binds the tables' owner,
	// which this pool's role is); the test's own queries run in a pool with every clinic's
	// scope for the session.
	store := bus.NewStore(pool, "billing")
	store.EnableClinicScope()
	cfg := pool.Config()
	cfg.ConnConfig.RuntimeParams["trellis.clinics"] = auth.AllClinics
	all, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(all.Close)
	return all, store, app.New(postgres.NewAccounts(store))
}

func count(t *testing.T, pool *pgxpool.Pool, sql string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// open runs the use case in its own transaction, as the consumer does but WITHOUT the inbox.
func open(t *testing.T, store *bus.Store, a *app.App, eventID string, e domain.Enrollment) (bool, error) {
	t.Helper()
	var opened bool
	// In system scope, as a consumer runs.
	ctx := bus.WithCause(auth.WithSystemScope(context.Background()), "corr-"+eventID, eventID)
	err := store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		var err error
		_, opened, err = a.OpenAccount(ctx, tx, eventID, e)
		return err
	})
	return opened, err
}

// The account's own unique keys make the use case idempotent even if the bus inbox were
// bypassed: a replayed event, or another enrollment at the same clinic, opens nothing.
func TestOpenAccountIsIdempotentWithoutInbox(t *testing.T) {
	pool, store, a := setup(t)
	first := domain.Enrollment{EnrollmentID: bus.NewID(), PatientID: patient, ClinicID: clinicA}
	ev1 := bus.NewID()
	for i, step := range []struct {
		event      string
		enrollment domain.Enrollment
		wantOpened bool
	}{
		{ev1, first, true},
		{ev1, first, false}, // replay of the same event
		{bus.NewID(), domain.Enrollment{EnrollmentID: bus.NewID(), PatientID: patient, ClinicID: clinicA}, false}, // new track, same clinic
	} {
		opened, err := open(t, store, a, step.event, step.enrollment)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if opened != step.wantOpened {
			t.Fatalf("step %d: opened = %v, want %v", i, opened, step.wantOpened)
		}
	}
	if n := count(t, pool, "SELECT count(*) FROM accounts"); n != 1 {
		t.Fatalf("accounts = %d, want 1", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM outbox"); n != 1 {
		t.Fatalf("outbox rows = %d, want 1", n)
	}

	var subject string
	var body []byte
	if err := pool.QueryRow(context.Background(), "SELECT subject, payload FROM outbox").Scan(&subject, &body); err != nil {
		t.Fatal(err)
	}
	env := &eventsv1.Envelope{}
	if err := proto.Unmarshal(body, env); err != nil {
		t.Fatal(err)
	}
	got := &billingv1.AccountOpened{}
	if err := env.GetPayload().UnmarshalTo(got); err != nil {
		t.Fatal(err)
	}
	var id, enrollmentID string
	var balance int64
	if err := pool.QueryRow(context.Background(), "SELECT id::text, enrollment_id::text, balance_cents FROM accounts").
		Scan(&id, &enrollmentID, &balance); err != nil {
		t.Fatal(err)
	}
	if enrollmentID != first.EnrollmentID || balance != 0 {
		t.Fatalf("account: enrollment %s balance %d", enrollmentID, balance)
	}
	want := &billingv1.AccountOpened{AccountId: id, PatientId: patient, ClinicId: clinicA, EnrollmentId: first.EnrollmentID}
	if subject != app.SubjectAccountOpened || !proto.Equal(got, want) ||
		env.GetCausationId() != ev1 || env.GetCorrelationId() != "corr-"+ev1 || env.GetClinicId() != clinicA {
		t.Fatalf("outbox: %s %v (causation %s, correlation %s, clinic %s)", subject, got,
			env.GetCausationId(), env.GetCorrelationId(), env.GetClinicId())
	}

	// Another clinic is another account.
	if opened, err := open(t, store, a, bus.NewID(), domain.Enrollment{EnrollmentID: bus.NewID(), PatientID: patient, ClinicID: clinicB}); err != nil || !opened {
		t.Fatalf("second clinic: opened=%v err=%v", opened, err)
	}
}

func TestOpenAccountRejectsInvalidInput(t *testing.T) {
	pool, store, a := setup(t)
	_, err := open(t, store, a, bus.NewID(), domain.Enrollment{EnrollmentID: "e", PatientID: patient, ClinicID: clinicA})
	if !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	if n := count(t, pool, "SELECT count(*) FROM accounts") + count(t, pool, "SELECT count(*) FROM outbox"); n != 0 {
		t.Fatalf("rows written for invalid input: %d", n)
	}
}

func TestGetAccount(t *testing.T) {
	_, store, a := setup(t)
	for _, c := range []string{clinicA, clinicB} {
		if _, err := open(t, store, a, bus.NewID(), domain.Enrollment{EnrollmentID: bus.NewID(), PatientID: patient, ClinicID: c}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name       string
		clinics    []string
		patient    string
		wantClinic string // empty: not found
	}{
		{"clinic A", []string{clinicA}, patient, clinicA},
		{"clinic B", []string{clinicB}, patient, clinicB},
		{"other clinic only", []string{"0192f0c0-0000-7000-8000-0000000000c9"}, patient, ""},
		{"unknown patient", []string{auth.AllClinics}, "0192f0c0-0000-7000-8000-0000000000b9", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The caller's token is in the context, as pkg/rpc puts it: its clinics are the scope.
			viewer := &auth.Principal{Subject: "u", Clinics: tt.clinics}
			acc, err := a.GetAccount(auth.WithPrincipal(context.Background(), viewer), viewer, tt.patient)
			if tt.wantClinic == "" {
				if !errors.Is(err, domain.ErrNotFound) {
					t.Fatalf("err = %v, want ErrNotFound", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if acc.ClinicID != tt.wantClinic || acc.Status != domain.StatusOpen || acc.BalanceCents != 0 {
				t.Fatalf("got %+v", acc)
			}
		})
	}
}
