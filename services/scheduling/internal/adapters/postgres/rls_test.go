package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/testkit/rlstest"

	"github.com/trellis-health/trellis/services/scheduling/migrations"
)

// rlsTables are the scheduling tables that hold clinic data, each with the columns a copy of
// a row must change to be a new row (its keys), as SQL expressions. clinics holds its clinic
// in id, which the probe's copy sets to clinic B already.
var rlsTables = []rlstest.Table{
	{Name: "clinics", Column: "id"},
	{Name: "rooms", Fresh: map[string]string{"id": "gen_random_uuid()"}},
	{Name: "clinicians", Fresh: map[string]string{"id": "gen_random_uuid()"}},
	{Name: "clinician_availability", Fresh: map[string]string{"weekday": "7"}},
	{Name: "tracks", Fresh: map[string]string{"id": "gen_random_uuid()"}},
	{Name: "enrollments", Fresh: map[string]string{"id": "gen_random_uuid()"}},
	{Name: "enrollment_history", Fresh: map[string]string{"id": "gen_random_uuid()"}},
	{Name: "discharged_episodes", Fresh: map[string]string{"episode_id": "gen_random_uuid()"}},
	{Name: "sessions", Fresh: map[string]string{"id": "gen_random_uuid()"}},
	{Name: "appointments", Fresh: map[string]string{"id": "gen_random_uuid()"}},
	{Name: "appointment_history", Fresh: map[string]string{"id": "1000000"}},
	{Name: "attendance", Fresh: map[string]string{"version": "2"}},
	{Name: "risk_episodes", Fresh: map[string]string{"id": "gen_random_uuid()"}},
	{Name: "program_completions", Fresh: map[string]string{"enrollment_id": "gen_random_uuid()"}},
	{Name: "family_consents", Fresh: map[string]string{"patient_id": "gen_random_uuid()"}},
}

const (
	rlsClinicA = rlstest.ClinicA
	rlsClinicB = rlstest.ClinicB
)

// serviceRole is scheduling's own role (rlstest.ServiceRole: no superuser, no BYPASSRLS,
// owning schema scheduling; the administrative role a member of it, as pg.Provision makes it)
// with pkg/bus's tables and scheduling's schema migrated as it.
func serviceRole(t *testing.T) *rlstest.Role {
	t.Helper()
	return rlstest.ServiceRole(t, "scheduling", func(ctx context.Context, pool *pgxpool.Pool) error {
		if err := bus.Migrate(ctx, pool, "scheduling", nil); err != nil {
			return err
		}
		return pg.Migrate(ctx, pool, "scheduling", "goose_db_version", migrations.FS, nil)
	})
}

// seeded is one clinic's rows.
type seeded struct{ patient, enrollment, track, session, appointment string }

// seedClinic writes one row of clinic into every table of rlsTables, in system scope.
func seedClinic(t *testing.T, store *bus.Store, clinic string) seeded {
	t.Helper()
	s := seeded{patient: bus.NewID(), enrollment: bus.NewID(), track: bus.NewID(), session: bus.NewID(), appointment: bus.NewID()}
	clinician := bus.NewID()
	rlstest.Seed(t, store, []rlstest.Stmt{
		{SQL: `INSERT INTO clinics (id, name, time_zone) VALUES ($1, 'Clinic', 'America/Chicago')`, Args: []any{clinic}},
		{SQL: `INSERT INTO rooms (id, clinic_id, name, seats) VALUES (gen_random_uuid(), $1, 'Room', 12)`, Args: []any{clinic}},
		{SQL: `INSERT INTO clinicians (id, clinic_id, display_name, role) VALUES ($1, $2, 'C', 'counselor')`,
			Args: []any{clinician, clinic}},
		{SQL: `INSERT INTO clinician_availability (clinician_id, clinic_id, weekday, start_time, end_time)
			VALUES ($1, $2, 1, '08:00', '20:00')`, Args: []any{clinician, clinic}},
		{SQL: `INSERT INTO tracks (id, clinic_id, program_code, code, time_of_day, weekdays, start_time, end_time, capacity)
			VALUES ($1, $2, 'adult-iop', 'adult-evening', 'evening', '{1,3,4}', '18:00', '21:00', 12)`, Args: []any{s.track, clinic}},
		{SQL: `INSERT INTO enrollments (id, patient_id, clinic_id, program_track, start_date, status, source_event_id, track_id,
				program_code, episode_id, enrolled_at)
			VALUES ($1, $2, $3, 'adult-evening', '2026-03-02', 'active', gen_random_uuid(), $4, 'adult-iop', gen_random_uuid(), now())`,
			Args: []any{s.enrollment, s.patient, clinic, s.track}},
		{SQL: `INSERT INTO enrollment_history (id, enrollment_id, clinic_id, to_status, reason, at, actor)
			VALUES (gen_random_uuid(), $1, $2, 'active', 'admitted', now(), 'seed')`, Args: []any{s.enrollment, clinic}},
		{SQL: `INSERT INTO discharged_episodes (episode_id, patient_id, clinic_id, source_event_id)
			VALUES (gen_random_uuid(), $1, $2, gen_random_uuid())`, Args: []any{s.patient, clinic}},
		{SQL: `INSERT INTO sessions (id, clinic_id, service_type, clinician_id, local_date, start_time, end_time, starts_at, ends_at)
			VALUES ($1, $2, 'individual', $3, '2026-03-02', '10:00', '11:00', '2026-03-02 16:00Z', '2026-03-02 17:00Z')`,
			Args: []any{s.session, clinic, clinician}},
		{SQL: `INSERT INTO appointments (id, session_id, enrollment_id, patient_id, clinic_id) VALUES ($1, $2, $3, $4, $5)`,
			Args: []any{s.appointment, s.session, s.enrollment, s.patient, clinic}},
		{SQL: `INSERT INTO appointment_history (appointment_id, clinic_id, change, actor) VALUES ($1, $2, 'rescheduled', 'seed')`,
			Args: []any{s.appointment, clinic}},
		{SQL: `INSERT INTO attendance (appointment_id, clinic_id, version, status, minutes_attended, scheduled_minutes, recorded_by)
			VALUES ($1, $2, 1, 'present', 60, 60, 'seed')`, Args: []any{s.appointment, clinic}},
		{SQL: `INSERT INTO risk_episodes (id, enrollment_id, patient_id, clinic_id, reasons, since)
			VALUES (gen_random_uuid(), $1, $2, $3, '{consecutive_absences}', now())`, Args: []any{s.enrollment, s.patient, clinic}},
		{SQL: `INSERT INTO program_completions (enrollment_id, clinic_id, completed_on, weeks, weeks_meeting_minimum)
			VALUES ($1, $2, '2026-05-25', 12, 12)`, Args: []any{s.enrollment, clinic}},
		{SQL: `INSERT INTO family_consents (patient_id, clinic_id, consent_id, version, named_recipients, effective_from)
			VALUES ($1, $2, gen_random_uuid(), 1, true, now())`, Args: []any{s.patient, clinic}},
	}...)
	return s
}

// rlsSetup is scheduling's own role, its scoped store, and clinics A and B seeded in every
// table (programs, the network's, seeded without a scope).
func rlsSetup(t *testing.T) (r *rlstest.Role, store *bus.Store, a, b seeded) {
	t.Helper()
	r = serviceRole(t)
	if _, err := r.Pool.Exec(context.Background(), `INSERT INTO programs (code, name, population, length_weeks, weekly_minimum_minutes)
		VALUES ('adult-iop', 'Adult IOP', 'adult', 12, 540)`); err != nil {
		t.Fatal(err)
	}
	store = r.Store()
	return r, store, seedClinic(t, store, rlsClinicA), seedClinic(t, store, rlsClinicB)
}

// principalCtx is a caller of clinics (as pkg/rpc puts the token's principal in the context).
var principalCtx = rlstest.Caller

// With scheduling's own role (not a superuser, no BYPASSRLS, the tables' owner) the database,
// not the code, keeps each clinic's rows to callers of that clinic: in a transaction scoped to
// clinic A every table shows only A's rows, B's rows cannot be counted, updated or deleted, a
// row cannot be written to (or moved into) clinic B, and without a scope nothing is visible;
// the policies test their conditions cheapest first (migration 00009); a role granted SELECT
// sees nothing, the administrative role both clinics' enrollments.
func TestRowLevelSecurityIsolatesClinics(t *testing.T) {
	r, store, _, _ := rlsSetup(t)
	// Every table with a clinic_id column has its forced policy (a new table holding clinic
	// data without one fails here); clinics, whose clinic is its id, too.
	var withClinicID []string
	for _, tb := range rlsTables {
		if tb.Column == "" {
			withClinicID = append(withClinicID, tb.Name)
		}
	}
	rlstest.CheckCatalog(t, r.Pool, withClinicID...)
	rlstest.CheckForced(t, r.Pool, "clinics")
	rlstest.OtherRoles(t, r, "enrollments", rlsTables...)
	rlstest.Probe(t, store, r.Pool, rlsTables...)

	// attendance_current reads attendance through the view's owner, the service role: bound.
	var n int
	if err := store.Read(principalCtx(rlsClinicA), func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM attendance_current`).Scan(&n)
	}); err != nil || n != 1 {
		t.Errorf("attendance_current in clinic A's scope: %d rows (%v), want 1", n, err)
	}
}

// The repositories, called directly with a caller of clinic A (no app check in between), do
// not get clinic B's records from the database, guessed ids or not; a caller of B does. Reads
// outside a unit of work (Reader) are scoped too, and the compliance worker's listing sees
// every clinic in system scope and nothing without a scope (it fails closed).
func TestRowLevelSecurityStopsGuessedIDs(t *testing.T) {
	_, store, a, b := rlsSetup(t)
	enrollments, appts, attendance, compliance := NewEnrollments(store), NewAppointments(store), NewAttendance(), NewCompliance(store)
	asA, asB := principalCtx(rlsClinicA), principalCtx(rlsClinicB)
	inTx := func(ctx context.Context, fn func(ctx context.Context, tx *bus.Tx) (bool, error)) (found bool) {
		t.Helper()
		if err := store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) (err error) {
			found, err = fn(ctx, tx)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return found
	}
	enrollment := func(id string) func(ctx context.Context, tx *bus.Tx) (bool, error) {
		return func(ctx context.Context, tx *bus.Tx) (bool, error) {
			_, found, err := enrollments.Enrollment(ctx, tx, id)
			return found, err
		}
	}
	if inTx(asA, enrollment(b.enrollment)) {
		t.Error("clinic A's scope read clinic B's enrollment")
	}
	if !inTx(asA, enrollment(a.enrollment)) || !inTx(asB, enrollment(b.enrollment)) {
		t.Error("a clinic's own enrollment is not found")
	}
	if !inTx(principalCtx(auth.AllClinics), enrollment(b.enrollment)) || !inTx(principalCtx(rlsClinicA, rlsClinicB), enrollment(b.enrollment)) {
		t.Error("a caller of every clinic, or of A and B, does not find B's enrollment")
	}
	if inTx(principalCtx("not-a-clinic-id'; --"), enrollment(a.enrollment)) {
		t.Error("a caller whose clinics are not clinic ids sees an enrollment")
	}
	if inTx(asA, func(ctx context.Context, tx *bus.Tx) (bool, error) {
		_, found, err := appts.Appointment(ctx, tx, b.appointment, true)
		return found, err
	}) || inTx(asA, func(ctx context.Context, tx *bus.Tx) (bool, error) {
		_, found, err := attendance.LockSession(ctx, tx, b.session, nil)
		return found, err
	}) || inTx(asA, func(ctx context.Context, tx *bus.Tx) (bool, error) {
		targets, err := attendance.SessionTargets(ctx, tx, b.session)
		return len(targets) > 0, err
	}) {
		t.Error("clinic A's scope read clinic B's appointment or session")
	}

	// Reads through the store (Store.Read), as the RPCs' listings run.
	if got, err := enrollments.ForPatient(asA, b.patient); err != nil || len(got) != 0 {
		t.Errorf("clinic A lists %d of B's patient's enrollments (%v)", len(got), err)
	}
	if got, err := enrollments.ForPatient(asB, b.patient); err != nil || len(got) != 1 {
		t.Errorf("clinic B lists %d of its patient's enrollments (%v), want 1", len(got), err)
	}
	if _, found, err := enrollments.TrackByID(asA, b.track); err != nil || found {
		t.Errorf("clinic A reads B's track: %v (%v)", found, err)
	}
	// Asked for both clinics, the database returns only A's appointments to A.
	if got, err := appts.ClinicDay(asA, rlsClinicB, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), ""); err != nil || len(got) != 0 {
		t.Errorf("clinic A lists %d of B's appointments (%v)", len(got), err)
	}
	if got, err := appts.PatientClinics(asA, b.patient); err != nil || len(got) != 0 {
		t.Errorf("clinic A sees B's patient at clinics %v (%v)", got, err)
	}
	if got, err := NewConfig(store).Clinics(asA); err != nil || len(got) != 1 || got[0].ID != rlsClinicA {
		t.Errorf("clinic A lists clinics %v (%v), want only A", got, err)
	}

	// The compliance worker's listing: every clinic in system scope, none without a scope.
	if ids, err := compliance.ActiveEnrollments(auth.WithSystemScope(context.Background())); err != nil || len(ids) != 2 {
		t.Errorf("system scope: %d active enrollments (%v), want 2", len(ids), err)
	}
	if ids, err := compliance.ActiveEnrollments(context.Background()); err != nil || len(ids) != 0 {
		t.Errorf("no scope: %d active enrollments (%v), want 0", len(ids), err)
	}
}

// The policies leave the plans of RecordAttendance's lookups (the busiest path of the system)
// as they were: the same index scans, the policies' conditions a filter on top of them, each
// function call an InitPlan evaluated once per statement, never a SubPlan run per row. The
// current attendance of an appointment is one backward probe of attendance_pkey, never a
// scan of all history (attendance_current, migration 00010).
func TestRowLevelSecurityKeepsAttendancePlans(t *testing.T) {
	r, store, a, _ := rlsSetup(t)
	ctx := auth.WithSystemScope(context.Background())
	// 5,000 more appointments of clinic A (a session each, on the seeded enrollment), with
	// attendance, so that the planner prefers the indexes it uses in production.
	if err := store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		_, err := tx.Exec(ctx, `
			WITH s AS (
				INSERT INTO sessions (id, clinic_id, service_type, local_date, start_time, end_time, starts_at, ends_at)
				SELECT gen_random_uuid(), $1, 'individual', '2026-03-02'::date + i % 60, '10:00', '11:00',
					'2026-03-02 16:00Z'::timestamptz + i * interval '1 hour', '2026-03-02 17:00Z'::timestamptz + i * interval '1 hour'
				FROM generate_series(1, 5000) i RETURNING id),
			ap AS (
				INSERT INTO appointments (id, session_id, enrollment_id, patient_id, clinic_id)
				SELECT gen_random_uuid(), s.id, $2, $3, $1 FROM s RETURNING id)
			INSERT INTO attendance (appointment_id, clinic_id, version, status, minutes_attended, scheduled_minutes, recorded_by)
			SELECT id, $1, 1, 'present', 60, 60, 'seed' FROM ap`, rlsClinicA, a.enrollment, a.patient)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Pool.Exec(context.Background(), `ANALYZE sessions, appointments, attendance, enrollments`); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, sql, arg, index string }{
		{"LockAppointment", lockAppointmentSQL, a.appointment, "appointments_pkey"},
		{"LockSession", lockSessionSQL, a.session, "sessions_pkey"},
		{"SessionTargets", targetsSQL + ` WHERE a.session_id = $1 ORDER BY a.id`, a.session, "appointments_session_id_enrollment_id_key"},
		{"AppointmentTarget", targetsSQL + ` WHERE a.id = $1`, a.appointment, "appointments_pkey"},
		{"Facts visits", attendedVisitsSQL, a.enrollment, "attendance_pkey"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var plan []string
			if err := store.InTx(principalCtx(rlsClinicA), func(ctx context.Context, tx *bus.Tx) error {
				rows, err := tx.Query(ctx, `EXPLAIN (COSTS OFF) `+tt.sql, tt.arg)
				if err != nil {
					return err
				}
				plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
				return err
			}); err != nil {
				t.Fatal(err)
			}
			text := strings.Join(plan, "\n")
			if !strings.Contains(text, " using "+tt.index+" on ") || !strings.Contains(text, "InitPlan") || strings.Contains(text, "SubPlan") {
				t.Errorf("plan in clinic A's scope:\n%s\nwant a scan of %s, the policy's conditions as InitPlans and no SubPlan", text, tt.index)
			}
			// The current attendance version: one probe of attendance_pkey per appointment,
			// never a scan of the whole history (attendance_current, migration 00010).
			if strings.Contains(text, "attendance") && (strings.Contains(text, "Seq Scan on attendance") ||
				!strings.Contains(text, "Index Scan Backward using attendance_pkey on attendance")) {
				t.Errorf("plan in clinic A's scope:\n%s\nwant the current attendance as a backward probe of attendance_pkey", text)
			}
			// The current version hangs off the query's own appointment: appointments is read
			// once at most (the attendance_current view joined it a second time, by its key).
			if n := strings.Count(text, " on appointments "); n > 1 {
				t.Errorf("plan in clinic A's scope:\n%s\nreads appointments %d times, want once", text, n)
			}
		})
	}
}
