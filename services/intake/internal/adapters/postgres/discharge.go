package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/services/intake/internal/domain"
)

// LockEpisodeForDischarge reads the episode FOR UPDATE; nil when there is none.
func (Repository) LockEpisodeForDischarge(ctx context.Context, tx pgx.Tx, id string) (*domain.CareEpisode, error) {
	var e domain.CareEpisode
	var start time.Time
	var discharge *time.Time
	var reason, note, by *string
	var dischargedAt *time.Time
	err := tx.QueryRow(ctx, `SELECT id::text, patient_id::text, clinic_id::text, COALESCE(referral_id::text, ''),
			COALESCE(program, ''), program_track, start_date, status, admitted_at,
			discharge_reason, discharge_date, discharged_at, discharge_note, discharged_by
		FROM episodes WHERE id = $1 FOR UPDATE`, id).Scan(
		&e.ID, &e.PatientID, &e.ClinicID, &e.ReferralID, &e.Program, &e.ProgramTrack, &start, &e.Status, &e.AdmittedAt,
		&reason, &discharge, &dischargedAt, &note, &by)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read episode: %w", err)
	}
	y, m, d := start.Date()
	e.StartDate = domain.NewDate(y, m, d)
	e.AdmittedAt = e.AdmittedAt.UTC()
	if discharge != nil {
		y, m, d := discharge.Date()
		e.DischargeDate = domain.NewDate(y, m, d)
	}
	if dischargedAt != nil {
		e.DischargedAt = dischargedAt.UTC()
	}
	e.DischargeReason, e.DischargeNote, e.DischargedBy = dischargeText(reason), dischargeText(note), dischargeText(by)
	return &e, nil
}

// SaveDischarge marks the episode discharged; it must still be admitted.
func (Repository) SaveDischarge(ctx context.Context, tx pgx.Tx, e domain.CareEpisode) error {
	var note *string
	if e.DischargeNote != "" {
		note = &e.DischargeNote
	}
	tag, err := tx.Exec(ctx, `UPDATE episodes SET status = $2, discharge_reason = $3, discharge_date = $4,
			discharged_at = $5, discharge_note = $6, discharged_by = $7
		WHERE id = $1 AND status = 'admitted'`,
		e.ID, e.Status, e.DischargeReason, e.DischargeDate.Time(), e.DischargedAt, note, e.DischargedBy)
	if err != nil {
		return fmt.Errorf("save discharge: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("save discharge: episode %s is not admitted", e.ID)
	}
	return nil
}

func dischargeText(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
