// Package events holds scheduling's event consumers.
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

// Admissions consumer: intake's PatientAdmitted enrolls the patient in the track it names, in
// a seat or on the track's waitlist.
const (
	AdmissionsConsumer = "scheduling--admissions"
	SubjectAdmitted    = "trellis.intake.patient.admitted.v1"
)

// AdmissionsConfig is the durable consumer of admissions on the INTAKE stream.
func AdmissionsConfig() bus.ConsumerConfig {
	return bus.ConsumerConfig{Name: AdmissionsConsumer, Stream: "INTAKE", Subjects: []string{SubjectAdmitted}, TxBatch: clinicLockTxBatch}
}

// Admissions handles PatientAdmitted.
type Admissions struct {
	app *app.App
	log *slog.Logger
}

// NewAdmissions returns the handler.
func NewAdmissions(a *app.App, log *slog.Logger) *Admissions { return &Admissions{app: a, log: log} }

// Handle is a bus.Handler: it runs in the consumer's transaction (the inbox row is already
// written there) and emits through the outbox in that same transaction. The payload carries
// ids, codes and dates only (contact details travel in PatientContactRecorded, which
// scheduling does not consume).
func (h *Admissions) Handle(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	var m intakev1.PatientAdmitted
	if err := d.Decode(&m); err != nil {
		return err // already permanent
	}
	if err := d.MatchClinic(m.GetClinicId()); err != nil {
		return err
	}
	e, created, err := h.app.EnrollAdmitted(ctx, tx, d.Envelope.GetEventId(), domain.Admission{
		PatientID:    m.GetPatientId(),
		EpisodeID:    m.GetEpisodeId(),
		ClinicID:     m.GetClinicId(),
		ProgramTrack: m.GetProgramTrack(),
		StartDate:    m.GetStartDate(),
		Program:      m.GetProgram(),
	})
	switch {
	case errors.Is(err, domain.ErrInvalid):
		// The message names fields and rules, never values.
		return bus.Permanent(fmt.Errorf("PatientAdmitted: %w", err))
	case errors.Is(err, app.ErrTrackUnavailable):
		// Retried: an operator may still be configuring the track (dead-lettered when the
		// retries run out). The track code is configuration, not PHI, but ids are enough.
		h.log.WarnContext(ctx, "admission waits for its track to be configured", "error", err,
			"clinic_id", e.ClinicID, "event_id", d.Envelope.GetEventId(), "attempt", d.NumDelivered)
		return err
	case errors.Is(err, app.ErrPriorEpisodeCurrent):
		// Retried until the earlier episode's discharge is handled (dead-lettered when the
		// retries run out).
		h.log.WarnContext(ctx, "admission waits for the discharge of the patient's earlier episode",
			"clinic_id", e.ClinicID, "event_id", d.Envelope.GetEventId(), "attempt", d.NumDelivered)
		return err
	case err != nil:
		return err
	case created:
		h.log.InfoContext(ctx, "patient enrolled", "enrollment_id", e.ID, "status", e.Status, "track_id", e.TrackID,
			"clinic_id", e.ClinicID, "event_id", d.Envelope.GetEventId())
	default:
		h.log.InfoContext(ctx, "admission already handled or its episode discharged; nothing to do",
			"clinic_id", e.ClinicID, "event_id", d.Envelope.GetEventId())
	}
	return nil
}
