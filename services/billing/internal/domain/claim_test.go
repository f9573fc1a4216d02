package domain

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestNPIValid(t *testing.T) {
	tests := []struct {
		npi  string
		want bool
	}{
		{"1234567893", true}, // the CMS example
		{"1234567890", false},
		{"1245319599", true},
		{"123456789", false},
		{"12345678934", false},
		{"123456789X", false},
	}
	for _, tt := range tests {
		if got := NPIValid(tt.npi); got != tt.want {
			t.Errorf("NPIValid(%q) = %v, want %v", tt.npi, got, tt.want)
		}
	}
}

func TestValidateBillingProvider(t *testing.T) {
	good := BillingProvider{ClinicID: "0190a000-0000-7000-8000-000000000001", Name: "Riverside Health Center",
		NPI: "1234567893", TaxID: "123456789", Taxonomy: "261qr0405x", AddressLine: "1 Main St", City: "Springfield",
		State: "il", PostalCode: "62701"}
	p, err := ValidateBillingProvider(good)
	if err != nil || p.State != "IL" || p.Taxonomy != "261QR0405X" {
		t.Fatalf("good provider: %+v, %v", p, err)
	}
	tests := []struct {
		name string
		edit func(*BillingProvider)
		want []string
	}{
		{"check digit", func(p *BillingProvider) { p.NPI = "1234567890" }, []string{"provider.npi npi.check_digit"}},
		{"npi digits", func(p *BillingProvider) { p.NPI = "12345" }, []string{"provider.npi npi.pattern"}},
		{"tax id dash", func(p *BillingProvider) { p.TaxID = "12-3456789" }, []string{"provider.tax_id tax_id.pattern"}},
		{"separator in name", func(p *BillingProvider) { p.Name = "A*B" }, []string{"provider.name name.x12_safe"}},
		{"zip", func(p *BillingProvider) { p.PostalCode = "6270" }, []string{"provider.postal_code postal_code.pattern"}},
		{"taxonomy", func(p *BillingProvider) { p.Taxonomy = "ABC" }, []string{"provider.taxonomy_code taxonomy_code.pattern"}},
		{"empty taxonomy is fine", func(p *BillingProvider) { p.Taxonomy = "" }, nil},
		{"clinic", func(p *BillingProvider) { p.ClinicID = "x" }, []string{"provider.clinic_id clinic_id.uuid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := good
			tt.edit(&p)
			_, err := ValidateBillingProvider(p)
			if got := violationKeys(err); !slices.Equal(got, tt.want) {
				t.Fatalf("violations = %q, want %q", got, tt.want)
			}
		})
	}
}

func violationKeys(err error) []string {
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var out []string
	for _, v := range ve.Violations {
		out = append(out, v.Field+" "+v.Rule)
	}
	return out
}

func TestValidateDiagnoses(t *testing.T) {
	codes, err := ValidateDiagnoses([]string{"f10.20", "Z63.0"})
	if err != nil || !slices.Equal(codes, []string{"F1020", "Z630"}) {
		t.Fatalf("codes = %q, %v", codes, err)
	}
	tests := []struct {
		codes []string
		want  []string
	}{
		{nil, []string{"codes codes.count"}},
		{[]string{"U071"}, []string{"codes[0] code.icd10cm"}},
		{[]string{"F10"}, nil},
		{[]string{"F1"}, []string{"codes[0] code.icd10cm"}},
		{[]string{"F1020", "F10.20"}, []string{"codes[1] code.unique"}},
	}
	for i, tt := range tests {
		_, err := ValidateDiagnoses(tt.codes)
		if got := violationKeys(err); !slices.Equal(got, tt.want) {
			t.Errorf("%d: violations = %q, want %q", i, got, tt.want)
		}
	}
	var many []string
	for i := range 13 {
		many = append(many, fmt.Sprintf("F1%d", 10+i))
	}
	if got := violationKeys(func() error { _, err := ValidateDiagnoses(many); return err }()); !slices.Equal(got, []string{"codes codes.count"}) {
		t.Errorf("13 codes: %q", got)
	}
}

func ready() ClaimCharge {
	return ClaimCharge{ID: "c1", PatientID: "p1", ClinicID: "k1", PayerID: "medicaid-il", ContractID: "ct1",
		CoverageID: "cv1", ServiceDate: "2026-03-02", ProcedureCode: "H0015", RevenueCode: "0906", Units: 1,
		AmountCents: 25000, ClaimType: ClaimInstitutional, TimelyFilingDays: 90, MemberID: "M1", ConsentID: "cs1",
		HasIdentity: true, Diagnoses: []string{"F1020"}}
}

func TestClaimHold(t *testing.T) {
	today := time.Date(2026, 3, 10, 23, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		edit func(*ClaimCharge)
		want string
	}{
		{"claimable", func(*ClaimCharge) {}, ""},
		{"no consent", func(c *ClaimCharge) { c.ConsentID = ""; c.HasIdentity = false }, ClaimHoldConsent},
		{"no identity", func(c *ClaimCharge) { c.HasIdentity = false; c.Diagnoses = nil }, ClaimHoldIdentity},
		{"no diagnosis", func(c *ClaimCharge) { c.Diagnoses = nil }, ClaimHoldDiagnosis},
		{"no coverage", func(c *ClaimCharge) { c.CoverageID = "" }, ClaimHoldCoverage},
		{"no member id", func(c *ClaimCharge) { c.MemberID = " " }, ClaimHoldCoverage},
		{"no contract", func(c *ClaimCharge) { c.ContractID = "" }, ClaimHoldContract},
		{"last day to file", func(c *ClaimCharge) { c.ServiceDate, c.TimelyFilingDays = "2026-03-01", 9 }, ""},
		{"a day late", func(c *ClaimCharge) { c.ServiceDate, c.TimelyFilingDays = "2026-03-01", 8 }, ClaimHoldTimelyFiling},
		{"unreadable date", func(c *ClaimCharge) { c.ServiceDate = "soon" }, ClaimHoldTimelyFiling},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ready()
			tt.edit(&c)
			if got := ClaimHold(c, today); got != tt.want {
				t.Fatalf("hold = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestClaimControlNumber(t *testing.T) {
	seen := map[string]bool{}
	for range 20000 {
		id := uuid.Must(uuid.NewV7()).String()
		n := ClaimControlNumber(id)
		if len(n) != 20 || n[0] != 'T' {
			t.Fatalf("control number %q of %s", n, id)
		}
		if seen[n] {
			t.Fatalf("duplicate control number %q", n)
		}
		seen[n] = true
		if l := LineControlNumber(n, 12); len(l) > 30 || l != n+"-12" {
			t.Fatalf("line control number %q", l)
		}
	}
	if ClaimControlNumber("not-a-uuid") != "" {
		t.Fatal("a malformed id gave a control number")
	}
}

func TestGroupClaims(t *testing.T) {
	at := func(id, patient, payer, date string, edit func(*ClaimCharge)) ClaimCharge {
		c := ready()
		c.ID, c.PatientID, c.PayerID, c.ServiceDate = id, patient, payer, date
		if edit != nil {
			edit(&c)
		}
		return c
	}
	charges := []ClaimCharge{
		at("a3", "p1", "medicaid-il", "2026-03-04", nil),
		at("a1", "p1", "medicaid-il", "2026-03-02", nil),
		at("b1", "p2", "medicaid-il", "2026-03-02", nil),
		at("a2", "p1", "medicaid-il", "2026-03-03", func(c *ClaimCharge) { c.PriorAuthorization = "AUTH9" }),
		at("c1", "p1", "acme-health", "2026-03-02", func(c *ClaimCharge) { c.ContractID = "ct2" }),
		at("a4", "p1", "medicaid-il", "2026-03-05", func(c *ClaimCharge) { c.CoverageID = "cv2" }),
	}
	n := 0
	drafts := GroupClaims(charges, func() string { n++; return fmt.Sprintf("0190a000-0000-7000-8000-%012d", n) })
	type got struct {
		patient, payer, freq, ref, auth string
		charges                         []string
		total                           int64
	}
	var gs []got
	for _, d := range drafts {
		g := got{d.PatientID, d.PayerID, d.FrequencyCode, d.OriginalReference, d.PriorAuthorization, nil, d.TotalCents}
		for _, c := range d.Charges {
			g.charges = append(g.charges, c.ID)
		}
		gs = append(gs, g)
		if d.ControlNumber != ClaimControlNumber(d.ID) {
			t.Errorf("control number %q of %s", d.ControlNumber, d.ID)
		}
	}
	want := []got{
		{"p1", "acme-health", "1", "", "", []string{"c1"}, 25000},
		{"p1", "medicaid-il", "1", "", "", []string{"a1", "a3"}, 50000},
		{"p1", "medicaid-il", "1", "", "AUTH9", []string{"a2"}, 25000},
		{"p1", "medicaid-il", "1", "", "", []string{"a4"}, 25000},
		{"p2", "medicaid-il", "1", "", "", []string{"b1"}, 25000},
	}
	if len(gs) != len(want) {
		t.Fatalf("claims = %+v, want %+v", gs, want)
	}
	for i := range want {
		if fmt.Sprint(gs[i]) != fmt.Sprint(want[i]) {
			t.Errorf("claim %d = %+v, want %+v", i, gs[i], want[i])
		}
	}
	if d := drafts[1]; !slices.Equal(d.ClaimDates(), []string{"2026-03-02", "2026-03-04"}) ||
		DisclosureDescription(d.ClaimDates()) != "claim for services on 2026-03-02, 2026-03-04" {
		t.Errorf("dates = %q", d.ClaimDates())
	}
}

func TestPayerFilingIndicator(t *testing.T) {
	for kind, want := range map[string]string{KindMedicaid: "MC", KindMedicare: "MB", KindCommercial: "CI"} {
		if got := PayerFilingIndicator(kind); got != want {
			t.Errorf("%s: %s, want %s", kind, got, want)
		}
	}
}

func TestClaimFileName(t *testing.T) {
	if got := (ClaimFile{ClaimType: ClaimProfessional, InterchangeControlNumber: 42}).FileName(); got != "837P-000000042.x12" {
		t.Fatalf("file name %q", got)
	}
}

func TestBuildCorrection(t *testing.T) {
	line := func(id, status string, cents int64) ClaimCharge {
		c := ready()
		c.ID, c.Status, c.AmountCents, c.ServiceDate = id, status, cents, "2026-03-0"+id[len(id)-1:]
		return c
	}
	newID := func() string { return "0190a000-0000-7000-8000-000000000001" }
	o := ToCorrect{ID: "orig", Reference: "PCN1", ClaimType: ClaimProfessional,
		Lines: []ClaimCharge{line("l1", ChargePaid, 100), line("l2", ChargeVoid, 200)}}
	tests := []struct {
		name      string
		lines     []ClaimCharge
		pending   []string
		replacing []ClaimCharge
		ok        bool
		freq      string
		charges   []string
		total     int64
	}{
		{"replaced line", o.Lines, []string{"r3"}, []ClaimCharge{line("r3", ChargeReady, 150)}, true, "7", []string{"l1", "r3"}, 250},
		{"dropped line", o.Lines, nil, nil, true, "7", []string{"l1"}, 100},
		{"replacement waits", o.Lines, []string{"r3"}, nil, false, "", nil, 0},
		{"nothing left", []ClaimCharge{line("l2", ChargeVoid, 200)}, nil, nil, true, "8", []string{"l2"}, 200},
	}
	for _, tt := range tests {
		in := o
		in.Lines, in.Pending = tt.lines, tt.pending
		d, ok, _ := BuildCorrection(in, tt.replacing, newID)
		if ok != tt.ok {
			t.Fatalf("%s: ok = %v", tt.name, ok)
		}
		if !ok {
			continue
		}
		var ids []string
		for _, c := range d.Charges {
			ids = append(ids, c.ID)
		}
		if d.FrequencyCode != tt.freq || !slices.Equal(ids, tt.charges) || d.TotalCents != tt.total ||
			d.ReplacesClaimID != "orig" || d.OriginalReference != "PCN1" {
			t.Errorf("%s: %+v", tt.name, d)
		}
	}
}
