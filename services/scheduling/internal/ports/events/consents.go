package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/trellis-health/trellis/pkg/bus"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"

	"github.com/trellis-health/trellis/services/scheduling/internal/app"
	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
)

// Consents consumer: intake's ConsentGranted and ConsentRevoked keep scheduling's copy of
// each patient's latest consent, which decides whether family sessions are booked.
const (
	ConsentsConsumer      = "scheduling--consents"
	SubjectConsentGranted = "trellis.intake.consent.granted.v1"
	SubjectConsentRevoked = "trellis.intake.consent.revoked.v1"
)

// ConsentsConfig is the durable consumer of consent grants and revocations on the INTAKE
// stream (one consumer, so a patient's grants and revocations are applied in order).
func ConsentsConfig() bus.ConsumerConfig {
	return bus.ConsumerConfig{Name: ConsentsConsumer, Stream: "INTAKE",
		Subjects: []string{SubjectConsentGranted, SubjectConsentRevoked}, TxBatch: clinicLockTxBatch}
}

// Consents handles ConsentGranted and ConsentRevoked.
type Consents struct {
	app *app.App
	log *slog.Logger
}

// NewConsents returns the handler.
func NewConsents(a *app.App, log *slog.Logger) *Consents { return &Consents{app: a, log: log} }

// Handle is a bus.Handler: it runs in the consumer's transaction and emits through the outbox
// in that same transaction. Only ids, the version and the scope flag are read: the consent's
// contact details never leave the decoded message, and nothing but ids is logged.
func (h *Consents) Handle(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	var (
		ch       app.FamilyChange
		err      error
		clinicID string
	)
	switch d.Subject {
	case SubjectConsentGranted:
		var m intakev1.ConsentGranted
		if err := d.Decode(&m); err != nil {
			return err // already permanent
		}
		clinicID = m.GetClinicId()
		if err := sameClinic(d, clinicID); err != nil {
			return err
		}
		c := domain.FamilyConsent{PatientID: m.GetPatientId(), ClinicID: clinicID, ConsentID: m.GetConsentId(),
			Version: int(m.GetVersion()), NamedRecipients: slices.Contains(m.GetScopes(), intakev1.ConsentScope_CONSENT_SCOPE_NAMED_RECIPIENTS)}
		if m.GetEffectiveFrom() != nil {
			c.EffectiveFrom = m.GetEffectiveFrom().AsTime().UTC()
		}
		if m.GetExpiresAt() != nil {
			c.ExpiresAt = m.GetExpiresAt().AsTime().UTC()
		}
		ch, err = h.app.ConsentGranted(ctx, tx, d.Envelope.GetEventId(), c)
	case SubjectConsentRevoked:
		var m intakev1.ConsentRevoked
		if err := d.Decode(&m); err != nil {
			return err
		}
		clinicID = m.GetClinicId()
		if err := sameClinic(d, clinicID); err != nil {
			return err
		}
		var at time.Time
		if m.GetEffectiveAt() != nil {
			at = m.GetEffectiveAt().AsTime().UTC()
		}
		ch, err = h.app.ConsentRevoked(ctx, tx, d.Envelope.GetEventId(), m.GetPatientId(), clinicID, m.GetConsentId(), at)
	default:
		return bus.Permanent(errors.New("unexpected subject for the consents consumer"))
	}
	switch {
	case errors.Is(err, domain.ErrInvalid):
		return bus.Permanent(fmt.Errorf("%s: %w", d.Subject, err))
	case err != nil:
		return err
	}
	h.log.InfoContext(ctx, "consent applied to family sessions", "clinic_id", clinicID, "event_id", d.Envelope.GetEventId(),
		"copy_changed", ch.Applied, "family_scheduled", ch.Scheduled, "family_cancelled", ch.Cancelled)
	return nil
}

func sameClinic(d *bus.Delivery, clinicID string) error {
	if err := d.MatchClinic(clinicID); err != nil {
		return err
	}
	return nil
}
