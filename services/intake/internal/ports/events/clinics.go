// Package events holds intake's event handlers (consumers of other contexts' streams).
package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/google/uuid"

	"github.com/trellis-health/trellis/pkg/bus"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
	"github.com/trellis-health/trellis/services/intake/internal/app"
	"github.com/trellis-health/trellis/services/intake/internal/domain"
)

// Clinics consumer: scheduling's ClinicConfigured keeps intake's copy of the clinics (name,
// time zone). Scheduling is the one source of clinics; a clinic it creates is one intake
// takes referrals and admissions for, once this consumer has applied the event.
const (
	ClinicsConsumer         = "intake--clinics"
	ClinicsStream           = "SCHEDULING"
	SubjectClinicConfigured = "trellis.scheduling.clinic.configured.v1"
)

// ClinicsConfig is the durable consumer of ClinicConfigured on the SCHEDULING stream.
func ClinicsConfig() bus.ConsumerConfig {
	return bus.ConsumerConfig{Name: ClinicsConsumer, Stream: ClinicsStream, Subjects: []string{SubjectClinicConfigured}}
}

// Clinics handles ClinicConfigured.
type Clinics struct {
	app *app.Intake
	log *slog.Logger
}

// NewClinics returns the handler.
func NewClinics(a *app.Intake, log *slog.Logger) *Clinics { return &Clinics{app: a, log: log} }

// Handle is a bus.Handler, run in the consumer's transaction (the inbox makes a redelivery a
// no-op). The envelope's occurred_at orders configurations: an older one changes nothing. A
// clinic without a UUID, a name or an IANA time zone is a producer bug: dead-lettered.
func (h *Clinics) Handle(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	if d.Subject != SubjectClinicConfigured {
		return bus.Permanent(errors.New("unexpected subject for the clinics consumer"))
	}
	var m schedulingv1.ClinicConfigured
	if err := d.Decode(&m); err != nil {
		return err // already permanent
	}
	pc := m.GetClinic()
	if pc == nil {
		return bus.Permanent(errors.New("ClinicConfigured has no clinic"))
	}
	if err := d.MatchClinic(pc.GetClinicId()); err != nil {
		return err
	}
	if _, err := uuid.Parse(pc.GetClinicId()); err != nil {
		return bus.Permanent(fmt.Errorf("clinic.clinic_id is not a UUID: %w", err))
	}
	if pc.GetName() == "" {
		return bus.Permanent(errors.New("clinic.name is empty"))
	}
	c, err := domain.NewClinic(pc.GetClinicId(), pc.GetName(), pc.GetTimeZone())
	if err != nil {
		return bus.Permanent(err)
	}
	ts := d.Envelope.GetOccurredAt()
	if ts == nil {
		return bus.Permanent(errors.New("envelope has no occurred_at"))
	}
	if _, err := uuid.Parse(d.Envelope.GetEventId()); err != nil {
		return bus.Permanent(fmt.Errorf("envelope event_id is not a UUID: %w", err))
	}
	changed, err := h.app.ClinicConfigured(ctx, tx, c, ts.AsTime(), d.Envelope.GetEventId())
	if err != nil {
		return err
	}
	h.log.InfoContext(ctx, "clinic configured", "clinic_id", c.ID, "event_id", d.Envelope.GetEventId(), "copy_changed", changed)
	return nil
}
