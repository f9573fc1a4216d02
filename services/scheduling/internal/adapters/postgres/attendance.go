package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/bus"

	"github.com/trellis-health/trellis/services/scheduling/internal/app"
	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
)

// Attendance is the attendance table and its attendance_current view (00006_attendance.sql).
// Every method runs in the caller's unit of work.
type Attendance struct{}

// NewAttendance returns the repository.
func NewAttendance() *Attendance { return &Attendance{} }

var _ app.AttendanceRepo = (*Attendance)(nil)

// LockSession locks a session's row (FOR UPDATE) and returns its clinic.
func (r *Attendance) LockSession(ctx context.Context, tx *bus.Tx, sessionID string) (string, bool, error) {
	return one(tx.QueryRow(ctx, `SELECT clinic_id::text FROM sessions WHERE id = $1 FOR UPDATE`, sessionID),
		func(row pgx.Row) (string, error) {
			var s string
			err := row.Scan(&s)
			return s, err
		}, "session")
}

// AppointmentSession returns an appointment's session and clinic.
func (r *Attendance) AppointmentSession(ctx context.Context, tx *bus.Tx, appointmentID string) (string, string, bool, error) {
	var sessionID, clinicID string
	_, found, err := one(tx.QueryRow(ctx, `SELECT session_id::text, clinic_id::text FROM appointments WHERE id = $1`, appointmentID),
		func(row pgx.Row) (struct{}, error) { return struct{}{}, row.Scan(&sessionID, &clinicID) }, "appointment")
	return sessionID, clinicID, found, err
}

// SessionTargets returns a session's appointments with their enrollment's program and track
// and their current attendance, in id order.
func (r *Attendance) SessionTargets(ctx context.Context, tx *bus.Tx, sessionID string) ([]app.AttendanceTarget, error) {
	rows, err := tx.Query(ctx, `SELECT `+appointmentColumns+`, COALESCE(e.program_code, ''), COALESCE(e.track_id::text, ''),
		att.status, att.minutes_attended, att.scheduled_minutes, att.version, att.recorded_by, att.recorded_at`+appointmentFrom+`
		JOIN enrollments e ON e.id = a.enrollment_id
		LEFT JOIN attendance_current att ON att.appointment_id = a.id
		WHERE a.session_id = $1 ORDER BY a.id`, sessionID)
	if err != nil {
		return nil, fmt.Errorf("query session attendance: %w", err)
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
			&t.ProgramCode, &t.EnrollmentTrackID, &status, &minutes, &scheduled, &version, &by, &at)
		a.Start, a.End = domain.Clock(start), domain.Clock(end)
		a.StartsAt, a.EndsAt = a.StartsAt.UTC(), a.EndsAt.UTC()
		if err == nil && status != nil {
			t.Current = &domain.AttendanceRecord{AppointmentID: a.ID, Status: *status, MinutesAttended: *minutes,
				ScheduledMinutes: *scheduled, Version: *version, RecordedBy: *by, RecordedAt: at.UTC()}
		}
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("read session attendance: %w", err)
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
