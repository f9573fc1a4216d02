package domain

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// rules returns "field rule" of each violation in err (nil: none).
func rules(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want a ValidationError", err)
	}
	out := make([]string, len(ve.Violations))
	for i, v := range ve.Violations {
		if v.Msg == "" {
			t.Errorf("%s %s has no message", v.Field, v.Rule)
		}
		out[i] = v.Field + " " + v.Rule
	}
	return out
}

func check(t *testing.T, err error, want ...string) {
	t.Helper()
	if got := rules(t, err); !slices.Equal(got, want) {
		t.Fatalf("violations = %q, want %q", got, want)
	}
}

func TestValidatePayer(t *testing.T) {
	ok := Payer{Code: "medicaid-il", Name: "Illinois Medicaid", Kind: KindMedicaid, X12PayerID: "ILMCD"}
	tests := []struct {
		name string
		edit func(*Payer)
		want []string
	}{
		{"valid", func(*Payer) {}, nil},
		{"self-pay without x12 id", func(p *Payer) { p.Code, p.Kind, p.X12PayerID = "self-pay", KindSelfPay, "" }, nil},
		{"code uppercase", func(p *Payer) { p.Code = "Medicaid" }, []string{"payer.payer_id payer_id.pattern"}},
		{"code leading dash", func(p *Payer) { p.Code = "-x" }, []string{"payer.payer_id payer_id.pattern"}},
		{"code one char", func(p *Payer) { p.Code = "a" }, []string{"payer.payer_id payer_id.pattern"}},
		{"code too long", func(p *Payer) { p.Code = strings.Repeat("a", 64) }, []string{"payer.payer_id payer_id.pattern"}},
		{"code 63 chars", func(p *Payer) { p.Code = strings.Repeat("a", 63) }, nil},
		{"no name", func(p *Payer) { p.Name = " " }, []string{"payer.name name.length"}},
		{"unknown kind", func(p *Payer) { p.Kind = "" }, []string{"payer.kind kind.known"}},
		{"insurer without x12 id", func(p *Payer) { p.X12PayerID = "" }, []string{"payer.x12_payer_id x12_payer_id.required"}},
		{"x12 id with a space", func(p *Payer) { p.X12PayerID = "IL MCD" }, []string{"payer.x12_payer_id x12_payer_id.required"}},
		{"self-pay with x12 id", func(p *Payer) { p.Kind = KindSelfPay }, []string{"payer.x12_payer_id x12_payer_id.self_pay"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ok
			tt.edit(&p)
			_, err := ValidatePayer(p)
			check(t, err, tt.want...)
		})
	}
}

const clinic = "0190a000-0000-7000-8000-000000000001"

func perDiem() Contract {
	return Contract{PayerID: "medicaid-il", ClinicID: clinic, Mode: ModePerDiem, ClaimType: ClaimInstitutional,
		Codes:         []ServiceCode{{Service: ServicePerDiem, ProcedureCode: "H0015", RevenueCode: "0906", RateCents: 25000}},
		EffectiveFrom: "2026-01-01"}
}

func perService() Contract {
	return Contract{PayerID: "acme-health", ClinicID: clinic, Mode: ModePerService, ClaimType: ClaimProfessional,
		Codes: []ServiceCode{
			{Service: ServiceGroup, ProcedureCode: "90853", RateCents: 8500},
			{Service: ServiceIndividual, ProcedureCode: "90832", RateCents: 7000, MinMinutes: 16, MaxMinutes: 37},
			{Service: ServiceIndividual, ProcedureCode: "90834", RateCents: 9500, MinMinutes: 38, MaxMinutes: 52},
			{Service: ServiceIndividual, ProcedureCode: "90837", RateCents: 13000, MinMinutes: 53},
		},
		EffectiveFrom: "2026-01-01", EffectiveTo: "2026-12-31"}
}

func TestValidateContract(t *testing.T) {
	tests := []struct {
		name  string
		base  func() Contract
		edit  func(*Contract)
		payer bool
		want  []string
	}{
		{"per diem valid", perDiem, func(*Contract) {}, true, nil},
		{"per service valid", perService, func(*Contract) {}, true, nil},
		{"payer unknown", perDiem, func(*Contract) {}, false, []string{"contract.payer_id payer_id.exists"}},
		{"contract id not uuid", perDiem, func(c *Contract) { c.ID = "c-1" }, true, []string{"contract.contract_id contract_id.uuid"}},
		{"clinic not uuid", perDiem, func(c *Contract) { c.ClinicID = "riverside" }, true, []string{"contract.clinic_id clinic_id.uuid"}},
		{"mode unknown", perDiem, func(c *Contract) { c.Mode = "" }, true, []string{"contract.billing_mode billing_mode.known"}},
		{"claim type unknown", perDiem, func(c *Contract) { c.ClaimType = "837D" }, true, []string{"contract.claim_type claim_type.known"}},
		{"per diem minimum too high", perDiem, func(c *Contract) { c.PerDiemMinimumMinutes = 1441 }, true, []string{"contract.per_diem_minimum_minutes per_diem_minimum_minutes.range"}},
		{"per diem minimum negative", perDiem, func(c *Contract) { c.PerDiemMinimumMinutes = -1 }, true, []string{"contract.per_diem_minimum_minutes per_diem_minimum_minutes.range"}},
		{"below minimum unknown", perDiem, func(c *Contract) { c.BelowMinimum = "bill_half" }, true, []string{"contract.below_minimum below_minimum.known"}},
		{"timely filing too long", perDiem, func(c *Contract) { c.TimelyFilingDays = 731 }, true, []string{"contract.timely_filing_days timely_filing_days.range"}},
		{"timely filing 730", perDiem, func(c *Contract) { c.TimelyFilingDays = 730 }, true, nil},
		{"from not a date", perDiem, func(c *Contract) { c.EffectiveFrom = "2026-02-30" }, true, []string{"contract.effective_from effective_from.date"}},
		{"from empty", perDiem, func(c *Contract) { c.EffectiveFrom = "" }, true, []string{"contract.effective_from effective_from.date"}},
		{"to not a date", perDiem, func(c *Contract) { c.EffectiveTo = "31/12/2026" }, true, []string{"contract.effective_to effective_to.date"}},
		{"to before from", perDiem, func(c *Contract) { c.EffectiveTo = "2025-12-31" }, true, []string{"contract.effective_to effective_to.after_from"}},
		{"to equals from", perDiem, func(c *Contract) { c.EffectiveTo = c.EffectiveFrom }, true, nil},
		{"procedure code bad", perDiem, func(c *Contract) { c.Codes[0].ProcedureCode = "H001" }, true, []string{"contract.codes[0].procedure_code procedure_code.hcpcs_cpt"}},
		{"procedure code cpt category II", perService, func(c *Contract) { c.Codes[0].ProcedureCode = "1234F" }, true, nil},
		{"procedure code lowercase hcpcs", perDiem, func(c *Contract) { c.Codes[0].ProcedureCode = "h0015" }, true, nil},
		{"procedure code 6 digits", perService, func(c *Contract) { c.Codes[0].ProcedureCode = "908530" }, true, []string{"contract.codes[0].procedure_code procedure_code.hcpcs_cpt"}},
		{"institutional without revenue code", perDiem, func(c *Contract) { c.Codes[0].RevenueCode = "" }, true, []string{"contract.codes[0].revenue_code revenue_code.required"}},
		{"revenue code 3 digits", perDiem, func(c *Contract) { c.Codes[0].RevenueCode = "906" }, true, []string{"contract.codes[0].revenue_code revenue_code.pattern"}},
		{"professional without revenue code", perService, func(*Contract) {}, true, nil},
		{"modifiers ok", perDiem, func(c *Contract) { c.Codes[0].Modifiers = []string{"HQ", "u1"} }, true, nil},
		{"modifier 3 chars", perDiem, func(c *Contract) { c.Codes[0].Modifiers = []string{"HQ", "ABC"} }, true, []string{"contract.codes[0].modifiers[1] modifier.pattern"}},
		{"five modifiers", perDiem, func(c *Contract) { c.Codes[0].Modifiers = []string{"AA", "BB", "CC", "DD", "EE"} }, true, []string{"contract.codes[0].modifiers modifiers.max_items"}},
		{"negative rate", perDiem, func(c *Contract) { c.Codes[0].RateCents = -1 }, true, []string{"contract.codes[0].rate_cents rate_cents.gte_0"}},
		{"zero rate", perDiem, func(c *Contract) { c.Codes[0].RateCents = 0 }, true, nil},
		{"service unknown", perService, func(c *Contract) { c.Codes[0].Service = "" }, true, []string{"contract.codes[0].service service.known"}},
		{"max below min", perService, func(c *Contract) { c.Codes[1].MaxMinutes = 10 }, true, []string{"contract.codes[1].max_minutes max_minutes.gte_min"}},
		{"negative min", perService, func(c *Contract) { c.Codes[0].MinMinutes = -5 }, true, []string{"contract.codes[0].min_minutes min_minutes.range"}},
		{"ranges overlap", perService, func(c *Contract) { c.Codes[2].MinMinutes = 37 }, true, []string{"contract.codes[2].min_minutes codes.minutes_overlap"}},
		{"open range overlaps", perService, func(c *Contract) { c.Codes[2].MaxMinutes = 0 }, true, []string{"contract.codes[3].min_minutes codes.minutes_overlap"}},
		{"same range other service", perService, func(c *Contract) {
			c.Codes = append(c.Codes, ServiceCode{Service: ServiceFamily, ProcedureCode: "90847", RateCents: 11000})
		}, true, nil},
		{"per diem without per diem code", perDiem, func(c *Contract) { c.Codes[0].Service = ServiceGroup }, true, []string{"contract.codes codes.per_diem_required"}},
		{"per diem below minimum per service without session codes", perDiem, func(c *Contract) { c.BelowMinimum = BelowBillPerService }, true, []string{"contract.codes codes.below_minimum_per_service"}},
		{"per service without codes", perService, func(c *Contract) { c.Codes = nil }, true, []string{"contract.codes codes.per_service_required"}},
		{"per service with per diem code", perService, func(c *Contract) {
			c.Codes = append(c.Codes, ServiceCode{Service: ServicePerDiem, ProcedureCode: "H0015", RateCents: 1})
		}, true, []string{"contract.codes codes.per_diem_in_per_service"}},
		{"several problems", perDiem, func(c *Contract) { c.ClinicID = ""; c.Codes[0].RateCents = -1 }, true,
			[]string{"contract.clinic_id clinic_id.uuid", "contract.codes[0].rate_cents rate_cents.gte_0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.base()
			tt.edit(&c)
			_, err := ValidateContract(c, tt.payer)
			check(t, err, tt.want...)
		})
	}
}

func TestContractDefaults(t *testing.T) {
	c, err := ValidateContract(perDiem(), true)
	if err != nil {
		t.Fatal(err)
	}
	if c.PerDiemMinimumMinutes != 180 || c.TimelyFilingDays != 90 || c.BelowMinimum != BelowBillNothing {
		t.Fatalf("defaults: %+v", c)
	}
	again, err := ValidateContract(c, true)
	if err != nil || !SameContract(c, again) {
		t.Fatalf("validation is not idempotent: %+v %v", again, err)
	}
}

func TestCheckNoOverlap(t *testing.T) {
	mk := func(id, from, to string) Contract {
		return Contract{ID: id, PayerID: "p1", ClinicID: clinic, EffectiveFrom: from, EffectiveTo: to}
	}
	existing := []Contract{mk("a", "2025-01-01", "2025-12-31"), mk("b", "2027-01-01", "")}
	tests := []struct {
		name string
		c    Contract
		want bool // conflict
	}{
		{"gap between", mk("n", "2026-01-01", "2026-12-31"), false},
		{"touches a on its last day", mk("n", "2025-12-31", "2026-06-30"), true},
		{"open-ended runs into b", mk("n", "2026-01-01", ""), true},
		{"inside b", mk("n", "2030-01-01", "2030-01-31"), true},
		{"same id is itself", mk("a", "2025-01-01", "2026-12-31"), false},
		{"other payer", Contract{ID: "n", PayerID: "p2", ClinicID: clinic, EffectiveFrom: "2025-01-01"}, false},
		{"other clinic", Contract{ID: "n", PayerID: "p1", ClinicID: "x", EffectiveFrom: "2025-01-01"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckNoOverlap(tt.c, existing)
			if got := errors.Is(err, ErrConflict); got != tt.want {
				t.Fatalf("conflict = %v (%v), want %v", got, err, tt.want)
			}
		})
	}
}

func TestValidateSlidingScale(t *testing.T) {
	tests := []struct {
		name  string
		tiers []Tier
		want  []string
	}{
		{"demo", []Tier{{100, 75}, {200, 50}, {300, 25}, {400, 0}}, nil},
		{"one tier", []Tier{{200, 100}}, nil},
		{"equal discounts", []Tier{{100, 50}, {200, 50}}, nil},
		{"empty", nil, []string{"tiers tiers.min_items"}},
		{"not increasing", []Tier{{200, 75}, {200, 50}}, []string{"tiers[1].max_fpl_percent max_fpl_percent.increasing"}},
		{"decreasing", []Tier{{200, 75}, {100, 50}}, []string{"tiers[1].max_fpl_percent max_fpl_percent.increasing"}},
		{"zero fpl", []Tier{{0, 75}}, []string{"tiers[0].max_fpl_percent max_fpl_percent.range"}},
		{"discount over 100", []Tier{{100, 101}}, []string{"tiers[0].discount_percent discount_percent.range"}},
		{"negative discount", []Tier{{100, -1}}, []string{"tiers[0].discount_percent discount_percent.range"}},
		{"discount rises with income", []Tier{{100, 25}, {200, 50}}, []string{"tiers[1].discount_percent discount_percent.non_increasing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { check(t, ValidateSlidingScale(tt.tiers), tt.want...) })
	}
}
