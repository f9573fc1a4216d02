package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/services/notification/internal/app"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
)

var (
	_ app.TriggerRepository = (*Repository)(nil)
	_ app.FirstWeekReader   = (*Repository)(nil)
)

// CancelQueuedExcept implements app.TriggerRepository.
func (r *Repository) CancelQueuedExcept(ctx context.Context, tx pgx.Tx, subjectRef string, kinds, keep []string, reason string) (int, error) {
	if keep == nil {
		keep = []string{}
	}
	tag, err := tx.Exec(ctx, `
		UPDATE messages SET status = 'cancelled', status_reason = $4
		WHERE status = 'queued' AND subject_ref = $1 AND kind = ANY($2) AND NOT (dedupe_key = ANY($3))`,
		subjectRef, kinds, keep, reason)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// UpsertAppointment implements app.TriggerRepository. The event's occurred_at orders the
// facts: a stored copy is replaced by an event that happened at the same time or later (ties:
// the one handled last wins), never by an older one.
func (r *Repository) UpsertAppointment(ctx context.Context, tx pgx.Tx, a domain.Appointment) (bool, error) {
	var stored bool
	err := tx.QueryRow(ctx, `
		INSERT INTO appointments (appointment_id, patient_id, clinic_id, local_date, start_time, end_time,
			starts_at, time_zone, status, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (appointment_id) DO UPDATE SET
			patient_id = EXCLUDED.patient_id, clinic_id = EXCLUDED.clinic_id,
			local_date = EXCLUDED.local_date, start_time = EXCLUDED.start_time, end_time = EXCLUDED.end_time,
			starts_at = EXCLUDED.starts_at,
			time_zone = COALESCE(NULLIF(EXCLUDED.time_zone, ''), appointments.time_zone),
			status = EXCLUDED.status, updated_at = EXCLUDED.updated_at
		WHERE appointments.updated_at <= EXCLUDED.updated_at
		RETURNING true`,
		a.ID, a.PatientID, a.ClinicID, a.LocalDate, a.StartTime, a.EndTime, a.StartsAt, a.TimeZone, a.Status, a.At).Scan(&stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return stored, err
}

// Appointment implements app.TriggerRepository.
func (r *Repository) Appointment(ctx context.Context, tx pgx.Tx, id string) (domain.Appointment, bool, error) {
	var a domain.Appointment
	err := tx.QueryRow(ctx, `
		SELECT appointment_id::text, patient_id::text, clinic_id::text, to_char(local_date, 'YYYY-MM-DD'),
			start_time, end_time, starts_at, time_zone, status, updated_at
		FROM appointments WHERE appointment_id = $1`, id).
		Scan(&a.ID, &a.PatientID, &a.ClinicID, &a.LocalDate, &a.StartTime, &a.EndTime, &a.StartsAt, &a.TimeZone, &a.Status, &a.At)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Appointment{}, false, nil
	}
	return a, err == nil, err
}

// ReminderOffsets implements app.TriggerRepository.
func (r *Repository) ReminderOffsets(ctx context.Context, tx pgx.Tx, clinicID string) ([]int, error) {
	var offsets []int32
	err := tx.QueryRow(ctx, `SELECT reminder_offsets_minutes FROM clinic_settings WHERE clinic_id = $1`, clinicID).Scan(&offsets)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.DefaultReminderOffsets, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]int, len(offsets))
	for i, o := range offsets {
		out[i] = int(o)
	}
	return out, nil
}

// PatientChannels implements app.TriggerRepository.
func (r *Repository) PatientChannels(ctx context.Context, tx pgx.Tx, patientID string) ([]string, error) {
	var chs []string
	err := tx.QueryRow(ctx, `SELECT channels FROM preferences WHERE patient_id = $1 AND NOT revoked`, patientID).Scan(&chs)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return chs, err
}

// RecipientZone implements app.TriggerRepository.
func (r *Repository) RecipientZone(ctx context.Context, tx pgx.Tx, patientID string) (string, error) {
	var zone string
	err := tx.QueryRow(ctx, `SELECT time_zone FROM recipients WHERE patient_id = $1`, patientID).Scan(&zone)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return zone, err
}

// FirstWeek implements app.FirstWeekReader: the scheduled appointments whose clinic-local date
// falls in the 7 days from the admission's start date.
func (r *Repository) FirstWeek(ctx context.Context, tx pgx.Tx, patientID string) ([]domain.Appointment, error) {
	rows, err := tx.Query(ctx, `
		SELECT a.appointment_id::text, a.patient_id::text, a.clinic_id::text, to_char(a.local_date, 'YYYY-MM-DD'),
			a.start_time, a.end_time, a.starts_at, a.time_zone, a.status, a.updated_at
		FROM appointments a JOIN recipients r ON r.patient_id = a.patient_id
		WHERE a.patient_id = $1 AND a.status = 'scheduled' AND r.start_date IS NOT NULL
		  AND a.local_date >= r.start_date AND a.local_date < r.start_date + 7
		ORDER BY a.starts_at, a.appointment_id`, patientID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Appointment, error) {
		var a domain.Appointment
		err := row.Scan(&a.ID, &a.PatientID, &a.ClinicID, &a.LocalDate, &a.StartTime, &a.EndTime, &a.StartsAt,
			&a.TimeZone, &a.Status, &a.At)
		return a, err
	})
}
