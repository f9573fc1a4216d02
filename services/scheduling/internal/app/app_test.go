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
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"

	"github.com/trellis-health/trellis/services/scheduling/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/scheduling/internal/app"
	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
	"github.com/trellis-health/trellis/services/scheduling/migrations"
)

const (
	patient = "0192f0c0-0000-7000-8000-0000000000b1"
	clinicA = "0192f0c0-0000-7000-8000-0000000000c1"
	clinicB = "0192f0c0-0000-7000-8000-0000000000c2"
)

func setup(t *testing.T) (*pgxpool.Pool, *bus.Store, *app.App) {
	t.Helper()
	ctx := context.Background()
	pool := testkit.Pool(t, "scheduling")
	if err := bus.Migrate(ctx, pool, "scheduling", nil); err != nil {
		t.Fatal(err)
	}
	if err := pg.Migrate(ctx, pool, "scheduling", "goose_db_version", migrations.FS, nil); err != nil {
		t.Fatal(err)
	}
	return pool, bus.NewStore(pool, "scheduling"), app.New(postgres.NewEnrollments(pool))
}

func count(t *testing.T, pool *pgxpool.Pool, sql string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// enroll runs the use case in its own transaction, as the consumer does but WITHOUT the inbox.
func enroll(t *testing.T, store *bus.Store, a *app.App, eventID string, adm domain.Admission) (bool, error) {
	t.Helper()
	var created bool
	ctx := bus.WithCause(context.Background(), "corr-"+eventID, eventID)
	err := store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		var err error
		_, created, err = a.EnrollAdmitted(ctx, tx, eventID, adm)
		return err
	})
	return created, err
}

// The enrollment's own unique keys make the use case idempotent even if the bus inbox were
// bypassed: a replayed event, or the same admission under a new event id, adds nothing.
func TestEnrollAdmittedIsIdempotentWithoutInbox(t *testing.T) {
	pool, store, a := setup(t)
	adm := domain.Admission{PatientID: patient, ClinicID: clinicA, ProgramTrack: "adult-evening", StartDate: "2026-03-02"}
	ev1, ev2 := bus.NewID(), bus.NewID()

	for i, step := range []struct {
		event       string
		adm         domain.Admission
		wantCreated bool
	}{
		{ev1, adm, true},
		{ev1, adm, false}, // replay of the same event
		{ev2, adm, false}, // the same admission re-emitted under a new event id
	} {
		created, err := enroll(t, store, a, step.event, step.adm)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if created != step.wantCreated {
			t.Fatalf("step %d: created = %v, want %v", i, created, step.wantCreated)
		}
	}
	if n := count(t, pool, "SELECT count(*) FROM enrollments"); n != 1 {
		t.Fatalf("enrollments = %d, want 1", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM outbox"); n != 1 {
		t.Fatalf("outbox rows = %d, want 1", n)
	}

	// The one outbox row is EnrollmentCreated, caused by the first event.
	var subject string
	var body []byte
	if err := pool.QueryRow(context.Background(), "SELECT subject, payload FROM outbox").Scan(&subject, &body); err != nil {
		t.Fatal(err)
	}
	env := &eventsv1.Envelope{}
	if err := proto.Unmarshal(body, env); err != nil {
		t.Fatal(err)
	}
	got := &schedulingv1.EnrollmentCreated{}
	if err := env.GetPayload().UnmarshalTo(got); err != nil {
		t.Fatal(err)
	}
	var id string
	if err := pool.QueryRow(context.Background(), "SELECT id::text FROM enrollments").Scan(&id); err != nil {
		t.Fatal(err)
	}
	want := &schedulingv1.EnrollmentCreated{EnrollmentId: id, PatientId: patient, ClinicId: clinicA,
		ProgramTrack: "adult-evening", StartDate: "2026-03-02"}
	if subject != app.SubjectEnrollmentCreated || !proto.Equal(got, want) ||
		env.GetCausationId() != ev1 || env.GetCorrelationId() != "corr-"+ev1 || env.GetClinicId() != clinicA {
		t.Fatalf("outbox: %s %v (causation %s, correlation %s, clinic %s)", subject, got,
			env.GetCausationId(), env.GetCorrelationId(), env.GetClinicId())
	}

	// Another track or start date is another enrollment.
	other := adm
	other.StartDate = "2026-04-06"
	if created, err := enroll(t, store, a, bus.NewID(), other); err != nil || !created {
		t.Fatalf("second enrollment: created=%v err=%v", created, err)
	}
}

func TestEnrollAdmittedRejectsInvalidInput(t *testing.T) {
	pool, store, a := setup(t)
	_, err := enroll(t, store, a, bus.NewID(), domain.Admission{PatientID: "nope", ClinicID: clinicA,
		ProgramTrack: "adult-evening", StartDate: "2026-13-01"})
	if !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	if n := count(t, pool, "SELECT count(*) FROM enrollments") + count(t, pool, "SELECT count(*) FROM outbox"); n != 0 {
		t.Fatalf("rows written for invalid input: %d", n)
	}
}

func TestGetEnrollment(t *testing.T) {
	_, store, a := setup(t)
	ctx := context.Background()
	for _, adm := range []domain.Admission{
		{PatientID: patient, ClinicID: clinicA, ProgramTrack: "adult-day", StartDate: "2026-03-02"},
		{PatientID: patient, ClinicID: clinicA, ProgramTrack: "adult-evening", StartDate: "2026-03-16"},
		{PatientID: patient, ClinicID: clinicB, ProgramTrack: "adult-day", StartDate: "2026-05-04"},
	} {
		if _, err := enroll(t, store, a, bus.NewID(), adm); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name      string
		clinics   []string
		patient   string
		wantTrack string // empty: not found
		wantDate  string
	}{
		{"latest visible in A", []string{clinicA}, patient, "adult-evening", "2026-03-16"},
		{"latest overall", []string{auth.AllClinics}, patient, "adult-day", "2026-05-04"},
		{"other clinic only", []string{"0192f0c0-0000-7000-8000-0000000000c9"}, patient, "", ""},
		{"unknown patient", []string{auth.AllClinics}, "0192f0c0-0000-7000-8000-0000000000b9", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := a.GetEnrollment(ctx, &auth.Principal{Subject: "u", Clinics: tt.clinics}, tt.patient)
			if tt.wantTrack == "" {
				if !errors.Is(err, domain.ErrNotFound) {
					t.Fatalf("err = %v, want ErrNotFound", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.ProgramTrack != tt.wantTrack || e.StartDate.Format(domain.DateLayout) != tt.wantDate || e.Status != domain.StatusActive {
				t.Fatalf("got %s %s %s", e.ProgramTrack, e.StartDate.Format(domain.DateLayout), e.Status)
			}
		})
	}
}
