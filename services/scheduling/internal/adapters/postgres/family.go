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

// Family consents (00008_family_consent.sql) live with the appointments they allow.
var _ app.FamilyConsents = (*Appointments)(nil)

// SaveFamilyConsent writes c as the patient's latest consent at the clinic unless a version
// as new or newer is already there (a late older version, or a replay); it reports whether
// it wrote.
func (r *Appointments) SaveFamilyConsent(ctx context.Context, tx *bus.Tx, c domain.FamilyConsent, now time.Time) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO family_consents (patient_id, clinic_id, consent_id, version, named_recipients,
			effective_from, expires_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (patient_id, clinic_id) DO UPDATE SET consent_id = excluded.consent_id, version = excluded.version,
			named_recipients = excluded.named_recipients, effective_from = excluded.effective_from,
			expires_at = excluded.expires_at, revoked_at = NULL, updated_at = excluded.updated_at
		WHERE family_consents.version < excluded.version`,
		c.PatientID, c.ClinicID, c.ConsentID, c.Version, c.NamedRecipients, c.EffectiveFrom, orNull(c.ExpiresAt), now)
	if err != nil {
		return false, fmt.Errorf("save family consent: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// RevokeFamilyConsent marks consent consentID revoked from at, if it is the patient's latest
// at the clinic and not already revoked; it reports whether it did.
func (r *Appointments) RevokeFamilyConsent(ctx context.Context, tx *bus.Tx, patientID, clinicID, consentID string, at, now time.Time) (bool, error) {
	tag, err := tx.Exec(ctx, `UPDATE family_consents SET revoked_at = $4, updated_at = $5
		WHERE patient_id = $1 AND clinic_id = $2 AND consent_id = $3 AND revoked_at IS NULL`,
		patientID, clinicID, consentID, at, now)
	if err != nil {
		return false, fmt.Errorf("revoke family consent: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// FamilyConsent reads the patient's latest consent at the clinic.
func (r *Appointments) FamilyConsent(ctx context.Context, tx *bus.Tx, patientID, clinicID string) (domain.FamilyConsent, bool, error) {
	var c domain.FamilyConsent
	var expires, revoked *time.Time
	err := tx.QueryRow(ctx, `SELECT patient_id::text, clinic_id::text, consent_id::text, version, named_recipients,
		effective_from, expires_at, revoked_at FROM family_consents WHERE patient_id = $1 AND clinic_id = $2`, patientID, clinicID).
		Scan(&c.PatientID, &c.ClinicID, &c.ConsentID, &c.Version, &c.NamedRecipients, &c.EffectiveFrom, &expires, &revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("read family consent: %w", err)
	}
	c.EffectiveFrom = c.EffectiveFrom.UTC()
	if expires != nil {
		c.ExpiresAt = expires.UTC()
	}
	if revoked != nil {
		c.RevokedAt = revoked.UTC()
	}
	return c, true, nil
}

// FamilyBooked counts an enrollment's scheduled family appointments that start after now.
func (r *Appointments) FamilyBooked(ctx context.Context, tx *bus.Tx, enrollmentID string, now time.Time) (int, error) {
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*)`+appointmentFrom+` WHERE a.enrollment_id = $1 AND a.status = 'scheduled'
		AND s.service_type = 'family' AND s.starts_at > $2`, enrollmentID, now).Scan(&n); err != nil {
		return 0, fmt.Errorf("count family appointments: %w", err)
	}
	return n, nil
}

// CancelFamily cancels the patient's scheduled family appointments at the clinic that start
// after now and not before from (and their sessions), recording each in the history; it
// returns them as cancelled.
func (r *Appointments) CancelFamily(ctx context.Context, tx *bus.Tx, patientID, clinicID string, from, now time.Time, by, reason, actor string) ([]domain.Appointment, error) {
	rows, err := tx.Query(ctx, `UPDATE appointments a SET status = 'cancelled', cancelled_by = $5,
		cancel_reason = $6, updated_at = $4 FROM sessions s
		WHERE s.id = a.session_id AND a.patient_id = $1 AND a.clinic_id = $2 AND a.status = 'scheduled'
		  AND s.service_type = 'family' AND s.starts_at >= $3 AND s.starts_at > $4
		RETURNING a.id::text`, patientID, clinicID, from, now, by, reason)
	if err != nil {
		return nil, fmt.Errorf("cancel family appointments: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("cancel family appointments: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE sessions SET status = 'cancelled'
		WHERE id IN (SELECT session_id FROM appointments WHERE id = ANY($1::uuid[]))`, ids); err != nil {
		return nil, fmt.Errorf("cancel family sessions: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO appointment_history (appointment_id, clinic_id, change, reason, actor, at)
		SELECT a.id, a.clinic_id, 'cancelled', $2, $3, $4 FROM appointments a WHERE a.id = ANY($1::uuid[])`, ids, reason, actor, now); err != nil {
		return nil, fmt.Errorf("insert appointment history: %w", err)
	}
	return collectAppointments(tx.Query(ctx, `SELECT `+appointmentColumns+appointmentFrom+
		` WHERE a.id = ANY($1::uuid[]) ORDER BY s.starts_at, a.id`, ids))
}
