package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/bus"

	"github.com/trellis-health/trellis/services/scheduling/internal/app"
	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
)

// Appointments is the sessions, appointments and appointment_history tables
// (00004_appointments.sql).
type Appointments struct{ db Reader }

// NewAppointments returns the repository; its reads outside a unit of work run in db's
// scoped read-only transactions.
func NewAppointments(db Reader) *Appointments { return &Appointments{db: db} }

var _ app.Appointments = (*Appointments)(nil)

// LockBookings takes the clinic's booking lock (a transaction-scoped advisory lock): every
// change to who is booked when at a clinic holds it, so two of them never book one clinician
// twice. It is taken after any track locks and before any appointment row is touched.
func (r *Appointments) LockBookings(ctx context.Context, tx *bus.Tx, clinicID string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('scheduling.bookings:' || $1::text, 0))`, clinicID); err != nil {
		return fmt.Errorf("lock bookings: %w", err)
	}
	return nil
}

// Setting reads what a track's schedule is planned from: the track, its clinic's time zone
// and its program's length in weeks.
func (r *Appointments) Setting(ctx context.Context, tx *bus.Tx, trackID string) (app.Setting, error) {
	var s app.Setting
	err := tx.QueryRow(ctx, `SELECT `+trackColumns+`, c.time_zone, p.length_weeks FROM tracks t
		JOIN clinics c ON c.id = t.clinic_id JOIN programs p ON p.code = t.program_code WHERE t.id = $1`, trackID).
		Scan(scanTrackInto(&s.Track, &s.TimeZone, &s.Weeks)...)
	if err != nil {
		return s, fmt.Errorf("read schedule setting: %w", err)
	}
	return s, nil
}

// ClinicTimeZone reads a clinic's IANA zone.
func (r *Appointments) ClinicTimeZone(ctx context.Context, tx *bus.Tx, clinicID string) (string, error) {
	var tz string
	if err := tx.QueryRow(ctx, `SELECT time_zone FROM clinics WHERE id = $1`, clinicID).Scan(&tz); err != nil {
		return "", fmt.Errorf("read clinic time zone: %w", err)
	}
	return tz, nil
}

// Clinicians lists a clinic's clinicians with their availability, ordered by id (the order
// the schedule tries them in).
func (r *Appointments) Clinicians(ctx context.Context, tx *bus.Tx, clinicID string) ([]domain.Clinician, error) {
	rows, err := tx.Query(ctx, `SELECT `+clinicianColumns+` FROM clinicians c WHERE c.clinic_id = $1 ORDER BY c.id`, clinicID)
	if err != nil {
		return nil, fmt.Errorf("query clinicians: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Clinician, error) { return scanClinician(row) })
	if err != nil {
		return nil, fmt.Errorf("read clinicians: %w", err)
	}
	return out, nil
}

// Busy returns the scheduled sessions of the clinic's clinicians overlapping [from, to),
// by clinician, leaving out session exceptID.
func (r *Appointments) Busy(ctx context.Context, tx *bus.Tx, clinicID string, from, to time.Time, exceptID string) (map[string][]domain.Interval, error) {
	rows, err := tx.Query(ctx, `SELECT s.clinician_id::text, s.starts_at, s.ends_at FROM sessions s
		WHERE s.clinician_id IN (SELECT id FROM clinicians WHERE clinic_id = $1) AND s.status = 'scheduled'
		  AND s.starts_at < $3 AND s.ends_at > $2 AND s.id::text <> $4`, clinicID, from, to, exceptID)
	if err != nil {
		return nil, fmt.Errorf("query bookings: %w", err)
	}
	defer rows.Close()
	out := map[string][]domain.Interval{}
	for rows.Next() {
		var id string
		var i domain.Interval
		if err := rows.Scan(&id, &i.Start, &i.End); err != nil {
			return nil, fmt.Errorf("read bookings: %w", err)
		}
		out[id] = append(out[id], domain.Interval{Start: i.Start.UTC(), End: i.End.UTC()})
	}
	return out, rows.Err()
}

// PatientBusy returns the patient's scheduled appointments overlapping [from, to), leaving out
// appointment exceptID.
func (r *Appointments) PatientBusy(ctx context.Context, tx *bus.Tx, patientID string, from, to time.Time, exceptID string) ([]domain.Interval, error) {
	rows, err := tx.Query(ctx, `SELECT s.starts_at, s.ends_at FROM appointments a JOIN sessions s ON s.id = a.session_id
		WHERE a.patient_id = $1 AND a.status = 'scheduled' AND s.starts_at < $3 AND s.ends_at > $2 AND a.id::text <> $4`,
		patientID, from, to, exceptID)
	if err != nil {
		return nil, fmt.Errorf("query patient bookings: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Interval, error) {
		var i domain.Interval
		err := row.Scan(&i.Start, &i.End)
		return domain.Interval{Start: i.Start.UTC(), End: i.End.UTC()}, err
	})
	if err != nil {
		return nil, fmt.Errorf("read patient bookings: %w", err)
	}
	return out, nil
}

// GroupSessions returns a track's group sessions in [from, to) by local date ("YYYY-MM-DD"),
// with their clinician.
func (r *Appointments) GroupSessions(ctx context.Context, tx *bus.Tx, trackID string, from, to time.Time) (map[string]app.GroupSession, error) {
	rows, err := tx.Query(ctx, `SELECT id::text, local_date, COALESCE(clinician_id::text, '') FROM sessions
		WHERE track_id = $1 AND service_type = 'group' AND local_date >= $2 AND local_date < $3`, trackID, from, to)
	if err != nil {
		return nil, fmt.Errorf("query group sessions: %w", err)
	}
	defer rows.Close()
	out := map[string]app.GroupSession{}
	for rows.Next() {
		var g app.GroupSession
		var d time.Time
		if err := rows.Scan(&g.ID, &d, &g.ClinicianID); err != nil {
			return nil, fmt.Errorf("read group sessions: %w", err)
		}
		out[d.Format(domain.DateLayout)] = g
	}
	return out, rows.Err()
}

// Insert writes new sessions and appointments in one round trip (a pgx batch).
func (r *Appointments) Insert(ctx context.Context, tx *bus.Tx, sessions []app.NewSession, appts []domain.Appointment) error {
	b := &pgx.Batch{}
	for _, s := range sessions {
		b.Queue(`INSERT INTO sessions (id, clinic_id, service_type, track_id, clinician_id, room_id, local_date,
			start_time, end_time, starts_at, ends_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			s.ID, s.ClinicID, s.ServiceType, orNull(s.TrackID), orNull(s.ClinicianID), orNull(s.RoomID), s.Date,
			string(s.Start), string(s.End), s.StartsAt, s.EndsAt)
	}
	for _, a := range appts {
		b.Queue(`INSERT INTO appointments (id, session_id, enrollment_id, patient_id, clinic_id) VALUES ($1, $2, $3, $4, $5)`,
			a.ID, a.SessionID, a.EnrollmentID, a.PatientID, a.ClinicID)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("insert appointments: %w", err)
	}
	return nil
}

const appointmentColumns = `a.id::text, a.patient_id::text, a.clinic_id::text, a.enrollment_id::text, a.session_id::text,
	COALESCE(s.track_id::text, ''), s.service_type, s.local_date, to_char(s.start_time, 'HH24:MI'), to_char(s.end_time, 'HH24:MI'),
	s.starts_at, s.ends_at, COALESCE(s.clinician_id::text, ''), COALESCE(s.room_id::text, ''), a.status,
	COALESCE(a.cancelled_by, ''), a.reschedule_count`

const appointmentFrom = ` FROM appointments a JOIN sessions s ON s.id = a.session_id`

func scanAppointment(row pgx.Row) (domain.Appointment, error) {
	var a domain.Appointment
	var start, end string
	err := row.Scan(&a.ID, &a.PatientID, &a.ClinicID, &a.EnrollmentID, &a.SessionID, &a.TrackID, &a.ServiceType,
		&a.Date, &start, &end, &a.StartsAt, &a.EndsAt, &a.ClinicianID, &a.RoomID, &a.Status, &a.CancelledBy, &a.RescheduleCount)
	a.Start, a.End = domain.Clock(start), domain.Clock(end)
	a.StartsAt, a.EndsAt = a.StartsAt.UTC(), a.EndsAt.UTC()
	return a, err
}

func collectAppointments(rows pgx.Rows, err error) ([]domain.Appointment, error) {
	if err != nil {
		return nil, fmt.Errorf("query appointments: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Appointment, error) { return scanAppointment(row) })
	if err != nil {
		return nil, fmt.Errorf("read appointments: %w", err)
	}
	return out, nil
}

// CancelFuture cancels an enrollment's scheduled appointments that start after now (and
// their sessions, unless group sessions), recording each in the history; it returns them as
// cancelled.
func (r *Appointments) CancelFuture(ctx context.Context, tx *bus.Tx, enrollmentID string, now time.Time, by, reason, actor string) ([]domain.Appointment, error) {
	rows, err := tx.Query(ctx, `UPDATE appointments a SET status = 'cancelled', cancelled_by = $3,
		cancel_reason = $4, updated_at = $2 FROM sessions s
		WHERE s.id = a.session_id AND a.enrollment_id = $1 AND a.status = 'scheduled' AND s.starts_at > $2
		RETURNING a.id::text`, enrollmentID, now, by, reason)
	if err != nil {
		return nil, fmt.Errorf("cancel appointments: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("cancel appointments: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE sessions SET status = 'cancelled' WHERE service_type <> 'group'
		AND id IN (SELECT session_id FROM appointments WHERE id = ANY($1::uuid[]))`, ids); err != nil {
		return nil, fmt.Errorf("cancel sessions: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO appointment_history (appointment_id, clinic_id, change, reason, actor, at)
		SELECT a.id, a.clinic_id, 'cancelled', $2, $3, $4 FROM appointments a WHERE a.id = ANY($1::uuid[])`, ids, reason, actor, now); err != nil {
		return nil, fmt.Errorf("insert appointment history: %w", err)
	}
	return collectAppointments(tx.Query(ctx, `SELECT `+appointmentColumns+appointmentFrom+
		` WHERE a.id = ANY($1::uuid[]) ORDER BY s.starts_at, a.id`, ids))
}

// Appointment reads one appointment in tx; lock locks its row.
func (r *Appointments) Appointment(ctx context.Context, tx *bus.Tx, id string, lock bool) (domain.Appointment, bool, error) {
	q := `SELECT ` + appointmentColumns + appointmentFrom + ` WHERE a.id = $1`
	if lock {
		q += ` FOR UPDATE OF a`
	}
	return one(tx.QueryRow(ctx, q, id), scanAppointment, "appointment")
}

// Clinician reads one clinician with their availability (without locking).
func (r *Appointments) Clinician(ctx context.Context, tx *bus.Tx, id string) (domain.Clinician, bool, error) {
	return one(tx.QueryRow(ctx, `SELECT `+clinicianColumns+` FROM clinicians c WHERE c.id = $1`, id), scanClinician, "clinician")
}

// Move sets a (one-appointment) session's new time and counts the appointment's reschedule,
// recording the previous start and the reason in the history.
func (r *Appointments) Move(ctx context.Context, tx *bus.Tx, a domain.Appointment, to domain.Visit, reason, actor string, now time.Time) error {
	tag, err := tx.Exec(ctx, `UPDATE sessions SET local_date = $2, start_time = $3, end_time = $4, starts_at = $5, ends_at = $6
		WHERE id = $1`, a.SessionID, to.Date, string(to.Start), string(to.End), to.StartsAt, to.EndsAt)
	if err != nil {
		return fmt.Errorf("move session: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return errors.New("move session: no such row")
	}
	if _, err := tx.Exec(ctx, `UPDATE appointments SET reschedule_count = reschedule_count + 1, updated_at = $2 WHERE id = $1`,
		a.ID, now); err != nil {
		return fmt.Errorf("update appointment: %w", err)
	}
	return r.history(ctx, tx, a, "rescheduled", &a.StartsAt, reason, actor, now)
}

// Cancel cancels one appointment (and its session unless a group session), with history.
func (r *Appointments) Cancel(ctx context.Context, tx *bus.Tx, a domain.Appointment, by, reason, actor string, now time.Time) error {
	if _, err := tx.Exec(ctx, `UPDATE appointments SET status = 'cancelled', cancelled_by = $2, cancel_reason = $3,
		updated_at = $4 WHERE id = $1`, a.ID, by, reason, now); err != nil {
		return fmt.Errorf("cancel appointment: %w", err)
	}
	if a.ServiceType != domain.ServiceGroup {
		if _, err := tx.Exec(ctx, `UPDATE sessions SET status = 'cancelled' WHERE id = $1`, a.SessionID); err != nil {
			return fmt.Errorf("cancel session: %w", err)
		}
	}
	return r.history(ctx, tx, a, "cancelled", nil, reason, actor, now)
}

func (r *Appointments) history(ctx context.Context, tx *bus.Tx, a domain.Appointment, change string, previous *time.Time, reason, actor string, now time.Time) error {
	if _, err := tx.Exec(ctx, `INSERT INTO appointment_history (appointment_id, clinic_id, change, previous_start, reason, actor, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, a.ID, a.ClinicID, change, previous, reason, actor, now); err != nil {
		return fmt.Errorf("insert appointment history: %w", err)
	}
	return nil
}

// ForPatient lists a patient's appointments with local dates in [from, to] (zero: open),
// in clinics, by start.
func (r *Appointments) ForPatient(ctx context.Context, patientID string, clinics []string, from, to time.Time) ([]domain.Appointment, error) {
	return read(ctx, r.db, collectAppointments, `SELECT `+appointmentColumns+appointmentFrom+`
		WHERE a.patient_id = $1 AND a.clinic_id = ANY($2::uuid[])
		  AND ($3::date IS NULL OR s.local_date >= $3) AND ($4::date IS NULL OR s.local_date <= $4)
		ORDER BY s.starts_at, a.id`, patientID, clinics, orNull(from), orNull(to))
}

// ClinicDay lists a clinic's appointments on a local date (optionally one clinician's), by start.
func (r *Appointments) ClinicDay(ctx context.Context, clinicID string, date time.Time, clinicianID string) ([]domain.Appointment, error) {
	return read(ctx, r.db, collectAppointments, `SELECT `+appointmentColumns+appointmentFrom+`
		WHERE s.clinic_id = $1 AND s.local_date = $2 AND ($3 = '' OR s.clinician_id::text = $3)
		ORDER BY s.starts_at, s.id, a.id`, clinicID, date, clinicianID)
}

// PatientClinics lists the clinics where a patient has enrollments.
func (r *Appointments) PatientClinics(ctx context.Context, patientID string) ([]string, error) {
	out, err := read(ctx, r.db, textColumn, `SELECT DISTINCT clinic_id::text FROM enrollments WHERE patient_id = $1`, patientID)
	if err != nil {
		return nil, fmt.Errorf("read patient clinics: %w", err)
	}
	return out, nil
}
