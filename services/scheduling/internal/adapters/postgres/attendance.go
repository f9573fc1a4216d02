package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/idempotency"

	"github.com/trellis-health/trellis/services/scheduling/internal/app"
	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
)

// Attendance is the attendance table and its attendance_current view (00006_attendance.sql).
// Every method runs in the caller's unit of work.
type Attendance struct{}

// NewAttendance returns the repository.
func NewAttendance() *Attendance { return &Attendance{} }

var _ app.AttendanceRepo = (*Attendance)(nil)

// LockSession locks a session's row (FOR UPDATE) and returns its clinic: a group call. claim,
// if not nil, is sent in the same round trip, after the lock.
func (r *Attendance) LockSession(ctx context.Context, tx *bus.Tx, sessionID string, claim *idempotency.Claim) (string, bool, error) {
	var clinicID string
	found, err := lockWith(ctx, tx, claim, lockSessionSQL, sessionID, &clinicID)
	if err != nil {
		return "", false, fmt.Errorf("lock session: %w", err)
	}
	return clinicID, found, nil
}

// lockSessionSQL: a group call's lock.
const lockSessionSQL = `SELECT clinic_id::text FROM sessions WHERE id = $1 FOR UPDATE`

// LockAppointment locks an appointment's row (FOR NO KEY UPDATE) and its session's in share
// mode (FOR KEY SHARE), in one statement, and returns its session and clinic: a call for one
// appointment. Two such calls wait for each other only when they name the same appointment;
// a group call's session lock (FOR UPDATE) waits for them and they for it. NO KEY UPDATE (not
// FOR UPDATE) so that a group call's attendance insert, whose foreign key check takes KEY
// SHARE on the appointment while it holds the session, never waits for a call holding the
// appointment and waiting for the session (that cycle would be a deadlock). claim, if not nil,
// is sent in the same round trip, after the lock.
func (r *Attendance) LockAppointment(ctx context.Context, tx *bus.Tx, appointmentID string, claim *idempotency.Claim) (string, string, bool, error) {
	var sessionID, clinicID string
	found, err := lockWith(ctx, tx, claim, lockAppointmentSQL, appointmentID, &sessionID, &clinicID)
	if err != nil {
		return "", "", false, fmt.Errorf("lock appointment: %w", err)
	}
	return sessionID, clinicID, found, nil
}

const lockAppointmentSQL = `SELECT a.session_id::text, a.clinic_id::text FROM appointments a JOIN sessions s ON s.id = a.session_id
	WHERE a.id = $1 FOR NO KEY UPDATE OF a FOR KEY SHARE OF s`

// lockWith runs a lock statement returning one row (scanned into dest; found false when
// none) with claim, if not nil, in one round trip.
func lockWith(ctx context.Context, tx *bus.Tx, claim *idempotency.Claim, sql, id string, dest ...any) (bool, error) {
	found := false
	b := &pgx.Batch{}
	b.Queue(sql, id).QueryRow(func(row pgx.Row) error {
		err := row.Scan(dest...)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		found = err == nil
		return err
	})
	if claim != nil {
		claim.Queue(b)
	}
	return found, tx.SendBatch(ctx, b).Close()
}

// SessionTargets returns a session's appointments with their enrollment's program and track
// and their current attendance, in id order.
func (r *Attendance) SessionTargets(ctx context.Context, tx *bus.Tx, sessionID string) ([]app.AttendanceTarget, error) {
	return collectTargets(tx.Query(ctx, targetsSQL+` WHERE a.session_id = $1 ORDER BY a.id`, sessionID))
}

// AppointmentTarget returns one appointment as SessionTargets does (none if it does not exist).
func (r *Attendance) AppointmentTarget(ctx context.Context, tx *bus.Tx, appointmentID string) ([]app.AttendanceTarget, error) {
	return collectTargets(tx.Query(ctx, targetsSQL+` WHERE a.id = $1`, appointmentID))
}

// targetsSQL reads appointments as attendance targets (a WHERE clause follows). The current
// version is one probe of attendance_pkey per appointment (currentAttendance).
const targetsSQL = `SELECT ` + appointmentColumns + `, COALESCE(e.program_code, ''), COALESCE(e.track_id::text, ''), e.status,
		att.status, att.minutes_attended, att.scheduled_minutes, att.version, att.recorded_by, att.recorded_at` + appointmentFrom + `
		JOIN enrollments e ON e.id = a.enrollment_id
		LEFT JOIN ` + currentAttendance + ` ON true`

// currentAttendance is the current (latest) attendance version of the query's appointment a,
// as att: the LATERAL of the attendance_current view (migration 00010), one backward probe of
// attendance_pkey. The view itself starts from appointments, so joining it to a query's own
// appointments row probed appointments_pkey a second time for every appointment (a third of
// the compliance visits' blocks); the rows are the same (the view's appointment is a, by its
// primary key, under the same row-level security policy).
const currentAttendance = `LATERAL (
			SELECT t.version, t.status, t.minutes_attended, t.scheduled_minutes, t.recorded_by, t.recorded_at
			FROM attendance t WHERE t.appointment_id = a.id ORDER BY t.version DESC LIMIT 1) att`

func collectTargets(rows pgx.Rows, err error) ([]app.AttendanceTarget, error) {
	if err != nil {
		return nil, fmt.Errorf("query attendance targets: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (app.AttendanceTarget, error) {
		var t app.AttendanceTarget
		var start, end string
		var status, by *string
		var minutes, scheduled, version *int
		var at *time.Time
		a := &t.Appointment
		err := row.Scan(&a.ID, &a.PatientID, &a.ClinicID, &a.EnrollmentID, &a.SessionID, &a.TrackID, &a.ServiceType,
			&a.Date, &start, &end, &a.StartsAt, &a.EndsAt, &a.ClinicianID, &a.RoomID, &a.Status, &a.CancelledBy, &a.RescheduleCount,
			&t.ProgramCode, &t.EnrollmentTrackID, &t.EnrollmentStatus, &status, &minutes, &scheduled, &version, &by, &at)
		a.Start, a.End = domain.Clock(start), domain.Clock(end)
		a.StartsAt, a.EndsAt = a.StartsAt.UTC(), a.EndsAt.UTC()
		if err == nil && status != nil {
			t.Current = &domain.AttendanceRecord{AppointmentID: a.ID, Status: *status, MinutesAttended: *minutes,
				ScheduledMinutes: *scheduled, Version: *version, RecordedBy: *by, RecordedAt: at.UTC()}
		}
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("read attendance targets: %w", err)
	}
	return out, nil
}

// AppendAttendance inserts new attendance versions in one round trip.
func (r *Attendance) AppendAttendance(ctx context.Context, tx *bus.Tx, recs []domain.AttendanceRecord) error {
	b := &pgx.Batch{}
	for _, a := range recs {
		b.Queue(`INSERT INTO attendance (appointment_id, clinic_id, version, status, minutes_attended, scheduled_minutes, recorded_by, recorded_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, a.AppointmentID, a.ClinicID, a.Version, a.Status, a.MinutesAttended,
			a.ScheduledMinutes, a.RecordedBy, a.RecordedAt)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("insert attendance: %w", err)
	}
	return nil
}
