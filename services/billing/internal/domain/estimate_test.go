package domain

import (
	"errors"
	"slices"
	"testing"
)

func ptr[T any](v T) *T { return &v }

const estClinic = "0192f0c0-0000-7000-8000-0000000000c1"

func perDiemRates() Contract {
	return Contract{ID: "pd", PayerID: "medicaid-il", Mode: ModePerDiem, PerDiemMinimumMinutes: 180, BelowMinimum: BelowBillNothing,
		Codes:         []ServiceCode{{Service: ServicePerDiem, ProcedureCode: "H0015", RateCents: 25000}},
		EffectiveFrom: "2026-01-01"}
}

func perServiceRates() Contract {
	return Contract{ID: "ps", PayerID: "acme-health", Mode: ModePerService, Codes: []ServiceCode{
		{Service: ServiceGroup, ProcedureCode: "90853", RateCents: 8500},
		{Service: ServiceIndividual, ProcedureCode: "90832", RateCents: 7000, MinMinutes: 16, MaxMinutes: 37},
		{Service: ServiceIndividual, ProcedureCode: "90834", RateCents: 9500, MinMinutes: 38, MaxMinutes: 52},
		{Service: ServiceIndividual, ProcedureCode: "90837", RateCents: 13000, MinMinutes: 53},
	}, EffectiveFrom: "2026-01-01", EffectiveTo: "2026-12-31"}
}

func planned(weeks, days, minutes int32, sessions ...PlannedSession) EstimateInput {
	return EstimateInput{ClinicID: estClinic, StartDate: "2026-05-04", Weeks: weeks, DaysPerWeek: days, MinutesPerDay: minutes, Sessions: sessions}
}

func TestPriceProgram(t *testing.T) {
	group3h := PlannedSession{Service: ServiceGroup, Minutes: 90, PerDay: 2}
	indiv := PlannedSession{Service: ServiceIndividual, Minutes: 45, PerDay: 1}
	below := perDiemRates()
	below.BelowMinimum = BelowBillPerService
	below.Codes = append(below.Codes, perServiceRates().Codes...)
	for _, c := range []struct {
		name      string
		contract  Contract
		in        EstimateInput
		wantLines []EstimateLine
		wantNotes int
		wantRule  string
	}{
		{"per diem: 6 weeks x 3 days", perDiemRates(), planned(6, 3, 180),
			[]EstimateLine{{Service: ServicePerDiem, ProcedureCode: "H0015", Units: 18, RateCents: 25000, AmountCents: 450000}}, 0, ""},
		{"per diem: minutes from the sessions", perDiemRates(), planned(1, 3, 0, group3h),
			[]EstimateLine{{Service: ServicePerDiem, ProcedureCode: "H0015", Units: 3, RateCents: 25000, AmountCents: 75000}}, 0, ""},
		{"per diem below the minimum bills nothing", perDiemRates(), planned(4, 3, 120), nil, 1, ""},
		{"per diem below the minimum billed per service", below, planned(2, 2, 0, PlannedSession{Service: ServiceGroup, Minutes: 60, PerDay: 2}),
			[]EstimateLine{{Service: ServiceGroup, ProcedureCode: "90853", Minutes: 60, Units: 8, RateCents: 8500, AmountCents: 68000}}, 1, ""},
		{"per service: group and a time-based individual code", perServiceRates(), planned(8, 3, 0, group3h, indiv),
			[]EstimateLine{
				{Service: ServiceGroup, ProcedureCode: "90853", Minutes: 90, Units: 48, RateCents: 8500, AmountCents: 408000},
				{Service: ServiceIndividual, ProcedureCode: "90834", Minutes: 45, Units: 24, RateCents: 9500, AmountCents: 228000},
			}, 0, ""},
		{"per service needs sessions", perServiceRates(), planned(8, 3, 180), nil, 0, "sessions.required_per_service"},
		{"per service without a code for the service", perServiceRates(), planned(1, 1, 0, PlannedSession{Service: ServiceFamily, Minutes: 50, PerDay: 1}),
			nil, 0, "service.in_contract"},
		{"individual too short for any code", perServiceRates(), planned(1, 1, 0, PlannedSession{Service: ServiceIndividual, Minutes: 10, PerDay: 1}),
			nil, 0, "service.in_contract"},
	} {
		t.Run(c.name, func(t *testing.T) {
			lines, notes, err := PriceProgram(c.contract, c.in)
			if c.wantRule != "" {
				var ve *ValidationError
				if !errors.As(err, &ve) || ve.Violations[0].Rule != c.wantRule {
					t.Fatalf("err = %v, want %s", err, c.wantRule)
				}
				return
			}
			if err != nil || !slices.Equal(lines, c.wantLines) || len(notes) != c.wantNotes {
				t.Fatalf("lines = %+v, notes %q, err %v; want %+v", lines, notes, err, c.wantLines)
			}
		})
	}
}

func TestEstimateFallbackContractTakesTheHighestRate(t *testing.T) {
	other := perServiceRates()
	other.PayerID, other.Codes = "cheap", []ServiceCode{{Service: ServiceGroup, ProcedureCode: "H0005", RateCents: 6000}}
	expired := perDiemRates()
	expired.EffectiveTo, expired.Codes[0].RateCents = "2026-03-31", 99999
	richer := perDiemRates()
	richer.PayerID, richer.EffectiveFrom, richer.Codes[0].RateCents = "rich", "2026-04-01", 30000
	contracts := []Contract{perDiemRates(), perServiceRates(), other, expired, richer}

	c, ok := EstimateFallbackContract(contracts, planned(1, 3, 180))
	if !ok || c.Mode != ModePerDiem {
		t.Fatalf("fallback = %+v", c)
	}
	lines, _, err := PriceProgram(c, planned(1, 3, 180))
	if err != nil || len(lines) != 1 || lines[0].RateCents != 30000 {
		t.Fatalf("per diem at the highest effective rate: %+v %v", lines, err)
	}
	in := planned(1, 1, 0, PlannedSession{Service: ServiceGroup, Minutes: 60, PerDay: 1})
	c, _ = EstimateFallbackContract(contracts, in)
	lines, _, err = PriceProgram(c, in)
	if err != nil || len(lines) != 1 || lines[0].ProcedureCode != "90853" || lines[0].RateCents != 8500 {
		t.Fatalf("group at the highest rate: %+v %v", lines, err)
	}
	if _, ok := EstimateFallbackContract(nil, in); ok {
		t.Fatal("no contracts: nothing to price with")
	}
}

func TestSplitInsured(t *testing.T) {
	for _, c := range []struct {
		name                                   string
		total                                  int64
		days                                   int32
		deductible, copay                      int64
		coins                                  int32
		oop                                    *int64
		wantDed, wantCopay, wantCoins, wantCap int64
		wantPatient                            int64
	}{
		{"deductible only", 450000, 18, 100000, 0, 0, nil, 100000, 0, 0, 0, 100000},
		{"deductible larger than the total", 50000, 2, 100000, 0, 20, nil, 50000, 0, 0, 0, 50000},
		{"deductible then 20% coinsurance", 450000, 18, 100000, 0, 20, nil, 100000, 0, 70000, 0, 170000},
		{"copay per day after the deductible, coinsurance on the rest", 450000, 18, 100000, 2000, 10, nil, 100000, 36000, 31400, 0, 167400},
		{"copays limited to what is left", 30000, 18, 10000, 2000, 0, nil, 10000, 20000, 0, 0, 30000},
		{"coinsurance rounds half a cent up", 1001, 1, 0, 0, 50, nil, 0, 0, 501, 0, 501},
		{"out-of-pocket max caps", 450000, 18, 100000, 0, 20, ptr[int64](150000), 100000, 0, 70000, 20000, 150000},
		{"out-of-pocket max already met", 450000, 18, 100000, 2000, 20, ptr[int64](0), 100000, 36000, 62800, 198800, 0},
		{"cap above the sum changes nothing", 450000, 18, 0, 0, 20, ptr[int64](500000), 0, 0, 90000, 0, 90000},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := Estimate{TotalChargesCents: c.total, ProgramDays: c.days}
			SplitInsured(&e, EstimateInput{DeductibleCents: c.deductible, CopayPerDayCents: c.copay, CoinsurancePercent: c.coins, OOPMaxCents: c.oop})
			if e.DeductibleCents != c.wantDed || e.CopayCents != c.wantCopay || e.CoinsuranceCents != c.wantCoins ||
				e.OOPCapCents != c.wantCap || e.PatientCents != c.wantPatient || e.PayerCents != c.total-c.wantPatient {
				t.Fatalf("split = %+v", e)
			}
		})
	}
}

func TestSlidingScale(t *testing.T) {
	tiers := []Tier{{MaxFPLPercent: 100, DiscountPercent: 75}, {MaxFPLPercent: 200, DiscountPercent: 50}, {MaxFPLPercent: 300, DiscountPercent: 25}}
	for _, c := range []struct {
		fpl, want int32
	}{{0, 75}, {100, 75}, {101, 50}, {200, 50}, {250, 25}, {300, 25}, {301, 0}, {1000, 0}} {
		if got := SlidingScaleDiscount(tiers, c.fpl); got != c.want {
			t.Errorf("fpl %d: %d%%, want %d%%", c.fpl, got, c.want)
		}
	}
	if got := SlidingScaleDiscount(nil, 50); got != 0 {
		t.Errorf("no scale: %d", got)
	}
	e := Estimate{TotalChargesCents: 450001}
	SplitSelfPay(&e, EstimateInput{FPLPercent: ptr[int32](150)}, tiers)
	if e.DiscountPercent != 50 || e.DiscountCents != 225001 || e.PatientCents != 225000 || e.PayerCents != 0 {
		t.Fatalf("self-pay 150%% FPL = %+v", e) // 50% of 450001 = 225000.5 -> 225001
	}
	e = Estimate{TotalChargesCents: 450000}
	SplitSelfPay(&e, EstimateInput{}, tiers)
	if e.DiscountCents != 0 || e.PatientCents != 450000 {
		t.Fatalf("no income given: no discount: %+v", e)
	}
}

func TestCompareEstimate(t *testing.T) {
	gfe := Estimate{GoodFaith: true, TotalChargesCents: 450000, PatientCents: 225000}
	for _, c := range []struct {
		name            string
		e               Estimate
		charged, resp   int64
		wantDiff        int64
		wantPatientDiff int64
		wantFlag        bool
	}{
		{"under the estimate", gfe, 300000, 150000, -150000, -75000, false},
		{"$399.99 over", gfe, 489999, 244999, 39999, 19999, false},
		{"$400.00 over: dispute threshold", gfe, 490000, 245000, 40000, 20000, true},
		{"insured estimates are not flagged", Estimate{TotalChargesCents: 450000, PatientCents: 100000}, 900000, 100000, 450000, 0, false},
	} {
		got := CompareEstimate(c.e, c.charged, c.resp)
		if got.ChargedDifferenceCents != c.wantDiff || got.PatientDifferenceCents != c.wantPatientDiff || got.ExceedsGoodFaithThreshold != c.wantFlag {
			t.Errorf("%s: %+v", c.name, got)
		}
	}
}

func TestValidateEstimateInput(t *testing.T) {
	in := planned(0, 8, 0, PlannedSession{Service: ServicePerDiem, Minutes: 0, PerDay: 1})
	in.StartDate, in.PayerID = "2026-02-30", "Self Pay"
	_, err := ValidateEstimateInput(in)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v", err)
	}
	var got []string
	for _, v := range ve.Violations {
		got = append(got, v.Field+" "+v.Rule)
	}
	want := []string{"payer_id payer_id.pattern", "start_date start_date.date", "program_weeks program_weeks.range",
		"days_per_week days_per_week.range", "sessions[0].service service.session", "sessions[0].minutes minutes.range"}
	if !slices.Equal(got, want) {
		t.Fatalf("violations = %q, want %q", got, want)
	}
	if _, err := ValidateEstimateInput(planned(6, 3, 0)); err == nil {
		t.Fatal("neither minutes nor sessions: refused")
	}
}
