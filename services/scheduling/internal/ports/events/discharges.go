package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/trellis-health/trellis/pkg/bus"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"

	"github.com/trellis-health/trellis/services/scheduling/internal/app"
	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
)

// Discharges consumer: intake's PatientDischarged ends the episode's enrollments and frees
// their seats for the waitlists.
const (
	DischargesConsumer = "scheduling--discharges"
	SubjectDischarged  = "trellis.intake.patient.discharged.v1"
)

// DischargesConfig is the durable consumer of discharges on the INTAKE stream.
func DischargesConfig() bus.ConsumerConfig {
	return bus.ConsumerConfig{Name: DischargesConsumer, Stream: "INTAKE", Subjects: []string{SubjectDischarged}, TxBatch: clinicLockTxBatch}
}

// Discharges handles PatientDischarged.
type Discharges struct {
	app *app.App
	log *slog.Logger
}

// NewDischarges returns the handler.
func NewDischarges(a *app.App, log *slog.Logger) *Discharges { return &Discharges{app: a, log: log} }

// Handle is a bus.Handler: it runs in the consumer's transaction and emits through the outbox
// in that same transaction. A patient scheduling never enrolled is not an error (acked).
func (h *Discharges) Handle(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	var m intakev1.PatientDischarged
	if err := d.Decode(&m); err != nil {
		return err // already permanent
	}
	if err := d.MatchClinic(m.GetClinicId()); err != nil {
		return err
	}
	ended, err := h.app.Discharge(ctx, tx, d.Envelope.GetEventId(), domain.Discharge{
		PatientID: m.GetPatientId(), EpisodeID: m.GetEpisodeId(), ClinicID: m.GetClinicId(),
	})
	switch {
	case errors.Is(err, domain.ErrInvalid):
		return bus.Permanent(fmt.Errorf("PatientDischarged: %w", err))
	case err != nil:
		return err
	}
	for _, e := range ended {
		h.log.InfoContext(ctx, "enrollment ended by discharge", "enrollment_id", e.ID, "track_id", e.TrackID,
			"clinic_id", e.ClinicID, "event_id", d.Envelope.GetEventId())
	}
	if len(ended) == 0 {
		h.log.InfoContext(ctx, "discharge ends no enrollment; nothing to do", "clinic_id", m.GetClinicId(),
			"event_id", d.Envelope.GetEventId())
	}
	return nil
}
