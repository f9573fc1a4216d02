package postgres

import (
	"context"
	"errors"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"

	"github.com/trellis-health/trellis/services/notification/internal/app"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
)

var _ app.DeliveryRepository = (*Repository)(nil)

// TextHistory implements app.DeliveryRepository. Every text that went out counts, whatever
// happened to it afterwards (a text reported undelivered was still sent).
func (r *Repository) TextHistory(ctx context.Context, patientID string, phones []string, since time.Time) ([]time.Time, []string, error) {
	// Opt-outs are kept by the keyed hash of the number: the numbers are hashed, and the
	// hashes found map back to them.
	byHash := map[string][]string{}
	hashes := [][]byte{}
	for _, phone := range phones {
		h, err := r.crypt.k.Hash(fieldcrypt.KindPhone, phone)
		if err != nil {
			return nil, nil, err
		}
		if h != nil {
			byHash[string(h)] = append(byHash[string(h)], phone)
			hashes = append(hashes, h)
		}
	}
	var sent []time.Time
	var found [][]byte
	err := r.store.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, `
			SELECT ARRAY(SELECT sent_at FROM messages
					WHERE patient_id = $1 AND channel = 'sms' AND sent_at IS NOT NULL AND sent_at > $3),
				ARRAY(SELECT phone_hash FROM sms_optouts WHERE opted_out AND phone_hash = ANY($2))`,
			patientID, hashes, since).Scan(&sent, &found)
	})
	var optedOut []string
	for _, h := range found {
		optedOut = append(optedOut, byHash[string(h)]...)
	}
	return sent, optedOut, err
}

// LockPatientTexts implements app.DeliveryRepository with a session advisory lock on a
// connection held until unlock (a crash closes the connection and releases it). An advisory
// lock reads no table, so it needs no clinic scope: the connection is used for nothing else.
func (r *Repository) LockPatientTexts(ctx context.Context, patientID string) (func(), error) {
	conn, err := r.store.Pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte("notification-texts:" + patientID))
	key := int64(h.Sum64())
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		conn.Release()
		return nil, err
	}
	return func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key); err != nil {
			// Do not hand a connection that may still hold the lock back to the pool.
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
		conn.Release()
	}, nil
}

// MarkSentVia implements app.DeliveryRepository. Like MarkSent, a message marked failed by a
// stale attempt is still marked sent: the provider accepted it.
func (r *Repository) MarkSentVia(ctx context.Context, tx pgx.Tx, id string, s app.SentRecord) (bool, error) {
	to, err := r.crypt.seal(s.To, "messages", "sent_to", id)
	if err != nil {
		return false, err
	}
	tag, err := tx.Exec(ctx, `
		UPDATE messages SET status = 'sent', sent_at = coalesce($2, now()), last_error_code = '', status_reason = '',
			channel = $3, sent_to = '', sent_to_enc = $4, provider_message_id = $5, template_version = $6, locale = $7
		WHERE id = $1 AND status NOT IN ('sent', 'delivered')`,
		id, nullableTime(s.At), s.Channel, to, s.ProviderID, s.TemplateVersion, s.Locale)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// Settle implements app.DeliveryRepository. A failure's reason is also its last error code.
func (r *Repository) Settle(ctx context.Context, tx pgx.Tx, id string, attempt int, status, reason string) (bool, error) {
	tag, err := tx.Exec(ctx, `
		UPDATE messages SET status = $3, status_reason = $4,
			last_error_code = CASE WHEN $3 = 'failed' THEN $4 ELSE last_error_code END
		WHERE id = $1 AND attempts = $2 AND status = 'queued'`,
		id, attempt, status, reason)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// Defer implements app.DeliveryRepository: the attempt is given back.
func (r *Repository) Defer(ctx context.Context, id string, attempt int, at time.Time) error {
	return r.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		_, err := tx.Exec(ctx, `
			UPDATE messages SET attempts = attempts - 1, due_at = $3, next_attempt_at = $3
			WHERE id = $1 AND attempts = $2 AND status = 'queued'`, id, attempt, at)
		return err
	})
}

// ApplyConsent implements app.DeliveryRepository. A higher version replaces the stored one;
// the same consent again (a redelivery) rewrites it unchanged; a revoked consent stays
// revoked whatever copy of its grant arrives late.
func (r *Repository) ApplyConsent(ctx context.Context, tx pgx.Tx, p domain.Preferences) (bool, error) {
	email, err := r.crypt.seal(p.ConfidentialEmail, "preferences", "confidential_email", p.PatientID)
	if err != nil {
		return false, err
	}
	phone, err := r.crypt.seal(p.ConfidentialPhone, "preferences", "confidential_phone", p.PatientID)
	if err != nil {
		return false, err
	}
	phoneHash, err := r.crypt.phoneHash(p.ConfidentialPhone)
	if err != nil {
		return false, err
	}
	// The plaintext columns stay '': the values are in the sealed columns.
	tag, err := tx.Exec(ctx, `
		INSERT INTO preferences (patient_id, clinic_id, consent_id, version, channels, confidential_email_enc,
			confidential_phone_enc, confidential_phone_hash, quiet_start, quiet_end, language, revoked, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $12, $8, $9, $10, false, $11)
		ON CONFLICT (patient_id) DO UPDATE SET
			clinic_id = EXCLUDED.clinic_id, consent_id = EXCLUDED.consent_id, version = EXCLUDED.version,
			channels = EXCLUDED.channels, confidential_email = '', confidential_phone = '',
			confidential_email_enc = EXCLUDED.confidential_email_enc, confidential_phone_enc = EXCLUDED.confidential_phone_enc,
			confidential_phone_hash = EXCLUDED.confidential_phone_hash, quiet_start = EXCLUDED.quiet_start,
			quiet_end = EXCLUDED.quiet_end, language = EXCLUDED.language, revoked = false,
			updated_at = EXCLUDED.updated_at
		WHERE NOT (preferences.revoked AND preferences.consent_id = EXCLUDED.consent_id)
		  AND (preferences.version < EXCLUDED.version
		       OR (preferences.version = EXCLUDED.version AND preferences.consent_id = EXCLUDED.consent_id))`,
		p.PatientID, p.ClinicID, p.ConsentID, p.Version, p.Channels, email, phone,
		p.Quiet.Start, p.Quiet.End, p.Language, p.At, phoneHash)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// RevokeConsent implements app.DeliveryRepository. A revocation seen before its grant leaves a
// revoked row (version 0) that only a later consent version replaces.
func (r *Repository) RevokeConsent(ctx context.Context, tx pgx.Tx, patientID, clinicID, consentID string, at time.Time) (bool, error) {
	var revoked bool
	err := tx.QueryRow(ctx, `
		INSERT INTO preferences (patient_id, clinic_id, consent_id, version, revoked, updated_at)
		VALUES ($1, $2, $3, 0, true, $4)
		ON CONFLICT (patient_id) DO UPDATE SET revoked = true, updated_at = GREATEST(preferences.updated_at, EXCLUDED.updated_at)
		WHERE preferences.consent_id = EXCLUDED.consent_id
		RETURNING revoked`, patientID, clinicID, consentID, at).Scan(&revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil // a revocation of an earlier, superseded consent
	}
	return revoked, err
}

// SetSMSOptOut implements app.DeliveryRepository; the latest command wins.
// The number is kept as its keyed hash (the lookup) and sealed, never in plaintext.
func (r *Repository) SetSMSOptOut(ctx context.Context, tx pgx.Tx, phone string, optedOut bool, at time.Time) error {
	return r.crypt.upsertOptOut(ctx, tx, phone, optedOut, at)
}

// ProviderStatus implements app.DeliveryRepository: only a sent message changes (once).
func (r *Repository) ProviderStatus(ctx context.Context, tx pgx.Tx, providerID, status, reason string) (*domain.Message, error) {
	if providerID == "" {
		return nil, nil
	}
	var m domain.Message
	err := tx.QueryRow(ctx, `
		UPDATE messages SET status = $2,
			delivered_at = CASE WHEN $2 = 'delivered' THEN now() ELSE delivered_at END,
			status_reason = $3, last_error_code = CASE WHEN $2 = 'failed' THEN $3 ELSE last_error_code END
		WHERE provider_message_id = $1 AND status = 'sent'
		RETURNING id::text, COALESCE(patient_id::text, ''), clinic_id::text, kind, channel, status`,
		providerID, status, reason).Scan(&m.ID, &m.PatientID, &m.ClinicID, &m.Kind, &m.Channel, &m.Status)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &m, nil
}
