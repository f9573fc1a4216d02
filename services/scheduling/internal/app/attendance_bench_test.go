package app_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"

	"github.com/trellis-health/trellis/services/scheduling/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/scheduling/internal/app"
	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
)

// seedAttendanceHistory gives clinic A an attendance history, through the test's pool (which
// sees every clinic): past enrollments (2,800 for a realistic history) of 36 individual
// visits each, all recorded (100,800 attendance rows), and a current group of 10 active enrollments on one
// track with 36 past group sessions, every place recorded present (360 rows). It returns
// the group's sessions, oldest first.
func seedAttendanceHistory(tb testing.TB, pool *pgxpool.Pool, past int) []string {
	tb.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	track := bus.NewID()
	for _, s := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO tracks (id, clinic_id, program_code, code, time_of_day, weekdays, start_time, end_time, capacity)
			VALUES ($2, $1, 'adult-iop', 'evening', 'evening', '{1,3,4}', '18:00', '21:00', 12)`, []any{clinicA, track}},
		{`CREATE TEMP TABLE h ON COMMIT DROP AS SELECT gen_random_uuid() AS e, gen_random_uuid() AS p, n FROM generate_series(1, $1::int) n`, []any{past}},
		{`INSERT INTO enrollments (id, patient_id, clinic_id, program_track, start_date, status, program_code, enrolled_at, ended_at, end_reason)
			SELECT e, p, $1, 'evening', date '2025-01-06' + (n % 300), 'ended', 'adult-iop', now(), now(), 'discharged' FROM h`, []any{clinicA}},
		{`CREATE TEMP TABLE v ON COMMIT DROP AS SELECT h.e, h.p, gen_random_uuid() AS s, gen_random_uuid() AS a,
			date '2025-01-06' + (h.n % 300) + k AS d FROM h, generate_series(1, 36) k`, nil},
		{`INSERT INTO sessions (id, clinic_id, service_type, local_date, start_time, end_time, starts_at, ends_at)
			SELECT s, $1, 'individual', d, '10:00', '10:50', d + time '16:00', d + time '16:50' FROM v`, []any{clinicA}},
		{`INSERT INTO appointments (id, session_id, enrollment_id, patient_id, clinic_id) SELECT a, s, e, p, $1 FROM v`, []any{clinicA}},
		{`INSERT INTO attendance (appointment_id, clinic_id, version, status, minutes_attended, scheduled_minutes, recorded_by, recorded_at)
			SELECT a, $1, 1, 'present', 50, 50, 'seed', d + time '17:00' FROM v`, []any{clinicA}},
		{`CREATE TEMP TABLE g ON COMMIT DROP AS SELECT gen_random_uuid() AS e, gen_random_uuid() AS p FROM generate_series(1, 10)`, nil},
		{`INSERT INTO enrollments (id, patient_id, clinic_id, program_track, start_date, status, program_code, track_id, enrolled_at)
			SELECT e, p, $1, 'evening', current_date - 84, 'active', 'adult-iop', $2, now() FROM g`, []any{clinicA, track}},
		{`CREATE TEMP TABLE gs ON COMMIT DROP AS SELECT gen_random_uuid() AS s, current_date - 84 + k * 2 AS d FROM generate_series(0, 35) k`, nil},
		{`INSERT INTO sessions (id, clinic_id, service_type, track_id, local_date, start_time, end_time, starts_at, ends_at)
			SELECT s, $1, 'group', $2, d, '18:00', '21:00', d + time '00:00', d + time '03:00' FROM gs`, []any{clinicA, track}},
		{`CREATE TEMP TABLE ga ON COMMIT DROP AS SELECT g.e, g.p, gs.s, gs.d, gen_random_uuid() AS a FROM g, gs`, nil},
		{`INSERT INTO appointments (id, session_id, enrollment_id, patient_id, clinic_id) SELECT a, s, e, p, $1 FROM ga`, []any{clinicA}},
		{`INSERT INTO attendance (appointment_id, clinic_id, version, status, minutes_attended, scheduled_minutes, recorded_by, recorded_at)
			SELECT a, $1, 1, 'present', 180, 180, 'seed', d + time '04:00' FROM ga`, []any{clinicA}},
	} {
		if _, err := tx.Exec(ctx, s.sql, s.args...); err != nil {
			tb.Fatalf("%s: %v", s.sql, err)
		}
	}
	rows, err := tx.Query(ctx, `SELECT id::text FROM sessions WHERE track_id = $1 ORDER BY starts_at`, track)
	if err != nil {
		tb.Fatal(err)
	}
	var sessions []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			tb.Fatal(err)
		}
		sessions = append(sessions, id)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		tb.Fatal(err)
	}
	exec(tb, pool, `ANALYZE`)
	return sessions
}

// places returns the appointments of a session, in id order.
func places(tb testing.TB, pool *pgxpool.Pool, sessionID string) []string {
	tb.Helper()
	rows, err := pool.Query(context.Background(), `SELECT id::text FROM appointments WHERE session_id = $1 ORDER BY id`, sessionID)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			tb.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}

// wireAttendance gives a the attendance and compliance repositories, as the service does.
func wireAttendance(a *app.App, store *bus.Store) *app.App {
	return a.WithAttendance(postgres.NewAttendance()).WithCompliance(postgres.NewCompliance(store), domain.RiskConfig{})
}

// BenchmarkRecordAttendance is a clinician's correction of one appointment (RecordAttendance
// with one entry and a new idempotency key, alternating present and absent so that every call
// writes a version, announces it and evaluates the enrollment's risk) in a clinic with a
// realistic history (seedAttendanceHistory: 101,160 attendance rows): the busiest API call of
// the system, end to end through Postgres.
func BenchmarkRecordAttendance(b *testing.B) {
	pool, store, a := setup(b)
	wireAttendance(a, store)
	sessions := seedAttendanceHistory(b, pool, 2800)
	appt := places(b, pool, sessions[len(sessions)-1])[0]
	clinician := &auth.Principal{Subject: "clinician-1", Roles: []string{"clinician"}, Clinics: []string{clinicA}}
	ctx := auth.WithPrincipal(context.Background(), clinician)
	statuses := []string{domain.AttendanceAbsent, domain.AttendancePresent}
	for i := 0; b.Loop(); i++ {
		out, replayed, err := a.RecordAttendance(ctx, app.RecordAttendance{
			Caller: clinician.Subject, Viewer: clinician, IdempotencyKey: fmt.Sprintf("bench-%d", i), RequestHash: []byte{byte(i)},
			Entries: []app.AttendanceEntry{{AppointmentID: appt, Status: statuses[i%2]}},
		})
		if err != nil || replayed || len(out) != 1 || out[0].GetVersion() != int32(i+2) ||
			out[0].GetStatus() == schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_UNSPECIFIED {
			b.Fatalf("call %d: %v, replayed %v, %v", i, out, replayed, err)
		}
	}
}

// BenchmarkRecordAttendanceParallel is clinicians correcting different places of one group
// session at the same time (10 callers, a place each, as BenchmarkRecordAttendance): a call
// for one appointment locks that appointment, so they do not queue behind one another for
// the session's row.
func BenchmarkRecordAttendanceParallel(b *testing.B) {
	pool, store, a := setup(b)
	wireAttendance(a, store)
	sessions := seedAttendanceHistory(b, pool, 2800)
	appts := places(b, pool, sessions[len(sessions)-1])
	// Exactly one caller per place (b.RunParallel would start a multiple of GOMAXPROCS, so
	// two callers could share a place); the b.N calls are shared among them.
	var calls atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for n, appt := range appts {
		wg.Go(func() {
			clinician := &auth.Principal{Subject: fmt.Sprintf("clinician-%d", n), Roles: []string{"clinician"}, Clinics: []string{clinicA}}
			ctx := auth.WithPrincipal(context.Background(), clinician)
			statuses := []string{domain.AttendanceAbsent, domain.AttendancePresent}
			for i := 0; calls.Add(1) <= int64(b.N); i++ {
				_, _, err := a.RecordAttendance(ctx, app.RecordAttendance{
					Caller: clinician.Subject, Viewer: clinician, IdempotencyKey: fmt.Sprintf("bench-%d", i), RequestHash: []byte{byte(i)},
					Entries: []app.AttendanceEntry{{AppointmentID: appt, Status: statuses[i%2]}},
				})
				if err != nil {
					b.Errorf("caller %d, call %d: %v", n, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
