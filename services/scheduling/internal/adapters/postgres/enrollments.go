// Package postgres stores scheduling's aggregates in its own schema.
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

// Enrollments is the enrollments table with its history, the discharged episodes and the
// idempotency keys of enrollment calls (00001_init.sql, 00003_enrollment_seats.sql).
type Enrollments struct {
	idempotency.Postgres // the idempotency keys of enrollment calls
	db                   Reader
}

// NewEnrollments returns the repository; its reads outside a unit of work run in db's scoped
// read-only transactions (search_path is the scheduling schema).
func NewEnrollments(db Reader) *Enrollments { return &Enrollments{db: db} }

var _ app.Enrollments = (*Enrollments)(nil)

const enrollmentColumns = `e.id::text, e.patient_id::text, e.clinic_id::text, COALESCE(e.episode_id::text, ''),
	e.program_track, e.start_date, e.status, COALESCE(e.source_event_id::text, ''), e.created_at,
	COALESCE(e.track_id::text, ''), COALESCE(e.program_code, ''), e.waitlisted_at, e.enrolled_at, e.ended_at,
	COALESCE(e.end_reason, ''), COALESCE(e.replaces::text, ''), COALESCE(e.replaced_by::text, '')`

func scanEnrollment(row pgx.Row) (domain.Enrollment, error) {
	var e domain.Enrollment
	var waitlisted, enrolled, ended *time.Time
	err := row.Scan(&e.ID, &e.PatientID, &e.ClinicID, &e.EpisodeID, &e.ProgramTrack, &e.StartDate, &e.Status,
		&e.SourceEventID, &e.CreatedAt, &e.TrackID, &e.ProgramCode, &waitlisted, &enrolled, &ended,
		&e.EndReason, &e.Replaces, &e.ReplacedBy)
	e.WaitlistedAt, e.EnrolledAt, e.EndedAt = deref(waitlisted), deref(enrolled), deref(ended)
	return e, err
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// orNull stores an empty string or a zero time as NULL.
func orNull[T comparable](v T) any {
	var zero T
	if v == zero {
		return nil
	}
	return v
}

func collectEnrollments(rows pgx.Rows, err error) ([]domain.Enrollment, error) {
	if err != nil {
		return nil, fmt.Errorf("query enrollments: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Enrollment, error) { return scanEnrollment(row) })
	if err != nil {
		return nil, fmt.Errorf("read enrollments: %w", err)
	}
	return out, nil
}

// AdmissionSeen reports whether an enrollment came from this event or this episode, or the
// episode was already discharged.
func (r *Enrollments) AdmissionSeen(ctx context.Context, tx *bus.Tx, sourceEventID, episodeID string) (bool, error) {
	var seen bool
	err := tx.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM enrollments WHERE source_event_id = $1)
		OR EXISTS (SELECT 1 FROM enrollments WHERE episode_id = $2 AND source_event_id IS NOT NULL)
		OR EXISTS (SELECT 1 FROM discharged_episodes WHERE episode_id = $2)`, sourceEventID, episodeID).Scan(&seen)
	if err != nil {
		return false, fmt.Errorf("check admission: %w", err)
	}
	return seen, nil
}

// LockTrackByCode reads a clinic's track by code and locks its row.
func (r *Enrollments) LockTrackByCode(ctx context.Context, tx *bus.Tx, clinicID, code string) (domain.Track, bool, error) {
	return one(tx.QueryRow(ctx, `SELECT `+trackColumns+` FROM tracks t WHERE t.clinic_id = $1 AND t.code = $2 FOR UPDATE`,
		clinicID, code), scanTrack, "track")
}

// LockClinicTracks locks every track of a clinic, in id order (the order every transaction
// that locks several tracks uses, so two of them never wait for each other).
func (r *Enrollments) LockClinicTracks(ctx context.Context, tx *bus.Tx, clinicID string) ([]domain.Track, error) {
	rows, err := tx.Query(ctx, `SELECT `+trackColumns+` FROM tracks t WHERE t.clinic_id = $1 ORDER BY t.id FOR UPDATE`, clinicID)
	if err != nil {
		return nil, fmt.Errorf("lock tracks: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Track, error) { return scanTrack(row) })
	if err != nil {
		return nil, fmt.Errorf("read tracks: %w", err)
	}
	return out, nil
}

// Counts returns how many enrollments hold a seat in a track and how many wait for one.
func (r *Enrollments) Counts(ctx context.Context, tx *bus.Tx, trackID string) (taken, waiting int, err error) {
	err = tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'active'), count(*) FILTER (WHERE status = 'waitlisted')
		FROM enrollments WHERE track_id = $1 AND status IN ('active', 'waitlisted')`, trackID).Scan(&taken, &waiting)
	if err != nil {
		return 0, 0, fmt.Errorf("count seats: %w", err)
	}
	return taken, waiting, nil
}

// Add inserts e unless its admitted episode already has an enrollment (enrollments_episode_key:
// a replayed or re-emitted admission); it reports whether a row was inserted. A concurrent
// insert of the same episode waits for the other transaction and then inserts nothing. Any
// other unique key taken (enrollments_one_current, the source event) is an error: the app
// checks those under the track lock, so one here is a bug, not a duplicate to absorb.
func (r *Enrollments) Add(ctx context.Context, tx *bus.Tx, e domain.Enrollment) (bool, error) {
	tag, err := tx.Exec(ctx, `
		INSERT INTO enrollments (id, patient_id, clinic_id, episode_id, program_track, start_date, status,
			source_event_id, track_id, program_code, waitlisted_at, enrolled_at, replaces)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (episode_id) WHERE source_event_id IS NOT NULL AND episode_id IS NOT NULL DO NOTHING`,
		e.ID, e.PatientID, e.ClinicID, orNull(e.EpisodeID), e.ProgramTrack, e.StartDate, e.Status,
		orNull(e.SourceEventID), orNull(e.TrackID), orNull(e.ProgramCode), orNull(e.WaitlistedAt),
		orNull(e.EnrolledAt), orNull(e.Replaces))
	if err != nil {
		return false, fmt.Errorf("insert enrollment: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Update writes e's lifecycle fields (status, times, end reason, replaced_by).
func (r *Enrollments) Update(ctx context.Context, tx *bus.Tx, e domain.Enrollment) error {
	tag, err := tx.Exec(ctx, `UPDATE enrollments SET status = $2, waitlisted_at = $3, enrolled_at = $4,
		ended_at = $5, end_reason = $6, replaced_by = $7 WHERE id = $1`,
		e.ID, e.Status, orNull(e.WaitlistedAt), orNull(e.EnrolledAt), orNull(e.EndedAt), orNull(e.EndReason),
		orNull(e.ReplacedBy))
	if err != nil {
		return fmt.Errorf("update enrollment: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return errors.New("update enrollment: no such row")
	}
	return nil
}

// AddHistory appends one status change.
func (r *Enrollments) AddHistory(ctx context.Context, tx *bus.Tx, h domain.HistoryEntry) error {
	_, err := tx.Exec(ctx, `INSERT INTO enrollment_history (id, enrollment_id, clinic_id, from_status, to_status,
		reason, note, at, actor) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		h.ID, h.EnrollmentID, h.ClinicID, orNull(h.From), h.To, h.Reason, h.Note, h.At, h.Actor)
	if err != nil {
		return fmt.Errorf("insert enrollment history: %w", err)
	}
	return nil
}

// WaitlistPosition is e's 1-based place in its track's queue.
func (r *Enrollments) WaitlistPosition(ctx context.Context, tx *bus.Tx, e domain.Enrollment) (int, error) {
	var n int
	err := tx.QueryRow(ctx, `SELECT count(*) FROM enrollments
		WHERE track_id = $1 AND status = 'waitlisted' AND (waitlisted_at, id) <= ($2, $3)`,
		e.TrackID, e.WaitlistedAt, e.ID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("waitlist position: %w", err)
	}
	return n, nil
}

const waitlistOrder = ` ORDER BY e.waitlisted_at, e.id`

// WaitlistHead returns the first n of a track's queue.
func (r *Enrollments) WaitlistHead(ctx context.Context, tx *bus.Tx, trackID string, n int) ([]domain.Enrollment, error) {
	return collectEnrollments(tx.Query(ctx, `SELECT `+enrollmentColumns+` FROM enrollments e
		WHERE e.track_id = $1 AND e.status = 'waitlisted'`+waitlistOrder+` LIMIT $2`, trackID, n))
}

// Enrollment reads one enrollment (in tx, without locking it: seat changes hold the track lock).
func (r *Enrollments) Enrollment(ctx context.Context, tx *bus.Tx, id string) (domain.Enrollment, bool, error) {
	return one(tx.QueryRow(ctx, `SELECT `+enrollmentColumns+` FROM enrollments e WHERE e.id = $1`, id),
		scanEnrollment, "enrollment")
}

// SeatHolder returns the active enrollment whose pending switch waits on replacementID.
func (r *Enrollments) SeatHolder(ctx context.Context, tx *bus.Tx, replacementID string) (domain.Enrollment, bool, error) {
	return one(tx.QueryRow(ctx, `SELECT `+enrollmentColumns+` FROM enrollments e
		WHERE e.replaced_by = $1 AND e.status = 'active'`, replacementID), scanEnrollment, "enrollment")
}

// CurrentAt returns a patient's active and waitlisted enrollments at a clinic.
func (r *Enrollments) CurrentAt(ctx context.Context, tx *bus.Tx, patientID, clinicID string) ([]domain.Enrollment, error) {
	return collectEnrollments(tx.Query(ctx, `SELECT `+enrollmentColumns+` FROM enrollments e
		WHERE e.patient_id = $1 AND e.clinic_id = $2 AND e.status IN ('active', 'waitlisted') ORDER BY e.id`,
		patientID, clinicID))
}

// RecordDischarge remembers a discharged episode (once).
func (r *Enrollments) RecordDischarge(ctx context.Context, tx *bus.Tx, d domain.Discharge, sourceEventID string) error {
	_, err := tx.Exec(ctx, `INSERT INTO discharged_episodes (episode_id, patient_id, clinic_id, source_event_id)
		VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, d.EpisodeID, d.PatientID, d.ClinicID, sourceEventID)
	if err != nil {
		return fmt.Errorf("record discharge: %w", err)
	}
	return nil
}

// ForPatient returns the patient's enrollments in every clinic.
func (r *Enrollments) ForPatient(ctx context.Context, patientID string) ([]domain.Enrollment, error) {
	return read(ctx, r.db, collectEnrollments, `SELECT `+enrollmentColumns+` FROM enrollments e WHERE e.patient_id = $1`, patientID)
}

// TrackByID reads a track without locking it.
func (r *Enrollments) TrackByID(ctx context.Context, id string) (t domain.Track, found bool, err error) {
	err = r.db.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
		t, found, err = one(tx.QueryRow(ctx, `SELECT `+trackColumns+` FROM tracks t WHERE t.id = $1`, id), scanTrack, "track")
		return err
	})
	return t, found, err
}

// Waitlist returns a track's queue in order.
func (r *Enrollments) Waitlist(ctx context.Context, trackID string) ([]domain.Enrollment, error) {
	return read(ctx, r.db, collectEnrollments, `SELECT `+enrollmentColumns+` FROM enrollments e
		WHERE e.track_id = $1 AND e.status = 'waitlisted'`+waitlistOrder, trackID)
}

// History returns an enrollment's status changes, oldest first.
func (r *Enrollments) History(ctx context.Context, enrollmentID string) ([]domain.HistoryEntry, error) {
	return read(ctx, r.db, func(rows pgx.Rows, err error) ([]domain.HistoryEntry, error) {
		if err != nil {
			return nil, fmt.Errorf("query enrollment history: %w", err)
		}
		out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.HistoryEntry, error) {
			var h domain.HistoryEntry
			err := row.Scan(&h.ID, &h.EnrollmentID, &h.ClinicID, &h.From, &h.To, &h.Reason, &h.Note, &h.At, &h.Actor)
			h.At = h.At.UTC()
			return h, err
		})
		if err != nil {
			return nil, fmt.Errorf("read enrollment history: %w", err)
		}
		return out, nil
	}, `SELECT id::text, enrollment_id::text, clinic_id::text, COALESCE(from_status, ''),
		to_status, reason, note, at, actor FROM enrollment_history WHERE enrollment_id = $1 ORDER BY at, id`, enrollmentID)
}
