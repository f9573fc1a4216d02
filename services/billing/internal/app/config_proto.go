package app

import (
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"

	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// Enum <-> domain names. An unknown enum maps to "" (the domain rejects it).
var (
	payerKinds = map[billingv1.PayerKind]string{
		billingv1.PayerKind_PAYER_KIND_COMMERCIAL: domain.KindCommercial,
		billingv1.PayerKind_PAYER_KIND_MEDICAID:   domain.KindMedicaid,
		billingv1.PayerKind_PAYER_KIND_MEDICARE:   domain.KindMedicare,
		billingv1.PayerKind_PAYER_KIND_SELF_PAY:   domain.KindSelfPay,
	}
	modes = map[billingv1.BillingMode]string{
		billingv1.BillingMode_BILLING_MODE_PER_DIEM:    domain.ModePerDiem,
		billingv1.BillingMode_BILLING_MODE_PER_SERVICE: domain.ModePerService,
	}
	claimTypes = map[billingv1.ClaimType]string{
		billingv1.ClaimType_CLAIM_TYPE_INSTITUTIONAL: domain.ClaimInstitutional,
		billingv1.ClaimType_CLAIM_TYPE_PROFESSIONAL:  domain.ClaimProfessional,
	}
	belowMinimums = map[billingv1.BelowMinimum]string{
		billingv1.BelowMinimum_BELOW_MINIMUM_BILL_NOTHING:     domain.BelowBillNothing,
		billingv1.BelowMinimum_BELOW_MINIMUM_BILL_PER_SERVICE: domain.BelowBillPerService,
	}
	services = map[billingv1.BillableService]string{
		billingv1.BillableService_BILLABLE_SERVICE_PER_DIEM:              domain.ServicePerDiem,
		billingv1.BillableService_BILLABLE_SERVICE_GROUP:                 domain.ServiceGroup,
		billingv1.BillableService_BILLABLE_SERVICE_INDIVIDUAL:            domain.ServiceIndividual,
		billingv1.BillableService_BILLABLE_SERVICE_FAMILY:                domain.ServiceFamily,
		billingv1.BillableService_BILLABLE_SERVICE_MEDICATION_MANAGEMENT: domain.ServiceMedication,
	}
)

// unknown marks an enum value billing does not know (BelowMinimum unspecified takes the default).
const unknown = "unknown"

func reverse[K comparable, V comparable](m map[K]V, v V) K {
	for k, x := range m {
		if x == v {
			return k
		}
	}
	var zero K
	return zero
}

// PayerFromProto converts a request payer.
func PayerFromProto(m *billingv1.Payer) domain.Payer {
	return domain.Payer{Code: m.GetPayerId(), Name: m.GetName(), Kind: payerKinds[m.GetKind()], X12PayerID: m.GetX12PayerId()}
}

// PayerToProto converts a stored payer.
func PayerToProto(p domain.Payer) *billingv1.Payer {
	return &billingv1.Payer{PayerId: p.Code, Name: p.Name, Kind: reverse(payerKinds, p.Kind), X12PayerId: p.X12PayerID}
}

// ContractFromProto converts a request contract.
func ContractFromProto(m *billingv1.Contract) domain.Contract {
	below := belowMinimums[m.GetBelowMinimum()]
	if below == "" && m.GetBelowMinimum() != billingv1.BelowMinimum_BELOW_MINIMUM_UNSPECIFIED {
		below = unknown
	}
	c := domain.Contract{
		ID: m.GetContractId(), PayerID: m.GetPayerId(), ClinicID: m.GetClinicId(),
		Mode: modes[m.GetBillingMode()], ClaimType: claimTypes[m.GetClaimType()],
		PerDiemMinimumMinutes: m.GetPerDiemMinimumMinutes(), BelowMinimum: below,
		TimelyFilingDays: m.GetTimelyFilingDays(), EffectiveFrom: m.GetEffectiveFrom(), EffectiveTo: m.GetEffectiveTo(),
		RequiresAuthorization: m.GetRequiresAuthorization(),
	}
	for _, sc := range m.GetCodes() {
		c.Codes = append(c.Codes, domain.ServiceCode{
			Service: services[sc.GetService()], ProcedureCode: sc.GetProcedureCode(), RevenueCode: sc.GetRevenueCode(),
			Modifiers: sc.GetModifiers(), RateCents: sc.GetRateCents(), MinMinutes: sc.GetMinMinutes(), MaxMinutes: sc.GetMaxMinutes(),
		})
	}
	return c
}

// ContractToProto converts a stored contract.
func ContractToProto(c domain.Contract) *billingv1.Contract {
	m := &billingv1.Contract{
		ContractId: c.ID, PayerId: c.PayerID, ClinicId: c.ClinicID,
		BillingMode: reverse(modes, c.Mode), ClaimType: reverse(claimTypes, c.ClaimType),
		PerDiemMinimumMinutes: c.PerDiemMinimumMinutes, BelowMinimum: reverse(belowMinimums, c.BelowMinimum),
		TimelyFilingDays: c.TimelyFilingDays, EffectiveFrom: c.EffectiveFrom, EffectiveTo: c.EffectiveTo,
		RequiresAuthorization: c.RequiresAuthorization,
	}
	for _, sc := range c.Codes {
		var mods []string
		if len(sc.Modifiers) > 0 {
			mods = sc.Modifiers
		}
		m.Codes = append(m.Codes, &billingv1.ServiceCode{
			Service: reverse(services, sc.Service), ProcedureCode: sc.ProcedureCode, RevenueCode: sc.RevenueCode,
			Modifiers: mods, RateCents: sc.RateCents, MinMinutes: sc.MinMinutes, MaxMinutes: sc.MaxMinutes,
		})
	}
	return m
}

// TiersFromProto converts request tiers.
func TiersFromProto(ms []*billingv1.SlidingScaleTier) []domain.Tier {
	out := make([]domain.Tier, len(ms))
	for i, m := range ms {
		out[i] = domain.Tier{MaxFPLPercent: m.GetMaxFplPercent(), DiscountPercent: m.GetDiscountPercent()}
	}
	return out
}

// TiersToProto converts stored tiers.
func TiersToProto(ts []domain.Tier) []*billingv1.SlidingScaleTier {
	out := make([]*billingv1.SlidingScaleTier, len(ts))
	for i, t := range ts {
		out[i] = &billingv1.SlidingScaleTier{MaxFplPercent: t.MaxFPLPercent, DiscountPercent: t.DiscountPercent}
	}
	return out
}
