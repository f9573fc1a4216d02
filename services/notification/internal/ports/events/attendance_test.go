package events_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/notification/internal/app"
	"github.com/trellis-health/trellis/services/notification/internal/notifytest"
	"github.com/trellis-health/trellis/services/notification/internal/ports/events"
)

// An attendance event wakes the dispatcher (Queued) only when it queued a message: an absence
// queues the check-in (once: the same absence again queues nothing); a present (or late,
// excused) only cancels one.
func TestAttendanceWakesTheDispatcherOnlyForAnAbsence(t *testing.T) {
	pool, system := notifytest.Pools(t)
	notifytest.Migrate(t, pool)
	store := notifytest.Store(pool)
	ctx := auth.WithSystemScope(context.Background())
	clinic, patient := bus.NewID(), bus.NewID()
	if _, err := system.Exec(ctx, `INSERT INTO recipients (patient_id, clinic_id, preferred_name, email, phone, time_zone,
			start_date, admission_updated_at, contact_updated_at)
		VALUES ($1, $2, 'Sam', '', '', 'America/Chicago', '2026-03-02', now(), now())`, patient, clinic); err != nil {
		t.Fatal(err)
	}
	var woken atomic.Int32
	h := events.TriggerHandlers{T: app.NewTriggers(postgres.New(store, fieldcrypt.Dev()), slog.New(slog.NewTextHandler(io.Discard, nil)), nil),
		Queued: func() { woken.Add(1) }}
	deliver := func(appointment string, status schedulingv1.AttendanceStatus) {
		t.Helper()
		payload, err := anypb.New(&schedulingv1.AttendanceRecorded{AppointmentId: appointment, PatientId: patient, ClinicId: clinic,
			LocalDate: "2026-03-02", StartsAt: timestamppb.New(time.Now().Add(-time.Hour)), Status: status})
		if err != nil {
			t.Fatal(err)
		}
		d := &bus.Delivery{Subject: events.SubjectAttendanceRecorded,
			Envelope: &eventsv1.Envelope{EventId: bus.NewID(), ClinicId: clinic, Payload: payload}}
		if err := store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error { return h.AttendanceRecorded(ctx, tx, d) }); err != nil {
			t.Fatal(err)
		}
	}
	for _, st := range []schedulingv1.AttendanceStatus{schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT,
		schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_LATE, schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_EXCUSED} {
		deliver(bus.NewID(), st)
	}
	if n := woken.Load(); n != 0 {
		t.Errorf("woken %d times by attendance that queues nothing", n)
	}
	absence := bus.NewID()
	deliver(absence, schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT)
	deliver(absence, schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT) // a second event of it: nothing new
	var queued int
	if err := system.QueryRow(ctx, `SELECT count(*) FROM messages WHERE patient_id = $1 AND kind = 'check_in'`, patient).Scan(&queued); err != nil {
		t.Fatal(err)
	}
	if n := woken.Load(); n != 1 || queued != 1 {
		t.Errorf("after an absence: woken %d times, %d check-ins queued; want 1 and 1", n, queued)
	}
}
