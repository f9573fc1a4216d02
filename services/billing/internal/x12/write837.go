package x12

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Implementation guide versions of the transactions Write837 writes and ParseERA reads.
const (
	ImplProfessional  = "005010X222A1"
	ImplInstitutional = "005010X223A2"
	ImplRemittance    = "005010X221A1"
)

// FieldError is one problem of a ClaimFile: the field (a Go path such as
// "Claims[0].Lines[1].ProcedureCode") and the rule it breaks. It never holds the value.
type FieldError struct {
	Field string
	Rule  string
}

// ValidationError lists every problem that keeps Write837 from writing a file.
type ValidationError struct {
	Problems []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Field + ": " + p.Rule
	}
	return "x12: invalid claim file: " + strings.Join(parts, "; ")
}

// Validation rules named in FieldError.Rule.
const (
	RuleRequired   = "required"
	RuleSeparator  = "must not contain the separators * : ^ ~"
	RuleCharacters = "printable ASCII only"
	RuleMaxLength  = "too long"
	RuleFormat     = "format"
	RuleOneOf      = "not an allowed value"
	RulePositive   = "must be positive"
	RuleClaimSum   = "must equal the sum of the line charges"
)

var (
	reNPI       = regexp.MustCompile(`^[0-9]{10}$`)
	reTaxID     = regexp.MustCompile(`^[0-9]{9}$`)
	reTaxonomy  = regexp.MustCompile(`^[0-9A-Z]{9}X$`)
	reState     = regexp.MustCompile(`^[A-Z]{2}$`)
	reZip       = regexp.MustCompile(`^[0-9]{5}([0-9]{4})?$`)
	reICD10     = regexp.MustCompile(`^[A-Z][0-9][0-9A-Z]{1,5}$`)
	reProcedure = regexp.MustCompile(`^[A-Z0-9]{5}$`)
	reModifier  = regexp.MustCompile(`^[A-Z0-9]{2}$`)
	reRevenue   = regexp.MustCompile(`^[0-9]{4}$`)
	reTwoDigits = regexp.MustCompile(`^[0-9]{2}$`)
	reOneDigit  = regexp.MustCompile(`^[0-9A-Z]$`)
)

// Claim filing indicator codes (SBR09) of 5010.
var filingIndicators = []string{"11", "12", "13", "14", "15", "16", "17", "AM", "BL", "CH", "CI",
	"DS", "FI", "HM", "LM", "MA", "MB", "MC", "OF", "TV", "VA", "WC", "ZZ"}

// Write837 writes one claim file: an interchange (ISA/IEA) with one functional group (GS/GE,
// GS06 = ISA13) and one 837 transaction (ST02 0001) holding the billing provider (HL 20) and
// one subscriber HL (22) per claim. Separators are * : ^ and ~, one segment per line. Invalid
// input is a *ValidationError listing every problem; nothing is written then.
func Write837(f ClaimFile) ([]byte, error) {
	f.Claims = slices.Clone(f.Claims)
	if err := validateClaimFile(&f); err != nil {
		return nil, err
	}
	impl := ImplProfessional
	if f.Kind == Institutional {
		impl = ImplInstitutional
	}
	at := f.CreatedAt.UTC()
	ctrl := strconv.FormatInt(f.InterchangeControlNumber, 10)

	var b strings.Builder
	put := func(elems ...string) {
		b.WriteString(strings.Join(trimTrailing(elems), "*"))
		b.WriteString("~\n")
	}
	// ISA is fixed width: 106 characters with its terminator.
	fmt.Fprintf(&b, "ISA*00*%-10s*00*%-10s*ZZ*%-15s*ZZ*%-15s*%s*%s*^*00501*%09d*0*%s*:~\n",
		"", "", f.Submitter.ID, f.Receiver.ID, at.Format("060102"), at.Format("1504"),
		f.InterchangeControlNumber, f.Usage)
	put("GS", "HC", f.Submitter.ID, f.Receiver.ID, at.Format("20060102"), at.Format("1504"), ctrl, "X", impl)

	var tx [][]string
	seg := func(elems ...string) { tx = append(tx, elems) }
	seg("ST", "837", "0001", impl)
	seg("BHT", "0019", "00", ctrl, at.Format("20060102"), at.Format("1504"), "CH")
	seg("NM1", "41", "2", f.Submitter.Name, "", "", "", "", "46", f.Submitter.ID)
	seg("PER", "IC", f.Submitter.ContactName, "TE", f.Submitter.ContactPhone)
	seg("NM1", "40", "2", f.Receiver.Name, "", "", "", "", "46", f.Receiver.ID)
	bp := f.BillingProvider
	seg("HL", "1", "", "20", "1")
	if bp.Taxonomy != "" {
		seg("PRV", "BI", "PXC", bp.Taxonomy)
	}
	seg("NM1", "85", "2", bp.Name, "", "", "", "", "XX", bp.NPI)
	seg("N3", bp.AddressLine)
	seg("N4", bp.City, bp.State, bp.Zip)
	seg("REF", "EI", bp.TaxID)
	for i, c := range f.Claims {
		seg("HL", strconv.Itoa(i+2), "1", "22", "0")
		seg("SBR", "P", "18", c.GroupNumber, "", "", "", "", "", f.ClaimFilingIndicator)
		seg("NM1", "IL", "1", c.FamilyName, c.GivenName, "", "", "", "MI", c.MemberID)
		if c.AddressLine != "" {
			seg("N3", c.AddressLine)
			seg("N4", c.City, c.State, c.Zip)
		}
		seg("DMG", "D8", strings.ReplaceAll(c.DateOfBirth, "-", ""), c.Gender)
		seg("NM1", "PR", "2", f.Payer.Name, "", "", "", "", "PI", f.Payer.ID)
		tx = append(tx, claimSegments(f.Kind, c)...)
	}
	seg("SE", strconv.Itoa(len(tx)+1), "0001")
	for _, s := range tx {
		put(s...)
	}
	put("GE", "1", ctrl)
	put("IEA", "1", fmt.Sprintf("%09d", f.InterchangeControlNumber))
	return []byte(b.String()), nil
}

// claimSegments writes loop 2300 and its 2400 lines.
func claimSegments(kind ClaimKind, c Claim) [][]string {
	var out [][]string
	seg := func(elems ...string) { out = append(out, elems) }
	if kind == Professional {
		seg("CLM", c.ControlNumber, FormatCents(c.TotalCents), "", "", c.FacilityCode+":B:"+c.FrequencyCode, "Y", "A", "Y", "Y")
	} else {
		// CLM06 (provider signature) is not used on 837I.
		seg("CLM", c.ControlNumber, FormatCents(c.TotalCents), "", "", c.FacilityCode+":A:"+c.FrequencyCode, "", "A", "Y", "Y")
		from, to := c.Lines[0].ServiceDate, c.Lines[0].ServiceDate
		for _, l := range c.Lines {
			from, to = min(from, l.ServiceDate), max(to, l.ServiceDate)
		}
		seg("DTP", "434", "RD8", d8(from)+"-"+d8(to))
		seg("CL1", "", c.PointOfOrigin, c.PatientStatus)
	}
	if c.PriorAuthorization != "" {
		seg("REF", "G1", c.PriorAuthorization)
	}
	if c.FrequencyCode == "7" || c.FrequencyCode == "8" {
		seg("REF", "F8", c.OriginalReference)
	}
	hi := []string{"HI", "ABK:" + c.Diagnoses[0]}
	if kind == Professional {
		for _, d := range c.Diagnoses[1:] {
			hi = append(hi, "ABF:"+d)
		}
		out = append(out, hi)
	} else {
		out = append(out, hi)
		for chunk := range slices.Chunk(c.Diagnoses[1:], 12) {
			other := []string{"HI"}
			for _, d := range chunk {
				other = append(other, "ABF:"+d)
			}
			out = append(out, other)
		}
	}
	for i, l := range c.Lines {
		seg("LX", strconv.Itoa(i+1))
		proc := ""
		if l.ProcedureCode != "" {
			proc = strings.Join(append([]string{"HC", l.ProcedureCode}, l.Modifiers...), ":")
		}
		if kind == Professional {
			seg("SV1", proc, FormatCents(l.ChargeCents), "UN", strconv.Itoa(l.Units), "", "", "1")
		} else {
			seg("SV2", l.RevenueCode, proc, FormatCents(l.ChargeCents), "UN", strconv.Itoa(l.Units))
		}
		seg("DTP", "472", "D8", d8(l.ServiceDate))
		seg("REF", "6R", l.ControlNumber)
	}
	return out
}

func d8(date string) string { return strings.ReplaceAll(date, "-", "") }

// trimTrailing drops empty trailing elements (X12 does not end a segment with separators).
func trimTrailing(e []string) []string {
	for len(e) > 1 && e[len(e)-1] == "" {
		e = e[:len(e)-1]
	}
	return e
}

type checker struct{ problems []FieldError }

func (c *checker) add(field, rule string) { c.problems = append(c.problems, FieldError{field, rule}) }

// text checks a free-text element: present when required, printable ASCII, no separator, at
// most max characters. It reports at most one problem per field.
func (c *checker) text(field, v string, required bool, maxLen int) bool {
	switch {
	case v == "":
		if required {
			c.add(field, RuleRequired)
		}
		return !required
	case strings.ContainsAny(v, "*:^~\r\n"):
		c.add(field, RuleSeparator)
	case strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0:
		c.add(field, RuleCharacters)
	case strings.TrimSpace(v) != v:
		c.add(field, RuleFormat)
	case len(v) > maxLen:
		c.add(field, RuleMaxLength)
	default:
		return true
	}
	return false
}

// pattern checks a coded element against re.
func (c *checker) pattern(field, v string, required bool, re *regexp.Regexp) {
	switch {
	case v == "":
		if required {
			c.add(field, RuleRequired)
		}
	case strings.ContainsAny(v, "*:^~\r\n"):
		c.add(field, RuleSeparator)
	case !re.MatchString(v):
		c.add(field, RuleFormat)
	}
}

func (c *checker) date(field, v string) {
	if v == "" {
		c.add(field, RuleRequired)
		return
	}
	if _, err := time.Parse("2006-01-02", v); err != nil {
		c.add(field, RuleFormat)
	}
}

// validateClaimFile checks f and fills the documented defaults into f.Claims (a copy).
func validateClaimFile(f *ClaimFile) error {
	var c checker
	if f.Kind != Professional && f.Kind != Institutional {
		c.add("Kind", RuleOneOf)
	}
	if f.InterchangeControlNumber < 1 || f.InterchangeControlNumber > 999999999 {
		c.add("InterchangeControlNumber", "must be 1 to 999999999")
	}
	if f.Usage != "P" && f.Usage != "T" {
		c.add("Usage", RuleOneOf)
	}
	if f.CreatedAt.IsZero() {
		c.add("CreatedAt", RuleRequired)
	}
	c.text("Submitter.Name", f.Submitter.Name, true, 60)
	c.text("Submitter.ID", f.Submitter.ID, true, 15)
	c.text("Submitter.ContactName", f.Submitter.ContactName, false, 60)
	c.text("Submitter.ContactPhone", f.Submitter.ContactPhone, true, 256)
	c.text("Receiver.Name", f.Receiver.Name, true, 60)
	c.text("Receiver.ID", f.Receiver.ID, true, 15)
	bp := f.BillingProvider
	c.text("BillingProvider.Name", bp.Name, true, 60)
	c.pattern("BillingProvider.NPI", bp.NPI, true, reNPI)
	c.pattern("BillingProvider.TaxID", bp.TaxID, true, reTaxID)
	c.pattern("BillingProvider.Taxonomy", bp.Taxonomy, false, reTaxonomy)
	c.text("BillingProvider.AddressLine", bp.AddressLine, true, 55)
	c.text("BillingProvider.City", bp.City, true, 30)
	c.pattern("BillingProvider.State", bp.State, true, reState)
	c.pattern("BillingProvider.Zip", bp.Zip, true, reZip)
	c.text("Payer.Name", f.Payer.Name, true, 60)
	c.text("Payer.ID", f.Payer.ID, true, 80)
	if f.ClaimFilingIndicator == "" {
		c.add("ClaimFilingIndicator", RuleRequired)
	} else if !slices.Contains(filingIndicators, f.ClaimFilingIndicator) {
		c.add("ClaimFilingIndicator", RuleOneOf)
	}
	if len(f.Claims) == 0 {
		c.add("Claims", RuleRequired)
	}
	for i := range f.Claims {
		validateClaim(&c, f.Kind, fmt.Sprintf("Claims[%d]", i), &f.Claims[i])
	}
	if len(c.problems) > 0 {
		return &ValidationError{Problems: c.problems}
	}
	return nil
}

func validateClaim(c *checker, kind ClaimKind, at string, cl *Claim) {
	if cl.FrequencyCode == "" {
		cl.FrequencyCode = "1"
	}
	if cl.FacilityCode == "" {
		cl.FacilityCode = "11"
		if kind == Institutional {
			cl.FacilityCode = "89"
		}
	}
	if cl.Gender == "" {
		cl.Gender = "U"
	}
	if cl.PatientStatus == "" {
		cl.PatientStatus = "30"
	}
	c.text(at+".ControlNumber", cl.ControlNumber, true, 38)
	switch cl.FrequencyCode {
	case "1":
	case "7", "8":
		c.text(at+".OriginalReference", cl.OriginalReference, true, 50)
	default:
		c.add(at+".FrequencyCode", RuleOneOf)
	}
	c.pattern(at+".FacilityCode", cl.FacilityCode, true, reTwoDigits)
	c.text(at+".MemberID", cl.MemberID, true, 80)
	c.text(at+".GroupNumber", cl.GroupNumber, false, 50)
	c.text(at+".GivenName", cl.GivenName, true, 35)
	c.text(at+".FamilyName", cl.FamilyName, true, 60)
	c.date(at+".DateOfBirth", cl.DateOfBirth)
	if !slices.Contains([]string{"F", "M", "U"}, cl.Gender) {
		c.add(at+".Gender", RuleOneOf)
	}
	if cl.AddressLine != "" {
		c.text(at+".AddressLine", cl.AddressLine, true, 55)
		c.text(at+".City", cl.City, true, 30)
		c.pattern(at+".State", cl.State, true, reState)
		c.pattern(at+".Zip", cl.Zip, true, reZip)
	}
	if kind == Institutional {
		c.pattern(at+".PointOfOrigin", cl.PointOfOrigin, false, reOneDigit)
		c.pattern(at+".PatientStatus", cl.PatientStatus, true, reTwoDigits)
	}
	c.text(at+".PriorAuthorization", cl.PriorAuthorization, false, 50)
	maxDiagnoses := 12
	if kind == Institutional {
		maxDiagnoses = 25
	}
	switch {
	case len(cl.Diagnoses) == 0:
		c.add(at+".Diagnoses", RuleRequired)
	case len(cl.Diagnoses) > maxDiagnoses:
		c.add(at+".Diagnoses", fmt.Sprintf("at most %d", maxDiagnoses))
	}
	for j, d := range cl.Diagnoses {
		c.pattern(fmt.Sprintf("%s.Diagnoses[%d]", at, j), d, true, reICD10)
	}
	maxLines := 50
	if kind == Institutional {
		maxLines = 999
	}
	switch {
	case len(cl.Lines) == 0:
		c.add(at+".Lines", RuleRequired)
	case len(cl.Lines) > maxLines:
		c.add(at+".Lines", fmt.Sprintf("at most %d", maxLines))
	}
	var sum int64
	for j, l := range cl.Lines {
		lat := fmt.Sprintf("%s.Lines[%d]", at, j)
		c.text(lat+".ControlNumber", l.ControlNumber, true, 50)
		c.pattern(lat+".ProcedureCode", l.ProcedureCode, kind == Professional, reProcedure)
		if kind == Institutional {
			c.pattern(lat+".RevenueCode", l.RevenueCode, true, reRevenue)
		}
		if len(l.Modifiers) > 4 {
			c.add(lat+".Modifiers", "at most 4")
		}
		if len(l.Modifiers) > 0 && l.ProcedureCode == "" {
			c.add(lat+".Modifiers", "need a procedure code")
		}
		for k, m := range l.Modifiers {
			c.pattern(fmt.Sprintf("%s.Modifiers[%d]", lat, k), m, true, reModifier)
		}
		if l.Units < 1 || l.Units > 99999 {
			c.add(lat+".Units", "must be 1 to 99999")
		}
		if l.ChargeCents <= 0 {
			c.add(lat+".ChargeCents", RulePositive)
		}
		c.date(lat+".ServiceDate", l.ServiceDate)
		sum += l.ChargeCents
	}
	if cl.TotalCents <= 0 {
		c.add(at+".TotalCents", RulePositive)
	} else if len(cl.Lines) > 0 && sum != cl.TotalCents {
		c.add(at+".TotalCents", RuleClaimSum)
	}
}

// ValidateClaim checks one claim of a file of kind as Write837 does, so that a caller can set
// aside a claim whose data cannot be written instead of failing the whole file. Fields are
// named relative to the claim, e.g. "MemberID" or "Lines[0].Units"; values never appear.
func ValidateClaim(kind ClaimKind, cl Claim) []FieldError {
	var c checker
	validateClaim(&c, kind, "", &cl)
	for i := range c.problems {
		c.problems[i].Field = strings.TrimPrefix(c.problems[i].Field, ".")
	}
	return c.problems
}
