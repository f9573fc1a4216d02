package events

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/trellis-health/trellis/pkg/bus"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/services/notification/internal/app"
)

func uuids(what string, ids ...string) error {
	for _, id := range ids {
		if _, err := uuid.Parse(id); err != nil {
			return bus.Permanent(errors.New(what + ": an id is not a uuid"))
		}
	}
	return nil
}

// StatementReady queues the email that the patient's statement is ready.
func (h TriggerHandlers) StatementReady(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	var ev billingv1.StatementReady
	if err := d.Decode(&ev); err != nil {
		return err
	}
	if err := d.MatchClinic(ev.GetClinicId()); err != nil {
		return err
	}
	if err := uuids("statement ready", ev.GetStatementId(), ev.GetPatientId(), ev.GetClinicId()); err != nil {
		return err
	}
	if err := h.T.StatementReady(ctx, tx, app.Statement{StatementID: ev.GetStatementId(), PatientID: ev.GetPatientId(),
		ClinicID: ev.GetClinicId(), BalanceCents: ev.GetBalanceCents(), DueDate: ev.GetDueDate()}); err != nil {
		return err
	}
	h.wake(tx)
	return nil
}

// AuthorizationUsage (nearly used or exhausted) alerts billing.
func (h TriggerHandlers) AuthorizationUsage(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	var ev billingv1.AuthorizationUsage
	if err := d.Decode(&ev); err != nil {
		return err
	}
	if err := d.MatchClinic(ev.GetClinicId()); err != nil {
		return err
	}
	if err := uuids("authorization usage", ev.GetAuthorizationId(), ev.GetClinicId()); err != nil {
		return err
	}
	level := "nearly_used"
	if d.Subject == SubjectAuthorizationExhausted {
		level = "exhausted"
	}
	if err := h.T.AuthorizationUsed(ctx, tx, app.AuthorizationUsage{AuthorizationID: ev.GetAuthorizationId(),
		PatientID: ev.GetPatientId(), ClinicID: ev.GetClinicId(), Level: level,
		AuthorizedUnits: ev.GetAuthorizedUnits(), UsedUnits: ev.GetUsedUnits(), EndsOn: ev.GetEndsOn()}); err != nil {
		return err
	}
	h.wake(tx)
	return nil
}

// ChargeStatusChanged alerts billing when a charge is held for consent (one alert per patient
// per day); other changes are ignored.
func (h TriggerHandlers) ChargeStatusChanged(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	var ev billingv1.ChargeStatusChanged
	if err := d.Decode(&ev); err != nil {
		return err
	}
	if err := d.MatchClinic(ev.GetClinicId()); err != nil {
		return err
	}
	if ev.GetTo() != billingv1.ChargeStatus_CHARGE_STATUS_HELD || ev.GetReason() != "consent" {
		return nil
	}
	if err := uuids("charge status changed", ev.GetChargeId(), ev.GetPatientId(), ev.GetClinicId()); err != nil {
		return err
	}
	if err := h.T.ConsentHold(ctx, tx, ev.GetPatientId(), ev.GetClinicId(), ev.GetChargeId(),
		tsOr(ev.GetChangedAt(), occurredAt(d))); err != nil {
		return err
	}
	h.wake(tx)
	return nil
}
