// Package postgres stores notification's recipients and messages in its own schema.
package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/services/notification/internal/app"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
)

// Repository implements app.Repository. The methods that take no tx run their own
// transaction of store (Read or InTx), so each is scoped to the clinics of its context
// (row-level security, migration 00005): the caller's, or every clinic for background work
// in auth.WithSystemScope (the dispatcher).
type Repository struct {
	store *bus.Store
	crypt crypt
}

// New returns a repository over store (its pool's search_path set to the notification
// schema); k seals, opens and hashes the patients' addresses and numbers (fields.go).
func New(store *bus.Store, k *fieldcrypt.Keyring) *Repository {
	return &Repository{store: store, crypt: crypt{k}}
}

var _ app.Repository = (*Repository)(nil)

// UpsertAdmission implements app.Repository. Both facts carry the clinic and its zone; the
// newer fact of either kind decides them.
func (r *Repository) UpsertAdmission(ctx context.Context, tx pgx.Tx, a domain.Admission) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO recipients (patient_id, clinic_id, time_zone, start_date, admission_updated_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (patient_id) DO UPDATE SET
			start_date = EXCLUDED.start_date, admission_updated_at = EXCLUDED.admission_updated_at,
			clinic_id = CASE WHEN EXCLUDED.admission_updated_at >= COALESCE(recipients.contact_updated_at, '-infinity')
				THEN EXCLUDED.clinic_id ELSE recipients.clinic_id END,
			time_zone = CASE WHEN EXCLUDED.admission_updated_at >= COALESCE(recipients.contact_updated_at, '-infinity')
				THEN EXCLUDED.time_zone ELSE recipients.time_zone END
		WHERE recipients.admission_updated_at IS NULL OR recipients.admission_updated_at <= EXCLUDED.admission_updated_at`,
		a.PatientID, a.ClinicID, a.TimeZone, a.StartDate, a.At)
	return err
}

// UpsertContact implements app.Repository, with the same rule as UpsertAdmission for the
// clinic and its zone.
func (r *Repository) UpsertContact(ctx context.Context, tx pgx.Tx, c domain.Contact) error {
	email, err := r.crypt.seal(c.Email, "recipients", "email", c.PatientID)
	if err != nil {
		return err
	}
	phone, err := r.crypt.seal(c.Phone, "recipients", "phone", c.PatientID)
	if err != nil {
		return err
	}
	phoneHash, err := r.crypt.phoneHash(c.Phone)
	if err != nil {
		return err
	}
	// email and phone stay '' (contact known): the values are in the sealed columns.
	_, err = tx.Exec(ctx, `
		INSERT INTO recipients (patient_id, clinic_id, time_zone, preferred_name, email, phone, contact_updated_at,
			email_enc, phone_enc, phone_hash)
		VALUES ($1, $2, $3, $4, '', '', $5, $6, $7, $8)
		ON CONFLICT (patient_id) DO UPDATE SET
			preferred_name = EXCLUDED.preferred_name, email = '', phone = '',
			email_enc = EXCLUDED.email_enc, phone_enc = EXCLUDED.phone_enc, phone_hash = EXCLUDED.phone_hash,
			contact_updated_at = EXCLUDED.contact_updated_at,
			clinic_id = CASE WHEN EXCLUDED.contact_updated_at >= COALESCE(recipients.admission_updated_at, '-infinity')
				THEN EXCLUDED.clinic_id ELSE recipients.clinic_id END,
			time_zone = CASE WHEN EXCLUDED.contact_updated_at >= COALESCE(recipients.admission_updated_at, '-infinity')
				THEN EXCLUDED.time_zone ELSE recipients.time_zone END
		WHERE recipients.contact_updated_at IS NULL OR recipients.contact_updated_at <= EXCLUDED.contact_updated_at`,
		c.PatientID, c.ClinicID, c.TimeZone, c.PreferredName, c.At, email, phone, phoneHash)
	return err
}

// RecipientReady implements app.Repository.
func (r *Repository) RecipientReady(ctx context.Context, tx pgx.Tx, patientID string) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM recipients
		WHERE patient_id = $1 AND admission_updated_at IS NOT NULL AND contact_updated_at IS NOT NULL)`,
		patientID).Scan(&ok)
	return ok, err
}

// QueueMessage implements app.Repository.
func (r *Repository) QueueMessage(ctx context.Context, tx pgx.Tx, m app.NewMessage) (bool, error) {
	audience := m.Audience
	if audience == "" {
		audience = domain.AudiencePatient
	}
	payload := m.Payload
	if payload == nil {
		payload = map[string]string{}
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO messages (id, patient_id, clinic_id, kind, channel, traceparent, correlation_id, cause_event_id,
			audience, team, dedupe_key, subject_ref, payload, due_at, next_attempt_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, coalesce($14, now()), coalesce($14, now()), $15)
		ON CONFLICT (dedupe_key) DO NOTHING`,
		m.ID, nullableID(m.PatientID), m.ClinicID, m.Kind, m.Channel, m.Traceparent, m.CorrelationID, m.CauseEventID,
		audience, m.Team, m.DedupeKey, m.SubjectRef, payload, nullableTime(m.DueAt), m.ExpiresAt)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// CancelQueued implements app.Repository. The statement names only the conditions given
// (cancelQueuedSQL), so each variant gets a plan on its index even as a prepared statement's
// generic plan.
func (r *Repository) CancelQueued(ctx context.Context, tx pgx.Tx, patientID, subjectRef string, kinds []string, reason string) (int, error) {
	sql, args := cancelQueuedSQL(patientID, subjectRef, kinds, reason)
	tag, err := tx.Exec(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// cancelQueuedSQL builds CancelQueued's UPDATE from the conditions given: an empty patient,
// subject or kinds list adds no condition. A catch-all form (each condition OR-ed with "its
// parameter is empty") would be one statement for every call, but pgx prepares it, and after
// five executions Postgres switches to a generic plan, which cannot use messages_subject_idx
// or messages_patient_idx for a condition that may be switched off: it scanned every queued
// message, growing with the queue (perf finding N1). There are at most eight texts, each
// prepared once per connection.
func cancelQueuedSQL(patientID, subjectRef string, kinds []string, reason string) (string, []any) {
	var sb strings.Builder
	sb.WriteString(`UPDATE messages SET status = 'cancelled', status_reason = $1 WHERE status = 'queued'`)
	args := []any{reason}
	cond := func(format string, arg any) {
		args = append(args, arg)
		fmt.Fprintf(&sb, format, len(args))
	}
	if patientID != "" {
		cond(` AND patient_id = $%d::uuid`, patientID)
	}
	if subjectRef != "" {
		cond(` AND subject_ref = $%d`, subjectRef)
	}
	if len(kinds) > 0 {
		cond(` AND kind = ANY($%d::text[])`, kinds)
	}
	return sb.String(), args
}

func nullableID(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullableTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// ClaimDue implements app.Repository. The claim is one statement: rows another dispatcher
// has locked are skipped, and the claimed rows' next_attempt_at moves to the end of the lease,
// so they stay invisible to others after this statement's transaction ends. The recipient copy,
// the patient's preferences and the clinic's settings are read at claim time, so a send uses
// the newest contact details and consent.
//
// The due ids are an array (in due order, kept for the result) that the UPDATE looks up on
// the primary key (= ANY), not a set of rows joined to messages: pgx prepares the statement,
// and a generic plan (after five executions Postgres may keep one) does not know LIMIT $1,
// guesses a tenth of the queue, and joined the claimed rows to messages, recipients and
// preferences by hashing a sequential scan of each (perf finding N2: 87 ms and 2,300 blocks
// on a queue of 20,000, against 0.6 ms and 360).
func (r *Repository) ClaimDue(ctx context.Context, limit int, lease time.Duration) (claims []app.Claim, err error) {
	err = r.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		claims, err = r.claimDue(ctx, tx, limit, lease)
		return err
	})
	return claims, err
}

// claimDueSQL claims up to $1 due messages for a lease of $2 seconds (ClaimDue).
const claimDueSQL = `
		WITH due AS (
			SELECT ARRAY(
				SELECT id FROM messages
				WHERE status = 'queued' AND next_attempt_at <= now()
				ORDER BY next_attempt_at, id
				LIMIT $1
				FOR UPDATE SKIP LOCKED) AS ids
		), claimed AS (
			UPDATE messages m
			SET attempts = m.attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
			FROM due WHERE m.id = ANY (due.ids)
			RETURNING array_position(due.ids, m.id) AS pos, m.id, m.patient_id, m.clinic_id, m.kind, m.channel, m.attempts,
				m.traceparent, m.correlation_id, m.cause_event_id,
				m.audience, m.team, m.subject_ref, m.payload, m.due_at, m.expires_at
		)
		SELECT c.id::text, COALESCE(c.patient_id::text, ''), c.clinic_id::text, c.kind, c.channel, c.attempts,
			c.traceparent, c.correlation_id, c.cause_event_id,
			c.audience, c.team, c.subject_ref, c.payload, c.due_at, c.expires_at,
			r.patient_id IS NOT NULL, COALESCE(r.clinic_id::text, ''), COALESCE(r.preferred_name, ''),
			COALESCE(r.email, ''), r.email_enc, COALESCE(r.phone, ''), r.phone_enc, COALESCE(r.time_zone, ''),
			COALESCE(r.start_date, '0001-01-01'::date),
			p.patient_id IS NOT NULL, COALESCE(p.consent_id::text, ''), COALESCE(p.version, 0),
			COALESCE(p.channels, '{}'), COALESCE(p.confidential_email, ''), p.confidential_email_enc,
			COALESCE(p.confidential_phone, ''), p.confidential_phone_enc,
			COALESCE(p.quiet_start, ''), COALESCE(p.quiet_end, ''), COALESCE(p.language, ''), COALESCE(p.revoked, false),
			COALESCE(s.contact_phone, ''), COALESCE(s.care_team_email, ''), COALESCE(s.billing_email, '')
		FROM claimed c
		LEFT JOIN recipients r ON r.patient_id = c.patient_id
			AND r.admission_updated_at IS NOT NULL AND r.contact_updated_at IS NOT NULL
		LEFT JOIN preferences p ON p.patient_id = c.patient_id
		LEFT JOIN clinic_settings s ON s.clinic_id = c.clinic_id
		ORDER BY c.pos`

func (r *Repository) claimDue(ctx context.Context, tx pgx.Tx, limit int, lease time.Duration) ([]app.Claim, error) {
	rows, err := tx.Query(ctx, claimDueSQL, limit, lease.Seconds())
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (app.Claim, error) {
		var c app.Claim
		var known, hasPrefs bool
		var rc domain.Recipient
		var p domain.Preferences
		s := &c.Delivery.Settings
		var emailEnc, phoneEnc, confEmailEnc, confPhoneEnc *string
		err := row.Scan(&c.ID, &c.PatientID, &c.ClinicID, &c.Kind, &c.Channel, &c.Attempt,
			&c.Traceparent, &c.CorrelationID, &c.CauseEventID,
			&c.Audience, &c.Team, &c.SubjectRef, &c.Payload, &c.DueAt, &c.ExpiresAt,
			&known, &rc.ClinicID, &rc.PreferredName, &rc.Email, &emailEnc, &rc.Phone, &phoneEnc, &rc.TimeZone, &rc.StartDate,
			&hasPrefs, &p.ConsentID, &p.Version, &p.Channels, &p.ConfidentialEmail, &confEmailEnc,
			&p.ConfidentialPhone, &confPhoneEnc,
			&p.Quiet.Start, &p.Quiet.End, &p.Language, &p.Revoked,
			&s.ContactPhone, &s.CareTeamEmail, &s.BillingEmail)
		if err != nil {
			return c, err
		}
		if rc.Email, err = r.crypt.open(rc.Email, emailEnc, "recipients", "email", c.PatientID); err != nil {
			return c, err
		}
		if rc.Phone, err = r.crypt.open(rc.Phone, phoneEnc, "recipients", "phone", c.PatientID); err != nil {
			return c, err
		}
		if p.ConfidentialEmail, err = r.crypt.open(p.ConfidentialEmail, confEmailEnc, "preferences", "confidential_email", c.PatientID); err != nil {
			return c, err
		}
		if p.ConfidentialPhone, err = r.crypt.open(p.ConfidentialPhone, confPhoneEnc, "preferences", "confidential_phone", c.PatientID); err != nil {
			return c, err
		}
		if known {
			rc.PatientID = c.PatientID
			c.Recipient = &rc
		}
		if hasPrefs {
			p.PatientID, p.ClinicID = c.PatientID, c.ClinicID
			c.Delivery.Preferences = &p
		}
		return c, err
	})
}

// MarkSent implements app.Repository. A message marked failed by a stale attempt is still
// marked sent: the provider accepted it, and the record should say so.
func (r *Repository) MarkSent(ctx context.Context, tx pgx.Tx, id string) (bool, error) {
	tag, err := tx.Exec(ctx, `
		UPDATE messages SET status = 'sent', sent_at = now(), last_error_code = ''
		WHERE id = $1 AND status <> 'sent'`, id)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// RecordFailure implements app.Repository. The attempt number fences stale dispatchers: a
// dispatcher whose lease ran out cannot overwrite the outcome of a newer attempt.
func (r *Repository) RecordFailure(ctx context.Context, id string, attempt int, code string, retryIn time.Duration, giveUp bool) error {
	return r.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		_, err := tx.Exec(ctx, `
			UPDATE messages SET last_error_code = $3,
				status = CASE WHEN $4 THEN 'failed' ELSE status END,
				next_attempt_at = CASE WHEN $4 THEN next_attempt_at ELSE now() + make_interval(secs => $5) END
			WHERE id = $1 AND attempts = $2 AND status = 'queued'`,
			id, attempt, code, giveUp, retryIn.Seconds())
		return err
	})
}

// ListMessages implements app.Repository: only the messages of the clinics in the scope of
// ctx (the caller's) are read.
func (r *Repository) ListMessages(ctx context.Context, patientID string) (msgs []domain.Message, err error) {
	err = r.store.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT id::text, patient_id::text, clinic_id::text, kind, channel, status, attempts,
				last_error_code, created_at, sent_at
			FROM messages WHERE patient_id = $1
			ORDER BY created_at DESC, id DESC`, patientID)
		if err != nil {
			return err
		}
		msgs, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Message, error) {
			var m domain.Message
			err := row.Scan(&m.ID, &m.PatientID, &m.ClinicID, &m.Kind, &m.Channel, &m.Status, &m.Attempts,
				&m.LastErrorCode, &m.CreatedAt, &m.SentAt)
			return m, err
		})
		return err
	})
	return msgs, err
}
