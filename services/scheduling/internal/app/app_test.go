package app_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/testkit"
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
	"github.com/trellis-health/trellis/services/scheduling/internal/testscope"

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

// setup migrates a fresh database and returns the test's own pool, which reads and writes in
// every clinic (trellis.clinics=* for its sessions), and the app over a store on a pool
// without a default scope: the app's transactions carry the scope of their context, so the
// row-level security policies (migration 00009) bind it as they bind the service (the tests
// connect as the tables' owner). A use case that forgets its scope sees nothing here.
func setup(t testing.TB) (*pgxpool.Pool, *bus.Store, *app.App) {
	t.Helper()
	ctx := context.Background()
	dbURL := testkit.Database(t)
	pool, err := pg.Open(ctx, testscope.SystemURL(t, dbURL), "scheduling", 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	exec(t, pool, "CREATE SCHEMA scheduling")
	if err := bus.Migrate(ctx, pool, "scheduling", nil); err != nil {
		t.Fatal(err)
	}
	if err := pg.Migrate(ctx, pool, "scheduling", "goose_db_version", migrations.FS, nil); err != nil {
		t.Fatal(err)
	}
	exec(t, pool, `INSERT INTO programs (code, name, population, length_weeks, weekly_minimum_minutes)
		VALUES ('adult-iop', 'Adult IOP', 'adult', 12, 540)`)
	for _, c := range []string{clinicA, clinicB} {
		exec(t, pool, `INSERT INTO clinics (id, name, time_zone) VALUES ($1, 'Clinic', 'America/Chicago')`, c)
	}
	appPool, err := pg.Open(ctx, dbURL, "scheduling", 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(appPool.Close)
	store := bus.NewStore(appPool, "scheduling")
	store.EnableClinicScope()
	return pool, store, app.New(store, postgres.NewEnrollments(store))
}

func exec(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// addTrack configures a track of adult-iop and returns its id.
func addTrack(t *testing.T, pool *pgxpool.Pool, clinicID, code string, capacity int) string {
	t.Helper()
	id := bus.NewID()
	exec(t, pool, `INSERT INTO tracks (id, clinic_id, program_code, code, time_of_day, weekdays, start_time, end_time, capacity)
		VALUES ($1, $2, 'adult-iop', $3, 'evening', '{1,3,4}', '18:00', '21:00', $4)`, id, clinicID, code, capacity)
	return id
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func admission(patientID, clinicID, track string) domain.Admission {
	return domain.Admission{PatientID: patientID, EpisodeID: bus.NewID(), ClinicID: clinicID, ProgramTrack: track, StartDate: "2026-03-02"}
}

// enroll runs the use case in its own transaction, as the consumer does but WITHOUT the inbox.
func enroll(t *testing.T, store *bus.Store, a *app.App, eventID string, adm domain.Admission) (domain.Enrollment, bool, error) {
	t.Helper()
	var e domain.Enrollment
	var created bool
	ctx := bus.WithCause(auth.WithSystemScope(context.Background()), "corr-"+eventID, eventID)
	err := store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		var err error
		e, created, err = a.EnrollAdmitted(ctx, tx, eventID, adm)
		return err
	})
	return e, created, err
}

// outbox returns the payloads written to the outbox on subject, oldest first.
func outbox[T proto.Message](t *testing.T, pool *pgxpool.Pool, subject string, newT func() T) []T {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT payload FROM outbox WHERE subject = $1 ORDER BY seq", subject)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			t.Fatal(err)
		}
		env := &eventsv1.Envelope{}
		if err := proto.Unmarshal(body, env); err != nil {
			t.Fatal(err)
		}
		m := newT()
		if err := env.GetPayload().UnmarshalTo(m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// The enrollment's own unique keys make the use case idempotent even if the bus inbox were
// bypassed: a replayed event, or the same admission (episode) under a new event id, adds nothing.
func TestEnrollAdmittedIsIdempotentWithoutInbox(t *testing.T) {
	pool, store, a := setup(t)
	trackID := addTrack(t, pool, clinicA, "adult-evening", 12)
	adm := admission(patient, clinicA, "adult-evening")
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
		_, created, err := enroll(t, store, a, step.event, step.adm)
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
		ProgramTrack: "adult-evening", StartDate: "2026-03-02", TrackId: trackID, ProgramCode: "adult-iop"}
	if subject != app.SubjectEnrollmentCreated || !proto.Equal(got, want) ||
		env.GetCausationId() != ev1 || env.GetCorrelationId() != "corr-"+ev1 || env.GetClinicId() != clinicA {
		t.Fatalf("outbox: %s %v (causation %s, correlation %s, clinic %s)", subject, got,
			env.GetCausationId(), env.GetCorrelationId(), env.GetClinicId())
	}
	// Its creation is in the history, by the event.
	if n := count(t, pool, `SELECT count(*) FROM enrollment_history WHERE enrollment_id = $1 AND from_status IS NULL
		AND to_status = 'active' AND reason = 'admitted' AND actor = $2`, id, "event:"+ev1); n != 1 {
		t.Fatalf("history rows = %d, want 1", n)
	}

	// Another episode of the same patient at the same clinic, while the first is current: the
	// patient has one current enrollment per clinic, so the admission waits (a retryable
	// error) for the first episode's discharge; see TestAdmissionWaitsForPriorEpisodeDischarge.
	if _, created, err := enroll(t, store, a, bus.NewID(), admission(patient, clinicA, "adult-evening")); !errors.Is(err, app.ErrPriorEpisodeCurrent) || created {
		t.Fatalf("second episode while enrolled: created=%v err=%v", created, err)
	}
	// At another clinic it is another enrollment.
	addTrack(t, pool, clinicB, "adult-evening", 12)
	if _, created, err := enroll(t, store, a, bus.NewID(), admission(patient, clinicB, "adult-evening")); err != nil || !created {
		t.Fatalf("other clinic: created=%v err=%v", created, err)
	}
}

// A new episode's admission handled before the discharge of the patient's earlier episode at
// the clinic (separate consumers) is retried, not dropped: once the discharge lands, the
// retry enrolls. A replay of the earlier episode's admission still changes nothing.
func TestAdmissionWaitsForPriorEpisodeDischarge(t *testing.T) {
	pool, store, a := setup(t)
	addTrack(t, pool, clinicA, "adult-evening", 12)
	ep1 := admission(patient, clinicA, "adult-evening")
	ev1 := bus.NewID()
	first, created, err := enroll(t, store, a, ev1, ep1)
	if err != nil || !created {
		t.Fatalf("episode 1: created=%v err=%v", created, err)
	}
	ep2 := admission(patient, clinicA, "adult-evening")
	ev2 := bus.NewID()
	for range 2 { // the consumer's retries
		if _, created, err := enroll(t, store, a, ev2, ep2); !errors.Is(err, app.ErrPriorEpisodeCurrent) || errors.Is(err, domain.ErrInvalid) || created {
			t.Fatalf("episode 2 before the discharge: created=%v err=%v", created, err)
		}
	}
	if _, created, err := enroll(t, store, a, bus.NewID(), ep1); err != nil || created {
		t.Fatalf("episode 1 re-emitted: created=%v err=%v", created, err)
	}
	if n := count(t, pool, "SELECT count(*) FROM enrollments WHERE episode_id = $1", ep2.EpisodeID); n != 0 {
		t.Fatalf("episode 2 enrolled before the discharge: %d", n)
	}
	if ended := discharge(t, store, a, domain.Discharge{PatientID: patient, EpisodeID: ep1.EpisodeID, ClinicID: clinicA}); len(ended) != 1 || ended[0].ID != first.ID {
		t.Fatalf("discharge ended %+v", ended)
	}
	second, created, err := enroll(t, store, a, ev2, ep2)
	if err != nil || !created || second.Status != domain.StatusActive || second.EpisodeID != ep2.EpisodeID {
		t.Fatalf("episode 2 after the discharge: %+v created=%v err=%v", second, created, err)
	}
	if n := count(t, pool, "SELECT count(*) FROM enrollments WHERE patient_id = $1 AND status IN ('active', 'waitlisted')", patient); n != 1 {
		t.Fatalf("current enrollments = %d, want 1", n)
	}
}

// An admission naming a program other than its track's can never be enrolled: invalid
// (dead-lettered), nothing written. The track's own program, or none, is fine.
func TestEnrollAdmittedChecksTheProgram(t *testing.T) {
	pool, store, a := setup(t)
	addTrack(t, pool, clinicA, "adult-evening", 12)
	adm := admission(patient, clinicA, "adult-evening")
	adm.Program = "adolescent-iop"
	_, _, err := enroll(t, store, a, bus.NewID(), adm)
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || len(ve.Violations) != 1 || ve.Violations[0].Field != "program" ||
		ve.Violations[0].Rule != domain.RuleTrackProgram {
		t.Fatalf("err = %v, want program: %s", err, domain.RuleTrackProgram)
	}
	if n := count(t, pool, "SELECT count(*) FROM enrollments") + count(t, pool, "SELECT count(*) FROM outbox"); n != 0 {
		t.Fatalf("rows written: %d", n)
	}
	adm.Program = "adult-iop"
	if _, created, err := enroll(t, store, a, bus.NewID(), adm); err != nil || !created {
		t.Fatalf("matching program: created=%v err=%v", created, err)
	}
	other := admission(bus.NewID(), clinicA, "adult-evening") // no program: not checked
	if _, created, err := enroll(t, store, a, bus.NewID(), other); err != nil || !created {
		t.Fatalf("no program: created=%v err=%v", created, err)
	}
}

func TestEnrollAdmittedRejectsInvalidInput(t *testing.T) {
	pool, store, a := setup(t)
	addTrack(t, pool, clinicA, "adult-evening", 12)
	_, _, err := enroll(t, store, a, bus.NewID(), domain.Admission{PatientID: "nope", EpisodeID: bus.NewID(), ClinicID: clinicA,
		ProgramTrack: "adult-evening", StartDate: "2026-13-01"})
	if !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	if n := count(t, pool, "SELECT count(*) FROM enrollments") + count(t, pool, "SELECT count(*) FROM outbox"); n != 0 {
		t.Fatalf("rows written for invalid input: %d", n)
	}
}

// A track the clinic has not configured (or has deactivated) is a transient error: the
// consumer retries while an operator configures it.
func TestEnrollAdmittedWaitsForItsTrack(t *testing.T) {
	pool, store, a := setup(t)
	trackID := addTrack(t, pool, clinicA, "adult-day", 12)
	exec(t, pool, "UPDATE tracks SET active = false WHERE id = $1", trackID)
	addTrack(t, pool, clinicB, "adult-evening", 12) // another clinic's track of that code

	for _, adm := range []domain.Admission{
		admission(patient, clinicA, "adult-evening"),
		admission(patient, clinicA, "adult-day"),
	} {
		_, _, err := enroll(t, store, a, bus.NewID(), adm)
		if !errors.Is(err, app.ErrTrackUnavailable) || errors.Is(err, domain.ErrInvalid) {
			t.Fatalf("%s: err = %v, want ErrTrackUnavailable", adm.ProgramTrack, err)
		}
	}
	if n := count(t, pool, "SELECT count(*) FROM enrollments") + count(t, pool, "SELECT count(*) FROM outbox"); n != 0 {
		t.Fatalf("rows written: %d", n)
	}
	// Configured meanwhile: the retry enrolls.
	adm := admission(patient, clinicA, "adult-evening")
	if _, _, err := enroll(t, store, a, bus.NewID(), adm); !errors.Is(err, app.ErrTrackUnavailable) {
		t.Fatal(err)
	}
	addTrack(t, pool, clinicA, "adult-evening", 12)
	if e, created, err := enroll(t, store, a, bus.NewID(), adm); err != nil || !created || e.Status != domain.StatusActive {
		t.Fatalf("after configuring: %+v %v %v", e, created, err)
	}
}

// Many admissions race for a track's seats, each in its own transaction: the track's row
// lock gives exactly capacity seats, and the rest queue with distinct positions.
func TestSeatRace(t *testing.T) {
	for _, tc := range []struct {
		name              string
		capacity, already int // seats, and seats already taken before the race
		racers            int
	}{
		{"last seat", 3, 2, 6},
		{"two seats, many racers", 2, 0, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool, store, a := setup(t)
			trackID := addTrack(t, pool, clinicA, "adult-evening", tc.capacity)
			for range tc.already {
				if _, created, err := enroll(t, store, a, bus.NewID(), admission(bus.NewID(), clinicA, "adult-evening")); err != nil || !created {
					t.Fatal(created, err)
				}
			}
			start := make(chan struct{})
			var wg sync.WaitGroup
			errs := make(chan error, tc.racers)
			for range tc.racers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					ev := bus.NewID()
					err := store.InTx(auth.WithSystemScope(context.Background()), func(ctx context.Context, tx *bus.Tx) error {
						_, created, err := a.EnrollAdmitted(ctx, tx, ev, admission(bus.NewID(), clinicA, "adult-evening"))
						if err == nil && !created {
							err = errors.New("not created")
						}
						return err
					})
					errs <- err
				}()
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			free := tc.capacity - tc.already
			if n := count(t, pool, "SELECT count(*) FROM enrollments WHERE track_id = $1 AND status = 'active'", trackID); n != tc.capacity {
				t.Fatalf("active = %d, want %d", n, tc.capacity)
			}
			if n := count(t, pool, "SELECT count(*) FROM enrollments WHERE track_id = $1 AND status = 'waitlisted'", trackID); n != tc.racers-free {
				t.Fatalf("waitlisted = %d, want %d", n, tc.racers-free)
			}
			created := outbox(t, pool, app.SubjectEnrollmentCreated, func() *schedulingv1.EnrollmentCreated { return &schedulingv1.EnrollmentCreated{} })
			if len(created) != tc.capacity {
				t.Fatalf("EnrollmentCreated = %d, want %d", len(created), tc.capacity)
			}
			waitlisted := outbox(t, pool, app.SubjectPatientWaitlisted, func() *schedulingv1.PatientWaitlisted { return &schedulingv1.PatientWaitlisted{} })
			positions := map[int32]bool{}
			for _, w := range waitlisted {
				positions[w.GetPosition()] = true
			}
			for p := 1; p <= tc.racers-free; p++ {
				if !positions[int32(p)] {
					t.Fatalf("positions %v: %d missing", positions, p)
				}
			}
			if len(waitlisted) != tc.racers-free {
				t.Fatalf("PatientWaitlisted = %d, want %d", len(waitlisted), tc.racers-free)
			}
		})
	}
}

func discharge(t *testing.T, store *bus.Store, a *app.App, d domain.Discharge) []domain.Enrollment {
	t.Helper()
	var ended []domain.Enrollment
	ev := bus.NewID()
	err := store.InTx(bus.WithCause(auth.WithSystemScope(context.Background()), ev, ev), func(ctx context.Context, tx *bus.Tx) error {
		var err error
		ended, err = a.Discharge(ctx, tx, ev, d)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ended
}

func switchTrack(a *app.App, e, code, key string) (*schedulingv1.SwitchTrackResponse, error) {
	viewer := &auth.Principal{Subject: "scheduler-1", Clinics: []string{clinicA}}
	return a.SwitchTrack(auth.WithPrincipal(context.Background(), viewer), app.SwitchTrack{
		Caller: "scheduler-1", Viewer: viewer,
		IdempotencyKey: key, RequestHash: []byte(e + code), EnrollmentID: e, TrackCode: code, Reason: "new job",
	})
}

// A discharge handled before its admission (separate consumers, retries) wins: the admission
// enrolls nobody afterwards. A discharge of an unknown patient is fine.
func TestDischargeBeforeAdmission(t *testing.T) {
	pool, store, a := setup(t)
	addTrack(t, pool, clinicA, "adult-evening", 12)
	adm := admission(patient, clinicA, "adult-evening")
	if ended := discharge(t, store, a, domain.Discharge{PatientID: patient, EpisodeID: adm.EpisodeID, ClinicID: clinicA}); len(ended) != 0 {
		t.Fatalf("ended %d", len(ended))
	}
	if _, created, err := enroll(t, store, a, bus.NewID(), adm); err != nil || created {
		t.Fatalf("admission after its discharge: created=%v err=%v", created, err)
	}
	if n := count(t, pool, "SELECT count(*) FROM enrollments") + count(t, pool, "SELECT count(*) FROM outbox"); n != 0 {
		t.Fatalf("rows: %d", n)
	}
}

// A discharge racing its own admission: whichever commits first, the patient ends without a
// current enrollment (the discharge takes the clinic's track locks, the admission re-checks
// discharged episodes under its track's lock).
func TestDischargeRacingItsAdmission(t *testing.T) {
	pool, store, a := setup(t)
	addTrack(t, pool, clinicA, "adult-evening", 50)
	for range 20 {
		adm := admission(bus.NewID(), clinicA, "adult-evening")
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		start := make(chan struct{})
		for _, f := range []func(ctx context.Context, tx *bus.Tx) error{
			func(ctx context.Context, tx *bus.Tx) error {
				_, _, err := a.EnrollAdmitted(ctx, tx, bus.NewID(), adm)
				return err
			},
			func(ctx context.Context, tx *bus.Tx) error {
				_, err := a.Discharge(ctx, tx, bus.NewID(), domain.Discharge{PatientID: adm.PatientID, EpisodeID: adm.EpisodeID, ClinicID: clinicA})
				return err
			},
		} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs <- store.InTx(auth.WithSystemScope(context.Background()), f)
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := count(t, pool, "SELECT count(*) FROM enrollments WHERE patient_id = $1 AND status IN ('active', 'waitlisted')", adm.PatientID); n != 0 {
			t.Fatalf("discharged patient still holds %d current enrollments", n)
		}
	}
}

// Seat changes that cascade across tracks (a discharge promoting a pending switch, which
// frees a seat in another track) run concurrently with switches the other way without
// deadlocking: every such change locks the clinic's tracks in id order.
func TestConcurrentDischargesAndSwitchesDoNotDeadlock(t *testing.T) {
	pool, store, a := setup(t)
	addTrack(t, pool, clinicA, "t-one", 2)
	addTrack(t, pool, clinicA, "t-two", 2)
	var one, two []domain.Admission
	var oneIDs, twoIDs []string
	for range 4 {
		adm1, adm2 := admission(bus.NewID(), clinicA, "t-one"), admission(bus.NewID(), clinicA, "t-two")
		e1, _, err1 := enroll(t, store, a, bus.NewID(), adm1)
		e2, _, err2 := enroll(t, store, a, bus.NewID(), adm2)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		one, two = append(one, adm1), append(two, adm2)
		oneIDs, twoIDs = append(oneIDs, e1.ID), append(twoIDs, e2.ID)
	}
	// Seated in each: the first two; each seated one asks to switch to the other (full) track.
	for i := range 2 {
		for _, s := range []struct{ id, code string }{{oneIDs[i], "t-two"}, {twoIDs[i], "t-one"}} {
			resp, err := switchTrack(a, s.id, s.code, bus.NewID())
			if err != nil || resp.GetEnrollment().GetStatus() != domain.StatusWaitlisted {
				t.Fatalf("switch: %v %v", resp, err)
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	run := func(f func() error) {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- f() }()
	}
	for i := range 2 {
		for _, adm := range []domain.Admission{one[i], two[i]} {
			run(func() error {
				ev := bus.NewID()
				return store.InTx(auth.WithSystemScope(context.Background()), func(ctx context.Context, tx *bus.Tx) error {
					_, err := a.Discharge(ctx, tx, ev, domain.Discharge{PatientID: adm.PatientID, EpisodeID: adm.EpisodeID, ClinicID: clinicA})
					return err
				})
			})
		}
	}
	for i := 2; i < 4; i++ {
		for _, s := range []struct{ id, code string }{{oneIDs[i], "t-two"}, {twoIDs[i], "t-one"}} {
			run(func() error {
				_, err := switchTrack(a, s.id, s.code, bus.NewID())
				return err
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Whatever the order, each track ends with at most its capacity and no free seat while
	// someone waits.
	for _, code := range []string{"t-one", "t-two"} {
		active := count(t, pool, `SELECT count(*) FROM enrollments e JOIN tracks t ON t.id = e.track_id WHERE t.code = $1 AND e.status = 'active'`, code)
		waiting := count(t, pool, `SELECT count(*) FROM enrollments e JOIN tracks t ON t.id = e.track_id WHERE t.code = $1 AND e.status = 'waitlisted'`, code)
		if active > 2 || (active < 2 && waiting > 0) {
			t.Fatalf("%s: %d active, %d waiting", code, active, waiting)
		}
	}
	// Every patient still has at most one current enrollment besides a pending switch.
	if n := count(t, pool, `SELECT count(*) FROM (SELECT patient_id FROM enrollments WHERE status IN ('active', 'waitlisted')
		AND replaced_by IS NULL GROUP BY patient_id HAVING count(*) > 1) x`); n != 0 {
		t.Fatalf("%d patients with two current enrollments", n)
	}
}

func TestGetEnrollment(t *testing.T) {
	pool, store, a := setup(t)
	ctx := context.Background()
	addTrack(t, pool, clinicA, "adult-day", 12)
	addTrack(t, pool, clinicB, "adult-day", 1)
	for _, adm := range []domain.Admission{
		{PatientID: patient, EpisodeID: bus.NewID(), ClinicID: clinicA, ProgramTrack: "adult-day", StartDate: "2026-03-02"},
		{PatientID: bus.NewID(), EpisodeID: bus.NewID(), ClinicID: clinicB, ProgramTrack: "adult-day", StartDate: "2026-05-01"},
		{PatientID: patient, EpisodeID: bus.NewID(), ClinicID: clinicB, ProgramTrack: "adult-day", StartDate: "2026-05-04"},
	} {
		if _, _, err := enroll(t, store, a, bus.NewID(), adm); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name       string
		clinics    []string
		patient    string
		wantClinic string // empty: not found
		wantStatus string
	}{
		{"visible in A", []string{clinicA}, patient, clinicA, domain.StatusActive},
		{"latest overall: waitlisted in B", []string{auth.AllClinics}, patient, clinicB, domain.StatusWaitlisted},
		{"other clinic only", []string{"0192f0c0-0000-7000-8000-0000000000c9"}, patient, "", ""},
		{"unknown patient", []string{auth.AllClinics}, "0192f0c0-0000-7000-8000-0000000000b9", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			viewer := &auth.Principal{Subject: "u", Clinics: tt.clinics}
			e, err := a.GetEnrollment(auth.WithPrincipal(ctx, viewer), viewer, tt.patient)
			if tt.wantClinic == "" {
				if !errors.Is(err, domain.ErrNotFound) {
					t.Fatalf("err = %v, want ErrNotFound", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.ClinicID != tt.wantClinic || e.Status != tt.wantStatus {
				t.Fatalf("got %s %s", e.ClinicID, e.Status)
			}
		})
	}
}

func admin() *auth.Principal {
	return &auth.Principal{Subject: "admin-1", Clinics: []string{auth.AllClinics}}
}

func eveningTrack(clinicID, code string, capacity int, roomID string) domain.Track {
	return domain.Track{ClinicID: clinicID, ProgramCode: "adult-iop", Code: code, TimeOfDay: domain.TimeOfDayEvening,
		Weekdays: []int{1, 3, 4}, Start: "18:00", End: "21:00", Capacity: capacity, RoomID: roomID, Active: true}
}

// Enrollments written before tracks existed (track_id NULL) take seats of the track created
// later with their code: they are linked to it when it is created.
func TestCreatingATrackLinksOlderEnrollments(t *testing.T) {
	pool, store, a := setup(t)
	a = a.WithConfiguration(postgres.NewConfig(store))
	ctx := auth.WithPrincipal(context.Background(), admin())
	old := bus.NewID()
	exec(t, pool, `INSERT INTO enrollments (id, patient_id, clinic_id, program_track, start_date, status, source_event_id, enrolled_at)
		VALUES ($1, $2, $3, 'adult-evening', '2025-12-01', 'active', $4, now())`, old, patient, clinicA, bus.NewID())
	// Another clinic's, and another code's, stay as they are.
	exec(t, pool, `INSERT INTO enrollments (id, patient_id, clinic_id, program_track, start_date, status, source_event_id, enrolled_at)
		VALUES ($1, $2, $3, 'adult-evening', '2025-12-01', 'active', $4, now())`, bus.NewID(), bus.NewID(), clinicB, bus.NewID())
	exec(t, pool, `INSERT INTO enrollments (id, patient_id, clinic_id, program_track, start_date, status, source_event_id, enrolled_at)
		VALUES ($1, $2, $3, 'adult-day', '2025-12-01', 'active', $4, now())`, bus.NewID(), bus.NewID(), clinicA, bus.NewID())

	tr, err := a.UpsertTrack(ctx, admin(), "admin-1", eveningTrack(clinicA, "adult-evening", 1, ""))
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, pool, "SELECT count(*) FROM enrollments WHERE id = $1 AND track_id = $2 AND program_code = 'adult-iop'", old, tr.ID); n != 1 {
		t.Fatal("the older enrollment is not linked to the new track")
	}
	if n := count(t, pool, "SELECT count(*) FROM enrollments WHERE track_id IS NULL"); n != 2 {
		t.Fatalf("unlinked = %d, want 2", n)
	}
	// Its one seat is taken: the next admission waits.
	e, created, err := enroll(t, store, a, bus.NewID(), admission(bus.NewID(), clinicA, "adult-evening"))
	if err != nil || !created || e.Status != domain.StatusWaitlisted {
		t.Fatalf("admission: %+v created=%v err=%v", e, created, err)
	}
}

// A room's seats cannot drop below the capacity of an active track meeting in it.
func TestRoomSeatsCoverItsTracks(t *testing.T) {
	pool, store, a := setup(t)
	a = a.WithConfiguration(postgres.NewConfig(store))
	ctx := auth.WithPrincipal(context.Background(), admin())
	room, err := a.UpsertRoom(ctx, admin(), domain.Room{ClinicID: clinicA, Name: "Group room", Seats: 12})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.UpsertTrack(ctx, admin(), "admin-1", eveningTrack(clinicA, "adult-evening", 10, room.ID)); err != nil {
		t.Fatal(err)
	}
	room.Seats = 8
	_, err = a.UpsertRoom(ctx, admin(), room)
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || len(ve.Violations) != 1 || ve.Violations[0].Field != "room.seats" ||
		ve.Violations[0].Rule != domain.RuleSeatsTrackCapacity || !strings.Contains(ve.Violations[0].Msg, "adult-evening") {
		t.Fatalf("err = %v, want room.seats: %s naming the track", err, domain.RuleSeatsTrackCapacity)
	}
	if n := count(t, pool, "SELECT seats FROM rooms WHERE id = $1", room.ID); n != 12 {
		t.Fatalf("seats = %d, want 12", n)
	}
	room.Seats = 10 // exactly the track's capacity
	if _, err := a.UpsertRoom(ctx, admin(), room); err != nil {
		t.Fatal(err)
	}
}

// SeatHolder finds a pending switch's seat by replaced_by: an index serves it.
func TestPendingSwitchIndex(t *testing.T) {
	pool, _, _ := setup(t)
	var def string
	if err := pool.QueryRow(context.Background(), `SELECT indexdef FROM pg_indexes
		WHERE tablename = 'enrollments' AND indexname = 'enrollments_pending_switch'`).Scan(&def); err != nil {
		t.Fatalf("index enrollments_pending_switch: %v", err)
	}
	for _, want := range []string{"(replaced_by)", "'active'", "replaced_by IS NOT NULL"} {
		if !strings.Contains(def, want) {
			t.Fatalf("index %q lacks %q", def, want)
		}
	}
}

// A track made active again gives the seats it has to its waitlist at once; seats added while
// it is inactive wait for that.
func TestReactivatingATrackFillsItsWaitlist(t *testing.T) {
	pool, store, a := setup(t)
	a = a.WithConfiguration(postgres.NewConfig(store))
	ctx := auth.WithPrincipal(context.Background(), admin())
	tr, err := a.UpsertTrack(ctx, admin(), "admin-1", eveningTrack(clinicA, "adult-evening", 1, ""))
	if err != nil {
		t.Fatal(err)
	}
	var waiting []string
	for i := range 3 {
		e, _, err := enroll(t, store, a, bus.NewID(), admission(bus.NewID(), clinicA, "adult-evening"))
		if err != nil || (i > 0) != (e.Status == domain.StatusWaitlisted) {
			t.Fatalf("admission %d: %+v %v", i, e, err)
		}
		if i > 0 {
			waiting = append(waiting, e.ID)
		}
	}
	tr.Active, tr.Capacity = false, 3
	if tr, err = a.UpsertTrack(ctx, admin(), "admin-1", tr); err != nil {
		t.Fatal(err)
	}
	if n := count(t, pool, "SELECT count(*) FROM enrollments WHERE status = 'waitlisted'"); n != 2 {
		t.Fatalf("inactive track: waitlisted = %d, want 2", n)
	}
	tr.Active = true
	if _, err := a.UpsertTrack(ctx, admin(), "admin-1", tr); err != nil {
		t.Fatal(err)
	}
	for _, id := range waiting {
		if n := count(t, pool, "SELECT count(*) FROM enrollments WHERE id = $1 AND status = 'active' AND enrolled_at IS NOT NULL", id); n != 1 {
			t.Fatalf("waitlisted %s not promoted on reactivation", id)
		}
		if n := count(t, pool, `SELECT count(*) FROM enrollment_history WHERE enrollment_id = $1 AND from_status = 'waitlisted'
			AND to_status = 'active' AND reason = 'promoted' AND actor = 'admin-1'`, id); n != 1 {
			t.Fatalf("promotion of %s not in the history", id)
		}
	}
	created := outbox(t, pool, app.SubjectEnrollmentCreated, func() *schedulingv1.EnrollmentCreated { return &schedulingv1.EnrollmentCreated{} })
	if len(created) != 3 || !created[1].GetFromWaitlist() || !created[2].GetFromWaitlist() {
		t.Fatalf("EnrollmentCreated = %v", created)
	}
}
