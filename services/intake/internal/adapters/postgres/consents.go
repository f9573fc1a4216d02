package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/services/intake/internal/domain"
)

// ConsentPatientClinic returns the patient's clinic, or domain.ErrNotFound. With lock the row is
// locked FOR NO KEY UPDATE: consent and coverage changes of one patient queue behind each
// other, while rows that merely reference the patient (episodes, ...) can still be added.
func (Repository) ConsentPatientClinic(ctx context.Context, tx pgx.Tx, patientID string, lock bool) (string, error) {
	q := `SELECT clinic_id::text FROM patients WHERE id = $1`
	if lock {
		q += ` FOR NO KEY UPDATE`
	}
	var clinicID string
	err := tx.QueryRow(ctx, q, patientID).Scan(&clinicID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", domain.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("read patient: %w", err)
	}
	return clinicID, nil
}

const consentColumns = `id::text, patient_id::text, clinic_id::text, version, scopes, named_recipients, channels,
	confidential_email_enc, confidential_phone_enc, coalesce(quiet_start, ''), coalesce(quiet_end, ''), language,
	effective_from, expires_at, status, coalesce(supersedes_id::text, ''), revoked_at, revocation_effective_at,
	revocation_reason, recorded_by, revoked_by, created_at`

func (r Repository) scanConsent(row pgx.Row) (domain.Consent, error) {
	var c domain.Consent
	var expires, revoked, revocationAt *time.Time
	var email, phone *string
	err := row.Scan(&c.ID, &c.PatientID, &c.ClinicID, &c.Version, &c.Scopes, &c.NamedRecipients, &c.Channels,
		&email, &phone, &c.QuietHours.Start, &c.QuietHours.End, &c.Language,
		&c.EffectiveFrom, &expires, &c.Status, &c.SupersedesID, &revoked, &revocationAt,
		&c.RevocationReason, &c.RecordedBy, &c.RevokedBy, &c.CreatedAt)
	if err != nil {
		return domain.Consent{}, err
	}
	if c.ConfidentialEmail, err = r.open(email, "consents", "confidential_email", c.ID); err != nil {
		return domain.Consent{}, err
	}
	if c.ConfidentialPhone, err = r.open(phone, "consents", "confidential_phone", c.ID); err != nil {
		return domain.Consent{}, err
	}
	c.EffectiveFrom, c.CreatedAt = c.EffectiveFrom.UTC(), c.CreatedAt.UTC()
	c.ExpiresAt, c.RevokedAt, c.RevocationEffectiveAt = consentUTC(expires), consentUTC(revoked), consentUTC(revocationAt)
	return c, nil
}

// LatestConsent returns the patient's highest consent version, locked, or nil.
func (r Repository) LatestConsent(ctx context.Context, tx pgx.Tx, patientID string) (*domain.Consent, error) {
	c, err := r.scanConsent(tx.QueryRow(ctx, `SELECT `+consentColumns+` FROM consents
		WHERE patient_id = $1 ORDER BY version DESC LIMIT 1 FOR UPDATE`, patientID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read latest consent: %w", err)
	}
	return &c, nil
}

// AddConsent marks superseded (if any) and inserts c, in that order: the partial unique index
// allows one active consent per patient at any moment.
func (r Repository) AddConsent(ctx context.Context, tx pgx.Tx, c domain.Consent, superseded *domain.Consent) error {
	if superseded != nil {
		tag, err := tx.Exec(ctx, `UPDATE consents SET status = $2 WHERE id = $1 AND status = 'active'`, superseded.ID, superseded.Status)
		if err != nil {
			return fmt.Errorf("supersede consent: %w", err)
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("supersede consent %s: it is no longer active", superseded.ID)
		}
	}
	var quietStart, quietEnd *string
	if !c.QuietHours.IsZero() {
		quietStart, quietEnd = &c.QuietHours.Start, &c.QuietHours.End
	}
	var supersedes *string
	if c.SupersedesID != "" {
		supersedes = &c.SupersedesID
	}
	recipients := c.NamedRecipients
	if recipients == nil {
		recipients = []domain.NamedRecipient{}
	}
	email, err := r.seal(c.ConfidentialEmail, "consents", "confidential_email", c.ID)
	if err != nil {
		return err
	}
	phone, err := r.seal(c.ConfidentialPhone, "consents", "confidential_phone", c.ID)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO consents (id, patient_id, clinic_id, version, scopes, named_recipients, channels,
			confidential_email_enc, confidential_phone_enc, quiet_start, quiet_end, language, effective_from, expires_at, status,
			supersedes_id, recorded_by, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
		c.ID, c.PatientID, c.ClinicID, c.Version, c.Scopes, recipients, c.Channels,
		email, phone, quietStart, quietEnd, c.Language, c.EffectiveFrom, consentNullTime(c.ExpiresAt), c.Status,
		supersedes, c.RecordedBy, c.CreatedAt); err != nil {
		return fmt.Errorf("insert consent: %w", err)
	}
	return nil
}

// Consent returns the consent with id, locked FOR UPDATE, or domain.ErrNotFound.
func (r Repository) Consent(ctx context.Context, tx pgx.Tx, id string) (domain.Consent, error) {
	c, err := r.scanConsent(tx.QueryRow(ctx, `SELECT `+consentColumns+` FROM consents WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Consent{}, domain.ErrNotFound
	}
	if err != nil {
		return domain.Consent{}, fmt.Errorf("read consent: %w", err)
	}
	return c, nil
}

// SaveRevocation stores c's status and revocation.
func (Repository) SaveRevocation(ctx context.Context, tx pgx.Tx, c domain.Consent) error {
	if _, err := tx.Exec(ctx, `UPDATE consents SET status = $2, revoked_at = $3, revocation_effective_at = $4,
			revocation_reason = $5, revoked_by = $6 WHERE id = $1`,
		c.ID, c.Status, c.RevokedAt, c.RevocationEffectiveAt, c.RevocationReason, c.RevokedBy); err != nil {
		return fmt.Errorf("revoke consent: %w", err)
	}
	return nil
}

// Consents lists the patient's consents, newest version first.
func (r Repository) Consents(ctx context.Context, tx pgx.Tx, patientID string) ([]domain.Consent, error) {
	rows, err := tx.Query(ctx, `SELECT `+consentColumns+` FROM consents WHERE patient_id = $1 ORDER BY version DESC`, patientID)
	if err != nil {
		return nil, fmt.Errorf("list consents: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Consent, error) { return r.scanConsent(row) })
	if err != nil {
		return nil, fmt.Errorf("list consents: %w", err)
	}
	return out, nil
}

func consentUTC(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func consentNullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
