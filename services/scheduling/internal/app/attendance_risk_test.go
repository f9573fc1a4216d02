package app_test

import (
	"context"
	"errors"
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
