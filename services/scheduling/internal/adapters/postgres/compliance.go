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

// Compliance is the risk_episodes and program_completions tables (00007_risk.sql) and what
// compliance reads from enrollments, appointments and attendance.
type Compliance struct{ db Reader }

// NewCompliance returns the repository; ActiveEnrollments runs in db's scoped read-only
// transactions.
func NewCompliance(db Reader) *Compliance { return &Compliance{db: db} }

var _ app.ComplianceRepo = (*Compliance)(nil)

// riskLockSpace is the first key of the transaction-scoped advisory locks that serialise risk
// evaluations of one enrollment (the second is the enrollment id's hash).
const riskLockSpace = 0x7269736b // "risk"

// LockRisk takes the enrollment's risk lock for the rest of tx: waiting for it when wait, else
// reporting false when another transaction holds it.
func (r *Compliance) LockRisk(ctx context.Context, tx *bus.Tx, enrollmentID string, wait bool) (bool, error) {
	if wait {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, riskLockSpace, enrollmentID); err != nil {
			return false, fmt.Errorf("lock risk: %w", err)
		}
		return true, nil
	}
	var got bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1, hashtext($2))`, riskLockSpace, enrollmentID).Scan(&got); err != nil {
		return false, fmt.Errorf("try lock risk: %w", err)
	}
	return got, nil
}

// Facts reads an enrollment with its program, clinic time zone and recorded attendance, in one
// round trip (the two reads are pipelined). Enrollments without a program (older than seats)
// are not found.
func (r *Compliance) Facts(ctx context.Context, tx *bus.Tx, enrollmentID string) (app.ComplianceFacts, bool, error) {
	return r.facts(ctx, tx, factsSQL, attendedVisitsSQL, false, enrollmentID)
}

// RiskFacts implements app.ComplianceRepo: Facts with only the visits the at-risk rules may
// need, in one round trip: those of the latest underWeeks program weeks complete by the date
// notBefore (and all after them), and any that started from the day before (VisitsFrom).
// A patient's whole history cost a probe of its session and of its attendance per visit.
func (r *Compliance) RiskFacts(ctx context.Context, tx *bus.Tx, enrollmentID string, notBefore time.Time, underWeeks int) (app.ComplianceFacts, bool, error) {
	return r.facts(ctx, tx, riskFactsSQL, riskVisitsSQL, true, enrollmentID, notBefore, underWeeks)
}

// facts reads an enrollment's facts with factsSQL and its visits with visitsSQL, pipelined;
// when window, factsSQL's row ends with the day the visits read start from (VisitsFrom).
func (r *Compliance) facts(ctx context.Context, tx *bus.Tx, factsSQL, visitsSQL string, window bool, args ...any) (app.ComplianceFacts, bool, error) {
	var f app.ComplianceFacts
	found := false
	b := &pgx.Batch{}
	queueFacts(b, &f, &found, factsSQL, visitsSQL, window, nil, args...)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return f, false, fmt.Errorf("read compliance facts: %w", err)
	}
	return finishFacts(f, found), found, nil
}

// LockRiskFacts implements app.ComplianceRepo: LockRisk (waiting), RiskFacts and OpenEpisode
// in one round trip, the episode read with the enrollment (three statements). The reads are
// statements after the lock's, so they see whatever the lock's previous holder committed; the
// lock is held from the round trip on, not from an earlier one (three round trips and four
// statements before: lock, facts and visits, episode).
func (r *Compliance) LockRiskFacts(ctx context.Context, tx *bus.Tx, enrollmentID string, notBefore time.Time, underWeeks int) (app.RiskState, error) {
	var st app.RiskState
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock($1, hashtext($2))`, riskLockSpace, enrollmentID)
	var ep struct {
		id, enrollment, patient, clinic *string
		reasons                         []string
		since                           *time.Time
	}
	queueFacts(b, &st.Facts, &st.Found, riskFactsEpisodeSQL, riskVisitsSQL, true,
		[]any{&ep.id, &ep.enrollment, &ep.patient, &ep.clinic, &ep.reasons, &ep.since}, enrollmentID, notBefore, underWeeks)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return app.RiskState{}, fmt.Errorf("lock risk and read compliance facts: %w", err)
	}
	st.Facts = finishFacts(st.Facts, st.Found)
	if st.Found && ep.id != nil {
		st.Open = true
		st.Episode = app.RiskEpisode{ID: *ep.id, EnrollmentID: *ep.enrollment, PatientID: *ep.patient, ClinicID: *ep.clinic,
			Reasons: ep.reasons, Since: ep.since.UTC()}
	}
	return st, nil
}

// queueFacts queues the reads of facts into f, found set when the enrollment is found; extra
// receives the facts row's columns after the enrollment's (and the window's).
func queueFacts(b *pgx.Batch, f *app.ComplianceFacts, found *bool, factsSQL, visitsSQL string, window bool, extra []any, args ...any) {
	e := &f.Enrollment
	b.Queue(factsSQL, args...).QueryRow(func(row pgx.Row) error {
		dest := []any{&e.ID, &e.PatientID, &e.ClinicID, &e.Status, &e.StartDate, &e.ProgramCode,
			&f.LengthWeeks, &f.WeeklyMinimum, &f.TimeZone}
		if window {
			dest = append(dest, &f.VisitsFrom)
		}
		err := row.Scan(append(dest, extra...)...)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		*found = err == nil
		return err
	})
	b.Queue(visitsSQL, args...).Query(func(rows pgx.Rows) error {
		var err error
		f.Visits, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.AttendedVisit, error) {
			var v domain.AttendedVisit
			err := row.Scan(&v.Date, &v.StartsAt, &v.Status, &v.Minutes)
			v.Date, v.StartsAt = v.Date.UTC(), v.StartsAt.UTC()
			return v, err
		})
		return err
	})
}

// finishFacts is f as read (none when not found), its dates in UTC.
func finishFacts(f app.ComplianceFacts, found bool) app.ComplianceFacts {
	if !found {
		return app.ComplianceFacts{}
	}
	f.Enrollment.StartDate = f.Enrollment.StartDate.UTC()
	f.VisitsFrom = f.VisitsFrom.UTC()
	return f
}

// factsSQL reads an enrollment with its program and its clinic's time zone.
const factsSQL = `SELECT e.id::text, e.patient_id::text, e.clinic_id::text, e.status, e.start_date,
		e.program_code, p.length_weeks, p.weekly_minimum_minutes, c.time_zone
		FROM enrollments e JOIN programs p ON p.code = e.program_code JOIN clinics c ON c.id = e.clinic_id
		WHERE e.id = $1`

// riskWindowSQL is the first day of the earliest program week the under-minimum rule may read
// ($3 weeks) on any date from $2 on: the program's start plus whole weeks, the latest $3
// weeks complete by $2 (complete: the week's last day is before the date) excluded. Later
// dates complete more weeks, never fewer, so the window only moves forward.
const riskWindowSQL = `e.start_date + 7 * GREATEST(0, LEAST(p.length_weeks, ($2::date - e.start_date) / 7) - $3::int)`

// riskVisitsFromSQL is the day before the window's first: riskVisitsSQL reads every visit that
// started from it on (ComplianceFacts.VisitsFrom).
const riskVisitsFromSQL = `((` + riskWindowSQL + `) - 1)`

// riskFactsSQL is factsSQL with the day the visits read start from (riskVisitsFromSQL).
const riskFactsSQL = `SELECT e.id::text, e.patient_id::text, e.clinic_id::text, e.status, e.start_date,
		e.program_code, p.length_weeks, p.weekly_minimum_minutes, c.time_zone, ` + riskVisitsFromSQL + `
		FROM enrollments e JOIN programs p ON p.code = e.program_code JOIN clinics c ON c.id = e.clinic_id
		WHERE e.id = $1`

// riskFactsEpisodeSQL is riskFactsSQL with the open risk episode, if any (at most one:
// risk_episodes_open), in the same statement.
const riskFactsEpisodeSQL = `SELECT e.id::text, e.patient_id::text, e.clinic_id::text, e.status, e.start_date,
		e.program_code, p.length_weeks, p.weekly_minimum_minutes, c.time_zone, ` + riskVisitsFromSQL + `,
		r.id::text, r.enrollment_id::text, r.patient_id::text, r.clinic_id::text, r.reasons, r.since
		FROM enrollments e JOIN programs p ON p.code = e.program_code JOIN clinics c ON c.id = e.clinic_id
		LEFT JOIN risk_episodes r ON r.enrollment_id = e.id AND r.cleared_at IS NULL
		WHERE e.id = $1`

// riskVisitsSQL is attendedVisitsSQL bounded to the window: visits on its days or later, and
// visits that started on or after the day before its first (midnight UTC), whatever their
// local date, so that every visit left out started before that (domain.AbsenceRunDecided).
const riskVisitsSQL = `SELECT s.local_date, s.starts_at, att.status, att.minutes_attended
		FROM enrollments e JOIN programs p ON p.code = e.program_code
		JOIN appointments a ON a.enrollment_id = e.id JOIN sessions s ON s.id = a.session_id
		CROSS JOIN ` + currentAttendance + `
		WHERE e.id = $1 AND a.status = 'scheduled'
			AND (s.local_date >= ` + riskWindowSQL + `
				OR s.starts_at >= ` + riskVisitsFromSQL + `::timestamp AT TIME ZONE 'UTC')
		ORDER BY s.starts_at, a.id`

// attendedVisitsSQL reads an enrollment's scheduled appointments with attendance.
const attendedVisitsSQL = `SELECT s.local_date, s.starts_at, att.status, att.minutes_attended
		FROM appointments a JOIN sessions s ON s.id = a.session_id
		CROSS JOIN ` + currentAttendance + `
		WHERE a.enrollment_id = $1 AND a.status = 'scheduled' ORDER BY s.starts_at, a.id`

// OpenEpisode returns the enrollment's open risk episode.
func (r *Compliance) OpenEpisode(ctx context.Context, tx *bus.Tx, enrollmentID string) (app.RiskEpisode, bool, error) {
	return one(tx.QueryRow(ctx, openEpisodeSQL, enrollmentID), scanEpisode, "risk episode")
}

const openEpisodeSQL = `SELECT id::text, enrollment_id::text, patient_id::text, clinic_id::text, reasons, since
		FROM risk_episodes WHERE enrollment_id = $1 AND cleared_at IS NULL`

func scanEpisode(row pgx.Row) (app.RiskEpisode, error) {
	var ep app.RiskEpisode
	err := row.Scan(&ep.ID, &ep.EnrollmentID, &ep.PatientID, &ep.ClinicID, &ep.Reasons, &ep.Since)
	ep.Since = ep.Since.UTC()
	return ep, err
}

// AddEpisode inserts an open episode.
func (r *Compliance) AddEpisode(ctx context.Context, tx *bus.Tx, ep app.RiskEpisode) error {
	if _, err := tx.Exec(ctx, `INSERT INTO risk_episodes (id, enrollment_id, patient_id, clinic_id, reasons, since)
		VALUES ($1, $2, $3, $4, $5, $6)`, ep.ID, ep.EnrollmentID, ep.PatientID, ep.ClinicID, ep.Reasons, ep.Since); err != nil {
		return fmt.Errorf("insert risk episode: %w", err)
	}
	return nil
}

// SetReasons changes an open episode's reasons.
func (r *Compliance) SetReasons(ctx context.Context, tx *bus.Tx, id string, reasons []string) error {
	if _, err := tx.Exec(ctx, `UPDATE risk_episodes SET reasons = $2 WHERE id = $1`, id, reasons); err != nil {
		return fmt.Errorf("update risk reasons: %w", err)
	}
	return nil
}

// ClearEpisode closes an episode.
func (r *Compliance) ClearEpisode(ctx context.Context, tx *bus.Tx, id string, at time.Time) error {
	if _, err := tx.Exec(ctx, `UPDATE risk_episodes SET cleared_at = $2 WHERE id = $1`, id, at); err != nil {
		return fmt.Errorf("clear risk episode: %w", err)
	}
	return nil
}

// AddCompletion records an enrollment's completion unless recorded already; it reports
// whether it inserted.
func (r *Compliance) AddCompletion(ctx context.Context, tx *bus.Tx, c app.Completion) (bool, error) {
	// The enrollment's clinic goes with the row (row-level security).
	tag, err := tx.Exec(ctx, `INSERT INTO program_completions (enrollment_id, clinic_id, completed_on, weeks, weeks_meeting_minimum, recorded_at)
		SELECT e.id, e.clinic_id, $2, $3, $4, $5 FROM enrollments e WHERE e.id = $1 ON CONFLICT (enrollment_id) DO NOTHING`,
		c.EnrollmentID, c.CompletedOn, c.Weeks, c.WeeksMeetingMinimum, c.RecordedAt)
	if err != nil {
		return false, fmt.Errorf("insert program completion: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// ActiveEnrollments lists the ids of active enrollments with a program.
func (r *Compliance) ActiveEnrollments(ctx context.Context) ([]string, error) {
	ids, err := read(ctx, r.db, textColumn, `SELECT id::text FROM enrollments WHERE status = 'active' AND program_code IS NOT NULL ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read active enrollments: %w", err)
	}
	return ids, nil
}

// History returns the enrollment's appointments (scheduled and cancelled) that started at or
// before now, with their current attendance, by start.
func (r *Compliance) History(ctx context.Context, tx *bus.Tx, enrollmentID string, now time.Time) ([]app.AttendanceTarget, error) {
	rows, err := tx.Query(ctx, historySQL, enrollmentID, now)
	if err != nil {
		return nil, fmt.Errorf("query attendance history: %w", err)
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
			&status, &minutes, &scheduled, &version, &by, &at)
		a.Start, a.End = domain.Clock(start), domain.Clock(end)
		a.StartsAt, a.EndsAt = a.StartsAt.UTC(), a.EndsAt.UTC()
		if err == nil && status != nil {
			t.Current = &domain.AttendanceRecord{AppointmentID: a.ID, Status: *status, MinutesAttended: *minutes,
				ScheduledMinutes: *scheduled, Version: *version, RecordedBy: *by, RecordedAt: at.UTC()}
		}
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("read attendance history: %w", err)
	}
	return out, nil
}

// historySQL reads an enrollment's appointments started by $2 with their current attendance.
const historySQL = `SELECT ` + appointmentColumns + `,
		att.status, att.minutes_attended, att.scheduled_minutes, att.version, att.recorded_by, att.recorded_at` + appointmentFrom + `
		LEFT JOIN ` + currentAttendance + ` ON true
		WHERE a.enrollment_id = $1 AND s.starts_at <= $2 ORDER BY s.starts_at, a.id`
