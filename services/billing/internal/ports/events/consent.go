package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/trellis-health/trellis/pkg/bus"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"

	"github.com/trellis-health/trellis/services/billing/internal/app"
	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// Consent consumer: intake's ConsentGranted / ConsentRevoked keep billing's copy of consents
// and apply the consent gate to the patient's charges.
const (
	ConsentConsumer       = "billing--consent"
	SubjectConsentGranted = "trellis.intake.consent.granted.v1"
	SubjectConsentRevoked = "trellis.intake.consent.revoked.v1"
)

// ConsentConfig is the durable consumer of consents on the INTAKE stream. Its handler locks the
// patient's charges (as billing--attendance does), so groups declare that key.
func ConsentConfig() bus.ConsumerConfig {
	return bus.ConsumerConfig{Name: ConsentConsumer, Stream: "INTAKE",
		Subjects: []string{SubjectConsentGranted, SubjectConsentRevoked}, TxBatch: 16, LockKeys: consentLockKeys}
}

// consentLockKeys declares the lock GrantConsent and RevokeConsent take (a revocation of other
// scopes takes none; declaring it anyway only holds it for the group).
func consentLockKeys(d *bus.Delivery) []string {
	var patient, clinic string
	if d.Subject == SubjectConsentRevoked {
		var m intakev1.ConsentRevoked
		if d.Decode(&m) != nil {
			return nil
		}
		patient, clinic = m.GetPatientId(), m.GetClinicId()
	} else {
		var m intakev1.ConsentGranted
		if d.Decode(&m) != nil {
			return nil
		}
		patient, clinic = m.GetPatientId(), m.GetClinicId()
	}
	return []string{domain.ChargesLockKey(strings.ToLower(patient), strings.ToLower(clinic))}
}

// Consent handles ConsentGranted and ConsentRevoked.
type Consent struct {
	charges *app.Charges
	log     *slog.Logger
}

// NewConsent returns the handler.
func NewConsent(c *app.Charges, log *slog.Logger) *Consent { return &Consent{charges: c, log: log} }

// Handle is a bus.Handler.
func (h *Consent) Handle(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	var (
		changed bool
		err     error
		c       domain.Consent
	)
	switch d.Subject {
	case SubjectConsentRevoked:
		var m intakev1.ConsentRevoked
		if err := d.Decode(&m); err != nil {
			return err
		}
		if err := d.MatchClinic(m.GetClinicId()); err != nil {
			return err
		}
		// A revocation of other scopes leaves the payment consent as it is.
		if len(m.GetScopes()) > 0 && !slices.Contains(m.GetScopes(), intakev1.ConsentScope_CONSENT_SCOPE_PAYMENT) {
			return nil
		}
		c = domain.Consent{ID: m.GetConsentId(), PatientID: m.GetPatientId(), ClinicID: m.GetClinicId(),
			SourceEventID: d.Envelope.GetEventId()}
		if m.GetEffectiveAt() != nil {
			c.RevokedAt = m.GetEffectiveAt().AsTime()
		}
		changed, err = h.charges.RevokeConsent(ctx, tx, c)
	default:
		var m intakev1.ConsentGranted
		if err := d.Decode(&m); err != nil {
			return err
		}
		if err := d.MatchClinic(m.GetClinicId()); err != nil {
			return err
		}
		c = domain.Consent{ID: m.GetConsentId(), PatientID: m.GetPatientId(), ClinicID: m.GetClinicId(),
			Version: m.GetVersion(), Payment: slices.Contains(m.GetScopes(), intakev1.ConsentScope_CONSENT_SCOPE_PAYMENT),
			Supersedes: m.GetSupersedesConsentId(), SourceEventID: d.Envelope.GetEventId()}
		if m.GetEffectiveFrom() != nil {
			c.EffectiveFrom = m.GetEffectiveFrom().AsTime()
		}
		if m.GetExpiresAt() != nil {
			c.ExpiresAt = m.GetExpiresAt().AsTime()
		}
		changed, err = h.charges.GrantConsent(ctx, tx, c)
	}
	switch {
	case errors.Is(err, domain.ErrInvalid):
		return bus.Permanent(fmt.Errorf("%s: %w", d.Subject, err))
	case err != nil:
		return err
	}
	h.log.InfoContext(ctx, "consent event handled", "consent_id", c.ID, "clinic_id", c.ClinicID, "changed", changed,
		"event_id", d.Envelope.GetEventId())
	return nil
}
