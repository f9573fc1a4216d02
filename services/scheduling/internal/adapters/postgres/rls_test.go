package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/testkit"

	"github.com/trellis-health/trellis/services/scheduling/migrations"
)

// rlsTables are the scheduling tables that hold clinic data, each with the column holding
// its clinic (clinics: its id), the column that makes a copy of a row a new row (its key) and
// a fresh value for it.
var rlsTables = []struct{ name, clinic, key, fresh string }{
	{"clinics", "id", "id", "$1::uuid"},
	{"rooms", "clinic_id", "id", "gen_random_uuid()"},
	{"clinicians", "clinic_id", "id", "gen_random_uuid()"},
	{"clinician_availability", "clinic_id", "weekday", "7"},
	{"tracks", "clinic_id", "id", "gen_random_uuid()"},
	{"enrollments", "clinic_id", "id", "gen_random_uuid()"},
	{"enrollment_history", "clinic_id", "id", "gen_random_uuid()"},
	{"discharged_episodes", "clinic_id", "episode_id", "gen_random_uuid()"},
	{"sessions", "clinic_id", "id", "gen_random_uuid()"},
	{"appointments", "clinic_id", "id", "gen_random_uuid()"},
	{"appointment_history", "clinic_id", "id", "1000000"},
	{"attendance", "clinic_id", "version", "2"},
	{"risk_episodes", "clinic_id", "id", "gen_random_uuid()"},
	{"program_completions", "clinic_id", "enrollment_id", "gen_random_uuid()"},
	{"family_consents", "clinic_id", "patient_id", "gen_random_uuid()"},
}

const (
	rlsClinicA = "0192f0c0-0000-7000-8000-00000000000a"
	rlsClinicB = "0192f0c0-0000-7000-8000-00000000000b"
)

// serviceRole creates a login role like the one pkg/pg.Provision gives a service (no
// superuser, no BYPASSRLS) owning schema scheduling of a fresh database, migrates scheduling's
// schema as that role, and returns a pool connected as it (no clinic scope set) and the role's
// name. The role is dropped when t ends. (Intake's rls_test.go has the same helper for its
// schema; a shared one would belong in pkg/testkit.)
func serviceRole(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	ctx := context.Background()
	adminURL := testkit.Database(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	role, password := "rls_scheduling_"+hex.EncodeToString(b), hex.EncodeToString(b)+"pw"
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var db string
	if err := admin.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '%s'", role, password),
		fmt.Sprintf("GRANT %s TO CURRENT_USER", role),
		fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s", db, role),
		fmt.Sprintf("CREATE SCHEMA scheduling AUTHORIZATION %s", role),
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), adminURL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP OWNED BY "+role)
		_, _ = c.Exec(context.Background(), "DROP ROLE "+role)
	})
	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, password)
	pool, err := pg.Open(ctx, u.String(), "scheduling", 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := bus.Migrate(ctx, pool, "scheduling", nil); err != nil {
		t.Fatal(err)
	}
	if err := pg.Migrate(ctx, pool, "scheduling", "goose_db_version", migrations.FS, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	return pool, role
}

// seeded is one clinic's rows.
type seeded struct{ patient, enrollment, track, session, appointment string }

// seedClinic writes one row of clinic into every table of rlsTables, in system scope.
func seedClinic(t *testing.T, store *bus.Store, clinic string) seeded {
	t.Helper()
	s := seeded{patient: bus.NewID(), enrollment: bus.NewID(), track: bus.NewID(), session: bus.NewID(), appointment: bus.NewID()}
	clinician := bus.NewID()
	err := store.InTx(auth.WithSystemScope(context.Background()), func(ctx context.Context, tx *bus.Tx) error {
		for _, q := range []string{
			`INSERT INTO clinics (id, name, time_zone) VALUES ($1, 'Clinic', 'America/Chicago')`,
			`INSERT INTO rooms (id, clinic_id, name, seats) VALUES (gen_random_uuid(), $1, 'Room', 12)`,
			`INSERT INTO clinicians (id, clinic_id, display_name, role) VALUES ($7, $1, 'C', 'counselor')`,
			`INSERT INTO clinician_availability (clinician_id, clinic_id, weekday, start_time, end_time) VALUES ($7, $1, 1, '08:00', '20:00')`,
			`INSERT INTO tracks (id, clinic_id, program_code, code, time_of_day, weekdays, start_time, end_time, capacity)
				VALUES ($4, $1, 'adult-iop', 'adult-evening', 'evening', '{1,3,4}', '18:00', '21:00', 12)`,
			`INSERT INTO enrollments (id, patient_id, clinic_id, program_track, start_date, status, source_event_id, track_id,
					program_code, episode_id, enrolled_at)
				VALUES ($3, $2, $1, 'adult-evening', '2026-03-02', 'active', gen_random_uuid(), $4, 'adult-iop', gen_random_uuid(), now())`,
			`INSERT INTO enrollment_history (id, enrollment_id, clinic_id, to_status, reason, at, actor)
				VALUES (gen_random_uuid(), $3, $1, 'active', 'admitted', now(), 'seed')`,
			`INSERT INTO discharged_episodes (episode_id, patient_id, clinic_id, source_event_id)
				VALUES (gen_random_uuid(), $2, $1, gen_random_uuid())`,
			`INSERT INTO sessions (id, clinic_id, service_type, clinician_id, local_date, start_time, end_time, starts_at, ends_at)
				VALUES ($5, $1, 'individual', $7, '2026-03-02', '10:00', '11:00', '2026-03-02 16:00Z', '2026-03-02 17:00Z')`,
			`INSERT INTO appointments (id, session_id, enrollment_id, patient_id, clinic_id) VALUES ($6, $5, $3, $2, $1)`,
			`INSERT INTO appointment_history (appointment_id, clinic_id, change, actor) VALUES ($6, $1, 'rescheduled', 'seed')`,
			`INSERT INTO attendance (appointment_id, clinic_id, version, status, minutes_attended, scheduled_minutes, recorded_by)
				VALUES ($6, $1, 1, 'present', 60, 60, 'seed')`,
			`INSERT INTO risk_episodes (id, enrollment_id, patient_id, clinic_id, reasons, since)
				VALUES (gen_random_uuid(), $3, $2, $1, '{consecutive_absences}', now())`,
			`INSERT INTO program_completions (enrollment_id, clinic_id, completed_on, weeks, weeks_meeting_minimum)
				VALUES ($3, $1, '2026-05-25', 12, 12)`,
			`INSERT INTO family_consents (patient_id, clinic_id, consent_id, version, named_recipients, effective_from)
				VALUES ($2, $1, gen_random_uuid(), 1, true, now())`,
		} {
			// Each statement uses some of the parameters: typed here so every one is declared.
			q = "WITH p AS (SELECT $1::uuid, $2::uuid, $3::uuid, $4::uuid, $5::uuid, $6::uuid, $7::uuid) " + q
			if _, err := tx.Exec(ctx, q, clinic, s.patient, s.enrollment, s.track, s.session, s.appointment, clinician); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rlsSetup is a service role's pool, its scoped store, and clinics A and B seeded in every table.
func rlsSetup(t *testing.T) (pool *pgxpool.Pool, role string, store *bus.Store, a, b seeded) {
	t.Helper()
	pool, role = serviceRole(t)
	if _, err := pool.Exec(context.Background(), `INSERT INTO programs (code, name, population, length_weeks, weekly_minimum_minutes)
		VALUES ('adult-iop', 'Adult IOP', 'adult', 12, 540)`); err != nil {
		t.Fatal(err)
	}
	store = bus.NewStore(pool, "scheduling")
	store.EnableClinicScope()
	return pool, role, store, seedClinic(t, store, rlsClinicA), seedClinic(t, store, rlsClinicB)
}

// principalCtx is a caller of clinics (as pkg/rpc puts the token's principal in the context).
func principalCtx(clinics ...string) context.Context {
	return auth.WithPrincipal(context.Background(), &auth.Principal{Subject: "rls-test", Roles: []string{"admin"}, Clinics: clinics})
}

// With scheduling's own role (not a superuser, no BYPASSRLS, the tables' owner) the database,
// not the code, keeps each clinic's rows to callers of that clinic: in a transaction scoped to
// clinic A every table shows only A's rows, B's rows cannot be counted, updated or deleted, a
// row cannot be written to (or moved into) clinic B, and without a scope nothing is visible.
func TestRowLevelSecurityIsolatesClinics(t *testing.T) {
	pool, role, store, _, _ := rlsSetup(t)
	ctx := context.Background()
	var super, bypass bool
	if err := pool.QueryRow(ctx, `SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`).Scan(&super, &bypass); err != nil {
		t.Fatal(err)
	}
	if super || bypass {
		t.Fatalf("role %s: superuser %v, bypassrls %v: the test would prove nothing", role, super, bypass)
	}

	// Every table of the schema with a clinic_id column (and clinics) has RLS enabled and
	// forced and a policy: a new table holding clinic data without one fails here.
	rows, err := pool.Query(ctx, `
		SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner) = current_user,
			(SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'scheduling' AND c.relkind = 'r' AND (c.relname = 'clinics'
			OR EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'clinic_id' AND NOT a.attisdropped))
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var covered []string
	for rows.Next() {
		var name string
		var enabled, forced, owned bool
		var policies int
		if err := rows.Scan(&name, &enabled, &forced, &owned, &policies); err != nil {
			t.Fatal(err)
		}
		if !enabled || !forced || !owned || policies == 0 {
			t.Errorf("table %s: row level security %v, forced %v, owned by the service role %v, %d policies", name, enabled, forced, owned, policies)
		}
		covered = append(covered, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, tb := range rlsTables {
		want = append(want, tb.name)
	}
	slices.Sort(want)
	if !slices.Equal(covered, want) {
		t.Errorf("tables with clinic_id: %v; the test covers %v", covered, want)
	}

	// errRollback ends a transaction that changed something, so each probe starts from the seed.
	errRollback := errors.New("rollback")
	asA := principalCtx(rlsClinicA)
	for _, tb := range rlsTables {
		t.Run(tb.name, func(t *testing.T) {
			var all, ofB int
			countQ := `SELECT count(*), count(*) FILTER (WHERE ` + tb.clinic + ` = $1) FROM ` + tb.name
			if err := store.Read(auth.WithSystemScope(ctx), func(ctx context.Context, tx pgx.Tx) error {
				return tx.QueryRow(ctx, countQ, rlsClinicB).Scan(&all, &ofB)
			}); err != nil || all != 2 || ofB != 1 {
				t.Fatalf("system scope: %d rows, %d of B (%v); want 2 and 1", all, ofB, err)
			}
			// The policy tests the scope first and the exemption (a catalog lookup) last
			// (migration 00011): system scope computes one condition, A's scope over A's row two.
			for _, sc := range []struct {
				ctx  context.Context
				want int
			}{{auth.WithSystemScope(ctx), 1}, {asA, 2}} {
				if err := store.Read(sc.ctx, func(ctx context.Context, tx pgx.Tx) error {
					if got := testkit.InitPlansRun(t, ctx, tx, `SELECT * FROM `+tb.name+` WHERE `+tb.clinic+` = $1`, rlsClinicA); got != sc.want {
						t.Errorf("%d of the policy's conditions computed, want %d", got, sc.want)
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			// Clinic A's scope: A's row only, whatever the query asks for.
			if err := store.Read(asA, func(ctx context.Context, tx pgx.Tx) error {
				return tx.QueryRow(ctx, countQ, rlsClinicB).Scan(&all, &ofB)
			}); err != nil || all != 1 || ofB != 0 {
				t.Errorf("clinic A's scope: %d rows, %d of B (%v); want 1 and 0", all, ofB, err)
			}
			for _, q := range []string{
				`UPDATE ` + tb.name + ` SET ` + tb.clinic + ` = ` + tb.clinic + ` WHERE ` + tb.clinic + ` = $1`,
				`DELETE FROM ` + tb.name + ` WHERE ` + tb.clinic + ` = $1`,
			} {
				var affected int64
				err := store.InTx(asA, func(ctx context.Context, tx *bus.Tx) error {
					tag, err := tx.Exec(ctx, q, rlsClinicB)
					if err != nil {
						return err
					}
					affected = tag.RowsAffected()
					return errRollback
				})
				if !errors.Is(err, errRollback) || affected != 0 {
					t.Errorf("%s in clinic A's scope: %d rows affected (%v), want 0", q, affected, err)
				}
			}
			// Writing a row of clinic B (a copy of A's row under a new key) or moving A's row
			// to B is refused by the policy's WITH CHECK.
			for _, q := range []string{
				`INSERT INTO ` + tb.name + ` OVERRIDING SYSTEM VALUE SELECT (jsonb_populate_record(NULL::` + tb.name + `, to_jsonb(x) ||
					jsonb_build_object('` + tb.clinic + `', $1::uuid) || jsonb_build_object('` + tb.key + `', ` + tb.fresh + `))).* FROM ` + tb.name + ` x`,
				`UPDATE ` + tb.name + ` SET ` + tb.clinic + ` = $1`,
			} {
				err := store.InTx(asA, func(ctx context.Context, tx *bus.Tx) error {
					_, err := tx.Exec(ctx, q, rlsClinicB)
					return err
				})
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
					t.Errorf("%s in clinic A's scope: %v, want a row-level security violation (42501)", q, err)
				}
			}
			// No principal and no system scope: nothing, in a transaction and outside one.
			var n int
			if err := store.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
				return tx.QueryRow(ctx, `SELECT count(*) FROM `+tb.name).Scan(&n)
			}); err != nil || n != 0 {
				t.Errorf("no scope: %d rows (%v), want 0", n, err)
			}
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+tb.name).Scan(&n); err != nil || n != 0 {
				t.Errorf("a bare query without a scope: %d rows (%v), want 0", n, err)
			}
		})
	}
	// attendance_current reads attendance through the view's owner, the service role: bound.
	var n int
	if err := store.Read(asA, func(ctx context.Context, tx pgx.Tx) error {
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
	_, _, store, a, b := rlsSetup(t)
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
	pool, _, store, a, _ := rlsSetup(t)
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
	if _, err := pool.Exec(context.Background(), `ANALYZE sessions, appointments, attendance, enrollments`); err != nil {
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
		})
	}
}
