package events

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/bus"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
	"github.com/trellis-health/trellis/services/notification/internal/app"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
)

// Subjects of the triggers (scheduling, intake, billing, notification, dead letters).
const (
	SubjectAppointmentScheduled   = "trellis.scheduling.appointment.scheduled.v1"
	SubjectAppointmentRescheduled = "trellis.scheduling.appointment.rescheduled.v1"
	SubjectAppointmentCancelled   = "trellis.scheduling.appointment.cancelled.v1"
	SubjectEnrollmentEnded        = "trellis.scheduling.enrollment.ended.v1"
	SubjectPatientDischarged      = "trellis.intake.patient.discharged.v1"
	SubjectAttendanceRecorded     = "trellis.scheduling.attendance.recorded.v1"
	SubjectAttendanceCorrected    = "trellis.scheduling.attendance.corrected.v1"
	SubjectPatientAtRisk          = "trellis.scheduling.patient.at_risk.v1"
	SubjectStatementReady         = "trellis.billing.statement.ready.v1"
	SubjectAuthorizationNearly    = "trellis.billing.authorization.nearly_used.v1"
	SubjectAuthorizationExhausted = "trellis.billing.authorization.exhausted.v1"
	SubjectChargeStatusChanged    = "trellis.billing.charge.status_changed.v1"
	SubjectMessageFailed          = "trellis.notification.message.failed.v1"
)

// Trigger is one durable consumer of the triggers and its handler.
type Trigger struct {
	Config  bus.ConsumerConfig
	Handler bus.Handler
}

// TriggerHandlers adapts the trigger events to app.Triggers.
type TriggerHandlers struct {
	T *app.Triggers
	// Queued, when set, runs after a transaction that may have queued a message commits.
	Queued func()
}

// Triggers are the trigger consumers, one per purpose; events of one purpose (an
// appointment's scheduled, rescheduled and cancelled) share a consumer so that they are
// handled in stream order.
func (h TriggerHandlers) Triggers() []Trigger {
	c := func(name, stream string, subjects ...string) bus.ConsumerConfig {
		return bus.ConsumerConfig{Name: "notification--" + name, Stream: stream, Subjects: subjects}
	}
	return []Trigger{
		{c("appointments", "SCHEDULING", SubjectAppointmentScheduled, SubjectAppointmentRescheduled, SubjectAppointmentCancelled), h.Appointment},
		{c("enrollments", "SCHEDULING", SubjectEnrollmentEnded), h.EnrollmentEnded},
		{c("discharges", "INTAKE", SubjectPatientDischarged), h.PatientDischarged},
		{c("attendance", "SCHEDULING", SubjectAttendanceRecorded, SubjectAttendanceCorrected), h.AttendanceRecorded},
		{c("risk", "SCHEDULING", SubjectPatientAtRisk), h.PatientAtRisk},
		{c("statements", "BILLING", SubjectStatementReady), h.StatementReady},
		{c("authorizations", "BILLING", SubjectAuthorizationNearly, SubjectAuthorizationExhausted), h.AuthorizationUsage},
		{c("charges", "BILLING", SubjectChargeStatusChanged), h.ChargeStatusChanged},
		{c("failures", "NOTIFICATION", SubjectMessageFailed), h.MessageFailed},
	}
}

func (h TriggerHandlers) wake(tx *bus.Tx) {
	if h.Queued != nil {
		tx.AfterCommit(h.Queued)
	}
}

// tsOr is ts as a time, or def when it is missing.
func tsOr(ts *timestamppb.Timestamp, def time.Time) time.Time {
	if !ts.IsValid() || ts.AsTime().Unix() <= 0 {
		return def
	}
	return ts.AsTime()
}

// Appointment keeps the appointments copy and the appointment's reminders and notices in step
// with scheduling's AppointmentScheduled, AppointmentRescheduled and AppointmentCancelled.
// Malformed ids, dates or zones never become valid, so they are dead-lettered.
func (h TriggerHandlers) Appointment(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	var (
		appt         *schedulingv1.Appointment
		zone, reason string
		change       app.AppointmentChange
	)
	switch d.Subject {
	case SubjectAppointmentScheduled:
		var ev schedulingv1.AppointmentScheduled
		if err := d.Decode(&ev); err != nil {
			return err
		}
		appt, zone, change = ev.GetAppointment(), ev.GetClinicTimeZone(), app.AppointmentWasScheduled
	case SubjectAppointmentRescheduled:
		var ev schedulingv1.AppointmentRescheduled
		if err := d.Decode(&ev); err != nil {
			return err
		}
		appt, zone, change = ev.GetAppointment(), ev.GetClinicTimeZone(), app.AppointmentWasRescheduled
	case SubjectAppointmentCancelled:
		var ev schedulingv1.AppointmentCancelled
		if err := d.Decode(&ev); err != nil {
			return err
		}
		appt, reason, change = ev.GetAppointment(), ev.GetReasonCode(), app.AppointmentWasCancelled
	default:
		return bus.Permanent(fmt.Errorf("unexpected subject %s", d.Subject))
	}
	if err := d.MatchClinic(appt.GetClinicId()); err != nil {
		return err
	}
	status := domain.AppointmentScheduled
	if change == app.AppointmentWasCancelled || appt.GetStatus() == schedulingv1.AppointmentStatus_APPOINTMENT_STATUS_CANCELLED {
		status = domain.AppointmentCancelled
	}
	a, err := domain.NewAppointment(appt.GetAppointmentId(), appt.GetPatientId(), appt.GetClinicId(), appt.GetLocalDate(),
		appt.GetStartTime(), appt.GetEndTime(), tsOr(appt.GetStartsAt(), time.Time{}), zone, status, occurredAt(d))
	if err != nil {
		return bus.Permanent(err)
	}
	if change == app.AppointmentWasCancelled && reason == "" {
		reason = cancelledBy(appt.GetCancelledBy())
	}
	if err := h.T.ApplyAppointment(ctx, tx, change, a, reason); err != nil {
		return err
	}
	h.wake(tx)
	return nil
}

// cancelledBy maps the appointment's cancelled_by to a reason code, for a cancellation
// without one.
func cancelledBy(c schedulingv1.CancelledBy) string {
	switch c {
	case schedulingv1.CancelledBy_CANCELLED_BY_CLINIC:
		return domain.CancelledByClinic
	case schedulingv1.CancelledBy_CANCELLED_BY_DISCHARGED:
		return domain.CancelledByDischarged
	case schedulingv1.CancelledBy_CANCELLED_BY_PATIENT:
		return domain.CancelledByPatient
	}
	return ""
}
