package app

import (
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"

	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// chargeStatuses maps stored charge statuses to the enum.
var chargeStatuses = map[string]billingv1.ChargeStatus{
	domain.ChargeReady:         billingv1.ChargeStatus_CHARGE_STATUS_READY,
	domain.ChargeHeld:          billingv1.ChargeStatus_CHARGE_STATUS_HELD,
	domain.ChargeSubmitted:     billingv1.ChargeStatus_CHARGE_STATUS_SUBMITTED,
	domain.ChargePaid:          billingv1.ChargeStatus_CHARGE_STATUS_PAID,
	domain.ChargeDenied:        billingv1.ChargeStatus_CHARGE_STATUS_DENIED,
	domain.ChargeVoid:          billingv1.ChargeStatus_CHARGE_STATUS_VOID,
	domain.ChargePatientBilled: billingv1.ChargeStatus_CHARGE_STATUS_PATIENT_BILLED,
}

// ChargeStatusFromProto returns the stored name of a status enum ("" for unspecified).
func ChargeStatusFromProto(s billingv1.ChargeStatus) string { return reverse(chargeStatuses, s) }

// ChargeToProto converts a stored charge.
func ChargeToProto(c domain.Charge) *billingv1.Charge {
	var mods []string
	if len(c.Modifiers) > 0 {
		mods = c.Modifiers
	}
	return &billingv1.Charge{
		ChargeId: c.ID, ClinicId: c.ClinicID, PatientId: c.PatientID, EnrollmentId: c.EnrollmentID, PayerId: c.PayerID,
		ContractId: c.ContractID, ServiceDate: c.ServiceDate, Service: reverse(services, c.Service),
		ProcedureCode: c.ProcedureCode, RevenueCode: c.RevenueCode, Modifiers: mods, Units: c.Units, Minutes: c.Minutes,
		RateCents: c.RateCents, AmountCents: c.AmountCents, Status: chargeStatuses[c.Status], HoldReason: c.HoldReason,
		SourceEventIds: c.SourceEventIDs, AppointmentIds: c.AppointmentIDs, ReplacesChargeId: c.ReplacesChargeID,
		AuthorizationId: c.AuthorizationID, ClaimId: c.ClaimID,
	}
}

// AuthorizationFromProto converts a request authorization (used_units is ignored).
func AuthorizationFromProto(m *billingv1.Authorization) domain.Authorization {
	return domain.Authorization{ID: m.GetAuthorizationId(), PatientID: m.GetPatientId(), ClinicID: m.GetClinicId(),
		PayerID: m.GetPayerId(), Service: services[m.GetService()], Number: m.GetNumber(),
		AuthorizedUnits: m.GetAuthorizedUnits(), StartsOn: m.GetStartsOn(), EndsOn: m.GetEndsOn()}
}

// AuthorizationToProto converts a stored authorization.
func AuthorizationToProto(a domain.Authorization) *billingv1.Authorization {
	return &billingv1.Authorization{AuthorizationId: a.ID, PatientId: a.PatientID, ClinicId: a.ClinicID,
		PayerId: a.PayerID, Service: reverse(services, a.Service), Number: a.Number,
		AuthorizedUnits: a.AuthorizedUnits, UsedUnits: a.UsedUnits, StartsOn: a.StartsOn, EndsOn: a.EndsOn}
}
