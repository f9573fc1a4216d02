package events

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/trellis-health/trellis/pkg/bus"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
	"github.com/trellis-health/trellis/services/notification/internal/app"
)

// AttendanceRecorded (recorded or corrected): an absence queues the check-in; any other
// status (present, late, left early, excused) cancels one still queued.
func (h TriggerHandlers) AttendanceRecorded(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	var ev schedulingv1.AttendanceRecorded
	if err := d.Decode(&ev); err != nil {
		return err
	}
	if err := d.MatchClinic(ev.GetClinicId()); err != nil {
		return err
	}
	for _, id := range []string{ev.GetAppointmentId(), ev.GetPatientId(), ev.GetClinicId()} {
		if _, err := uuid.Parse(id); err != nil {
			return bus.Permanent(errors.New("attendance recorded: appointment_id, patient_id or clinic_id is not a uuid"))
		}
	}
	if ev.GetStatus() == schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_UNSPECIFIED {
		return bus.Permanent(errors.New("attendance recorded: status is unspecified"))
	}
	queued, err := h.T.ApplyAttendance(ctx, tx, app.Attendance{AppointmentID: ev.GetAppointmentId(), PatientID: ev.GetPatientId(),
		ClinicID: ev.GetClinicId(), LocalDate: ev.GetLocalDate(), StartsAt: tsOr(ev.GetStartsAt(), time.Now()),
		Absent: ev.GetStatus() == schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT})
	if err != nil {
		return err
	}
	// The dispatcher is woken only when a message was queued (every attendance event woke it:
	// a claim per event for nothing).
	if queued {
		h.wake(tx)
	}
	return nil
}
