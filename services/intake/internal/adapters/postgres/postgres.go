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

	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/idempotency"
	"github.com/trellis-health/trellis/services/intake/internal/app"
	"github.com/trellis-health/trellis/services/intake/internal/domain"
)

// DB is a pool, a connection or a transaction.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Repository implements app.Repository; its idempotency keys are idempotency.Postgres. Crypt
// seals and opens the encrypted fields (dates of birth, phone numbers, e-mail addresses,
// member ids; see fields.go) and hashes those looked up.
type Repository struct {
	idempotency.Postgres
	Crypt *fieldcrypt.Keyring
}

var _ app.Repository = Repository{}

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
func (r Repository) AddAdmission(ctx context.Context, tx pgx.Tx, a domain.Admission) error {
	var enc, hashes [3]any
	for i, f := range []struct {
		column, value string
		kind          fieldcrypt.Kind
	}{
		{"date_of_birth", dateText(a.DateOfBirth), fieldcrypt.KindDateOfBirth},
		{"contact_email", a.ContactEmail, fieldcrypt.KindEmail},
		{"phone", a.Phone, fieldcrypt.KindPhone},
	} {
		var err error
		// The phone is optional (NULL); the date of birth and contact e-mail are NOT NULL
		// columns, sealed even when empty.
		if enc[i], err = r.seal(f.value, "patients", f.column, a.PatientID); err != nil {
			return err
		}
		if enc[i] == nil && f.column != "phone" {
			if enc[i], err = r.Crypt.Seal("", fieldcrypt.AAD("patients", f.column, a.PatientID)); err != nil {
				return err
			}
		}
		if hashes[i], err = r.hash(f.kind, f.value); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO patients (id, clinic_id, given_name, family_name, date_of_birth_enc, date_of_birth_hash,
			contact_email_enc, contact_email_hash, phone_enc, phone_hash, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		a.PatientID, a.Clinic.ID, a.GivenName, a.FamilyName, enc[0], hashes[0], enc[1], hashes[1], enc[2], hashes[2], a.AdmittedAt); err != nil {
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

// UpsertClinics inserts the clinics, or updates the name and time zone of those only seeding
// wrote (for seeding: a clinic scheduling has configured keeps what scheduling said).
func UpsertClinics(ctx context.Context, db DB, clinics []domain.Clinic) error {
	for _, c := range clinics {
		if _, err := db.Exec(ctx, `INSERT INTO clinics (id, name, time_zone) VALUES ($1, $2, $3)
			ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, time_zone = EXCLUDED.time_zone
			WHERE clinics.configured_at IS NULL`,
			c.ID, c.Name, c.TimeZone); err != nil {
			return fmt.Errorf("upsert clinic %s: %w", c.ID, err)
		}
	}
	return nil
}

// ApplyClinic implements app.ClinicStore: an insert, or an update when the event is later (by
// configured_at, then event id) than the one the row holds, or the row holds none (seeded).
func (Repository) ApplyClinic(ctx context.Context, tx pgx.Tx, c domain.Clinic, at time.Time, eventID string) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO clinics (id, name, time_zone, configured_at, configured_event_id)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, time_zone = EXCLUDED.time_zone,
			configured_at = EXCLUDED.configured_at, configured_event_id = EXCLUDED.configured_event_id
		WHERE clinics.configured_at IS NULL
			OR (clinics.configured_at, clinics.configured_event_id) < (EXCLUDED.configured_at, EXCLUDED.configured_event_id)`,
		c.ID, c.Name, c.TimeZone, at, eventID)
	if err != nil {
		return false, fmt.Errorf("apply clinic: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}
