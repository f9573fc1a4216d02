// Package app holds notification's use cases: keeping the recipient copy (from the patient's
// admission and contact details), queueing messages, dispatching them, and reading them back.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/telemetry"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
)

// Repository is notification's storage (adapters/postgres). Methods taking a tx run inside
// the caller's unit of work.
type Repository interface {
	// UpsertAdmission stores the admission's part of the recipient copy unless one from a
	// later admission event is already stored.
	UpsertAdmission(ctx context.Context, tx pgx.Tx, a domain.Admission) error
	// UpsertContact stores the contact details of the recipient copy unless ones from a later
	// contact event are already stored.
	UpsertContact(ctx context.Context, tx pgx.Tx, c domain.Contact) error
	// RecipientReady reports whether the patient's recipient copy has both the admission
	// (start date) and the contact details.
	RecipientReady(ctx context.Context, tx pgx.Tx, patientID string) (bool, error)
	// QueueMessage inserts m unless a message with its dedupe key exists; it reports whether
	// it inserted.
	QueueMessage(ctx context.Context, tx pgx.Tx, m NewMessage) (bool, error)
	// CancelQueued cancels the queued messages about subjectRef (an appointment id; "" for
	// any) of the patient (or of any patient when patientID is ""), of the given kinds (all
	// when empty), recording reason; it returns how many it cancelled.
	CancelQueued(ctx context.Context, tx pgx.Tx, patientID, subjectRef string, kinds []string, reason string) (int, error)
	// ClaimDue takes up to limit due queued messages no other dispatcher holds, counts an
	// attempt on each and hides them from other dispatchers for lease.
	ClaimDue(ctx context.Context, limit int, lease time.Duration) ([]Claim, error)
	// MarkSent records a successful send; false when the message was already marked sent.
	MarkSent(ctx context.Context, tx pgx.Tx, id string) (bool, error)
	// RecordFailure records failed attempt number attempt (a no-op if another dispatcher has
	// claimed the message since): retry after retryIn, or mark it failed when giveUp.
	RecordFailure(ctx context.Context, id string, attempt int, code string, retryIn time.Duration, giveUp bool) error
	// ListMessages returns the patient's messages, newest first.
	ListMessages(ctx context.Context, patientID string) ([]domain.Message, error)
}

// NewMessage is a message to queue. DedupeKey names the trigger, its subject and the kind
// (e.g. "reminder:<appointment>:1440"): a second message with the same key is not queued,
// whatever the redelivery. Channel is the channel to try first; the dispatcher may use
// another the recipient agreed to (or skip) when the message is due.
type NewMessage struct {
	ID, PatientID, ClinicID, Kind, Channel   string
	Audience, Team, DedupeKey, SubjectRef    string
	Payload                                  map[string]string
	DueAt                                    time.Time  // zero: now
	ExpiresAt                                *time.Time // not sent after this (skipped)
	Traceparent, CorrelationID, CauseEventID string
}

// Renderer renders message templates (the templates area).
type Renderer interface {
	Render(ctx context.Context, in domain.RenderInput) (domain.Rendered, int, error) // and the template version
}

// Claim is a message a dispatcher holds for one attempt, with its recipient copy (nil when
// there is none, or it lacks the admission or the contact details).
type Claim struct {
	NewMessage
	Attempt   int
	Recipient *domain.Recipient
	Delivery  DeliveryContext // preferences and clinic settings (delivery.go)
}

// App is notification's application layer.
type App struct {
	repo Repository
	log  *slog.Logger
}

// New returns the application over repo.
func New(repo Repository, log *slog.Logger) *App { return &App{repo: repo, log: log} }

// ErrRecipientNotReady means a message was asked for a patient whose recipient copy lacks the
// admission or the contact details. It is transient: the events travel on different subjects
// and streams and may overtake each other, so the caller retries.
var ErrRecipientNotReady = errors.New("recipient copy not complete yet")

// ErrPermissionDenied means the caller may not see the patient's clinic.
var ErrPermissionDenied = errors.New("permission denied")

// RecordAdmission keeps (or refreshes) the admission's part of the recipient copy, in tx.
func (a *App) RecordAdmission(ctx context.Context, tx pgx.Tx, adm domain.Admission) error {
	if err := a.repo.UpsertAdmission(ctx, tx, adm); err != nil {
		return fmt.Errorf("store admission: %w", err)
	}
	return nil
}

// RecordContact keeps (or refreshes) the contact details of the recipient copy, in tx. A
// message still queued is sent to the newest details: it is rendered when it is sent.
func (a *App) RecordContact(ctx context.Context, tx pgx.Tx, c domain.Contact) error {
	if err := a.repo.UpsertContact(ctx, tx, c); err != nil {
		return fmt.Errorf("store contact details: %w", err)
	}
	if c.Email == "" {
		a.log.WarnContext(ctx, "recipient has no email address", "patient_id", c.PatientID)
	}
	return nil
}

// QueueWelcome queues the welcome email for a patient, at most once per patient, in tx, once
// the recipient copy has both the start date and the contact details (ErrRecipientNotReady
// until then). The trace context of ctx is stored with it so that the send continues the trace.
func (a *App) QueueWelcome(ctx context.Context, tx pgx.Tx, patientID, clinicID string) error {
	ok, err := a.repo.RecipientReady(ctx, tx, patientID)
	if err != nil {
		return err
	}
	if !ok {
		return ErrRecipientNotReady
	}
	payload, err := a.welcomePayload(ctx, tx, patientID) // "first_week" when appointments are known
	if err != nil {
		return err
	}
	carrier := telemetry.HeaderCarrier{}
	telemetry.Propagator.Inject(ctx, carrier)
	correlationID, causationID := bus.CauseFrom(ctx)
	m := NewMessage{ID: bus.NewID(), PatientID: patientID, ClinicID: clinicID,
		Kind: domain.KindWelcome, Channel: domain.ChannelEmail, Audience: domain.AudiencePatient,
		DedupeKey: domain.KindWelcome + ":" + patientID, Payload: payload,
		Traceparent: carrier.Get("traceparent"), CorrelationID: correlationID, CauseEventID: causationID}
	created, err := a.repo.QueueMessage(ctx, tx, m)
	if err != nil {
		return fmt.Errorf("queue welcome: %w", err)
	}
	if created {
		a.log.InfoContext(ctx, "message queued", "message_id", m.ID, "patient_id", patientID, "kind", m.Kind)
	} else {
		a.log.InfoContext(ctx, "welcome already queued; skipped", "patient_id", patientID)
	}
	return nil
}

// ListMessages returns a patient's messages that the caller's clinics allow, newest first.
// A patient of a clinic the caller may not see looks exactly like an unknown patient (no
// messages): whether someone is a patient of an SUD program is itself protected (42 CFR Part 2).
func (a *App) ListMessages(ctx context.Context, patientID string) ([]domain.Message, error) {
	p := auth.PrincipalFrom(ctx)
	if p == nil {
		return nil, ErrPermissionDenied
	}
	all, err := a.repo.ListMessages(ctx, patientID)
	if err != nil {
		return nil, err
	}
	visible := make([]domain.Message, 0, len(all))
	for _, m := range all {
		if p.CanSeeClinic(m.ClinicID) {
			visible = append(visible, m)
		}
	}
	return visible, nil
}
