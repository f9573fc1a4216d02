package app_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"

	"github.com/trellis-health/trellis/services/scheduling/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/scheduling/internal/app"
	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
)

func clinicianOf(subject string, clinics ...string) (*auth.Principal, context.Context) {
	p := &auth.Principal{Subject: subject, Roles: []string{"clinician"}, Clinics: clinics}
	return p, auth.WithPrincipal(context.Background(), p)
}

// recordOne corrects one appointment as subject, with a key of its own.
func recordOne(a *app.App, subject, key, appointmentID, status string) ([]*schedulingv1.Attendance, bool, error) {
	p, ctx := clinicianOf(subject, clinicA)
	return a.RecordAttendance(ctx, app.RecordAttendance{Caller: subject, Viewer: p, IdempotencyKey: key, RequestHash: []byte(key + status),
		Entries: []app.AttendanceEntry{{AppointmentID: appointmentID, Status: status}}})
}

// Corrections of one appointment made at once, by single calls and by a group call for its
// session, are serialised by their locks (the appointment's, the session's): every call
// succeeds, the versions follow one another, and each correction announces as previous values
// the version it replaced. Without the locks two calls read the same current version and
// the second insert of the next one fails (attendance_pkey), or announces a stale previous.
func TestConcurrentCorrectionsOfOneAppointment(t *testing.T) {
	pool, store, a := setup(t)
	wireAttendance(a, store)
	sessions := seedAttendanceHistory(t, pool, 0)
	session := sessions[len(sessions)-1]
	appts := places(t, pool, session)
	target := appts[0]
	statuses := []string{domain.AttendanceAbsent, domain.AttendancePresent, domain.AttendanceExcused}

	const singles, groups = 8, 2
	var wg sync.WaitGroup
	errs := make(chan error, singles+groups)
	start := make(chan struct{})
	for i := range singles {
		wg.Go(func() {
			<-start
			_, _, err := recordOne(a, fmt.Sprintf("clinician-%d", i), "race", target, statuses[i%len(statuses)])
			errs <- err
		})
	}
	for i := range groups {
		wg.Go(func() {
			<-start
			p, ctx := clinicianOf(fmt.Sprintf("group-%d", i), clinicA)
			entries := []app.AttendanceEntry{{AppointmentID: target, Status: statuses[(i+1)%len(statuses)]}, {AppointmentID: appts[1], Status: statuses[i%len(statuses)]}}
			_, _, err := a.RecordAttendance(ctx, app.RecordAttendance{Caller: p.Subject, Viewer: p, IdempotencyKey: "race",
				RequestHash: []byte{byte(i)}, SessionID: session, Entries: entries})
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent correction: %v", err)
		}
	}

	// The versions: 1 (seeded) then one per call that changed the status, consecutive.
	rows, err := pool.Query(context.Background(), `SELECT version, status FROM attendance WHERE appointment_id = $1 ORDER BY version`, target)
	if err != nil {
		t.Fatal(err)
	}
	status := map[int]string{}
	n := 0
	for rows.Next() {
		var v int
		var st string
		if err := rows.Scan(&v, &st); err != nil {
			t.Fatal(err)
		}
		n++
		if v != n {
			t.Fatalf("version %d after %d versions: not consecutive", v, n-1)
		}
		status[v] = st
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Fatalf("%d versions of the appointment, want the corrections", n)
	}
	// Each correction names the version it replaced.
	corrected := 0
	for _, ev := range outbox(t, pool, app.SubjectAttendanceCorrected, func() *schedulingv1.AttendanceRecorded { return &schedulingv1.AttendanceRecorded{} }) {
		if ev.GetAppointmentId() != target {
			continue
		}
		corrected++
		v := int(ev.GetVersion())
		if app.AttendanceStatus(ev.GetStatus()) != status[v] || app.AttendanceStatus(ev.GetPreviousStatus()) != status[v-1] {
			t.Errorf("version %d announced %v over %v, stored %s over %s", v, ev.GetStatus(), ev.GetPreviousStatus(), status[v], status[v-1])
		}
	}
	if corrected != n-1 {
		t.Errorf("%d AttendanceCorrected events for %d corrections", corrected, n-1)
	}
}

// A call for one appointment locks that appointment, not its session: another place of the
// session is corrected while it holds its lock, but a group call for the session waits for it.
func TestOneAppointmentLocksItsPlaceOnly(t *testing.T) {
	pool, store, a := setup(t)
	wireAttendance(a, store)
	sessions := seedAttendanceHistory(t, pool, 0)
	session := sessions[len(sessions)-1]
	appts := places(t, pool, session)

	// A transaction holding the first place's lock, as a correction of it does.
	locked, release, done := make(chan error, 1), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		_, ctx := clinicianOf("holder", clinicA)
		err := store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
			_, _, found, err := postgres.NewAttendance().LockAppointment(ctx, tx, appts[0], nil)
			if err == nil && !found {
				err = fmt.Errorf("appointment not found")
			}
			locked <- err
			<-release
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}()
	if err := <-locked; err != nil {
		t.Fatal(err)
	}
	// Another place of the session: not blocked.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, _ := clinicianOf("other", clinicA)
	if _, _, err := a.RecordAttendance(auth.WithPrincipal(ctx, p), app.RecordAttendance{Caller: "other", Viewer: p, IdempotencyKey: "k1",
		RequestHash: []byte("k1"), Entries: []app.AttendanceEntry{{AppointmentID: appts[1], Status: domain.AttendanceAbsent}}}); err != nil {
		t.Fatalf("another place while the first is locked: %v", err)
	}
	// The session: waits for the holder.
	groupDone := make(chan error, 1)
	go func() {
		_, _, err := a.RecordAttendance(auth.WithPrincipal(context.Background(), p), app.RecordAttendance{Caller: "other", Viewer: p,
			IdempotencyKey: "k2", RequestHash: []byte("k2"), SessionID: session,
			Entries: []app.AttendanceEntry{{AppointmentID: appts[0], Status: domain.AttendanceAbsent}}})
		groupDone <- err
	}()
	select {
	case err := <-groupDone:
		t.Fatalf("a group call went through while a place of its session was locked (err %v)", err)
	case <-time.After(500 * time.Millisecond):
	}
	close(release)
	<-done
	if err := <-groupDone; err != nil {
		t.Fatalf("group call after the holder ended: %v", err)
	}
}
