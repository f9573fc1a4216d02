package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/bus"
	notificationv1 "github.com/trellis-health/trellis/proto/gen/trellis/notification/v1"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
)

// Subjects of the delivery events (MessageSent is SubjectMessageSent).
const (
	SubjectMessageDelivered = "trellis.notification.message.delivered.v1"
	SubjectMessageFailed    = "trellis.notification.message.failed.v1"
)

// ErrNoTemplate is what a Renderer wraps when no template can ever render the message (no
// template for the kind, channel and locale): the message fails at once as render_error.
// Other render errors are retried (a database hiccup must not lose a message).
var ErrNoTemplate = errors.New("no template")

// ClinicSettings are the clinic's delivery settings (clinic_settings; zero when none).
type ClinicSettings struct {
	ContactPhone  string
	CareTeamEmail string
	BillingEmail  string
}

// DeliveryContext is what delivering a claimed message needs besides the recipient copy: the
// patient's preferences (nil when no consent has been seen) and the clinic's settings.
type DeliveryContext struct {
	Preferences *domain.Preferences
	Settings    ClinicSettings
}

// SentRecord is how a message went out.
type SentRecord struct {
	Channel         string
	To              string // address or E.164 number used
	ProviderID      string // SMS provider's message id ("" for email)
	TemplateVersion int
	Locale          string
	At              time.Time // when it was sent (the dispatcher's clock)
}

// OutgoingSMS is one text for an SMSSender.
type OutgoingSMS struct {
	MessageID string
	To        string // E.164
	Body      string
}

// SMSSender sends texts (adapters/sms). It returns the provider's message id; errors are
// *SendError carrying an error class.
type SMSSender interface {
	SendSMS(ctx context.Context, m OutgoingSMS) (providerID string, err error)
}

// DeliveryRepository is the storage the dispatcher, the consent consumer and the provider
// webhooks use (adapters/postgres).
type DeliveryRepository interface {
	// ClaimDue takes up to limit due queued messages no other dispatcher holds, counts an
	// attempt on each and hides them from other dispatchers for lease.
	ClaimDue(ctx context.Context, limit int, lease time.Duration) ([]Claim, error)
	// TextHistory returns when the patient's texts sent after since went, and which of
	// phones have opted out of texts; read just before a text is decided.
	TextHistory(ctx context.Context, patientID string, phones []string, since time.Time) (sent []time.Time, optedOut []string, err error)
	// LockPatientTexts holds a lock on the patient's texting, shared by every dispatcher of
	// every replica, until unlock is called (or the process dies): the texting caps are
	// decided, the text sent and recorded under it, so two replicas cannot both pass a cap.
	LockPatientTexts(ctx context.Context, patientID string) (unlock func(), err error)
	// RecordFailure records failed attempt number attempt (a no-op if another dispatcher has
	// claimed the message since): retry after retryIn, or mark it failed when giveUp.
	RecordFailure(ctx context.Context, id string, attempt int, code string, retryIn time.Duration, giveUp bool) error
	// MarkSentVia records a successful send and how it went; false when already marked sent.
	MarkSentVia(ctx context.Context, tx pgx.Tx, id string, s SentRecord) (bool, error)
	// Settle ends attempt number attempt of a queued message without a send: status skipped,
	// cancelled or failed, with reason. False when the message has moved on (another
	// attempt, or it is no longer queued).
	Settle(ctx context.Context, tx pgx.Tx, id string, attempt int, status, reason string) (bool, error)
	// Defer puts attempt number attempt back in the queue until at, uncounted.
	Defer(ctx context.Context, id string, attempt int, at time.Time) error
	// CancelQueued: see Repository.
	CancelQueued(ctx context.Context, tx pgx.Tx, patientID, subjectRef string, kinds []string, reason string) (int, error)
	// ApplyConsent stores p unless a later consent version is stored (or this consent was
	// revoked); it reports whether it changed anything.
	ApplyConsent(ctx context.Context, tx pgx.Tx, p domain.Preferences) (bool, error)
	// RevokeConsent marks the patient's preferences revoked when consentID is the stored
	// consent (or none is stored yet); it reports whether the patient's current consent is
	// now revoked.
	RevokeConsent(ctx context.Context, tx pgx.Tx, patientID, clinicID, consentID string, at time.Time) (bool, error)
	// SetSMSOptOut records that phone opted out of (or back in to) texts.
	SetSMSOptOut(ctx context.Context, tx pgx.Tx, phone string, optedOut bool, at time.Time) error
	// ProviderStatus applies a provider's delivery report to the sent message with that
	// provider id: status delivered, or failed with reason. It returns the message when its
	// status changed (nil when unknown or already settled: reports are idempotent).
	ProviderStatus(ctx context.Context, tx pgx.Tx, providerID, status, reason string) (*domain.Message, error)
}

// Delivery holds the use cases around delivery that events and webhooks drive: consent
// preferences, text opt-outs and provider delivery reports.
type Delivery struct {
	repo  DeliveryRepository
	store *bus.Store
	log   *slog.Logger
	now   func() time.Time
}

// NewDelivery returns the delivery use cases.
func NewDelivery(store *bus.Store, repo DeliveryRepository, log *slog.Logger) *Delivery {
	return &Delivery{repo: repo, store: store, log: log, now: time.Now}
}

// ApplyConsent keeps the patient's preferences from a consent version, in tx (the latest
// version wins).
func (d *Delivery) ApplyConsent(ctx context.Context, tx pgx.Tx, p domain.Preferences) error {
	changed, err := d.repo.ApplyConsent(ctx, tx, p)
	if err != nil {
		return fmt.Errorf("store preferences: %w", err)
	}
	d.log.InfoContext(ctx, "consent preferences applied", "patient_id", p.PatientID, "consent_id", p.ConsentID,
		"version", p.Version, "changed", changed)
	return nil
}

// RevokeConsent applies a revocation in tx: when it revokes the patient's current consent,
// every queued patient message of theirs is cancelled at once (consent_revoked).
func (d *Delivery) RevokeConsent(ctx context.Context, tx pgx.Tx, patientID, clinicID, consentID string, at time.Time) error {
	revoked, err := d.repo.RevokeConsent(ctx, tx, patientID, clinicID, consentID, at)
	if err != nil {
		return fmt.Errorf("revoke preferences: %w", err)
	}
	n := 0
	if revoked {
		if n, err = d.repo.CancelQueued(ctx, tx, patientID, "", nil, domain.ReasonConsentRevoked); err != nil {
			return fmt.Errorf("cancel queued messages: %w", err)
		}
	}
	d.log.InfoContext(ctx, "consent revocation applied", "patient_id", patientID, "consent_id", consentID,
		"revoked", revoked, "cancelled", n)
	return nil
}

// SMSKeyword applies an inbound text: STOP (and synonyms) opts the number out at once, START
// (and synonyms) back in; anything else changes nothing. It reports the command seen.
func (d *Delivery) SMSKeyword(ctx context.Context, from, body string) (string, error) {
	cmd := domain.ParseSMSCommand(body)
	if cmd == "" {
		return "", nil
	}
	err := d.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		return d.repo.SetSMSOptOut(ctx, tx, from, cmd == domain.SMSStop, d.now())
	})
	if err != nil {
		return "", err
	}
	d.log.InfoContext(ctx, "text opt-out changed", "command", cmd) // never the number
	return cmd, nil
}

// ProviderStatus applies a provider's delivery report: delivered (MessageDelivered), or
// failed with reason (MessageFailed), in one transaction with the event. Repeated or late
// reports change nothing.
func (d *Delivery) ProviderStatus(ctx context.Context, providerID, status, reason string) error {
	var m *domain.Message
	err := d.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		var err error
		if m, err = d.repo.ProviderStatus(ctx, tx, providerID, status, reason); err != nil || m == nil {
			return err
		}
		if status == domain.StatusDelivered {
			tx.Emit(bus.Event{Subject: SubjectMessageDelivered, ClinicID: m.ClinicID, Payload: &notificationv1.MessageDelivered{
				MessageId: m.ID, PatientId: m.PatientID, ClinicId: m.ClinicID, Kind: m.Kind, Channel: m.Channel}})
			return nil
		}
		tx.Emit(bus.Event{Subject: SubjectMessageFailed, ClinicID: m.ClinicID, Payload: &notificationv1.MessageFailed{
			MessageId: m.ID, PatientId: m.PatientID, ClinicId: m.ClinicID, Kind: m.Kind, Channel: m.Channel, Reason: reason}})
		return nil
	})
	if err != nil {
		return err
	}
	if m == nil {
		d.log.InfoContext(ctx, "delivery report changed nothing", "status", status)
		return nil
	}
	d.log.InfoContext(ctx, "delivery report applied", "message_id", m.ID, "status", status, "reason", reason)
	return nil
}
