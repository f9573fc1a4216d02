package app_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"

	"github.com/trellis-health/trellis/services/scheduling/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
)

// pastVisit gives a new enrollment of clinic A, with status, an individual visit three days
// ago; it returns the enrollment and the appointment.
func pastVisit(t *testing.T, pool *pgxpool.Pool, status string) (enrollment, appointment string) {
	t.Helper()
	enrollment, appointment, session, p := bus.NewID(), bus.NewID(), bus.NewID(), bus.NewID()
	track := addTrack(t, pool, clinicA, "t"+enrollment[len(enrollment)-8:], 12)
	exec(t, pool, `INSERT INTO enrollments (id, patient_id, clinic_id, program_track, start_date, status, program_code, track_id,
			enrolled_at, ended_at, end_reason)
		VALUES ($1, $2, $3, 'evening', current_date - 30, $4, 'adult-iop', CASE WHEN $4 = 'active' THEN $5::uuid END, now(),
			CASE WHEN $4 = 'ended' THEN now() END, CASE WHEN $4 = 'ended' THEN 'discharged' END)`,
		enrollment, p, clinicA, status, track)
	exec(t, pool, `INSERT INTO sessions (id, clinic_id, service_type, local_date, start_time, end_time, starts_at, ends_at)
		VALUES ($1, $2, 'individual', current_date - 3, '10:00', '10:50', (current_date - 3) + time '16:00', (current_date - 3) + time '16:50')`,
		session, clinicA)
	exec(t, pool, `INSERT INTO appointments (id, session_id, enrollment_id, patient_id, clinic_id) VALUES ($1, $2, $3, $4, $5)`,
		appointment, session, enrollment, p, clinicA)
	return enrollment, appointment
}

// holdRiskLock takes the enrollment's risk lock in a transaction of its own and returns its
// release.
func holdRiskLock(t *testing.T, store *bus.Store, enrollment string) (release func()) {
	t.Helper()
	locked, done := make(chan error, 1), make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		errRelease := errors.New("release")
		err := store.InTx(auth.WithSystemScope(context.Background()), func(ctx context.Context, tx *bus.Tx) error {
			if _, err := postgres.NewCompliance(store).LockRisk(ctx, tx, enrollment, true); err != nil {
				return err
			}
			locked <- nil
			<-done
			return errRelease
		})
		if !errors.Is(err, errRelease) {
			locked <- err
		}
	}()
	if err := <-locked; err != nil {
		t.Fatal(err)
	}
	return func() { close(done); <-finished }
}

// A correction of a visit of an enrollment that is not active (a discharged patient's) takes
// no risk lock, since risk is evaluated for active enrollments only: it does not wait for
// another transaction holding the enrollment's risk lock. An active enrollment's correction
// still waits for it.
func TestCorrectionOfAnEndedEnrollmentTakesNoRiskLock(t *testing.T) {
	pool, store, a := setup(t)
	wireAttendance(a, store)
	for _, tt := range []struct {
		status string
		waits  bool
	}{
		{domain.StatusEnded, false},
		{domain.StatusActive, true},
	} {
		t.Run(tt.status, func(t *testing.T) {
			enrollment, appt := pastVisit(t, pool, tt.status)
			release := holdRiskLock(t, store, enrollment)
			done := make(chan error, 1)
			go func() {
				_, _, err := recordOne(a, "clinician-1", "risk-lock-"+tt.status, appt, domain.AttendanceAbsent)
				done <- err
			}()
			select {
			case err := <-done:
				release()
				if err != nil {
					t.Fatal(err)
				}
				if tt.waits {
					t.Fatal("the correction did not wait for the enrollment's risk lock")
				}
			case <-time.After(2 * time.Second):
				release()
				err := <-done
				if err != nil {
					t.Fatal(err)
				}
				if !tt.waits {
					t.Fatal("the correction waited for the risk lock of an enrollment that is not active")
				}
			}
		})
	}
}

// Risk after a correction is evaluated on the recent visits when they decide it, and on the
// whole history when the run of absences reaches back past them: a patient absent twice five
// and six weeks ago and excused at every visit since is at risk for consecutive absences
// (excused visits neither count nor break the run), though the recent weeks hold no absence.
func TestRiskSeesAbsencesBeforeTheRecentWeeks(t *testing.T) {
	pool, store, a := setup(t)
	wireAttendance(a, store)
	enrollment, p := bus.NewID(), bus.NewID()
	track := addTrack(t, pool, clinicA, "evening", 12)
	exec(t, pool, `INSERT INTO enrollments (id, patient_id, clinic_id, program_track, start_date, status, program_code, track_id, enrolled_at)
		VALUES ($1, $2, $3, 'evening', current_date - 56, 'active', 'adult-iop', $4, now())`, enrollment, p, clinicA, track)
	// A visit a week for eight weeks (w 0..7, the last one three days ago): present, then absent
	// in weeks 1 and 2, excused since.
	exec(t, pool, `CREATE TABLE seed_visits AS SELECT w, gen_random_uuid() AS s, gen_random_uuid() AS a,
		current_date - 52 + 7 * w AS d FROM generate_series(0, 7) w`)
	exec(t, pool, `INSERT INTO sessions (id, clinic_id, service_type, local_date, start_time, end_time, starts_at, ends_at)
		SELECT s, $1, 'individual', d, '10:00', '10:50', d + time '16:00', d + time '16:50' FROM seed_visits`, clinicA)
	exec(t, pool, `INSERT INTO appointments (id, session_id, enrollment_id, patient_id, clinic_id) SELECT a, s, $1, $2, $3 FROM seed_visits`,
		enrollment, p, clinicA)
	exec(t, pool, `INSERT INTO attendance (appointment_id, clinic_id, version, status, minutes_attended, scheduled_minutes, recorded_by, recorded_at)
		SELECT a, $1, 1, CASE WHEN w = 0 THEN 'present' WHEN w IN (1, 2) THEN 'absent' ELSE 'excused' END,
			CASE WHEN w = 0 THEN 50 ELSE 0 END, 50, 'seed', d + time '17:00' FROM seed_visits WHERE w < 7`, clinicA)
	var last string
	if err := pool.QueryRow(context.Background(), `SELECT a::text FROM seed_visits WHERE w = 7`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if _, _, err := recordOne(a, "clinician-1", "excused-again", last, domain.AttendanceExcused); err != nil {
		t.Fatal(err)
	}
	var reasons []string
	if err := pool.QueryRow(context.Background(), `SELECT reasons FROM risk_episodes WHERE enrollment_id = $1 AND cleared_at IS NULL`,
		enrollment).Scan(&reasons); err != nil {
		t.Fatalf("open risk episode: %v", err)
	}
	if !slices.Contains(reasons, domain.RiskConsecutiveAbsences) {
		t.Errorf("risk reasons %v, want %s among them", reasons, domain.RiskConsecutiveAbsences)
	}
	// Present at the last visit: the run is broken, whatever came before.
	if _, _, err := recordOne(a, "clinician-1", "present-at-last", last, domain.AttendancePresent); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(context.Background(), `SELECT reasons FROM risk_episodes WHERE enrollment_id = $1 AND cleared_at IS NULL`,
		enrollment).Scan(&reasons); err == nil && slices.Contains(reasons, domain.RiskConsecutiveAbsences) {
		t.Errorf("risk reasons %v after a visit attended", reasons)
	}
}
