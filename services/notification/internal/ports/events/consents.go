package events

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/trellis-health/trellis/pkg/bus"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/services/notification/internal/app"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
)

// Consent subjects.
const (
	SubjectConsentGranted = "trellis.intake.consent.granted.v1"
	SubjectConsentRevoked = "trellis.intake.consent.revoked.v1"
)

// ConsentsConsumer is the durable consumer of intake's consents: one consumer for both
// subjects, so a patient's grants and revocations apply in order.
func ConsentsConsumer() bus.ConsumerConfig {
	return bus.ConsumerConfig{Name: "notification--consents", Stream: "INTAKE",
		Subjects: []string{SubjectConsentGranted, SubjectConsentRevoked}}
}

// Consents keeps the patients' communication preferences from their consents.
type Consents struct {
	Delivery *app.Delivery
}

// Handle is a bus.Handler for ConsentGranted and ConsentRevoked. Malformed consents never
// become valid and are dead-lettered; the reason never quotes addresses.
func (h Consents) Handle(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	switch d.Subject {
	case SubjectConsentRevoked:
		var ev intakev1.ConsentRevoked
		if err := d.Decode(&ev); err != nil {
			return err
		}
		if err := d.MatchClinic(ev.GetClinicId()); err != nil {
			return err
		}
		for _, id := range []string{ev.GetPatientId(), ev.GetClinicId(), ev.GetConsentId()} {
			if _, err := uuid.Parse(id); err != nil {
				return bus.Permanent(errors.New("consent revoked: an id is not a uuid"))
			}
		}
		at := occurredAt(d)
		if ts := ev.GetEffectiveAt(); ts.IsValid() && ts.AsTime().Unix() > 0 {
			at = ts.AsTime()
		}
		// Whatever scopes it names, a revoked consent no longer carries the patient's
		// agreement to be contacted: every patient message stops.
		return h.Delivery.RevokeConsent(ctx, tx, ev.GetPatientId(), ev.GetClinicId(), ev.GetConsentId(), at)
	default:
		var ev intakev1.ConsentGranted
		if err := d.Decode(&ev); err != nil {
			return err
		}
		if err := d.MatchClinic(ev.GetClinicId()); err != nil {
			return err
		}
		var channels []string
		for _, c := range ev.GetChannels() {
			switch c {
			case intakev1.Channel_CHANNEL_EMAIL:
				channels = append(channels, domain.ChannelEmail)
			case intakev1.Channel_CHANNEL_SMS:
				channels = append(channels, domain.ChannelSMS)
			default:
				return bus.Permanent(errors.New("consent granted: channels: unknown channel"))
			}
		}
		p, err := domain.NewPreferences(ev.GetPatientId(), ev.GetClinicId(), ev.GetConsentId(), int(ev.GetVersion()),
			channels, ev.GetConfidentialEmail(), ev.GetConfidentialPhone(), ev.GetQuietHours().GetStart(),
			ev.GetQuietHours().GetEnd(), ev.GetLanguage(), effectiveFrom(d, &ev))
		if err != nil {
			return bus.Permanent(err)
		}
		return h.Delivery.ApplyConsent(ctx, tx, p)
	}
}

func effectiveFrom(d *bus.Delivery, ev *intakev1.ConsentGranted) time.Time {
	if ts := ev.GetEffectiveFrom(); ts.IsValid() && ts.AsTime().Unix() > 0 {
		return ts.AsTime()
	}
	return occurredAt(d)
}
