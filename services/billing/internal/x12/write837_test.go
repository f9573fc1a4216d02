package x12

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func testClaimFile(kind ClaimKind) ClaimFile {
	line := Line{ControlNumber: "CHG-1", ProcedureCode: "90853", Units: 1, ChargeCents: 8500, ServiceDate: "2024-03-04"}
	if kind == Institutional {
		line = Line{ControlNumber: "CHG-1", ProcedureCode: "H0015", RevenueCode: "0906", Modifiers: []string{"HQ"}, Units: 1, ChargeCents: 25000, ServiceDate: "2024-03-04"}
	}
	return ClaimFile{
		Kind:                     kind,
		InterchangeControlNumber: 42,
		Usage:                    "T",
		CreatedAt:                time.Date(2024, 3, 10, 14, 5, 0, 0, time.UTC),
		Submitter:                Party{Name: "TRELLIS HEALTH", ID: "TRELLIS01", ContactName: "BILLING DESK", ContactPhone: "3125550100"},
		Receiver:                 Party{Name: "ILLINOIS MEDICAID", ID: "ILMCD"},
		BillingProvider: Provider{Name: "TRELLIS NORTH CLINIC", NPI: "1234567893", TaxID: "362222222", Taxonomy: "261QR0405X",
			AddressLine: "100 MAIN ST", City: "CHICAGO", State: "IL", Zip: "606010001"},
		Payer:                Party{Name: "ILLINOIS MEDICAID", ID: "ILMCD"},
		ClaimFilingIndicator: "MC",
		Claims: []Claim{{
			ControlNumber: "CLM-0001", TotalCents: line.ChargeCents, MemberID: "M123456789", GroupNumber: "GRP1",
			GivenName: "JANE", FamilyName: "DOE", DateOfBirth: "1990-05-17", Diagnoses: []string{"F1020", "F4310"},
			PriorAuthorization: "PA-77", Lines: []Line{line},
		}},
	}
}

func TestWrite837Professional(t *testing.T) {
	got, err := Write837(testClaimFile(Professional))
	if err != nil {
		t.Fatal(err)
	}
	want := `ISA*00*          *00*          *ZZ*TRELLIS01      *ZZ*ILMCD          *240310*1405*^*00501*000000042*0*T*:~
GS*HC*TRELLIS01*ILMCD*20240310*1405*42*X*005010X222A1~
ST*837*0001*005010X222A1~
BHT*0019*00*42*20240310*1405*CH~
NM1*41*2*TRELLIS HEALTH*****46*TRELLIS01~
PER*IC*BILLING DESK*TE*3125550100~
NM1*40*2*ILLINOIS MEDICAID*****46*ILMCD~
HL*1**20*1~
PRV*BI*PXC*261QR0405X~
NM1*85*2*TRELLIS NORTH CLINIC*****XX*1234567893~
N3*100 MAIN ST~
N4*CHICAGO*IL*606010001~
REF*EI*362222222~
HL*2*1*22*0~
SBR*P*18*GRP1******MC~
NM1*IL*1*DOE*JANE****MI*M123456789~
DMG*D8*19900517*U~
NM1*PR*2*ILLINOIS MEDICAID*****PI*ILMCD~
CLM*CLM-0001*85***11:B:1*Y*A*Y*Y~
REF*G1*PA-77~
HI*ABK:F1020*ABF:F4310~
LX*1~
SV1*HC:90853*85*UN*1***1~
DTP*472*D8*20240304~
REF*6R*CHG-1~
SE*24*0001~
GE*1*42~
IEA*1*000000042~
`
	if string(got) != want {
		t.Errorf("837P:\n%s\nwant:\n%s", got, want)
	}
	if isa, _, _ := strings.Cut(string(got), "\n"); len(isa) != 106 {
		t.Errorf("ISA is %d characters, want 106", len(isa))
	}
}

func TestWrite837Institutional(t *testing.T) {
	f := testClaimFile(Institutional)
	f.Claims[0].FrequencyCode = "7"
	f.Claims[0].OriginalReference = "PAYER-CLAIM-9"
	f.Claims[0].Lines = append(f.Claims[0].Lines, Line{ControlNumber: "CHG-2", RevenueCode: "0906", Units: 1, ChargeCents: 25000, ServiceDate: "2024-03-02"})
	f.Claims[0].TotalCents = 50000
	got, err := Write837(f)
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	for _, want := range []string{
		"GS*HC*TRELLIS01*ILMCD*20240310*1405*42*X*005010X223A2~\nST*837*0001*005010X223A2~\n",
		"CLM*CLM-0001*500***89:A:7**A*Y*Y~\nDTP*434*RD8*20240302-20240304~\nCL1***30~\nREF*G1*PA-77~\nREF*F8*PAYER-CLAIM-9~\nHI*ABK:F1020~\nHI*ABF:F4310~\n",
		"LX*1~\nSV2*0906*HC:H0015:HQ*250*UN*1~\nDTP*472*D8*20240304~\nREF*6R*CHG-1~\nLX*2~\nSV2*0906**250*UN*1~\nDTP*472*D8*20240302~\nREF*6R*CHG-2~\nSE*32*0001~\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("837I lacks\n%s\nin\n%s", want, s)
		}
	}
}

func randomClaimFile(r *rand.Rand) ClaimFile {
	kind := []ClaimKind{Professional, Institutional}[r.IntN(2)]
	f := testClaimFile(kind)
	f.InterchangeControlNumber = 1 + r.Int64N(999999999)
	f.CreatedAt = time.Date(2020+r.IntN(10), time.Month(1+r.IntN(12)), 1+r.IntN(28), r.IntN(24), r.IntN(60), 0, 0, time.UTC)
	f.Claims = nil
	for ci := range 1 + r.IntN(12) {
		c := Claim{ControlNumber: fmt.Sprintf("C%d", ci+1), MemberID: fmt.Sprintf("M%08d", r.IntN(1e8)), GivenName: "ANA",
			FamilyName: "RUIZ", DateOfBirth: "1985-01-31", FrequencyCode: []string{"1", "1", "7", "8"}[r.IntN(4)]}
		if c.FrequencyCode != "1" {
			c.OriginalReference = "ORIG1"
		}
		maxDx := 12
		if kind == Institutional {
			maxDx = 25
		}
		for range 1 + r.IntN(maxDx) {
			c.Diagnoses = append(c.Diagnoses, fmt.Sprintf("F%02d%d", 10+r.IntN(90), r.IntN(10)))
		}
		for li := range 1 + r.IntN(8) {
			l := Line{ControlNumber: fmt.Sprintf("C%d-L%d", ci+1, li+1), ProcedureCode: []string{"90853", "90834", "H0015", "99213"}[r.IntN(4)],
				Units: 1 + r.IntN(4), ChargeCents: 1 + r.Int64N(50000), ServiceDate: fmt.Sprintf("2024-02-%02d", 1+r.IntN(29))}
			if kind == Institutional {
				l.RevenueCode = "0906"
			}
			if r.IntN(3) == 0 {
				l.Modifiers = []string{"HQ", "UK", "HF", "95"}[:1+r.IntN(4)]
			}
			c.TotalCents += l.ChargeCents
			c.Lines = append(c.Lines, l)
		}
		f.Claims = append(f.Claims, c)
	}
	return f
}

// checkStructure checks every structural rule of a written 837 read back with Parse.
func checkStructure(t *testing.T, f ClaimFile, out []byte) {
	t.Helper()
	segs, d, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if d != DefaultDelimiters {
		t.Fatalf("delimiters %+v", d)
	}
	if isa, _, _ := strings.Cut(string(out), "\n"); len(isa) != 106 {
		t.Fatalf("ISA is %d characters", len(isa))
	}
	ids := make([]string, len(segs))
	for i, s := range segs {
		ids[i] = s.ID
	}
	n := len(segs)
	if ids[0] != "ISA" || ids[1] != "GS" || ids[2] != "ST" || ids[n-3] != "SE" || ids[n-2] != "GE" || ids[n-1] != "IEA" {
		t.Fatalf("envelope order %v", ids)
	}
	isa, gs, st, se, ge, iea := segs[0], segs[1], segs[2], segs[n-3], segs[n-2], segs[n-1]
	ctrl := strconv.FormatInt(f.InterchangeControlNumber, 10)
	if isa.Element(13) != fmt.Sprintf("%09d", f.InterchangeControlNumber) || iea.Element(2) != isa.Element(13) || iea.Element(1) != "1" {
		t.Errorf("ISA13 %s, IEA %v", isa.Element(13), iea.Elements)
	}
	if gs.Element(6) != ctrl || ge.Element(2) != ctrl || ge.Element(1) != "1" {
		t.Errorf("GS06 %s, GE %v", gs.Element(6), ge.Elements)
	}
	if st.Element(2) != se.Element(2) || se.Element(1) != strconv.Itoa(n-4) || st.Element(1) != "837" || st.Element(3) != gs.Element(8) {
		t.Errorf("ST %v, SE %v, %d segments in the transaction", st.Elements, se.Elements, n-4)
	}
	// HL: 1 is the billing provider (20, has children); then one subscriber (22) per claim under 1.
	var hls []Segment
	claim, lx := -1, 0
	var lineSum int64
	checkClaimSum := func() {
		if claim >= 0 && lineSum != f.Claims[claim].TotalCents {
			t.Errorf("claim %d: lines sum %d, CLM02 %d", claim, lineSum, f.Claims[claim].TotalCents)
		}
	}
	for i, s := range segs {
		for _, e := range s.Elements {
			if strings.ContainsAny(e, "~\n") {
				t.Fatalf("segment %d holds a terminator", i+1)
			}
		}
		switch s.ID {
		case "HL":
			hls = append(hls, s)
		case "CLM":
			checkClaimSum()
			claim, lx, lineSum = claim+1, 0, 0
			c := f.Claims[claim]
			if s.Element(1) != c.ControlNumber || s.Element(2) != FormatCents(c.TotalCents) {
				t.Errorf("CLM %v", s.Elements)
			}
			if got := d.Components(s.Element(5)); len(got) != 3 || (f.Kind == Professional) != (got[1] == "B") {
				t.Errorf("CLM05 %v", got)
			}
			if segs[i-1].ID != "NM1" || segs[i-1].Element(1) != "PR" {
				t.Errorf("CLM not after the payer NM1")
			}
		case "LX":
			lx++
			if s.Element(1) != strconv.Itoa(lx) {
				t.Errorf("claim %d: LX %s, want %d", claim, s.Element(1), lx)
			}
			l := f.Claims[claim].Lines[lx-1]
			want := []string{"SV1", "DTP", "REF"}
			if f.Kind == Institutional {
				want[0] = "SV2"
			}
			if got := ids[i+1 : i+4]; !reflect.DeepEqual(got, want) {
				t.Errorf("line loop %v", got)
			}
			amt := segs[i+1].Element(2)
			if f.Kind == Institutional {
				amt = segs[i+1].Element(3)
			}
			cents, err := ParseCents(amt)
			if err != nil || cents != l.ChargeCents {
				t.Errorf("line amount %q, want %d", amt, l.ChargeCents)
			}
			lineSum += cents
			if segs[i+3].Element(2) != l.ControlNumber || segs[i+2].Element(3) != d8(l.ServiceDate) {
				t.Errorf("line DTP/REF %v %v", segs[i+2].Elements, segs[i+3].Elements)
			}
		}
	}
	checkClaimSum()
	if claim != len(f.Claims)-1 {
		t.Errorf("%d CLM, want %d", claim+1, len(f.Claims))
	}
	if len(hls) != len(f.Claims)+1 {
		t.Fatalf("%d HL", len(hls))
	}
	for i, h := range hls {
		want := []string{strconv.Itoa(i + 1), "1", "22", "0"}
		if i == 0 {
			want = []string{"1", "", "20", "1"}
		}
		if !reflect.DeepEqual(h.Elements, want) {
			t.Errorf("HL %v, want %v", h.Elements, want)
		}
	}
}

func TestWrite837RoundTrip(t *testing.T) {
	for _, kind := range []ClaimKind{Professional, Institutional} {
		f := testClaimFile(kind)
		out, err := Write837(f)
		if err != nil {
			t.Fatal(err)
		}
		checkStructure(t, f, out)
	}
}

// Property: random valid claim files are always written and always structurally sound.
func TestWrite837RoundTripProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 37))
	for i := range 200 {
		f := randomClaimFile(r)
		out, err := Write837(f)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		t.Run(fmt.Sprintf("case%d", i), func(t *testing.T) { checkStructure(t, f, out) })
	}
}

func TestWrite837Validation(t *testing.T) {
	tests := []struct {
		name   string
		kind   ClaimKind
		change func(f *ClaimFile)
		want   []FieldError
	}{
		{"separator in a name", Professional, func(f *ClaimFile) { f.Claims[0].FamilyName = "DOE*SMITH" },
			[]FieldError{{"Claims[0].FamilyName", RuleSeparator}}},
		{"terminator in a member id", Professional, func(f *ClaimFile) { f.Claims[0].MemberID = "M1~" },
			[]FieldError{{"Claims[0].MemberID", RuleSeparator}}},
		{"component separator in a line control number", Professional, func(f *ClaimFile) { f.Claims[0].Lines[0].ControlNumber = "A:B" },
			[]FieldError{{"Claims[0].Lines[0].ControlNumber", RuleSeparator}}},
		{"repetition separator in the submitter", Professional, func(f *ClaimFile) { f.Submitter.Name = "A^B" },
			[]FieldError{{"Submitter.Name", RuleSeparator}}},
		{"newline in an address", Professional, func(f *ClaimFile) { f.BillingProvider.AddressLine = "1 A\nB" },
			[]FieldError{{"BillingProvider.AddressLine", RuleSeparator}}},
		{"non-ASCII name", Professional, func(f *ClaimFile) { f.Claims[0].GivenName = "JOSÉ" },
			[]FieldError{{"Claims[0].GivenName", RuleCharacters}}},
		{"missing fields", Professional, func(f *ClaimFile) {
			f.Kind, f.Usage, f.ClaimFilingIndicator, f.Payer.ID, f.Claims[0].MemberID = 0, "", "", "", ""
		}, []FieldError{{"Kind", RuleOneOf}, {"Usage", RuleOneOf}, {"Payer.ID", RuleRequired}, {"ClaimFilingIndicator", RuleRequired}, {"Claims[0].MemberID", RuleRequired}}},
		{"submitter id longer than ISA06", Professional, func(f *ClaimFile) { f.Submitter.ID = "1234567890123456" },
			[]FieldError{{"Submitter.ID", RuleMaxLength}}},
		{"control number out of range", Professional, func(f *ClaimFile) { f.InterchangeControlNumber = 1e9 },
			[]FieldError{{"InterchangeControlNumber", "must be 1 to 999999999"}}},
		{"codes", Professional, func(f *ClaimFile) {
			f.BillingProvider.NPI, f.Claims[0].Diagnoses[1], f.Claims[0].Lines[0].ProcedureCode = "123", "F10.20", "9085"
			f.Claims[0].Lines[0].Modifiers = []string{"H"}
		}, []FieldError{{"BillingProvider.NPI", RuleFormat}, {"Claims[0].Diagnoses[1]", RuleFormat},
			{"Claims[0].Lines[0].ProcedureCode", RuleFormat}, {"Claims[0].Lines[0].Modifiers[0]", RuleFormat}}},
		{"claim total must be the sum of its lines", Professional, func(f *ClaimFile) { f.Claims[0].TotalCents++ },
			[]FieldError{{"Claims[0].TotalCents", RuleClaimSum}}},
		{"replacement needs the original", Professional, func(f *ClaimFile) { f.Claims[0].FrequencyCode = "7" },
			[]FieldError{{"Claims[0].OriginalReference", RuleRequired}}},
		{"bad dates and amounts", Professional, func(f *ClaimFile) {
			f.Claims[0].DateOfBirth, f.Claims[0].Lines[0].ServiceDate = "1990-02-30", ""
			f.Claims[0].Lines[0].ChargeCents, f.Claims[0].TotalCents, f.Claims[0].Lines[0].Units = 0, 0, 0
		}, []FieldError{{"Claims[0].DateOfBirth", RuleFormat}, {"Claims[0].Lines[0].Units", "must be 1 to 99999"},
			{"Claims[0].Lines[0].ChargeCents", RulePositive}, {"Claims[0].Lines[0].ServiceDate", RuleRequired}, {"Claims[0].TotalCents", RulePositive}}},
		{"institutional lines need a revenue code", Institutional, func(f *ClaimFile) { f.Claims[0].Lines[0].RevenueCode = "" },
			[]FieldError{{"Claims[0].Lines[0].RevenueCode", RuleRequired}}},
		{"no claims", Institutional, func(f *ClaimFile) { f.Claims = nil }, []FieldError{{"Claims", RuleRequired}}},
		{"no lines, no diagnoses", Institutional, func(f *ClaimFile) { f.Claims[0].Lines, f.Claims[0].Diagnoses = nil, nil },
			[]FieldError{{"Claims[0].Diagnoses", RuleRequired}, {"Claims[0].Lines", RuleRequired}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := testClaimFile(tt.kind)
			tt.change(&f)
			out, err := Write837(f)
			var ve *ValidationError
			if !errors.As(err, &ve) || out != nil {
				t.Fatalf("Write837 = %d bytes, %v", len(out), err)
			}
			if !reflect.DeepEqual(ve.Problems, tt.want) {
				t.Errorf("problems\n got %+v\nwant %+v", ve.Problems, tt.want)
			}
		})
	}
	// The input is not changed by the defaults Write837 applies.
	f := testClaimFile(Professional)
	if _, err := Write837(f); err != nil || f.Claims[0].FacilityCode != "" || f.Claims[0].FrequencyCode != "" {
		t.Errorf("input changed: %+v, %v", f.Claims[0], err)
	}
}

// TestWrite837ParsesWithNodeX12 checks written files with an independent parser: the npm
// package node-x12 in strict mode (services/billing/testdata/x12check).
func TestWrite837ParsesWithNodeX12(t *testing.T) {
	dir, err := filepath.Abs("../../testdata/x12check")
	if err != nil {
		t.Fatal(err)
	}
	// `make test` installs node-x12 first and requires this check; a bare `go test` skips it
	// when node-x12 is not installed.
	skip := t.Skipf
	if os.Getenv("TRELLIS_REQUIRE_X12CHECK") != "" {
		skip = t.Fatalf
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip("node is not installed: run scripts/ensure-x12check.sh")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "node-x12")); err != nil {
		skip("node-x12 is not installed: run scripts/ensure-x12check.sh")
	}
	tmp := t.TempDir()
	r := rand.New(rand.NewPCG(11, 12))
	files := map[string]ClaimFile{"837P.txt": testClaimFile(Professional), "837I.txt": testClaimFile(Institutional)}
	for i := range 4 {
		files[fmt.Sprintf("random%d.txt", i)] = randomClaimFile(r)
	}
	var args []string
	for name, f := range files {
		out, err := Write837(f)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(tmp, name)
		if err := os.WriteFile(path, out, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, path)
	}
	cmd := exec.Command(node, append([]string{filepath.Join(dir, "check.js")}, args...)...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node check.js: %v\n%s\n%s", err, stdout, stderr.String())
	}
	results := strings.Split(strings.TrimSpace(string(stdout)), "\n")
	if len(results) != len(files) {
		t.Fatalf("%d results for %d files:\n%s", len(results), len(files), stdout)
	}
	for _, line := range results {
		var res struct {
			File         string
			OK           bool
			Segments     int
			Transactions int
			StSeOK       bool `json:"st_se_ok"`
			Claims       int
		}
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		f := files[filepath.Base(res.File)]
		out, _ := Write837(f)
		segs, _, _ := Parse(out)
		if !res.OK || !res.StSeOK || res.Transactions != 1 || res.Claims != len(f.Claims) || res.Segments != len(segs) {
			t.Errorf("node-x12 on %s: %s (want %d claims, %d segments)", filepath.Base(res.File), line, len(f.Claims), len(segs))
		}
	}
}
