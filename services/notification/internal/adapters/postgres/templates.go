package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/services/notification/internal/app"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
)

// Content stores the templates and the clinic settings, and reads the preferences and the
// message history for the API (app.ContentRepository). Every method runs in a transaction of
// the store scoped to the clinics of its context (row-level security, migration 00005): the
// caller's for the API, every clinic for the dispatcher's rendering (auth.WithSystemScope).
type Content struct{ store *bus.Store }

// NewContent returns the content store over store.
func NewContent(store *bus.Store) *Content { return &Content{store: store} }

// query collects the rows of one query in a read-only transaction of c's store.
func query[T any](ctx context.Context, c *Content, scan pgx.RowToFunc[T], sql string, args ...any) (out []T, err error) {
	err = c.store.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scan)
		return err
	})
	return out, err
}

// queryRow scans the one row of a query, in a read-only transaction of c's store.
func queryRow(ctx context.Context, c *Content, sql string, args []any, dest ...any) error {
	return c.store.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, sql, args...).Scan(dest...)
	})
}

var _ app.ContentRepository = (*Content)(nil)

// ownerClinic is the clinic_id column value for clinicID: NULL for the network (no clinic, or
// the network's placeholder id).
func ownerClinic(clinicID string) any {
	if clinicID == "" || clinicID == domain.NetworkClinicID {
		return nil
	}
	return clinicID
}

const templateColumns = `coalesce(clinic_id::text, ''), kind, channel, locale, version, subject, body, created_by, created_at`

func scanTemplate(row pgx.CollectableRow) (app.StoredTemplate, error) {
	var t app.StoredTemplate
	err := row.Scan(&t.ClinicID, &t.Kind, &t.Channel, &t.Locale, &t.Version, &t.Subject, &t.Body, &t.CreatedBy, &t.CreatedAt)
	t.Source = domain.SourceNetwork
	if t.ClinicID != "" {
		t.Source = domain.SourceClinic
	}
	return t, err
}

// NewestTemplates implements app.ContentRepository: the newest version per owner (the clinic,
// the network) and locale of kind on channel.
func (c *Content) NewestTemplates(ctx context.Context, clinicID, kind, channel string, locales []string) ([]app.StoredTemplate, error) {
	return query(ctx, c, scanTemplate, `
		SELECT DISTINCT ON (clinic_id, locale) `+templateColumns+`
		FROM templates
		WHERE (clinic_id IS NULL OR clinic_id = $1) AND kind = $2 AND channel = $3 AND locale = ANY($4)
		ORDER BY clinic_id, locale, version DESC`, ownerClinic(clinicID), kind, channel, locales)
}

// AllNewestTemplates implements app.ContentRepository.
func (c *Content) AllNewestTemplates(ctx context.Context, clinicID string) ([]app.StoredTemplate, error) {
	return query(ctx, c, scanTemplate, `
		SELECT DISTINCT ON (clinic_id, kind, channel, locale) `+templateColumns+`
		FROM templates
		WHERE clinic_id IS NULL OR clinic_id = $1
		ORDER BY clinic_id, kind, channel, locale, version DESC`, ownerClinic(clinicID))
}

// SaveTemplate implements app.ContentRepository: it stores t as the next version of its
// owner, kind, channel and locale. Concurrent saves of the same template are serialised by a
// transaction-scoped advisory lock, so each gets its own version.
func (c *Content) SaveTemplate(ctx context.Context, id string, t app.StoredTemplate) (int, error) {
	var version int
	err := c.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		key := fmt.Sprintf("templates:%s:%s:%s:%s", t.ClinicID, t.Kind, t.Channel, t.Locale)
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, key); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `
			INSERT INTO templates (id, clinic_id, kind, channel, locale, version, subject, body, created_by, created_at)
			SELECT $1, $2, $3, $4, $5, coalesce(max(version), 0) + 1, $6, $7, $8, $9
			FROM templates
			WHERE clinic_id IS NOT DISTINCT FROM $2::uuid AND kind = $3 AND channel = $4 AND locale = $5
			RETURNING version`,
			id, ownerClinic(t.ClinicID), t.Kind, t.Channel, t.Locale, t.Subject, t.Body, t.CreatedBy, t.CreatedAt.UTC()).Scan(&version)
	})
	return version, err
}

// ClinicSettings implements app.ContentRepository.
func (c *Content) ClinicSettings(ctx context.Context, clinicID string) (app.ClinicSettingsRecord, bool, error) {
	s := app.ClinicSettingsRecord{ClinicID: clinicID}
	var updated time.Time
	err := queryRow(ctx, c, `
		SELECT reminder_offsets_minutes, contact_phone, care_team_email, billing_email, updated_at
		FROM clinic_settings WHERE clinic_id = $1`, []any{clinicID},
		&s.ReminderOffsets, &s.ContactPhone, &s.CareTeamEmail, &s.BillingEmail, &updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return app.ClinicSettingsRecord{}, false, nil
	}
	if err != nil {
		return app.ClinicSettingsRecord{}, false, err
	}
	s.UpdatedAt = updated
	return s, true, nil
}

// SaveClinicSettings implements app.ContentRepository.
func (c *Content) SaveClinicSettings(ctx context.Context, s app.ClinicSettingsRecord) error {
	return c.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO clinic_settings (clinic_id, reminder_offsets_minutes, contact_phone, care_team_email, billing_email, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (clinic_id) DO UPDATE SET reminder_offsets_minutes = EXCLUDED.reminder_offsets_minutes,
				contact_phone = EXCLUDED.contact_phone, care_team_email = EXCLUDED.care_team_email,
				billing_email = EXCLUDED.billing_email, updated_at = EXCLUDED.updated_at`,
			s.ClinicID, s.ReminderOffsets, s.ContactPhone, s.CareTeamEmail, s.BillingEmail, s.UpdatedAt.UTC())
		return err
	})
}

// PreferencesView implements app.ContentRepository: the preferences copy with the
// confidential addresses reduced to whether they are set, and whether the number texts go to
// (the confidential one, else the contact one) has opted out (by the numbers' keyed hashes).
func (c *Content) PreferencesView(ctx context.Context, patientID string) (app.PreferencesView, bool, error) {
	var v app.PreferencesView
	err := queryRow(ctx, c, `
		SELECT p.patient_id::text, p.clinic_id::text, p.version, p.channels,
			p.confidential_email <> '' OR p.confidential_email_enc IS NOT NULL,
			p.confidential_phone <> '' OR p.confidential_phone_enc IS NOT NULL,
			p.quiet_start, p.quiet_end, p.time_zone, p.language, p.revoked, p.updated_at,
			coalesce((SELECT o.opted_out FROM sms_optouts o
				WHERE o.phone_hash = coalesce(p.confidential_phone_hash, r.phone_hash)), false)
		FROM preferences p LEFT JOIN recipients r ON r.patient_id = p.patient_id
		WHERE p.patient_id = $1`, []any{patientID},
		&v.PatientID, &v.ClinicID, &v.ConsentVersion, &v.Channels, &v.HasConfidentialEmail,
		&v.HasConfidentialPhone, &v.QuietStart, &v.QuietEnd, &v.TimeZone, &v.Language, &v.Revoked,
		&v.UpdatedAt, &v.SMSOptedOut)
	if errors.Is(err, pgx.ErrNoRows) {
		return app.PreferencesView{}, false, nil
	}
	return v, err == nil, err
}

// MessageHistory implements app.ContentRepository: the patient's messages, newest first,
// without their payload or the address they went to.
func (c *Content) MessageHistory(ctx context.Context, patientID string) ([]app.HistoryEntry, error) {
	return query(ctx, c, func(row pgx.CollectableRow) (app.HistoryEntry, error) {
		var h app.HistoryEntry
		m := &h.Message
		err := row.Scan(&m.ID, &m.PatientID, &m.ClinicID, &m.Kind, &m.Channel, &m.Audience, &m.Team, &m.Status,
			&m.StatusReason, &m.Attempts, &m.LastErrorCode, &m.CreatedAt, &m.DueAt, &m.SentAt, &m.DeliveredAt,
			&h.TemplateVersion, &h.Locale)
		return h, err
	}, `
		SELECT id::text, patient_id::text, clinic_id::text, kind, channel, audience, team, status,
			status_reason, attempts, last_error_code, created_at, due_at, sent_at, delivered_at,
			template_version, locale
		FROM messages WHERE patient_id = $1
		ORDER BY created_at DESC, id DESC`, patientID)
}
