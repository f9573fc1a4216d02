package domain

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Reasons a claim run holds a charge (charges.hold_reason). "consent" is shared with the
// charges area, whose consent-granted consumer releases it.
const (
	ClaimHoldConsent      = "consent"
	ClaimHoldIdentity     = "patient identity"
	ClaimHoldDiagnosis    = "diagnosis"
	ClaimHoldCoverage     = "coverage"
	ClaimHoldContract     = "contract"
	ClaimHoldTimelyFiling = "timely filing"
	// ClaimHoldData prefixes the hold of a claim whose data cannot be written to an 837, e.g.
	// "claim data: MemberID too long" (the field and the rule, never the value). Each claim run
	// tries such charges again, so fixing the data (coverage, identity, diagnoses) releases them.
	ClaimHoldData = "claim data"
)

// Claim frequency codes (CLM05-3).
const (
	FrequencyOriginal    = "1"
	FrequencyReplacement = "7"
	FrequencyVoid        = "8"
)

// Statuses of a claim corrected after it went out (claims.status; the others are in remit.go).
const (
	ClaimReplaced = "replaced" // a replacement claim (frequency 7) replaced it
	ClaimVoided   = "voided"   // a void claim (frequency 8) cancelled it
)

// BillingProvider is a clinic's billing provider on claims (loop 2010AA).
type BillingProvider struct {
	ClinicID    string
	Name        string
	NPI         string
	TaxID       string
	Taxonomy    string
	AddressLine string
	City        string
	State       string
	PostalCode  string
}

// PatientIdentity is the identity a claim carries for its patient (the subscriber). It is PHI:
// never logged, never in events.
type PatientIdentity struct {
	PatientID     string
	GivenName     string
	FamilyName    string
	DateOfBirth   string // YYYY-MM-DD
	SourceEventID string
	RecordedAt    time.Time
}

var (
	reNPI       = regexp.MustCompile(`^[0-9]{10}$`)
	reTaxID     = regexp.MustCompile(`^[0-9]{9}$`)
	reTaxonomy  = regexp.MustCompile(`^[0-9]{3}[0-9A-Z]{6}X$`)
	reState     = regexp.MustCompile(`^[A-Z]{2}$`)
	rePostal    = regexp.MustCompile(`^[0-9]{5}([0-9]{4})?$`)
	reICD10CM   = regexp.MustCompile(`^[A-TV-Z][0-9][0-9A-Z]{1,5}$`)
	reX12Unsafe = regexp.MustCompile(`[*:^~\r\n]`)
)

// NPIValid reports whether npi is 10 digits whose last is the Luhn check digit computed with
// the 80840 prefix (the card-issuer prefix of US health identifiers).
func NPIValid(npi string) bool {
	if !reNPI.MatchString(npi) {
		return false
	}
	digits := "80840" + npi
	sum := 0
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if (len(digits)-1-i)%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// ValidateBillingProvider normalizes p and checks it (fields "provider.*"). Text that would
// break an X12 file (its separators) is refused.
func ValidateBillingProvider(p BillingProvider) (BillingProvider, error) {
	var vs violations
	clinic, err := ParseID(p.ClinicID)
	if err != nil {
		vs.add("provider.clinic_id", "clinic_id.uuid", "must be a UUID")
	}
	p.ClinicID = clinic
	p.Name, p.AddressLine, p.City = strings.TrimSpace(p.Name), strings.TrimSpace(p.AddressLine), strings.TrimSpace(p.City)
	p.State, p.Taxonomy = strings.ToUpper(strings.TrimSpace(p.State)), strings.ToUpper(strings.TrimSpace(p.Taxonomy))
	text := func(field, value string, lo, hi int) {
		switch {
		case len(value) < lo || len(value) > hi:
			vs.add("provider."+field, field+".length", fmt.Sprintf("%d to %d characters", lo, hi))
		case reX12Unsafe.MatchString(value):
			vs.add("provider."+field, field+".x12_safe", "no * : ^ ~ or line breaks")
		}
	}
	text("name", p.Name, 1, 60)
	switch {
	case !reNPI.MatchString(p.NPI):
		vs.add("provider.npi", "npi.pattern", "10 digits")
	case !NPIValid(p.NPI):
		vs.add("provider.npi", "npi.check_digit", "the last digit must be the NPI's Luhn check digit")
	}
	if !reTaxID.MatchString(p.TaxID) {
		vs.add("provider.tax_id", "tax_id.pattern", "9 digits, no dash")
	}
	if p.Taxonomy != "" && !reTaxonomy.MatchString(p.Taxonomy) {
		vs.add("provider.taxonomy_code", "taxonomy_code.pattern", "10 characters: 3 digits, 6 digits or letters, then X")
	}
	text("address_line", p.AddressLine, 1, 55)
	text("city", p.City, 2, 30)
	if !reState.MatchString(p.State) {
		vs.add("provider.state", "state.pattern", "a two-letter state code")
	}
	if !rePostal.MatchString(p.PostalCode) {
		vs.add("provider.postal_code", "postal_code.pattern", "5 or 9 digits, no dash")
	}
	return p, vs.err()
}

// ValidateDiagnoses normalizes ICD-10-CM codes (upper case, the dot dropped) and checks them:
// 1 to 12 codes, each well formed, no repeats (fields "codes[i]").
func ValidateDiagnoses(codes []string) ([]string, error) {
	var vs violations
	out := make([]string, len(codes))
	if len(codes) < 1 || len(codes) > 12 {
		vs.add("codes", "codes.count", "1 to 12 diagnosis codes")
	}
	for i, c := range codes {
		c = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(c), ".", ""))
		out[i] = c
		f := fmt.Sprintf("codes[%d]", i)
		switch {
		case !reICD10CM.MatchString(c):
			vs.add(f, "code.icd10cm", "an ICD-10-CM code: a letter other than U, a digit, then 1 to 5 letters or digits")
		case slices.Contains(out[:i], c):
			vs.add(f, "code.unique", "listed twice")
		}
	}
	return out, vs.err()
}

// ClaimCharge is a ready charge as a claim run sees it, with everything its claim needs
// (joined from the contract, payer, coverage, consent, identity, diagnoses and the claim of
// the charge it replaces). Dates are "YYYY-MM-DD".
type ClaimCharge struct {
	ID, PatientID, ClinicID, PayerID string
	ContractID, CoverageID           string // "" when absent
	ServiceDate                      string
	ProcedureCode, RevenueCode       string
	Modifiers                        []string
	Units                            int
	AmountCents                      int64
	// From the contract ("" when the charge has none).
	ClaimType        string
	TimelyFilingDays int
	// From the coverage.
	MemberID, GroupNumber string
	// The valid payment consent ("" when none).
	ConsentID string
	// The patient's identity (HasIdentity false when billing has none).
	HasIdentity bool
	Identity    PatientIdentity
	Diagnoses   []string
	// REF*G1, the authorization number the charge used.
	PriorAuthorization string
	// Set when the charge bills again the unit of a voided charge of a claim that went out and
	// is not corrected yet: that claim, and the reference its correction carries (its payer
	// claim number, or else its control number). Such a charge goes on that claim's correction.
	ReplacesClaimID   string
	OriginalReference string
	// The charge's status ("ready" for a charge a run locked; a corrected claim's lines also
	// carry submitted, paid, denied or void charges).
	Status string
}

// ClaimHold returns why c cannot go on a claim today (UTC date), or "" if it can. The checks
// run in a fixed order and the first that fails is the reason.
func ClaimHold(c ClaimCharge, today time.Time) string {
	if reason := CorrectionHold(c); reason != "" {
		return reason
	}
	if !WithinTimelyFiling(c.ServiceDate, c.TimelyFilingDays, today) {
		return ClaimHoldTimelyFiling
	}
	return ""
}

// CorrectionHold returns why a claim carrying c cannot be sent again as a correction, or "":
// ClaimHold's checks but timely filing (a correction follows a claim filed in time).
func CorrectionHold(c ClaimCharge) string {
	switch {
	case c.ConsentID == "":
		return ClaimHoldConsent
	case !c.HasIdentity:
		return ClaimHoldIdentity
	case len(c.Diagnoses) == 0:
		return ClaimHoldDiagnosis
	case c.CoverageID == "" || strings.TrimSpace(c.MemberID) == "":
		return ClaimHoldCoverage
	case c.ContractID == "" || c.ClaimType == "":
		return ClaimHoldContract
	}
	return ""
}

// WithinTimelyFiling reports whether a claim for a service on serviceDate may still be filed
// on today: service date + days >= today (dates compared in UTC). An unreadable date is late.
func WithinTimelyFiling(serviceDate string, days int, today time.Time) bool {
	d, err := time.Parse(time.DateOnly, serviceDate)
	if err != nil {
		return false
	}
	t := time.Date(today.UTC().Year(), today.UTC().Month(), today.UTC().Day(), 0, 0, 0, 0, time.UTC)
	return !d.AddDate(0, 0, days).Before(t)
}

// ClaimChargeRef names a charge whose status a claims use case changed.
type ClaimChargeRef struct{ ID, PatientID, ClinicID string }

// ClaimDraft is one claim to write: one patient's charges for one payer, contract, coverage and
// authorization, or the correction (frequency 7 or 8) of one claim that went out.
type ClaimDraft struct {
	ID                 string
	ControlNumber      string
	PatientID          string
	PayerID            string
	ContractID         string
	CoverageID         string
	ClaimType          string
	ConsentID          string
	FrequencyCode      string
	ReplacesClaimID    string // the claim a correction corrects
	OriginalReference  string // its REF*F8
	PriorAuthorization string
	Charges            []ClaimCharge // by service date, then id
	TotalCents         int64
}

// ClaimDates returns the distinct service dates of d's charges, in order.
func (d ClaimDraft) ClaimDates() []string {
	var out []string
	for _, c := range d.Charges {
		if !slices.Contains(out, c.ServiceDate) {
			out = append(out, c.ServiceDate)
		}
	}
	slices.Sort(out)
	return out
}

// LineControlNumber is the REF*6R of line n (1-based) of the claim with that control number.
func LineControlNumber(claimControl string, n int) string {
	return fmt.Sprintf("%s-%d", claimControl, n)
}

// ClaimControlNumber derives CLM01 from a claim id (a UUIDv7): "T" and 19 upper-case hex
// digits, its 48-bit millisecond time, its 12-bit sub-millisecond sequence and 16 bits that
// follow (the version nibble is dropped). 20 characters, the 837's limit; unique per process
// by the time and sequence, and the claims table's unique key guards the rest.
func ClaimControlNumber(claimID string) string {
	hex := strings.ToUpper(strings.ReplaceAll(claimID, "-", ""))
	if len(hex) != 32 {
		return ""
	}
	return "T" + hex[0:12] + hex[13:20]
}

// GroupClaims groups claimable charges into original claims (frequency 1): one per patient,
// payer, contract, coverage and authorization number. newID names each claim. Claims come out
// in a stable order (payer, patient, first date), their charges by date. (A charge that bills
// again a corrected unit goes on its claim's correction instead: BuildCorrection.)
func GroupClaims(charges []ClaimCharge, newID func() string) []ClaimDraft {
	type key struct{ patient, payer, contract, coverage, auth string }
	sorted := slices.Clone(charges)
	slices.SortStableFunc(sorted, func(a, b ClaimCharge) int {
		return cmp.Or(cmp.Compare(a.PayerID, b.PayerID), cmp.Compare(a.PatientID, b.PatientID),
			cmp.Compare(a.ServiceDate, b.ServiceDate), cmp.Compare(a.ID, b.ID))
	})
	index := map[key]int{}
	var out []ClaimDraft
	for _, c := range sorted {
		k := key{c.PatientID, c.PayerID, c.ContractID, c.CoverageID, c.PriorAuthorization}
		i, ok := index[k]
		if !ok {
			id := newID()
			i = len(out)
			index[k] = i
			out = append(out, ClaimDraft{ID: id, ControlNumber: ClaimControlNumber(id), PatientID: c.PatientID, PayerID: c.PayerID,
				ContractID: c.ContractID, CoverageID: c.CoverageID, ClaimType: c.ClaimType, ConsentID: c.ConsentID,
				FrequencyCode: FrequencyOriginal, PriorAuthorization: c.PriorAuthorization})
		}
		out[i].Charges = append(out[i].Charges, c)
		out[i].TotalCents += c.AmountCents
	}
	return out
}

// ToCorrect is a claim that went out and must be corrected: a charge of one of its lines was
// voided since (replaced, or no longer billable), and no correction was sent for it yet.
type ToCorrect struct {
	ID, ControlNumber, PatientID, PayerID, ContractID, CoverageID, ClaimType string
	// REF*F8 of its correction: the payer's claim number, or else its control number.
	Reference string
	// Its lines as sent (amounts, codes and dates of the claim line), each with its charge's
	// current status and what a claim needs about it; by line number.
	Lines []ClaimCharge
	// Charges not on any claim yet (ready or held) that bill again the unit of one of its voided
	// lines: its correction waits until each is claimable in the same run.
	Pending []string
}

// BuildCorrection builds the correction of claim o with replacing, the claimable charges of
// this run that bill again units of o's voided lines. The correction carries every line o
// should now have: its lines whose charge is still valid (submitted, paid or denied) and the
// replacing charges, as a replacement (frequency 7); with none left, it voids o (frequency 8)
// repeating o's lines as sent. Both name o by REF*F8. ok is false when the correction must
// wait: a pending charge is not among replacing (held, or locked by another run), or the claim
// data (consent, identity, diagnoses, coverage, contract) is missing; reason says which.
func BuildCorrection(o ToCorrect, replacing []ClaimCharge, newID func() string) (d ClaimDraft, ok bool, reason string) {
	for _, id := range o.Pending {
		if !slices.ContainsFunc(replacing, func(c ClaimCharge) bool { return c.ID == id }) {
			return d, false, "a charge replacing a line waits"
		}
	}
	var lines []ClaimCharge
	for _, l := range o.Lines {
		switch l.Status {
		case ChargeSubmitted, ChargePaid, ChargeDenied:
			lines = append(lines, l)
		}
	}
	lines = append(lines, replacing...)
	freq := FrequencyReplacement
	if len(lines) == 0 {
		freq, lines = FrequencyVoid, slices.Clone(o.Lines)
	}
	if len(lines) == 0 {
		return d, false, "no lines"
	}
	slices.SortStableFunc(lines, func(a, b ClaimCharge) int {
		return cmp.Or(cmp.Compare(a.ServiceDate, b.ServiceDate), cmp.Compare(a.ID, b.ID))
	})
	if reason := CorrectionHold(lines[0]); reason != "" {
		return d, false, reason
	}
	id := newID()
	d = ClaimDraft{ID: id, ControlNumber: ClaimControlNumber(id), PatientID: o.PatientID, PayerID: o.PayerID,
		ContractID: o.ContractID, CoverageID: o.CoverageID, ClaimType: o.ClaimType, ConsentID: lines[0].ConsentID,
		FrequencyCode: freq, ReplacesClaimID: o.ID, OriginalReference: o.Reference, Charges: lines}
	for _, c := range lines {
		if d.PriorAuthorization == "" {
			d.PriorAuthorization = c.PriorAuthorization
		}
		d.TotalCents += c.AmountCents
	}
	return d, true, ""
}

// CorrectedStatus is the status of a claim once its correction d went out.
func CorrectedStatus(d ClaimDraft) string {
	if d.FrequencyCode == FrequencyVoid {
		return ClaimVoided
	}
	return ClaimReplaced
}

// DisclosureDescription says what a claim disclosed in general terms: the dates of service,
// never codes or diagnoses.
func DisclosureDescription(dates []string) string {
	return "claim for services on " + strings.Join(dates, ", ")
}

// PayerFilingIndicator is the claim filing indicator (SBR09) of a payer kind.
func PayerFilingIndicator(kind string) string {
	switch kind {
	case KindMedicaid:
		return "MC"
	case KindMedicare:
		return "MB"
	default:
		return "CI"
	}
}

// ClaimFile is a stored 837 file. Content is empty in listings.
type ClaimFile struct {
	ID, ClinicID, PayerID, ClaimType string
	InterchangeControlNumber         int64
	ClaimCount, LineCount            int
	TotalCents                       int64
	CreatedAt                        time.Time
	Content                          string
}

// FileName is the download name of f: "837P-<ISA13>.x12".
func (f ClaimFile) FileName() string {
	return fmt.Sprintf("%s-%09d.x12", f.ClaimType, f.InterchangeControlNumber)
}

// Claim is a stored claim with its lines.
type Claim struct {
	ID, FileID, ControlNumber, ClinicID, PatientID, PayerID, ContractID string
	ClaimType, FrequencyCode, ReplacesClaimID, Status                   string
	CorrectedByClaimID                                                  string
	TotalCents                                                          int64
	FirstServiceDate, LastServiceDate                                   string
	SubmittedAt                                                         time.Time
	Lines                                                               []ClaimLine
}

// ClaimLine is one stored service line.
type ClaimLine struct {
	LineNumber                                          int
	ChargeID, ControlNumber, ProcedureCode, RevenueCode string
	Modifiers                                           []string
	Units                                               int
	ChargeCents                                         int64
	ServiceDate                                         string
}

// Disclosure is one entry of the accounting of disclosures.
type Disclosure struct {
	ID, PatientID, ClinicID, Recipient, Purpose, ConsentID, ClaimID, Description string
	DisclosedAt                                                                  time.Time
}
