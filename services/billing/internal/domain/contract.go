package domain

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"
)

// ErrConflict: the request is well formed but clashes with stored state (e.g. two contracts of
// one payer and clinic effective on the same day).
var ErrConflict = errors.New("conflict")

// ErrForbidden: the caller may not touch that clinic, or network-wide configuration.
var ErrForbidden = errors.New("forbidden")

// Payer kinds.
const (
	KindCommercial = "commercial"
	KindMedicaid   = "medicaid"
	KindMedicare   = "medicare"
	KindSelfPay    = "self_pay"
)

// Billing modes, claim types, below-minimum policies and billable services.
const (
	ModePerDiem    = "per_diem"
	ModePerService = "per_service"

	ClaimInstitutional = "837I"
	ClaimProfessional  = "837P"

	BelowBillNothing    = "bill_nothing"
	BelowBillPerService = "bill_per_service"

	ServicePerDiem    = "per_diem"
	ServiceGroup      = "group"
	ServiceIndividual = "individual"
	ServiceFamily     = "family"
	ServiceMedication = "medication_management"
)

// Defaults (PRODUCT.md section 3): a day bills per diem from 3 hours attended; claims are due
// within 90 days of service unless the contract says otherwise.
const (
	DefaultPerDiemMinimumMinutes = 180
	DefaultTimelyFilingDays      = 90
)

// Payer is a payer of the network.
type Payer struct {
	Code       string
	Name       string
	Kind       string
	X12PayerID string
}

// ServiceCode is how a contract bills one service (or one minute range of it).
type ServiceCode struct {
	Service       string
	ProcedureCode string
	RevenueCode   string
	Modifiers     []string
	RateCents     int64
	MinMinutes    int32
	MaxMinutes    int32 // 0: no upper bound
}

// Contract is a payer's contract with one clinic. Dates are "YYYY-MM-DD"; EffectiveTo "" is open.
type Contract struct {
	ID                    string
	PayerID               string
	ClinicID              string
	Mode                  string
	ClaimType             string
	PerDiemMinimumMinutes int32
	BelowMinimum          string
	Codes                 []ServiceCode
	TimelyFilingDays      int32
	EffectiveFrom         string
	EffectiveTo           string
	RequiresAuthorization bool // charges need a prior authorization of the payer
}

// Tier is one row of the self-pay sliding scale.
type Tier struct {
	MaxFPLPercent   int32
	DiscountPercent int32
}

// Violation is one broken rule on one request field. Messages never quote the value.
type Violation struct {
	Field string
	Rule  string
	Msg   string
}

// ValidationError lists every violation of one request. errors.Is(err, ErrInvalid) holds.
type ValidationError struct{ Violations []Violation }

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.Field + ": " + v.Rule
	}
	return "invalid: " + strings.Join(parts, ", ")
}

// Unwrap makes a ValidationError an ErrInvalid.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

type violations []Violation

func (vs *violations) add(field, rule, msg string) {
	*vs = append(*vs, Violation{Field: field, Rule: rule, Msg: msg})
}

func (vs violations) err() error {
	if len(vs) == 0 {
		return nil
	}
	return &ValidationError{Violations: vs}
}

var (
	rePayerCode = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)
	reX12Payer  = regexp.MustCompile(`^[A-Za-z0-9]{2,80}$`)
	reHCPCS     = regexp.MustCompile(`^[A-Z][0-9]{4}$`)
	reCPT       = regexp.MustCompile(`^(?:[0-9]{5}|[0-9]{4}[A-Z])$`)
	reRevenue   = regexp.MustCompile(`^[0-9]{4}$`)
	reModifier  = regexp.MustCompile(`^[A-Z0-9]{2}$`)
)

// ValidatePayer checks p and returns it normalized, or a ValidationError (fields "payer.*").
func ValidatePayer(p Payer) (Payer, error) {
	var vs violations
	p.Code = strings.TrimSpace(p.Code)
	p.Name = strings.TrimSpace(p.Name)
	p.X12PayerID = strings.TrimSpace(p.X12PayerID)
	if !rePayerCode.MatchString(p.Code) {
		vs.add("payer.payer_id", "payer_id.pattern", "2 to 63 lowercase letters, digits or dashes, not starting with a dash")
	}
	if p.Name == "" || len(p.Name) > 200 {
		vs.add("payer.name", "name.length", "1 to 200 characters")
	}
	switch p.Kind {
	case KindCommercial, KindMedicaid, KindMedicare:
		if !reX12Payer.MatchString(p.X12PayerID) {
			vs.add("payer.x12_payer_id", "x12_payer_id.required", "2 to 80 letters or digits, required unless self-pay")
		}
	case KindSelfPay:
		if p.X12PayerID != "" {
			vs.add("payer.x12_payer_id", "x12_payer_id.self_pay", "self-pay has no X12 payer id")
		}
	default:
		vs.add("payer.kind", "kind.known", "commercial, medicaid, medicare or self-pay")
	}
	return p, vs.err()
}

// ValidateContract applies defaults to c and checks it; payerKnown tells whether its payer
// exists. Fields are "contract.*".
func ValidateContract(c Contract, payerKnown bool) (Contract, error) {
	var vs violations
	if c.ID != "" {
		id, err := ParseID(c.ID)
		if err != nil {
			vs.add("contract.contract_id", "contract_id.uuid", "a UUID, or empty for a new contract")
		}
		c.ID = id
	}
	if !payerKnown {
		vs.add("contract.payer_id", "payer_id.exists", "no payer has this id")
	}
	clinic, err := ParseID(c.ClinicID)
	if err != nil {
		vs.add("contract.clinic_id", "clinic_id.uuid", "must be a UUID")
	}
	c.ClinicID = clinic
	if c.Mode != ModePerDiem && c.Mode != ModePerService {
		vs.add("contract.billing_mode", "billing_mode.known", "per diem or per service")
	}
	if c.ClaimType != ClaimInstitutional && c.ClaimType != ClaimProfessional {
		vs.add("contract.claim_type", "claim_type.known", "institutional (837I) or professional (837P)")
	}
	if c.PerDiemMinimumMinutes == 0 {
		c.PerDiemMinimumMinutes = DefaultPerDiemMinimumMinutes
	}
	if c.PerDiemMinimumMinutes < 1 || c.PerDiemMinimumMinutes > 1440 {
		vs.add("contract.per_diem_minimum_minutes", "per_diem_minimum_minutes.range", "1 to 1440 minutes")
	}
	if c.BelowMinimum == "" {
		c.BelowMinimum = BelowBillNothing
	}
	if c.BelowMinimum != BelowBillNothing && c.BelowMinimum != BelowBillPerService {
		vs.add("contract.below_minimum", "below_minimum.known", "bill nothing or bill per service")
	}
	if c.TimelyFilingDays == 0 {
		c.TimelyFilingDays = DefaultTimelyFilingDays
	}
	if c.TimelyFilingDays < 1 || c.TimelyFilingDays > 730 {
		vs.add("contract.timely_filing_days", "timely_filing_days.range", "1 to 730 days")
	}
	from, errFrom := time.Parse(time.DateOnly, c.EffectiveFrom)
	if errFrom != nil {
		vs.add("contract.effective_from", "effective_from.date", "a real date, YYYY-MM-DD")
	}
	if c.EffectiveTo != "" {
		to, err := time.Parse(time.DateOnly, c.EffectiveTo)
		switch {
		case err != nil:
			vs.add("contract.effective_to", "effective_to.date", "a real date, YYYY-MM-DD, or empty")
		case errFrom == nil && to.Before(from):
			vs.add("contract.effective_to", "effective_to.after_from", "on or after effective_from")
		}
	}
	c.Codes = append([]ServiceCode{}, c.Codes...)
	services := map[string][]int{} // service -> indexes of its codes
	for i, sc := range c.Codes {
		f := fmt.Sprintf("contract.codes[%d].", i)
		sc.ProcedureCode = strings.ToUpper(strings.TrimSpace(sc.ProcedureCode))
		sc.RevenueCode = strings.TrimSpace(sc.RevenueCode)
		sc.Modifiers = append([]string{}, sc.Modifiers...)
		switch sc.Service {
		case ServicePerDiem, ServiceGroup, ServiceIndividual, ServiceFamily, ServiceMedication:
			services[sc.Service] = append(services[sc.Service], i)
		default:
			vs.add(f+"service", "service.known", "per diem, group, individual, family or medication management")
		}
		if !reHCPCS.MatchString(sc.ProcedureCode) && !reCPT.MatchString(sc.ProcedureCode) {
			vs.add(f+"procedure_code", "procedure_code.hcpcs_cpt", "HCPCS (a letter and 4 digits) or CPT (5 digits, or 4 digits and a letter)")
		}
		switch {
		case sc.RevenueCode == "" && c.ClaimType == ClaimInstitutional:
			vs.add(f+"revenue_code", "revenue_code.required", "institutional claims need a revenue code")
		case sc.RevenueCode != "" && !reRevenue.MatchString(sc.RevenueCode):
			vs.add(f+"revenue_code", "revenue_code.pattern", "4 digits")
		}
		if len(sc.Modifiers) > 4 {
			vs.add(f+"modifiers", "modifiers.max_items", "at most 4 modifiers")
		}
		for j, m := range sc.Modifiers {
			sc.Modifiers[j] = strings.ToUpper(strings.TrimSpace(m))
			if !reModifier.MatchString(sc.Modifiers[j]) {
				vs.add(fmt.Sprintf("%smodifiers[%d]", f, j), "modifier.pattern", "2 letters or digits")
			}
		}
		if sc.RateCents < 0 {
			vs.add(f+"rate_cents", "rate_cents.gte_0", "a rate is never negative")
		}
		switch {
		case sc.MinMinutes < 0 || sc.MinMinutes > 1440:
			vs.add(f+"min_minutes", "min_minutes.range", "0 to 1440 minutes")
		case sc.MaxMinutes < 0 || sc.MaxMinutes > 1440:
			vs.add(f+"max_minutes", "max_minutes.range", "0 (no bound) to 1440 minutes")
		case sc.MaxMinutes != 0 && sc.MaxMinutes < sc.MinMinutes:
			vs.add(f+"max_minutes", "max_minutes.gte_min", "at least min_minutes, or 0 for no bound")
		}
		c.Codes[i] = sc
	}
	for _, svc := range []string{ServicePerDiem, ServiceGroup, ServiceIndividual, ServiceFamily, ServiceMedication} {
		idx := services[svc]
		for a := 0; a < len(idx); a++ {
			for b := a + 1; b < len(idx); b++ {
				if minutesOverlap(c.Codes[idx[a]], c.Codes[idx[b]]) {
					vs.add(fmt.Sprintf("contract.codes[%d].min_minutes", idx[b]), "codes.minutes_overlap",
						fmt.Sprintf("overlaps the minutes of codes[%d] of the same service", idx[a]))
				}
			}
		}
	}
	sessions := len(c.Codes) - len(services[ServicePerDiem])
	switch c.Mode {
	case ModePerDiem:
		if len(services[ServicePerDiem]) == 0 {
			vs.add("contract.codes", "codes.per_diem_required", "a per-diem contract needs a per-diem code")
		}
		if c.BelowMinimum == BelowBillPerService && sessions == 0 {
			vs.add("contract.codes", "codes.below_minimum_per_service", "billing per service below the minimum needs session codes")
		}
	case ModePerService:
		if sessions == 0 {
			vs.add("contract.codes", "codes.per_service_required", "a per-service contract needs a code for each service it bills")
		}
		if len(services[ServicePerDiem]) > 0 {
			vs.add("contract.codes", "codes.per_diem_in_per_service", "a per-service contract bills sessions, not days")
		}
	}
	return c, vs.err()
}

// SameContract reports whether two validated contracts say the same thing.
func SameContract(a, b Contract) bool { return reflect.DeepEqual(a, b) }

// minutesOverlap reports whether two codes' inclusive minute ranges share a minute.
func minutesOverlap(a, b ServiceCode) bool {
	hi := func(c ServiceCode) int32 {
		if c.MaxMinutes == 0 {
			return 1 << 30
		}
		return c.MaxMinutes
	}
	return a.MinMinutes <= hi(b) && b.MinMinutes <= hi(a)
}

// EffectiveOverlap reports whether two contracts (valid dates) are both effective on some day.
// "" for EffectiveTo is open-ended; ISO dates compare as strings.
func EffectiveOverlap(a, b Contract) bool {
	endsAfter := func(to, from string) bool { return to == "" || to >= from }
	return endsAfter(a.EffectiveTo, b.EffectiveFrom) && endsAfter(b.EffectiveTo, a.EffectiveFrom)
}

// CheckNoOverlap returns an ErrConflict if c is effective on a day another contract of the
// same payer and clinic (in others; c itself is skipped by id) is effective.
func CheckNoOverlap(c Contract, others []Contract) error {
	for _, o := range others {
		if o.ID != c.ID && o.PayerID == c.PayerID && o.ClinicID == c.ClinicID && EffectiveOverlap(c, o) {
			return fmt.Errorf("%w: contract %s of the same payer and clinic is effective on some of the same days", ErrConflict, o.ID)
		}
	}
	return nil
}

// ValidateSlidingScale checks the tiers: max_fpl_percent strictly increasing (1..1000),
// discounts 0..100 and never rising as income rises. Fields are "tiers[i].*".
func ValidateSlidingScale(tiers []Tier) error {
	var vs violations
	if len(tiers) == 0 {
		vs.add("tiers", "tiers.min_items", "at least one tier")
	}
	for i, t := range tiers {
		f := fmt.Sprintf("tiers[%d].", i)
		if t.MaxFPLPercent < 1 || t.MaxFPLPercent > 1000 {
			vs.add(f+"max_fpl_percent", "max_fpl_percent.range", "1 to 1000 percent of the poverty level")
		} else if i > 0 && t.MaxFPLPercent <= tiers[i-1].MaxFPLPercent {
			vs.add(f+"max_fpl_percent", "max_fpl_percent.increasing", "strictly greater than the previous tier's")
		}
		if t.DiscountPercent < 0 || t.DiscountPercent > 100 {
			vs.add(f+"discount_percent", "discount_percent.range", "0 to 100 percent")
		} else if i > 0 && t.DiscountPercent > tiers[i-1].DiscountPercent {
			vs.add(f+"discount_percent", "discount_percent.non_increasing", "no more than the previous tier's: discounts fall as income rises")
		}
	}
	return vs.err()
}
