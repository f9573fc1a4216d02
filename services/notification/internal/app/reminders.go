package app

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/money"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
)

// AppointmentChange is what scheduling said about an appointment.
type AppointmentChange int

// The appointment events.
const (
	AppointmentWasScheduled AppointmentChange = iota
	AppointmentWasRescheduled
	AppointmentWasCancelled
)

// ApplyAppointment keeps the appointments copy and the appointment's messages in step with
// scheduling's event, in tx. An event older than the copy (by occurred_at) changes nothing:
// the newer event already did what is right. cancelReason is the AppointmentCancelled
// reason_code.
//
//   - scheduled: queue one reminder per clinic offset whose due time is still ahead;
//   - rescheduled: cancel the reminders for the old time ("rescheduled"), queue those for
//     the new one, and queue the notice that it moved;
//   - cancelled: cancel its reminders and notices ("cancelled"); when the clinic cancelled
//     a future appointment, queue the notice. A cancellation for a discharge sends nothing.
func (t *Triggers) ApplyAppointment(ctx context.Context, tx pgx.Tx, change AppointmentChange, a domain.Appointment, cancelReason string) error {
	if change != AppointmentWasCancelled && a.TimeZone == "" {
		// Scheduled and rescheduled carry the clinic's zone; fall back to the patient's.
		zone, err := t.repo.RecipientZone(ctx, tx, a.PatientID)
		if err != nil {
			return err
		}
		a.TimeZone = zone
	}
	applied, err := t.repo.UpsertAppointment(ctx, tx, a)
	if err != nil {
		return fmt.Errorf("store appointment: %w", err)
	}
	if !applied {
		t.log.InfoContext(ctx, "appointment event older than the copy; ignored", "appointment_id", a.ID)
		return nil
	}
	if a.TimeZone == "" { // a cancellation: the copy knows the zone
		if stored, ok, err := t.repo.Appointment(ctx, tx, a.ID); err != nil {
			return err
		} else if ok {
			a.TimeZone = stored.TimeZone
		}
	}
	now := t.now()
	switch change {
	case AppointmentWasCancelled:
		n, err := t.repo.CancelQueued(ctx, tx, a.PatientID, a.ID,
			[]string{domain.KindReminder, domain.KindAppointmentMoved}, domain.CancelCancelled)
		if err != nil {
			return fmt.Errorf("cancel reminders: %w", err)
		}
		t.log.InfoContext(ctx, "appointment cancelled; reminders cancelled", "appointment_id", a.ID,
			"cancelled", n, "reason_code", cancelReason)
		if cancelReason != domain.CancelledByClinic || !a.StartsAt.After(now) {
			return nil
		}
		expires := a.StartsAt
		m, err := t.patientMessage(ctx, tx, a.PatientID, a.ClinicID, domain.KindAppointmentCancelled, a.ID,
			domain.CancelledKey(a.ID), a.When(), now, &expires, "")
		if err != nil {
			return err
		}
		_, err = t.queue(ctx, tx, m)
		return err
	default:
		if a.Status != domain.AppointmentScheduled {
			return nil
		}
		if err := t.syncReminders(ctx, tx, a, now); err != nil {
			return err
		}
		if change != AppointmentWasRescheduled || !a.StartsAt.After(now) {
			return nil
		}
		key := domain.MovedKey(a.ID, a.StartsAt)
		if _, err := t.repo.CancelQueuedExcept(ctx, tx, a.ID, []string{domain.KindAppointmentMoved},
			[]string{key}, domain.CancelSuperseded); err != nil {
			return fmt.Errorf("cancel earlier notices: %w", err)
		}
		expires := a.StartsAt
		m, err := t.patientMessage(ctx, tx, a.PatientID, a.ClinicID, domain.KindAppointmentMoved, a.ID, key,
			a.When(), now, &expires, "")
		if err != nil {
			return err
		}
		_, err = t.queue(ctx, tx, m)
		return err
	}
}

// syncReminders makes the appointment's queued reminders those of its current start: others
// (an earlier start) are cancelled as "rescheduled", missing ones queued.
func (t *Triggers) syncReminders(ctx context.Context, tx pgx.Tx, a domain.Appointment, now time.Time) error {
	offsets, err := t.repo.ReminderOffsets(ctx, tx, a.ClinicID)
	if err != nil {
		return fmt.Errorf("read reminder offsets: %w", err)
	}
	rs := a.Reminders(offsets, now)
	keep := make([]string, len(rs))
	for i, r := range rs {
		keep[i] = r.DedupeKey
	}
	n, err := t.repo.CancelQueuedExcept(ctx, tx, a.ID, []string{domain.KindReminder}, keep, domain.CancelRescheduled)
	if err != nil {
		return fmt.Errorf("cancel old reminders: %w", err)
	}
	if n > 0 {
		t.log.InfoContext(ctx, "reminders for an earlier time cancelled", "appointment_id", a.ID, "cancelled", n)
	}
	if len(rs) == 0 {
		return nil
	}
	channel, err := t.patientChannel(ctx, tx, a.PatientID)
	if err != nil {
		return err
	}
	for _, r := range rs {
		expires := a.StartsAt
		m, err := t.patientMessage(ctx, tx, a.PatientID, a.ClinicID, domain.KindReminder, a.ID, r.DedupeKey,
			r.Payload, r.DueAt, &expires, channel)
		if err != nil {
			return err
		}
		if _, err := t.queue(ctx, tx, m); err != nil {
			return err
		}
	}
	return nil
}

// Discharged cancels every queued message to the patient ("discharged"), in tx: nothing is
// sent to a discharged patient. Staff alerts (which name no patient) are left alone.
func (t *Triggers) Discharged(ctx context.Context, tx pgx.Tx, patientID string) error {
	// Every kind: an empty (not nil) list, which the repository reads as "all".
	n, err := t.repo.CancelQueued(ctx, tx, patientID, "", []string{}, domain.CancelDischarged)
	if err != nil {
		return fmt.Errorf("cancel messages: %w", err)
	}
	t.log.InfoContext(ctx, "patient discharged; queued messages cancelled", "patient_id", patientID, "cancelled", n)
	return nil
}

// Attendance is what notification reads of AttendanceRecorded.
type Attendance struct {
	AppointmentID, PatientID, ClinicID string
	LocalDate                          string
	StartsAt                           time.Time
	Absent                             bool
}

// ApplyAttendance queues the check-in after an absence (10:00 clinic-local the next morning)
// and cancels a still-queued one when a correction says the patient attended after all.
// The clinic's zone comes from the appointments copy, else the patient's, else UTC. queued
// is whether a message was queued (the dispatcher has something new to claim).
func (t *Triggers) ApplyAttendance(ctx context.Context, tx pgx.Tx, at Attendance) (queued bool, err error) {
	if !at.Absent {
		n, err := t.repo.CancelQueued(ctx, tx, at.PatientID, at.AppointmentID, []string{domain.KindCheckIn}, domain.CancelAttendance)
		if err != nil {
			return false, fmt.Errorf("cancel check-in: %w", err)
		}
		if n > 0 {
			t.log.InfoContext(ctx, "attendance corrected; check-in cancelled", "appointment_id", at.AppointmentID)
		}
		return false, nil
	}
	zone := ""
	if ap, ok, err := t.repo.Appointment(ctx, tx, at.AppointmentID); err != nil {
		return false, err
	} else if ok {
		zone = ap.TimeZone
	}
	if zone == "" {
		if zone, err = t.repo.RecipientZone(ctx, tx, at.PatientID); err != nil {
			return false, err
		}
	}
	loc := domain.LocationOrUTC(zone)
	payload := map[string]string{"date": domain.SessionDay(at.LocalDate, at.StartsAt, loc)}
	m, err := t.patientMessage(ctx, tx, at.PatientID, at.ClinicID, domain.KindCheckIn, at.AppointmentID,
		domain.CheckInKey(at.AppointmentID), payload, domain.CheckInDue(at.LocalDate, at.StartsAt, loc), nil, "")
	if err != nil {
		return false, err
	}
	return t.queue(ctx, tx, m)
}

// Statement is what notification reads of StatementReady.
type Statement struct {
	StatementID, PatientID, ClinicID string
	BalanceCents                     int64
	DueDate                          string // "YYYY-MM-DD"
}

// StatementReady queues the email that a statement is ready: the balance ("$1,234.56") and
// the due date ("March 30, 2026"), nothing about services.
func (t *Triggers) StatementReady(ctx context.Context, tx pgx.Tx, s Statement) error {
	payload := map[string]string{"balance": money.Cents(s.BalanceCents).String(), "due_date": domain.FormatDueDate(s.DueDate)}
	m, err := t.patientMessage(ctx, tx, s.PatientID, s.ClinicID, domain.KindStatement, s.StatementID,
		domain.StatementKey(s.StatementID), payload, t.now(), nil, domain.ChannelEmail)
	if err != nil {
		return err
	}
	_, err = t.queue(ctx, tx, m)
	return err
}
