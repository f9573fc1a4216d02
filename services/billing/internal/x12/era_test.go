package x12

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"
)

func readSample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseERASample(t *testing.T) {
	era, err := ParseERA(readSample(t, "835-two-claims-service-lines.txt"))
	if err != nil {
		t.Fatal(err)
	}
	sum := era.Summary()
	// The sample balances: 225 - 20 - 5 = 200 and 225 - 20 - 10 = 195 per claim,
	// 200 + 195 - 3.95 = 391.05 for the transaction; SE01 31 is the true count of ST..SE.
	want := Summary{Transactions: 1, Claims: 2, ServiceLines: 4, TotalPaidCents: 39105, Deviations: []Deviation{}}
	if !reflect.DeepEqual(sum, want) {
		t.Fatalf("summary = %+v, want %+v", sum, want)
	}
	js, _ := json.Marshal(sum)
	if got := string(js); got != `{"transactions":1,"claims":2,"service_lines":4,"total_paid_cents":39105,"deviations":[]}` {
		t.Errorf("json = %s", got)
	}
	tx := era.Transactions[0]
	if tx.ControlNumber != "112233" || tx.CreditDebit != "C" || tx.PaymentMethod != "ACH" || tx.PaymentDate != "20120131" ||
		tx.TraceNumber != "051036622050010" || tx.PayerName != "BCBS DISNEY" || tx.PayerID != "1262721578" ||
		tx.PayeeName != "UCLA MEDICAL CENTER" || tx.PayeeID != "1215193883" {
		t.Errorf("transaction header = %+v", tx)
	}
	if want := []ProviderAdjustment{{ProviderID: "1215193883", FiscalPeriod: "20121231", Reason: "90", AmountCents: 395}}; !reflect.DeepEqual(tx.ProviderAdjustments, want) {
		t.Errorf("PLB = %+v", tx.ProviderAdjustments)
	}
	c := tx.Claims[0]
	if c.PatientControlNumber != "ABC9001" || c.StatusCode != "1" || c.ChargedCents != 22500 || c.PaidCents != 20000 ||
		c.PatientResponsibilityCents != 500 || c.PayerClaimNumber != "1142381711242" || c.Position != 11 {
		t.Errorf("claim 1 = %+v", c)
	}
	if want := []Adjustment{{Group: "CO", Reason: "45", AmountCents: 2000}}; !reflect.DeepEqual(c.Adjustments, want) {
		t.Errorf("claim CAS = %+v", c.Adjustments)
	}
	l := c.Lines[0]
	if l.ProcedureQualifier != "HC" || l.ProcedureCode != "98765" || l.ChargedCents != 15000 || l.PaidCents != 14500 ||
		l.Units != 1 || l.ServiceDate != "20120124" || len(l.Adjustments) != 1 || l.Adjustments[0] != (Adjustment{"PR", "3", 500, 0}) {
		t.Errorf("line 1 = %+v", l)
	}
	if c2 := tx.Claims[1]; c2.PaidCents != 19500 || c2.Lines[0].PaidCents != 14000 || c2.Lines[1].Adjustments != nil {
		t.Errorf("claim 2 = %+v", c2)
	}
}

func TestParseERASampleWrongSECount(t *testing.T) {
	data := strings.Replace(string(readSample(t, "835-two-claims-service-lines.txt")), "SE*31*", "SE*30*", 1)
	era, err := ParseERA([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := []Deviation{{Rule: RuleSESegmentCount, Segment: "SE*30 (segment 31)", Expected: 31, Actual: 30, Detail: "SE01 = segments from ST to SE"}}
	if !reflect.DeepEqual(era.Deviations, want) {
		t.Fatalf("deviations = %+v", era.Deviations)
	}
	if s := era.Summary(); s.TotalPaidCents != 39105 || s.ServiceLines != 4 {
		t.Errorf("a wrong count is not fatal: %+v", s)
	}
}

// era835 builds a small 835 body (ST..SE, SE01 computed) from segment lines.
func era835(segs ...string) []byte {
	all := append([]string{"ST*835*0001*005010X221A1"}, segs...)
	all = append(all, fmt.Sprintf("SE*%d*0001", len(all)+1))
	return []byte(strings.Join(all, "~\n") + "~\n")
}

var eraHeader = []string{"BPR*I*100*C*CHK************20240201", "TRN*1*CHK1*PAYER1", "N1*PR*PAYER", "N1*PE*CLINIC*XX*1234567893"}

func TestParseERARules(t *testing.T) {
	hdr := func(bpr string, rest ...string) []byte {
		return era835(append([]string{bpr, eraHeader[1], eraHeader[2], eraHeader[3]}, rest...)...)
	}
	tests := []struct {
		name string
		data []byte
		want []Deviation
	}{
		{"balanced with claim-level CAS only", hdr("BPR*I*100*C*CHK", "CLP*A1*1*150*100*50*MC", "CAS*PR*1*50"), nil},
		{"service line", hdr("BPR*I*100*C*CHK", "CLP*A1*1*150*100", "SVC*HC:90853*150*90", "CAS*CO*45*50"),
			[]Deviation{{Rule: RuleServiceLineBalance, Segment: "SVC*HC:90853 (segment 7)", Expected: 10000, Actual: 9000}}},
		{"claim", hdr("BPR*I*100*C*CHK", "CLP*A1*1*150*100", "CAS*CO*45*40"),
			[]Deviation{{Rule: RuleClaimBalance, Segment: "CLP*A1 (segment 6)", Expected: 11000, Actual: 10000}}},
		{"claim with lines sums claim and line CAS", hdr("BPR*I*100*C*CHK", "CLP*A1*1*150*100", "CAS*CO*45*10", "SVC*HC:90853*150*140", "CAS*CO*45*10"),
			[]Deviation{{Rule: RuleClaimBalance, Segment: "CLP*A1 (segment 6)", Expected: 13000, Actual: 10000}}},
		{"transaction with PLB", hdr("BPR*I*100*C*CHK", "CLP*A1*1*150*100", "CAS*CO*45*50", "PLB*1234567893*20241231*WO:X1*-5*L6*3"),
			[]Deviation{{Rule: RuleTransactionBalance, Segment: "BPR*I (segment 2)", Expected: 10200, Actual: 10000}}},
		{"debit: BPR03 D is a negative payment", hdr("BPR*H*25*D*NON", "CLP*A1*22*-150*-25", "CAS*CO*45*-125"), nil},
		{"reversal with negative amounts out of balance", hdr("BPR*I*0*C*NON", "CLP*A1*22*-150*-100*-50", "CAS*PR*1*-40", "CLP*A2*1*150*100*50", "CAS*PR*1*50"),
			[]Deviation{
				{Rule: RuleClaimBalance, Segment: "CLP*A1 (segment 6)", Expected: -11000, Actual: -10000},
				{Rule: RulePatientResponsibility, Segment: "CLP*A1 (segment 6)", Expected: -4000, Actual: -5000},
			}},
		{"six CAS triplets", hdr("BPR*I*94*C*CHK", "CLP*A1*1*100*94", "SVC*HC:90853*100*94", "CAS*CO*1*1*1*2*1**3*1**4*1**5*1**6*1"), nil},
		{"patient responsibility not reported without PR adjustments", hdr("BPR*I*100*C*CHK", "CLP*A1*1*150*100*50", "CAS*CO*45*50"), nil},
		{"patient responsibility from claim and lines", hdr("BPR*I*110*C*CHK", "CLP*A1*1*150*110*20", "CAS*PR*2*10", "SVC*HC:90853*140*110", "CAS*PR*1*30"),
			[]Deviation{{Rule: RulePatientResponsibility, Segment: "CLP*A1 (segment 6)", Expected: 4000, Actual: 2000}}},
		{"unreadable amount is a deviation, not a balance failure", hdr("BPR*I*100*C*CHK", "CLP*A1*1*1x0*100", "SVC*HC:90853*150*abc"),
			[]Deviation{
				{Rule: RuleAmountFormat, Segment: "CLP*A1 (segment 6)", Detail: "CLP03 is not a decimal amount"},
				{Rule: RuleAmountFormat, Segment: "SVC*HC:90853 (segment 7)", Detail: "SVC03 is not a decimal amount"},
			}},
		{"no BPR", era835(eraHeader[1], eraHeader[2], eraHeader[3], "CLP*A1*1*100*100"),
			[]Deviation{{Rule: RuleMissingSegment, Segment: "ST*835 (segment 1)", Detail: "BPR"}}},
		{"SE control number", []byte("ST*835*0001~BPR*I*0*C*NON~TRN*1*X~N1*PR*P~N1*PE*C~SE*6*0002~"),
			[]Deviation{{Rule: RuleSEControlNumber, Segment: "SE*6 (segment 6)", Expected: 1, Actual: 2, Detail: "SE02 = ST02"}}},
		{"missing SE", []byte("ST*835*0001~BPR*I*0*C*NON~TRN*1*X~N1*PR*P~N1*PE*C~"),
			[]Deviation{{Rule: RuleMissingSegment, Segment: "ST*835 (segment 1)", Detail: "SE"}}},
		{"not an 835", []byte("ST*837*0001~BHT*0019~SE*3*0001~"),
			[]Deviation{
				{Rule: RuleTransactionType, Segment: "ST*837 (segment 1)", Expected: 835, Actual: 837, Detail: "not an 835 transaction set"},
				{Rule: RuleMissingSegment, Segment: "file", Detail: "no 835 transaction set (ST*835)"},
			}},
		{"envelope counts and control numbers",
			[]byte("ISA*00*          *00*          *ZZ*A              *ZZ*B              *240101*1200*^*00501*000000007*0*T*:~" +
				"GS*HP*A*B*20240101*1200*7*X*005010X221A1~ST*835*1~BPR*I*0*C*NON~TRN*1*X~N1*PR*P~N1*PE*C~SE*6*1~GE*2*8~IEA*2*000000009~"),
			[]Deviation{
				{Rule: RuleGETransactionCount, Segment: "GE*2 (segment 9)", Expected: 1, Actual: 2, Detail: "GE01 = transaction sets in the group"},
				{Rule: RuleGEControlNumber, Segment: "GE*2 (segment 9)", Expected: 7, Actual: 8, Detail: "GE02 = GS06"},
				{Rule: RuleIEAGroupCount, Segment: "IEA*2 (segment 10)", Expected: 1, Actual: 2, Detail: "IEA01 = functional groups in the interchange"},
				{Rule: RuleIEAControlNumber, Segment: "IEA*2 (segment 10)", Expected: 7, Actual: 9, Detail: "IEA02 = ISA13"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			era, err := ParseERA(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			got := era.Deviations
			for i := range got {
				// Details of balancing rules are fixed text; compare them only where the case sets one.
				if tt.want != nil && i < len(tt.want) && tt.want[i].Detail == "" {
					got[i].Detail = ""
				}
			}
			want := tt.want
			if want == nil {
				want = []Deviation{}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("deviations:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestParseERAFields(t *testing.T) {
	era, err := ParseERA(era835(
		"BPR*I*100*C*CHK************20240201", "TRN*1*CHK1*PAYER1", "REF*2U*PAYERREF", "N1*PR*PAYER", "N1*PE*CLINIC*XX*1234567893",
		"LX*1", "CLP*A1*1*150*100**MC*PCN9", "SVC*HC:H0015:HQ:UK*150*100*0906*2", "DTM*150*20240102", "DTM*472*20240103",
		"CAS*CO*45*50*1", "REF*6R*L-1", "LQ*HE*N130", "LQ*HE*M15",
	))
	if err != nil {
		t.Fatal(err)
	}
	tx := era.Transactions[0]
	if tx.PayerID != "PAYERREF" {
		t.Errorf("payer id = %q, want REF*2U", tx.PayerID)
	}
	want := ServiceLinePayment{ProcedureQualifier: "HC", ProcedureCode: "H0015", Modifiers: []string{"HQ", "UK"}, ChargedCents: 15000,
		PaidCents: 10000, RevenueCode: "0906", Units: 2, ServiceDate: "20240103", LineControlNumber: "L-1",
		Adjustments: []Adjustment{{"CO", "45", 5000, 1}}, Remarks: []string{"N130", "M15"}, Position: 9}
	if got := tx.Claims[0].Lines[0]; !reflect.DeepEqual(got, want) {
		t.Errorf("line:\n got %+v\nwant %+v", got, want)
	}
	if len(era.Deviations) != 0 {
		t.Errorf("deviations = %+v", era.Deviations)
	}
}

func TestParseERAUnreadable(t *testing.T) {
	for _, in := range []string{"", "   \r\n", "hello world", "\x00\x01\x02 binary ~ junk ~"} {
		if _, err := ParseERA([]byte(in)); err == nil {
			t.Errorf("ParseERA(%q) = nil error", in)
		}
	}
}

// clearPositions zeroes the positions ParseERA fills so a parsed ERA compares with its model.
func clearPositions(e *ERA) {
	for ti := range e.Transactions {
		for ci := range e.Transactions[ti].Claims {
			c := &e.Transactions[ti].Claims[ci]
			c.Position = 0
			for li := range c.Lines {
				c.Lines[li].Position = 0
			}
		}
	}
}

func randomOpts(r *rand.Rand) renderOpts {
	o := renderOpts{r: r, envelope: r.IntN(2) == 0, d: DefaultDelimiters, newline: []string{"", "\n", "\r\n"}[r.IntN(3)]}
	if o.envelope {
		o.d = separatorSets[r.IntN(len(separatorSets))]
	}
	if o.d.Segment == '\n' {
		o.newline = ""
	}
	return o
}

// Property: a balanced ERA, rendered with any separators, envelope or not, and any amount
// spelling, reads back to the same model with zero deviations and the exact total.
func TestParseERABalancedProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 835))
	for i := range 300 {
		model := randomERA(r, 1+r.IntN(3), 6, 5)
		text := renderERA(model, randomOpts(r))
		got, err := ParseERA([]byte(text))
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if len(got.Deviations) != 0 {
			t.Fatalf("case %d: deviations %+v\n%s", i, got.Deviations, text)
		}
		clearPositions(got)
		if !reflect.DeepEqual(got.Transactions, model.Transactions) {
			t.Fatalf("case %d: parsed model differs\n got %+v\nwant %+v\n%s", i, got.Transactions, model.Transactions, text)
		}
		var total int64
		for _, tx := range model.Transactions {
			total += tx.TotalPaidCents
		}
		if s := got.Summary(); s.TotalPaidCents != total {
			t.Fatalf("case %d: total %d, want %d", i, s.TotalPaidCents, total)
		}
	}
}

// Property: one perturbed amount yields exactly the deviations that amount breaks.
func TestParseERAPerturbedProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 835))
	for i := range 300 {
		model := randomERA(r, 1, 5, 4)
		tx := &model.Transactions[0]
		delta := 1 + r.Int64N(5000)
		if r.IntN(2) == 0 {
			delta = -delta
		}
		var want []Deviation
		var line *ServiceLinePayment
		var claim *ClaimPayment
		for ci := range tx.Claims {
			if len(tx.Claims[ci].Lines) > 0 {
				claim = &tx.Claims[ci]
				line = &claim.Lines[r.IntN(len(claim.Lines))]
				break
			}
		}
		kind := r.IntN(3)
		if kind == 0 && line == nil {
			kind = 1
		}
		switch kind {
		case 0: // SVC03: the line no longer balances; the claim does (it does not use SVC03).
			want = []Deviation{{Rule: RuleServiceLineBalance, Expected: line.PaidCents, Actual: line.PaidCents + delta}}
			line.PaidCents += delta
		case 1: // CLP04: the claim and the transaction no longer balance.
			claim = &tx.Claims[r.IntN(len(tx.Claims))]
			want = []Deviation{
				{Rule: RuleClaimBalance, Expected: claim.PaidCents, Actual: claim.PaidCents + delta},
				{Rule: RuleTransactionBalance, Expected: tx.TotalPaidCents + delta, Actual: tx.TotalPaidCents},
			}
			claim.PaidCents += delta
		case 2: // BPR02 (signed): only the transaction.
			want = []Deviation{{Rule: RuleTransactionBalance, Expected: tx.TotalPaidCents, Actual: tx.TotalPaidCents + delta}}
			tx.TotalPaidCents += delta
		}
		text := renderERA(model, randomOpts(r))
		got, err := ParseERA([]byte(text))
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		for j := range got.Deviations {
			got.Deviations[j].Segment, got.Deviations[j].Detail = "", ""
		}
		if !reflect.DeepEqual(got.Deviations, want) {
			t.Fatalf("case %d (kind %d): deviations\n got %+v\nwant %+v\n%s", i, kind, got.Deviations, want, text)
		}
	}
}

// A wrong SE01 is reported with the true count and is not fatal, whatever the separators.
func TestParseERAWrongSECountProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 835))
	for i := range 50 {
		model := randomERA(r, 1, 3, 3)
		o := randomOpts(r)
		o.seCountDelta = 1 + r.IntN(3)
		got, err := ParseERA([]byte(renderERA(model, o)))
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if len(got.Deviations) != 1 || got.Deviations[0].Rule != RuleSESegmentCount ||
			got.Deviations[0].Actual-got.Deviations[0].Expected != int64(o.seCountDelta) {
			t.Fatalf("case %d: deviations %+v", i, got.Deviations)
		}
		if len(got.Transactions[0].Claims) != len(model.Transactions[0].Claims) {
			t.Fatalf("case %d: claims lost", i)
		}
	}
}

// BenchmarkParseERA measures reading an 835 of about 5,000 service lines (lines/s), against
// a baseline measured in the same run: tokenizing the same file into segments (Parse), which
// any reader must do. The ratio of the two is the cost of building the remittance model and
// checking every balancing rule.
func BenchmarkParseERA(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	model := &ERA{}
	lines := 0
	for lines < 5000 {
		tx := randomERA(r, 1, 400, 8).Transactions[0]
		tx.ControlNumber = fmt.Sprintf("%04d", len(model.Transactions)+1)
		for _, c := range tx.Claims {
			lines += len(c.Lines)
		}
		model.Transactions = append(model.Transactions, tx)
	}
	data := []byte(renderERA(model, renderOpts{envelope: true, d: DefaultDelimiters, newline: "\n"}))
	b.Run("baseline=tokenize", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, _, err := Parse(data); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	})
	b.Run("parse+balance", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			era, err := ParseERA(data)
			if err != nil || len(era.Deviations) != 0 {
				b.Fatalf("%v %+v", err, era.Deviations)
			}
		}
		b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	})
}
