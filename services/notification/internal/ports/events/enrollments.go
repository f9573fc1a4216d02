package events

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/trellis-health/trellis/pkg/bus"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
)

// PatientDischarged (intake) cancels every queued message to the patient.
func (h TriggerHandlers) PatientDischarged(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	var ev intakev1.PatientDischarged
	if err := d.Decode(&ev); err != nil {
		return err
	}
	if err := d.MatchClinic(ev.GetClinicId()); err != nil {
		return err
	}
	if _, err := uuid.Parse(ev.GetPatientId()); err != nil {
		return bus.Permanent(errors.New("patient discharged: patient_id is not a uuid"))
	}
	return h.T.Discharged(ctx, tx, ev.GetPatientId())
}

// EnrollmentEnded (scheduling) cancels every queued message to the patient when the
// enrollment ended because of a discharge; a track switch changes nothing here (the moved or
// cancelled appointments arrive as their own events).
func (h TriggerHandlers) EnrollmentEnded(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	var ev schedulingv1.EnrollmentEnded
	if err := d.Decode(&ev); err != nil {
		return err
	}
	if err := d.MatchClinic(ev.GetClinicId()); err != nil {
		return err
	}
	if ev.GetReason() != "discharged" {
		return nil
	}
	if _, err := uuid.Parse(ev.GetPatientId()); err != nil {
		return bus.Permanent(errors.New("enrollment ended: patient_id is not a uuid"))
	}
	return h.T.Discharged(ctx, tx, ev.GetPatientId())
}
