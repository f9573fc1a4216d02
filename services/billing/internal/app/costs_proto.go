package app

import (
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"

	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// costGroups maps the report groupings.
var costGroups = map[billingv1.CostGroupBy]string{
	billingv1.CostGroupBy_COST_GROUP_BY_PROGRAM: domain.GroupByProgram,
	billingv1.CostGroupBy_COST_GROUP_BY_CLINIC:  domain.GroupByClinic,
	billingv1.CostGroupBy_COST_GROUP_BY_PAYER:   domain.GroupByPayer,
}

// CostGroupFromProto is the domain grouping ("" when unknown).
func CostGroupFromProto(g billingv1.CostGroupBy) string { return costGroups[g] }

// CostRowToProto converts a report row.
func CostRowToProto(r domain.CostRow) *billingv1.CostReportRow {
	return &billingv1.CostReportRow{
		Key:                          r.Key,
		AttendedPatientDays:          r.AttendedPatientDays,
		CompletedEpisodes:            r.CompletedEpisodes,
		ClinicianCostCents:           r.ClinicianCostCents,
		FixedCostCents:               r.FixedCostCents,
		TotalCostCents:               r.TotalCostCents,
		CostPerPatientDayCents:       r.CostPerPatientDayCents,
		CostPerCompletedEpisodeCents: r.CostPerCompletedEpisodeCents,
		ChargedCents:                 r.ChargedCents,
		PaidCents:                    r.PaidCents,
		MarginCents:                  r.MarginCents,
		PaidMarginCents:              r.PaidMarginCents,
		ClinicianMinutes:             r.ClinicianMinutes,
	}
}

// EstimateInputFromProto converts an estimate request.
func EstimateInputFromProto(m *billingv1.EstimatePatientCostRequest) domain.EstimateInput {
	in := domain.EstimateInput{
		ClinicID:           m.GetClinicId(),
		PayerID:            m.GetPayerId(),
		PatientID:          m.GetPatientId(),
		StartDate:          m.GetStartDate(),
		Weeks:              m.GetProgramWeeks(),
		DaysPerWeek:        m.GetDaysPerWeek(),
		MinutesPerDay:      m.GetMinutesPerDay(),
		CoinsurancePercent: m.GetCoinsurancePercent(),
		CopayPerDayCents:   m.GetCopayPerDayCents(),
		DeductibleCents:    m.GetDeductibleRemainingCents(),
		OOPMaxCents:        m.OutOfPocketMaxRemainingCents,
		FPLPercent:         m.HouseholdIncomeFplPercent,
	}
	for _, s := range m.GetSessions() {
		in.Sessions = append(in.Sessions, domain.PlannedSession{Service: services[s.GetService()], Minutes: s.GetMinutes(), PerDay: s.GetPerDay()})
	}
	return in
}

// EstimateToProto converts an estimate.
func EstimateToProto(e domain.Estimate) *billingv1.Estimate {
	out := &billingv1.Estimate{
		EstimateId:          e.ID,
		ClinicId:            e.ClinicID,
		PayerId:             e.PayerID,
		PatientId:           e.PatientID,
		StartDate:           e.StartDate,
		GoodFaith:           e.GoodFaith,
		ContractId:          e.ContractID,
		ProgramDays:         e.ProgramDays,
		TotalChargesCents:   e.TotalChargesCents,
		DeductibleCents:     e.DeductibleCents,
		CopayCents:          e.CopayCents,
		CoinsuranceCents:    e.CoinsuranceCents,
		OutOfPocketCapCents: e.OOPCapCents,
		DiscountPercent:     e.DiscountPercent,
		DiscountCents:       e.DiscountCents,
		PayerCents:          e.PayerCents,
		PatientCents:        e.PatientCents,
		Notes:               e.Notes,
	}
	for _, l := range e.Lines {
		out.Lines = append(out.Lines, &billingv1.EstimateLine{Service: reverse(services, l.Service), ProcedureCode: l.ProcedureCode,
			Minutes: l.Minutes, Units: l.Units, RateCents: l.RateCents, AmountCents: l.AmountCents})
	}
	return out
}
