// Package projection keeps the dashboard's read model: one handler per stream applies that
// stream's events to the tables of schema dashboard. Every write is an upsert keyed by the
// entity's id that only a newer fact (the event's time or the record's version) may change, so
// a redelivery, a replay or an event overtaking another from a different stream converges to
// the same rows. The consumers' inbox (pkg/bus) already skips an event seen before.
package projection

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/bus"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
)

// Subjects the dashboard projects, per stream.
var Subjects = map[string][]string{
	"INTAKE": {
		"trellis.intake.referral.received.v1",
		"trellis.intake.referral.status_changed.v1",
		"trellis.intake.patient.admitted.v1",
		"trellis.intake.patient.discharged.v1",
	},
	"SCHEDULING": {
		"trellis.scheduling.clinic.configured.v1",
		"trellis.scheduling.program.configured.v1",
		"trellis.scheduling.track.configured.v1",
		"trellis.scheduling.enrollment.created.v1",
		"trellis.scheduling.enrollment.waitlisted.v1",
		"trellis.scheduling.enrollment.ended.v1",
		"trellis.scheduling.attendance.recorded.v1",
		"trellis.scheduling.attendance.corrected.v1",
		"trellis.scheduling.patient.at_risk.v1",
		"trellis.scheduling.patient.risk_cleared.v1",
		"trellis.scheduling.program.completed.v1",
		"trellis.scheduling.appointment.scheduled.v1",
		"trellis.scheduling.appointment.rescheduled.v1",
		"trellis.scheduling.appointment.cancelled.v1",
	},
	"BILLING": {
		"trellis.billing.charge.created.v1",
		"trellis.billing.charge.status_changed.v1",
		"trellis.billing.claim.submitted.v1",
		"trellis.billing.claim.adjudicated.v1",
		"trellis.billing.balance.written_off.v1",
	},
	// Notification's events only count on the event-health page for now.
	"NOTIFICATION": {"trellis.notification.>"},
}

// Streams in the order the pages list them.
var Streams = []string{"INTAKE", "SCHEDULING", "BILLING", "NOTIFICATION"}

// ConsumerName is the durable consumer of stream: "dashboard--intake".
func ConsumerName(stream string) string { return "dashboard--" + strings.ToLower(stream) }

// Consumer is the configuration of stream's durable consumer. The stream's position (the
// newest occurred_at applied, for /health) is written once per transaction, after the
// handlers of its messages (AfterApply): one statement per group instead of one per event,
// and the stream's single stream_positions row is locked only from there to the commit, so
// two replicas' groups of one stream do not queue behind each other's whole group.
func Consumer(stream string) bus.ConsumerConfig {
	return bus.ConsumerConfig{Name: ConsumerName(stream), Stream: stream, Subjects: Subjects[stream],
		AfterApply: func(ctx context.Context, tx *bus.Tx, applied []*bus.Delivery) error {
			return advance(ctx, tx, stream, applied)
		}}
}

// advance moves stream's position to the newest occurred_at of applied (never back).
func advance(ctx context.Context, tx *bus.Tx, stream string, applied []*bus.Delivery) error {
	var newest time.Time
	for _, d := range applied {
		if at := d.Envelope.GetOccurredAt().AsTime(); at.After(newest) {
			newest = at
		}
	}
	if newest.IsZero() {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO stream_positions (stream, last_event_at) VALUES ($1, $2)
		ON CONFLICT (stream) DO UPDATE SET last_event_at = greatest(stream_positions.last_event_at, excluded.last_event_at)`,
		stream, newest)
	return err
}

// Handler applies one stream's events. The stream's position is the consumer's (Consumer).
func Handler(stream string) bus.Handler {
	return func(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
		at := d.Envelope.GetOccurredAt().AsTime()
		if d.Envelope.GetOccurredAt() == nil {
			return bus.Permanent(errors.New("envelope has no occurred_at"))
		}
		var err error
		switch stream {
		case "INTAKE":
			err = intake(ctx, tx, d, at)
		case "SCHEDULING":
			err = scheduling(ctx, tx, d, at)
		case "BILLING":
			err = billing(ctx, tx, d, at)
		}
		return err
	}
}

// decode unpacks the payload and checks the ids that must be uuids, and the clinic's match.
func decode(d *bus.Delivery, m proto.Message, clinicID func() string, ids ...func() string) error {
	if err := d.Decode(m); err != nil {
		return err
	}
	for _, id := range append(ids, clinicID) {
		if _, err := uuid.Parse(id()); err != nil {
			return bus.Permanent(fmt.Errorf("%s: an id is not a uuid", d.Subject))
		}
	}
	return d.MatchClinic(clinicID())
}

// optID is a uuid or NULL when empty; another value is a permanent error.
func optID(s string) (any, error) {
	if s == "" {
		return nil, nil
	}
	if _, err := uuid.Parse(s); err != nil {
		return nil, bus.Permanent(errors.New("an optional id is not a uuid"))
	}
	return s, nil
}

// date is a "YYYY-MM-DD" string for a date column, or NULL when empty.
func date(s string) (any, error) {
	if s == "" {
		return nil, nil
	}
	if _, err := time.Parse(time.DateOnly, s); err != nil {
		return nil, bus.Permanent(fmt.Errorf("date %q is not YYYY-MM-DD", s))
	}
	return s, nil
}

func ts(t *timestamppb.Timestamp) any {
	if t == nil {
		return nil
	}
	return t.AsTime()
}

// seeClinic makes sure the clinic has a row: events can name a clinic before its configuration
// arrives from scheduling's stream.
func seeClinic(ctx context.Context, tx *bus.Tx, clinicID string) error {
	_, err := tx.Exec(ctx, `INSERT INTO clinics (clinic_id) VALUES ($1) ON CONFLICT DO NOTHING`, clinicID)
	return err
}

// lower strips an enum's prefix: REFERRAL_STATUS_NEW -> "new".
func lower(name, prefix string) string { return strings.ToLower(strings.TrimPrefix(name, prefix)) }

func intake(ctx context.Context, tx *bus.Tx, d *bus.Delivery, at time.Time) error {
	switch d.Subject {
	case "trellis.intake.referral.received.v1":
		var ev intakev1.ReferralReceived
		if err := decode(d, &ev, ev.GetClinicId, ev.GetReferralId); err != nil {
			return err
		}
		if err := seeClinic(ctx, tx, ev.GetClinicId()); err != nil {
			return err
		}
		// A status change may have arrived first: it keeps its status, this adds first contact.
		_, err := tx.Exec(ctx, `INSERT INTO referrals (referral_id, clinic_id, status, first_contact_at, status_at)
			VALUES ($1, $2, 'new', $3, $4)
			ON CONFLICT (referral_id) DO UPDATE SET first_contact_at = excluded.first_contact_at`,
			ev.GetReferralId(), ev.GetClinicId(), ts(ev.GetFirstContactAt()), at)
		return err
	case "trellis.intake.referral.status_changed.v1":
		var ev intakev1.ReferralStatusChanged
		if err := decode(d, &ev, ev.GetClinicId, ev.GetReferralId); err != nil {
			return err
		}
		if err := seeClinic(ctx, tx, ev.GetClinicId()); err != nil {
			return err
		}
		changed := at
		if ev.GetChangedAt() != nil {
			changed = ev.GetChangedAt().AsTime()
		}
		_, err := tx.Exec(ctx, `INSERT INTO referrals (referral_id, clinic_id, status, status_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (referral_id) DO UPDATE SET status = excluded.status, status_at = excluded.status_at
			WHERE excluded.status_at >= referrals.status_at`,
			ev.GetReferralId(), ev.GetClinicId(), lower(ev.GetTo().String(), "REFERRAL_STATUS_"), changed)
		return err
	case "trellis.intake.patient.admitted.v1":
		var ev intakev1.PatientAdmitted
		if err := decode(d, &ev, ev.GetClinicId, ev.GetEpisodeId, ev.GetPatientId); err != nil {
			return err
		}
		start, err := date(ev.GetStartDate())
		if err != nil {
			return err
		}
		if err := seeClinic(ctx, tx, ev.GetClinicId()); err != nil {
			return err
		}
		admitted := at
		if ev.GetAdmittedAt() != nil {
			admitted = ev.GetAdmittedAt().AsTime()
		}
		_, err = tx.Exec(ctx, `INSERT INTO admissions (episode_id, clinic_id, patient_id, first_contact_at, admitted_at, start_date)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (episode_id) DO UPDATE SET first_contact_at = excluded.first_contact_at,
				admitted_at = excluded.admitted_at, start_date = excluded.start_date`,
			ev.GetEpisodeId(), ev.GetClinicId(), ev.GetPatientId(), ts(ev.GetFirstContactAt()), admitted, start)
		return err
	case "trellis.intake.patient.discharged.v1":
		var ev intakev1.PatientDischarged
		if err := decode(d, &ev, ev.GetClinicId, ev.GetEpisodeId, ev.GetPatientId); err != nil {
			return err
		}
		start, err := date(ev.GetStartDate())
		if err != nil {
			return err
		}
		end, err := date(ev.GetDischargeDate())
		if err != nil || end == nil {
			return bus.Permanent(errors.New("discharge without a valid discharge_date"))
		}
		if err := seeClinic(ctx, tx, ev.GetClinicId()); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO discharges (episode_id, clinic_id, patient_id, reason, start_date, discharge_date)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (episode_id) DO UPDATE SET reason = excluded.reason, start_date = excluded.start_date,
				discharge_date = excluded.discharge_date`,
			ev.GetEpisodeId(), ev.GetClinicId(), ev.GetPatientId(), lower(ev.GetReason().String(), "DISCHARGE_REASON_"), start, end)
		return err
	}
	return nil
}

func scheduling(ctx context.Context, tx *bus.Tx, d *bus.Delivery, at time.Time) error {
	switch d.Subject {
	case "trellis.scheduling.clinic.configured.v1":
		var ev schedulingv1.ClinicConfigured
		c := ev.GetClinic
		if err := decode(d, &ev, func() string { return c().GetClinicId() }); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO clinics (clinic_id, name, time_zone, updated_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (clinic_id) DO UPDATE SET name = excluded.name, time_zone = excluded.time_zone, updated_at = excluded.updated_at
			WHERE excluded.updated_at >= clinics.updated_at`,
			c().GetClinicId(), c().GetName(), c().GetTimeZone(), at)
		return err
	case "trellis.scheduling.program.configured.v1":
		// Programs are network-wide: the envelope names no clinic.
		var ev schedulingv1.ProgramConfigured
		if err := d.Decode(&ev); err != nil {
			return err
		}
		p := ev.GetProgram()
		if p.GetProgramCode() == "" || p.GetWeeklyMinimumMinutes() < 0 || p.GetLengthWeeks() < 0 {
			return bus.Permanent(errors.New("program without a code, or with a negative minimum or length"))
		}
		_, err := tx.Exec(ctx, `INSERT INTO programs (program_code, weekly_minimum_minutes, length_weeks, updated_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (program_code) DO UPDATE SET weekly_minimum_minutes = excluded.weekly_minimum_minutes,
				length_weeks = excluded.length_weeks, updated_at = excluded.updated_at
			WHERE excluded.updated_at >= programs.updated_at`,
			p.GetProgramCode(), p.GetWeeklyMinimumMinutes(), p.GetLengthWeeks(), at)
		return err
	case "trellis.scheduling.track.configured.v1":
		var ev schedulingv1.TrackConfigured
		t := ev.GetTrack
		if err := decode(d, &ev, func() string { return t().GetClinicId() }, func() string { return t().GetTrackId() }); err != nil {
			return err
		}
		if err := seeClinic(ctx, tx, t().GetClinicId()); err != nil {
			return err
		}
		active := t().Active == nil || t().GetActive()
		_, err := tx.Exec(ctx, `INSERT INTO tracks (track_id, clinic_id, track_code, program_code, capacity, active, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (track_id) DO UPDATE SET track_code = excluded.track_code, program_code = excluded.program_code,
				capacity = excluded.capacity, active = excluded.active, updated_at = excluded.updated_at
			WHERE excluded.updated_at >= tracks.updated_at`,
			t().GetTrackId(), t().GetClinicId(), t().GetTrackCode(), t().GetProgramCode(), t().GetCapacity(), active, at)
		return err
	case "trellis.scheduling.enrollment.created.v1":
		var ev schedulingv1.EnrollmentCreated
		if err := decode(d, &ev, ev.GetClinicId, ev.GetEnrollmentId, ev.GetPatientId); err != nil {
			return err
		}
		return enrollment(ctx, tx, ev.GetEnrollmentId(), ev.GetClinicId(), ev.GetTrackId(), ev.GetPatientId(), "active", ev.GetStartDate(), nil, "", at)
	case "trellis.scheduling.enrollment.waitlisted.v1":
		var ev schedulingv1.PatientWaitlisted
		if err := decode(d, &ev, ev.GetClinicId, ev.GetEnrollmentId, ev.GetPatientId); err != nil {
			return err
		}
		return enrollment(ctx, tx, ev.GetEnrollmentId(), ev.GetClinicId(), ev.GetTrackId(), ev.GetPatientId(), "waitlisted", "", nil, "", at)
	case "trellis.scheduling.enrollment.ended.v1":
		var ev schedulingv1.EnrollmentEnded
		if err := decode(d, &ev, ev.GetClinicId, ev.GetEnrollmentId, ev.GetPatientId); err != nil {
			return err
		}
		ended := at
		if ev.GetEndedAt() != nil {
			ended = ev.GetEndedAt().AsTime()
		}
		return enrollment(ctx, tx, ev.GetEnrollmentId(), ev.GetClinicId(), ev.GetTrackId(), ev.GetPatientId(), "ended", "", ended, ev.GetReason(), at)
	case "trellis.scheduling.attendance.recorded.v1", "trellis.scheduling.attendance.corrected.v1":
		var ev schedulingv1.AttendanceRecorded
		if err := decode(d, &ev, ev.GetClinicId, ev.GetAppointmentId); err != nil {
			return err
		}
		enr, err := optID(ev.GetEnrollmentId())
		if err != nil {
			return err
		}
		track, err := optID(ev.GetTrackId())
		if err != nil {
			return err
		}
		day, err := date(ev.GetLocalDate())
		if err != nil || day == nil {
			return bus.Permanent(errors.New("attendance without a valid local_date"))
		}
		if err := seeClinic(ctx, tx, ev.GetClinicId()); err != nil {
			return err
		}
		// The latest version wins; an older one arriving late changes nothing.
		_, err = tx.Exec(ctx, `INSERT INTO attendance (appointment_id, clinic_id, enrollment_id, track_id, status,
				minutes_attended, scheduled_minutes, local_date, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (appointment_id) DO UPDATE SET status = excluded.status, minutes_attended = excluded.minutes_attended,
				scheduled_minutes = excluded.scheduled_minutes, local_date = excluded.local_date, version = excluded.version,
				enrollment_id = excluded.enrollment_id, track_id = excluded.track_id
			WHERE excluded.version > attendance.version`,
			ev.GetAppointmentId(), ev.GetClinicId(), enr, track, lower(ev.GetStatus().String(), "ATTENDANCE_STATUS_"),
			ev.GetMinutesAttended(), ev.GetScheduledMinutes(), day, max(ev.GetVersion(), 1))
		return err
	case "trellis.scheduling.patient.at_risk.v1":
		var ev schedulingv1.PatientAtRisk
		if err := decode(d, &ev, ev.GetClinicId, ev.GetEnrollmentId, ev.GetPatientId); err != nil {
			return err
		}
		if ev.GetSince() == nil {
			return bus.Permanent(errors.New("at risk without since"))
		}
		reasons := make([]string, 0, len(ev.GetReasons()))
		for _, r := range ev.GetReasons() {
			reasons = append(reasons, lower(r.String(), "RISK_REASON_"))
		}
		if err := seeClinic(ctx, tx, ev.GetClinicId()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO risks (enrollment_id, since, clinic_id, patient_id, reasons) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (enrollment_id, since) DO UPDATE SET reasons = excluded.reasons`,
			ev.GetEnrollmentId(), ev.GetSince().AsTime(), ev.GetClinicId(), ev.GetPatientId(), reasons)
		return err
	case "trellis.scheduling.patient.risk_cleared.v1":
		var ev schedulingv1.PatientRiskCleared
		if err := decode(d, &ev, ev.GetClinicId, ev.GetEnrollmentId, ev.GetPatientId); err != nil {
			return err
		}
		if ev.GetAtRiskSince() == nil {
			return bus.Permanent(errors.New("risk cleared without at_risk_since"))
		}
		cleared := at
		if ev.GetClearedAt() != nil {
			cleared = ev.GetClearedAt().AsTime()
		}
		_, err := tx.Exec(ctx, `INSERT INTO risks (enrollment_id, since, clinic_id, patient_id, cleared_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (enrollment_id, since) DO UPDATE SET cleared_at = excluded.cleared_at`,
			ev.GetEnrollmentId(), ev.GetAtRiskSince().AsTime(), ev.GetClinicId(), ev.GetPatientId(), cleared)
		return err
	case "trellis.scheduling.appointment.scheduled.v1":
		var ev schedulingv1.AppointmentScheduled
		if err := d.Decode(&ev); err != nil {
			return err
		}
		return appointment(ctx, tx, d, ev.GetAppointment(), "scheduled", ev.GetClinicTimeZone(), at)
	case "trellis.scheduling.appointment.rescheduled.v1":
		var ev schedulingv1.AppointmentRescheduled
		if err := d.Decode(&ev); err != nil {
			return err
		}
		return appointment(ctx, tx, d, ev.GetAppointment(), "scheduled", ev.GetClinicTimeZone(), at)
	case "trellis.scheduling.appointment.cancelled.v1":
		var ev schedulingv1.AppointmentCancelled
		if err := d.Decode(&ev); err != nil {
			return err
		}
		return appointment(ctx, tx, d, ev.GetAppointment(), "cancelled", "", at)
	case "trellis.scheduling.program.completed.v1":
		var ev schedulingv1.ProgramCompleted
		if err := decode(d, &ev, ev.GetClinicId, ev.GetEnrollmentId); err != nil {
			return err
		}
		day, err := date(ev.GetCompletedOn())
		if err != nil || day == nil {
			return bus.Permanent(errors.New("completion without a valid completed_on"))
		}
		_, err = tx.Exec(ctx, `INSERT INTO completions (enrollment_id, clinic_id, program_code, completed_on, weeks, weeks_meeting_minimum)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (enrollment_id) DO NOTHING`,
			ev.GetEnrollmentId(), ev.GetClinicId(), ev.GetProgramCode(), day, ev.GetWeeks(), ev.GetWeeksMeetingMinimum())
		return err
	}
	return nil
}

// hhmm matches a clinic-local "HH:MM" time.
func hhmm(s string) bool {
	_, err := time.Parse("15:04", s)
	return err == nil && len(s) == 5
}

// appointment upserts an appointment from any of its events (the message holds the whole
// appointment): the newer event's date, times and session win; cancelled is final. The event's
// clinic time zone fills in the clinic's when ClinicConfigured has not given one (yet).
func appointment(ctx context.Context, tx *bus.Tx, d *bus.Delivery, a *schedulingv1.Appointment, status, zone string, at time.Time) error {
	if _, err := uuid.Parse(a.GetAppointmentId()); err != nil {
		return bus.Permanent(fmt.Errorf("%s: an id is not a uuid", d.Subject))
	}
	if _, err := uuid.Parse(a.GetClinicId()); err != nil {
		return bus.Permanent(fmt.Errorf("%s: an id is not a uuid", d.Subject))
	}
	if err := d.MatchClinic(a.GetClinicId()); err != nil {
		return err
	}
	session, err := optID(a.GetSessionId())
	if err != nil {
		return err
	}
	day, err := date(a.GetLocalDate())
	if err != nil || day == nil {
		return bus.Permanent(errors.New("appointment without a valid local_date"))
	}
	if !hhmm(a.GetStartTime()) || !hhmm(a.GetEndTime()) {
		return bus.Permanent(errors.New("appointment without valid HH:MM start and end times"))
	}
	if err := seeClinic(ctx, tx, a.GetClinicId()); err != nil {
		return err
	}
	if _, lerr := time.LoadLocation(zone); zone != "" && lerr == nil {
		if _, err := tx.Exec(ctx, `UPDATE clinics SET time_zone = $2 WHERE clinic_id = $1 AND time_zone = ''`, a.GetClinicId(), zone); err != nil {
			return err
		}
	}
	_, err = tx.Exec(ctx, `INSERT INTO appointments (appointment_id, clinic_id, session_id, service_type, local_date,
			start_time, end_time, status, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (appointment_id) DO UPDATE SET
			session_id   = CASE WHEN excluded.updated_at >= appointments.updated_at THEN excluded.session_id ELSE appointments.session_id END,
			service_type = CASE WHEN excluded.updated_at >= appointments.updated_at THEN excluded.service_type ELSE appointments.service_type END,
			local_date   = CASE WHEN excluded.updated_at >= appointments.updated_at THEN excluded.local_date ELSE appointments.local_date END,
			start_time   = CASE WHEN excluded.updated_at >= appointments.updated_at THEN excluded.start_time ELSE appointments.start_time END,
			end_time     = CASE WHEN excluded.updated_at >= appointments.updated_at THEN excluded.end_time ELSE appointments.end_time END,
			status       = CASE WHEN appointments.status = 'cancelled' OR excluded.status = 'cancelled' THEN 'cancelled' ELSE 'scheduled' END,
			updated_at   = greatest(appointments.updated_at, excluded.updated_at)`,
		a.GetAppointmentId(), a.GetClinicId(), session, lower(a.GetServiceType().String(), "SERVICE_TYPE_"), day,
		a.GetStartTime(), a.GetEndTime(), status, at)
	return err
}

// enrollment upserts an enrollment's state. Ended is final; otherwise the newer event wins.
func enrollment(ctx context.Context, tx *bus.Tx, id, clinicID, trackID, patientID, status, startDate string, endedAt any, reason string, at time.Time) error {
	track, err := optID(trackID)
	if err != nil {
		return err
	}
	start, err := date(startDate)
	if err != nil {
		return err
	}
	if err := seeClinic(ctx, tx, clinicID); err != nil {
		return err
	}
	// seated_at: when it took its seat (EnrollmentCreated); the earliest such time is kept.
	var seated any
	if status == "active" {
		seated = at
	}
	_, err = tx.Exec(ctx, `INSERT INTO enrollments (enrollment_id, clinic_id, track_id, patient_id, status, start_date, ended_at, end_reason, updated_at, seated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (enrollment_id) DO UPDATE SET
			seated_at  = least(enrollments.seated_at, excluded.seated_at),
			track_id   = coalesce(enrollments.track_id, excluded.track_id),
			start_date = coalesce(excluded.start_date, enrollments.start_date),
			ended_at   = coalesce(excluded.ended_at, enrollments.ended_at),
			end_reason = CASE WHEN excluded.end_reason <> '' THEN excluded.end_reason ELSE enrollments.end_reason END,
			status     = CASE
				WHEN enrollments.status = 'ended' OR excluded.status = 'ended' THEN 'ended'
				WHEN excluded.updated_at >= enrollments.updated_at THEN excluded.status
				ELSE enrollments.status END,
			updated_at = greatest(enrollments.updated_at, excluded.updated_at)`,
		id, clinicID, track, patientID, status, start, endedAt, reason, at, seated)
	return err
}

func billing(ctx context.Context, tx *bus.Tx, d *bus.Delivery, at time.Time) error {
	switch d.Subject {
	case "trellis.billing.charge.created.v1":
		var ev billingv1.ChargeCreated
		c := ev.GetCharge
		if err := decode(d, &ev, func() string { return c().GetClinicId() }, func() string { return c().GetChargeId() }); err != nil {
			return err
		}
		day, err := date(c().GetServiceDate())
		if err != nil {
			return err
		}
		if err := seeClinic(ctx, tx, c().GetClinicId()); err != nil {
			return err
		}
		// The amount, payer and date are the charge's facts; its status only moves forward in time.
		_, err = tx.Exec(ctx, `INSERT INTO charges (charge_id, clinic_id, payer_id, amount_cents, service_date, status, hold_reason, status_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (charge_id) DO UPDATE SET payer_id = excluded.payer_id, amount_cents = excluded.amount_cents,
				service_date = excluded.service_date,
				status      = CASE WHEN excluded.status_at >= charges.status_at THEN excluded.status ELSE charges.status END,
				hold_reason = CASE WHEN excluded.status_at >= charges.status_at THEN excluded.hold_reason ELSE charges.hold_reason END,
				status_at   = greatest(charges.status_at, excluded.status_at)`,
			c().GetChargeId(), c().GetClinicId(), c().GetPayerId(), c().GetAmountCents(), day,
			lower(c().GetStatus().String(), "CHARGE_STATUS_"), c().GetHoldReason(), at)
		return err
	case "trellis.billing.charge.status_changed.v1":
		var ev billingv1.ChargeStatusChanged
		if err := decode(d, &ev, ev.GetClinicId, ev.GetChargeId); err != nil {
			return err
		}
		changed := at
		if ev.GetChangedAt() != nil {
			changed = ev.GetChangedAt().AsTime()
		}
		status := lower(ev.GetTo().String(), "CHARGE_STATUS_")
		hold := ""
		if status == "held" {
			hold = ev.GetReason()
		}
		if err := seeClinic(ctx, tx, ev.GetClinicId()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO charges (charge_id, clinic_id, status, hold_reason, status_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (charge_id) DO UPDATE SET status = excluded.status, hold_reason = excluded.hold_reason, status_at = excluded.status_at
			WHERE excluded.status_at >= charges.status_at`,
			ev.GetChargeId(), ev.GetClinicId(), status, hold, changed)
		return err
	case "trellis.billing.claim.submitted.v1":
		var ev billingv1.ClaimSubmitted
		if err := decode(d, &ev, ev.GetClinicId, ev.GetClaimId); err != nil {
			return err
		}
		submitted := at
		if ev.GetSubmittedAt() != nil {
			submitted = ev.GetSubmittedAt().AsTime()
		}
		if err := seeClinic(ctx, tx, ev.GetClinicId()); err != nil {
			return err
		}
		correction := ev.GetFrequencyCode() == "7" || ev.GetFrequencyCode() == "8" || ev.GetCorrectedClaimId() != ""
		_, err := tx.Exec(ctx, `INSERT INTO claims (claim_id, clinic_id, payer_id, total_cents, status, submitted_at, status_at, correction)
			VALUES ($1, $2, $3, $4, 'submitted', $5, $6, $7)
			ON CONFLICT (claim_id) DO UPDATE SET payer_id = excluded.payer_id, total_cents = excluded.total_cents,
				submitted_at = excluded.submitted_at, correction = excluded.correction`,
			ev.GetClaimId(), ev.GetClinicId(), ev.GetPayerId(), ev.GetTotalCents(), submitted, at, correction)
		if err != nil || ev.GetCorrectedClaimId() == "" {
			return err
		}
		if _, perr := uuid.Parse(ev.GetCorrectedClaimId()); perr != nil {
			return bus.Permanent(fmt.Errorf("corrected_claim_id is not a UUID"))
		}
		// The claim it corrects is marked, whichever of the two events arrives first (a row
		// created here waits for its own ClaimSubmitted: no submission time, oldest status).
		_, err = tx.Exec(ctx, `INSERT INTO claims (claim_id, clinic_id, status, status_at, corrected)
			VALUES ($1, $2, 'submitted', '-infinity', true)
			ON CONFLICT (claim_id) DO UPDATE SET corrected = true`, ev.GetCorrectedClaimId(), ev.GetClinicId())
		return err
	case "trellis.billing.balance.written_off.v1":
		var ev billingv1.BalanceWrittenOff
		if err := decode(d, &ev, ev.GetClinicId, ev.GetWriteOffId, ev.GetWorkItemId); err != nil {
			return err
		}
		claim, err := optID(ev.GetClaimId())
		if err != nil {
			return err
		}
		if ev.GetAmountCents() <= 0 || ev.GetReason() == "" {
			return bus.Permanent(errors.New("write-off without a positive amount or a reason"))
		}
		if err := seeClinic(ctx, tx, ev.GetClinicId()); err != nil {
			return err
		}
		writtenOff := at
		if ev.GetWrittenOffAt() != nil {
			writtenOff = ev.GetWrittenOffAt().AsTime()
		}
		// A write-off never changes: the first copy stays, a redelivery or replay adds nothing.
		_, err = tx.Exec(ctx, `INSERT INTO write_offs (write_off_id, work_item_id, queue, claim_id, clinic_id, payer_id,
				amount_cents, reason, written_off_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (write_off_id) DO NOTHING`,
			ev.GetWriteOffId(), ev.GetWorkItemId(), ev.GetQueue(), claim, ev.GetClinicId(), ev.GetPayerId(),
			ev.GetAmountCents(), ev.GetReason(), writtenOff)
		return err
	case "trellis.billing.claim.adjudicated.v1":
		var ev billingv1.ClaimAdjudicated
		if err := decode(d, &ev, ev.GetClinicId, ev.GetClaimId); err != nil {
			return err
		}
		if err := seeClinic(ctx, tx, ev.GetClinicId()); err != nil {
			return err
		}
		status := lower(ev.GetStatus().String(), "CLAIM_STATUS_")
		denied := status == "denied" || status == "partially_paid" || status == "reversed"
		// The newest adjudication sets the amounts and status; ever_denied only ever turns on, so
		// it is the same whatever order the adjudications are applied in.
		_, err := tx.Exec(ctx, `INSERT INTO claims (claim_id, clinic_id, payer_id, total_cents, paid_cents, contractual_cents,
				status, status_at, adjudicated_at, ever_denied)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)
			ON CONFLICT (claim_id) DO UPDATE SET
				paid_cents        = CASE WHEN excluded.status_at >= claims.status_at THEN excluded.paid_cents ELSE claims.paid_cents END,
				contractual_cents = CASE WHEN excluded.status_at >= claims.status_at THEN excluded.contractual_cents ELSE claims.contractual_cents END,
				status            = CASE WHEN excluded.status_at >= claims.status_at THEN excluded.status ELSE claims.status END,
				status_at         = greatest(claims.status_at, excluded.status_at),
				adjudicated_at    = greatest(claims.adjudicated_at, excluded.adjudicated_at),
				ever_denied       = claims.ever_denied OR excluded.ever_denied`,
			ev.GetClaimId(), ev.GetClinicId(), ev.GetPayerId(), ev.GetChargedCents(), ev.GetPaidCents(), ev.GetContractualCents(),
			status, at, denied)
		return err
	}
	return nil
}
