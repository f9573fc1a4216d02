package main

import (
	"context"
	"testing"
	"time"

	"github.com/trellis-health/trellis/pkg/bus"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
)

// The stream's position is the newest occurred_at of the events applied, whatever their
// order of arrival and however they were grouped; a redelivery does not move it.
func TestStreamPositionIsTheNewestEventApplied(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	base := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Hour)
	const n = 400
	newest := base
	for i := range n {
		at := base.Add(time.Duration(i) * time.Second)
		if i == n/2 {
			at = base.Add(2 * n * time.Second) // one event from the future in the middle
		}
		if at.After(newest) {
			newest = at
		}
		env := e.publish("trellis.scheduling.attendance.recorded.v1", clinicA, at, &schedulingv1.AttendanceRecorded{AppointmentId: bus.NewID(),
			PatientId: bus.NewID(), ClinicId: clinicA, LocalDate: day(at), Status: schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT,
			ScheduledMinutes: 180, Version: 1})
		if i == n/2 {
			e.redeliver("trellis.scheduling.attendance.recorded.v1", env)
		}
	}
	e.settle()
	var got time.Time
	if err := e.Pool.QueryRow(ctx, `SELECT last_event_at FROM stream_positions WHERE stream = 'SCHEDULING'`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if !got.Equal(newest) {
		t.Errorf("position %v, want %v", got, newest)
	}
}
