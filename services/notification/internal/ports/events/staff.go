package events

import (
	"context"

	"github.com/trellis-health/trellis/pkg/bus"
	notificationv1 "github.com/trellis-health/trellis/proto/gen/trellis/notification/v1"
)

// MessageFailed (notification's own) alerts the care team that a patient message could not
// be delivered; a failed staff alert raises nothing.
func (h TriggerHandlers) MessageFailed(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	var ev notificationv1.MessageFailed
	if err := d.Decode(&ev); err != nil {
		return err
	}
	if err := d.MatchClinic(ev.GetClinicId()); err != nil {
		return err
	}
	if ev.GetPatientId() == "" {
		return nil
	}
	if err := uuids("message failed", ev.GetMessageId(), ev.GetPatientId(), ev.GetClinicId()); err != nil {
		return err
	}
	if err := h.T.MessageFailed(ctx, tx, ev.GetMessageId(), ev.GetPatientId(), ev.GetClinicId(), ev.GetKind(),
		ev.GetChannel(), ev.GetReason()); err != nil {
		return err
	}
	h.wake(tx)
	return nil
}
