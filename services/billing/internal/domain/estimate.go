package domain

import (
	"fmt"
	"time"

	"github.com/trellis-health/trellis/pkg/money"
)

// GoodFaithDisputeThresholdCents: under the No Surprises Act a self-pay or uninsured patient
// may dispute a bill that exceeds the good-faith estimate by $400 or more.
const GoodFaithDisputeThresholdCents = 40_000

// PlannedSession is a session planned for each program day.
type PlannedSession struct {
	Service string // group, individual, family, medication_management
	Minutes int32
	PerDay  int32
}

// EstimateInput is what an estimate is asked for.
type EstimateInput struct {
	ClinicID           string
	PayerID            string // "" uninsured
	PatientID          string // optional
	StartDate          string
	Weeks              int32
	DaysPerWeek        int32
	MinutesPerDay      int32
	Sessions           []PlannedSession
	CoinsurancePercent int32
	CopayPerDayCents   int64
	DeductibleCents    int64  // remaining
	OOPMaxCents        *int64 // remaining; nil: no cap
	FPLPercent         *int32 // nil: no sliding-scale discount
}

// EstimateLine is one expected service over the program.
type EstimateLine struct {
	Service       string
	ProcedureCode string
	Minutes       int32
	Units         int32
	RateCents     int64
	AmountCents   int64
}

// Estimate is an itemized patient cost estimate.
type Estimate struct {
	ID                string
	ClinicID          string
	PayerID           string
	PatientID         string
	StartDate         string
	GoodFaith         bool
	ContractID        string
	ProgramDays       int32
	Lines             []EstimateLine
	TotalChargesCents int64
	DeductibleCents   int64
	CopayCents        int64
	CoinsuranceCents  int64
	OOPCapCents       int64 // what the out-of-pocket maximum took off
	DiscountPercent   int32
	DiscountCents     int64
	PayerCents        int64
	PatientCents      int64
	Notes             []string
}

// ValidateEstimateInput checks what protovalidate cannot (a real date, the session services)
// and the ranges again, so the domain holds on its own.
func ValidateEstimateInput(in EstimateInput) (EstimateInput, error) {
	var vs violations
	id, err := ParseID(in.ClinicID)
	if err != nil {
		vs.add("clinic_id", "clinic_id.uuid", "must be a UUID")
	}
	in.ClinicID = id
	if in.PayerID != "" && !rePayerCode.MatchString(in.PayerID) {
		vs.add("payer_id", "payer_id.pattern", "a payer code, or empty for an uninsured patient")
	}
	if in.PatientID != "" {
		p, err := ParseID(in.PatientID)
		if err != nil {
			vs.add("patient_id", "patient_id.uuid", "a UUID, or empty")
		}
		in.PatientID = p
	}
	if _, err := time.Parse(time.DateOnly, in.StartDate); err != nil {
		vs.add("start_date", "start_date.date", "a real date, YYYY-MM-DD")
	}
	if in.Weeks < 1 || in.Weeks > 52 {
		vs.add("program_weeks", "program_weeks.range", "1 to 52 weeks")
	}
	if in.DaysPerWeek < 1 || in.DaysPerWeek > 7 {
		vs.add("days_per_week", "days_per_week.range", "1 to 7 days")
	}
	if in.MinutesPerDay < 0 || in.MinutesPerDay > 1440 {
		vs.add("minutes_per_day", "minutes_per_day.range", "0 to 1440 minutes")
	}
	for i, s := range in.Sessions {
		f := fmt.Sprintf("sessions[%d].", i)
		switch s.Service {
		case ServiceGroup, ServiceIndividual, ServiceFamily, ServiceMedication:
		default:
			vs.add(f+"service", "service.session", "group, individual, family or medication management")
		}
		if s.Minutes < 1 || s.Minutes > 1440 {
			vs.add(f+"minutes", "minutes.range", "1 to 1440 minutes")
		}
		if s.PerDay < 1 || s.PerDay > 20 {
			vs.add(f+"per_day", "per_day.range", "1 to 20 sessions a day")
		}
	}
	if in.MinutesPerDay == 0 && len(in.Sessions) == 0 {
		vs.add("minutes_per_day", "minutes_per_day.or_sessions", "give the minutes of a program day or its sessions")
	}
	if in.CoinsurancePercent < 0 || in.CoinsurancePercent > 100 {
		vs.add("coinsurance_percent", "coinsurance_percent.range", "0 to 100 percent")
	}
	if in.CopayPerDayCents < 0 {
		vs.add("copay_per_day_cents", "copay_per_day_cents.gte_0", "never negative")
	}
	if in.DeductibleCents < 0 {
		vs.add("deductible_remaining_cents", "deductible_remaining_cents.gte_0", "never negative")
	}
	if in.OOPMaxCents != nil && *in.OOPMaxCents < 0 {
		vs.add("out_of_pocket_max_remaining_cents", "out_of_pocket_max_remaining_cents.gte_0", "never negative")
	}
	if in.FPLPercent != nil && *in.FPLPercent < 0 {
		vs.add("household_income_fpl_percent", "household_income_fpl_percent.gte_0", "never negative")
	}
	return in, vs.err()
}

// ProgramDays is the number of planned program days.
func (in EstimateInput) ProgramDays() int32 { return in.Weeks * in.DaysPerWeek }

// dayMinutes is the planned minutes of a day: as given, else the sessions' sum.
func (in EstimateInput) dayMinutes() int32 {
	if in.MinutesPerDay > 0 {
		return in.MinutesPerDay
	}
	var m int32
	for _, s := range in.Sessions {
		m += s.Minutes * s.PerDay
	}
	return m
}

// PriceProgram itemizes the planned program at a contract's rates. A per-diem contract bills
// each day at its per-diem code once the day reaches the minimum; below it, per service or
// nothing as the contract says. Per service (and per diem below the minimum billed per
// service), each planned session is billed at the code of its service and minutes. When codes
// overlap (the "highest rate" synthetic contract of EstimateFallbackContract), the highest rate
// wins. Errors are ValidationErrors on the request fields.
func PriceProgram(c Contract, in EstimateInput) (lines []EstimateLine, notes []string, err error) {
	days := in.ProgramDays()
	var vs violations
	perService := c.Mode == ModePerService
	if c.Mode == ModePerDiem {
		minimum := c.PerDiemMinimumMinutes
		if minimum == 0 {
			minimum = DefaultPerDiemMinimumMinutes
		}
		if in.dayMinutes() >= minimum {
			code, ok := bestCode(c.Codes, ServicePerDiem, 0)
			if !ok {
				vs.add("payer_id", "contract.per_diem_code", "the contract has no per-diem code")
				return nil, nil, vs.err()
			}
			return []EstimateLine{{Service: ServicePerDiem, ProcedureCode: code.ProcedureCode, Units: days,
				RateCents: code.RateCents, AmountCents: int64(days) * code.RateCents}}, nil, nil
		}
		if c.BelowMinimum != BelowBillPerService {
			return nil, []string{fmt.Sprintf("planned days of %d minutes are below the per-diem minimum of %d minutes; the contract bills nothing for them", in.dayMinutes(), minimum)}, nil
		}
		perService = true
		notes = append(notes, fmt.Sprintf("planned days are below the per-diem minimum of %d minutes: billed per session", minimum))
	}
	if !perService {
		return nil, nil, fmt.Errorf("%w: billing mode", ErrInvalid)
	}
	if len(in.Sessions) == 0 {
		vs.add("sessions", "sessions.required_per_service", "pricing per service needs the planned sessions of a day")
		return nil, nil, vs.err()
	}
	for i, s := range in.Sessions {
		code, ok := bestCode(c.Codes, s.Service, s.Minutes)
		if !ok {
			vs.add(fmt.Sprintf("sessions[%d].service", i), "service.in_contract", "the contract has no code for this service and length")
			continue
		}
		units := days * s.PerDay
		lines = append(lines, EstimateLine{Service: s.Service, ProcedureCode: code.ProcedureCode, Minutes: s.Minutes,
			Units: units, RateCents: code.RateCents, AmountCents: int64(units) * code.RateCents})
	}
	if err := vs.err(); err != nil {
		return nil, nil, err
	}
	return lines, notes, nil
}

// bestCode is the highest-rate code of service whose minute range holds minutes (per diem:
// any range).
func bestCode(codes []ServiceCode, service string, minutes int32) (ServiceCode, bool) {
	var best ServiceCode
	found := false
	for _, sc := range codes {
		if sc.Service != service {
			continue
		}
		if service != ServicePerDiem && (minutes < sc.MinMinutes || (sc.MaxMinutes != 0 && minutes > sc.MaxMinutes)) {
			continue
		}
		if !found || sc.RateCents > best.RateCents {
			best, found = sc, true
		}
	}
	return best, found
}

// EstimateFallbackContract is what a good-faith estimate prices with when the clinic has no
// self-pay contract: every code of the clinic's contracts effective on date, so each service
// is priced at the highest rate any payer has agreed to (a good-faith estimate should not
// undershoot). Its mode is per diem when the request gives no sessions, else per service.
func EstimateFallbackContract(contracts []Contract, in EstimateInput) (Contract, bool) {
	out := Contract{ClinicID: in.ClinicID, Mode: ModePerService, BelowMinimum: BelowBillNothing, PerDiemMinimumMinutes: 1}
	if len(in.Sessions) == 0 {
		out.Mode = ModePerDiem
	}
	for _, c := range contracts {
		if c.EffectiveOn(in.StartDate) {
			out.Codes = append(out.Codes, c.Codes...)
		}
	}
	return out, len(out.Codes) > 0
}

// SplitInsured splits the total of an insured estimate between payer and patient: the
// remaining deductible first; then a copay for each program day out of what the deductible
// leaves; then coinsurance on the rest (half a cent up); the patient's sum is capped at the
// remaining out-of-pocket maximum, the payer paying the difference.
func SplitInsured(e *Estimate, in EstimateInput) {
	total := e.TotalChargesCents
	e.DeductibleCents = min(in.DeductibleCents, total)
	rest := total - e.DeductibleCents
	e.CopayCents = min(in.CopayPerDayCents*int64(e.ProgramDays), rest)
	rest -= e.CopayCents
	e.CoinsuranceCents = int64(money.Percent(money.Cents(rest), int(in.CoinsurancePercent)))
	patient := e.DeductibleCents + e.CopayCents + e.CoinsuranceCents
	if in.OOPMaxCents != nil && patient > *in.OOPMaxCents {
		e.OOPCapCents = patient - *in.OOPMaxCents
		patient = *in.OOPMaxCents
	}
	e.PatientCents = patient
	e.PayerCents = total - patient
}

// SlidingScaleDiscount is the discount percent of the first tier whose max_fpl_percent is at
// or above fpl; 0 above the last tier.
func SlidingScaleDiscount(tiers []Tier, fpl int32) int32 {
	for _, t := range tiers {
		if fpl <= t.MaxFPLPercent {
			return t.DiscountPercent
		}
	}
	return 0
}

// SplitSelfPay applies the sliding-scale discount (half a cent away from zero) to a good-faith
// estimate: the patient owes everything after it.
func SplitSelfPay(e *Estimate, in EstimateInput, tiers []Tier) {
	if in.FPLPercent != nil {
		e.DiscountPercent = SlidingScaleDiscount(tiers, *in.FPLPercent)
	}
	e.DiscountCents = int64(money.Percent(money.Cents(e.TotalChargesCents), int(e.DiscountPercent)))
	e.PatientCents = e.TotalChargesCents - e.DiscountCents
	e.PayerCents = 0
}

// EstimateComparison is an estimate against what happened so far.
type EstimateComparison struct {
	ChargedCents               int64
	PatientResponsibilityCents int64
	ChargedDifferenceCents     int64
	PatientDifferenceCents     int64
	ExceedsGoodFaithThreshold  bool
}

// CompareEstimate compares e with the actual charges and patient responsibility. Only a
// good-faith estimate is flagged, when the charges exceed its total by the dispute threshold.
func CompareEstimate(e Estimate, chargedCents, patientRespCents int64) EstimateComparison {
	c := EstimateComparison{
		ChargedCents:               chargedCents,
		PatientResponsibilityCents: patientRespCents,
		ChargedDifferenceCents:     chargedCents - e.TotalChargesCents,
		PatientDifferenceCents:     patientRespCents - e.PatientCents,
	}
	c.ExceedsGoodFaithThreshold = e.GoodFaith && c.ChargedDifferenceCents >= GoodFaithDisputeThresholdCents
	return c
}
