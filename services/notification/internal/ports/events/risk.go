package events

import (
	"context"
	"errors"
	"strings"

	"github.com/google/uuid"

	"github.com/trellis-health/trellis/pkg/bus"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
)

// PatientAtRisk alerts the care team, once per episode of risk (enrollment and since).
func (h TriggerHandlers) PatientAtRisk(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	var ev schedulingv1.PatientAtRisk
	if err := d.Decode(&ev); err != nil {
		return err
	}
	if err := d.MatchClinic(ev.GetClinicId()); err != nil {
		return err
	}
	for _, id := range []string{ev.GetPatientId(), ev.GetEnrollmentId(), ev.GetClinicId()} {
		if _, err := uuid.Parse(id); err != nil {
			return bus.Permanent(errors.New("patient at risk: patient_id, enrollment_id or clinic_id is not a uuid"))
		}
	}
	reasons := make([]string, 0, len(ev.GetReasons()))
	for _, r := range ev.GetReasons() {
		// RISK_REASON_CONSECUTIVE_ABSENCES -> consecutive_absences
		reasons = append(reasons, strings.ToLower(strings.TrimPrefix(r.String(), "RISK_REASON_")))
	}
	if err := h.T.PatientAtRisk(ctx, tx, ev.GetPatientId(), ev.GetEnrollmentId(), ev.GetClinicId(), reasons,
		tsOr(ev.GetSince(), occurredAt(d))); err != nil {
		return err
	}
	h.wake(tx)
	return nil
}
