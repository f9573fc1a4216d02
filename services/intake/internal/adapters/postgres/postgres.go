// Package postgres stores intake's state in its own schema (search_path is set by the pool, so
// table names are unqualified).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/trellis-health/trellis/services/intake/internal/app"
	"github.com/trellis-health/trellis/services/intake/internal/domain"
)

// DB is a pool, a connection or a transaction.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Repository implements app.Repository.
type Repository struct{}

var _ app.Repository = Repository{}

// ClaimIdempotencyKey inserts k unless (subject, key) exists, and then returns the stored one.
// A concurrent transaction inserting the same key makes this wait for it to end (Postgres
// speculative insertion), so two racing calls never both proceed.
func (Repository) ClaimIdempotencyKey(ctx context.Context, tx pgx.Tx, k app.IdempotencyKey) (*app.IdempotencyKey, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO idempotency_keys (subject, key, request_hash, response)
		VALUES ($1, $2, $3, $4) ON CONFLICT (subject, key) DO NOTHING`, k.Subject, k.Key, k.RequestHash, k.Response)
	if err != nil {
		return nil, fmt.Errorf("claim idempotency key: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return nil, nil
	}
	prior := app.IdempotencyKey{Subject: k.Subject, Key: k.Key}
	err = tx.QueryRow(ctx, `SELECT request_hash, response FROM idempotency_keys WHERE subject = $1 AND key = $2`,
		k.Subject, k.Key).Scan(&prior.RequestHash, &prior.Response)
	if err != nil {
		return nil, fmt.Errorf("read idempotency key: %w", err)
	}
	return &prior, nil
}

// SaveIdempotencyResponse records the response of the call that claimed (subject, key).
func (Repository) SaveIdempotencyResponse(ctx context.Context, tx pgx.Tx, subject, key string, response []byte) error {
	if _, err := tx.Exec(ctx, `UPDATE idempotency_keys SET response = $3 WHERE subject = $1 AND key = $2`,
		subject, key, response); err != nil {
		return fmt.Errorf("save idempotency response: %w", err)
	}
	return nil
}

// PruneIdempotencyKeys deletes up to limit keys created before before, oldest first (by the
// index on created_at), and returns how many it deleted.
func (Repository) PruneIdempotencyKeys(ctx context.Context, tx pgx.Tx, before time.Time, limit int) (int64, error) {
	tag, err := tx.Exec(ctx, `DELETE FROM idempotency_keys WHERE (subject, key) IN (
			SELECT subject, key FROM idempotency_keys WHERE created_at < $1 ORDER BY created_at LIMIT $2)`, before, limit)
	if err != nil {
		return 0, fmt.Errorf("prune idempotency keys: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Clinic returns the clinic with id, or nil when there is none.
func (Repository) Clinic(ctx context.Context, tx pgx.Tx, id string) (*domain.Clinic, error) {
	var name, tz string
	err := tx.QueryRow(ctx, `SELECT name, time_zone FROM clinics WHERE id = $1`, id).Scan(&name, &tz)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read clinic: %w", err)
	}
	c, err := domain.NewClinic(id, name, tz)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// AddAdmission inserts the patient and their episode.
func (Repository) AddAdmission(ctx context.Context, tx pgx.Tx, a domain.Admission) error {
	if _, err := tx.Exec(ctx, `INSERT INTO patients (id, clinic_id, given_name, family_name, date_of_birth, contact_email, phone, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		a.PatientID, a.Clinic.ID, a.GivenName, a.FamilyName, a.DateOfBirth.Time(), a.ContactEmail, orNull(a.Phone), a.AdmittedAt); err != nil {
		return fmt.Errorf("insert patient: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO episodes (id, patient_id, clinic_id, program_track, start_date, status, admitted_at,
			referral_id, program, first_contact_at, level_of_care)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		a.EpisodeID, a.PatientID, a.Clinic.ID, a.ProgramTrack, a.StartDate.Time(), domain.EpisodeAdmitted, a.AdmittedAt,
		orNull(a.ReferralID), a.Program, a.FirstContactAt, orNull(a.LevelOfCare)); err != nil {
		return fmt.Errorf("insert episode: %w", err)
	}
	return nil
}

// UpsertClinics inserts the clinics or updates their name and time zone (for seeding).
func UpsertClinics(ctx context.Context, db DB, clinics []domain.Clinic) error {
	for _, c := range clinics {
		if _, err := db.Exec(ctx, `INSERT INTO clinics (id, name, time_zone) VALUES ($1, $2, $3)
			ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, time_zone = EXCLUDED.time_zone`,
			c.ID, c.Name, c.TimeZone); err != nil {
			return fmt.Errorf("upsert clinic %s: %w", c.ID, err)
		}
	}
	return nil
}
