package domain

import (
	"fmt"
	"testing"
	"time"

	"github.com/trellis-health/trellis/pkg/money"

	"github.com/trellis-health/trellis/services/billing/internal/x12"
)

func TestClassifyLine(t *testing.T) {
	tests := []struct {
		name           string
		expected, paid money.Cents
		adj            AdjustmentTotals
		denied         bool
		want           string
		variance       money.Cents
		queue          string
		amount         money.Cents
	}{
		{"paid in full", 15000, 15000, AdjustmentTotals{}, false, ClassPaid, 0, "", 0},
		{"contractual write-off", 15000, 12000, AdjustmentTotals{Contractual: 3000}, false, ClassContractual, 0, "", 0},
		{"patient responsibility", 15000, 12000, AdjustmentTotals{Contractual: 1000, PatientResp: 2000}, false, ClassPatientResp, 0, "", 0},
		{"all to the patient (deductible)", 15000, 0, AdjustmentTotals{PatientResp: 15000}, false, ClassPatientResp, 0, "", 0},
		{"underpaid: other adjustment", 15000, 12000, AdjustmentTotals{Contractual: 2000, Other: 1000}, false, ClassUnderpaid, 1000, QueueUnderpayment, 1000},
		{"underpaid: unexplained", 15000, 14000, AdjustmentTotals{}, false, ClassUnderpaid, 1000, QueueUnderpayment, 1000},
		{"overpaid", 15000, 16000, AdjustmentTotals{}, false, ClassOverpaid, -1000, QueueOverpayment, 1000},
		{"paid nothing: denied", 15000, 0, AdjustmentTotals{Contractual: 15000}, false, ClassDenied, 0, QueueDenial, 15000},
		{"claim denied (status 4)", 15000, 0, AdjustmentTotals{Other: 15000}, true, ClassDenied, 15000, QueueDenial, 15000},
		{"nothing expected, nothing paid", 0, 0, AdjustmentTotals{}, false, ClassPaid, 0, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ClassifyLine(tt.expected, tt.paid, tt.adj, tt.denied)
			if r.Classification != tt.want || r.Variance != tt.variance {
				t.Fatalf("got %s variance %d, want %s %d", r.Classification, r.Variance, tt.want, tt.variance)
			}
			q, amount, ok := WorkItemFor(r)
			if q != tt.queue || amount != tt.amount || ok != (tt.queue != "") {
				t.Fatalf("work item %q %d %v, want %q %d", q, amount, ok, tt.queue, tt.amount)
			}
		})
	}
}

func TestSumAdjustments(t *testing.T) {
	got := SumAdjustments([]x12.Adjustment{{Group: "CO", Reason: "45", AmountCents: 100}, {Group: "PR", Reason: "3", AmountCents: 50}},
		[]x12.Adjustment{{Group: "OA", Reason: "23", AmountCents: 7}, {Group: "PR", Reason: "1", AmountCents: 3}, {Group: "PI", AmountCents: 1}})
	if got != (AdjustmentTotals{Contractual: 100, PatientResp: 53, Other: 8}) {
		t.Fatalf("got %+v", got)
	}
}

func TestClaimStatusFor(t *testing.T) {
	l := func(c string) LineResult { return LineResult{Classification: c} }
	tests := []struct {
		code  string
		lines []LineResult
		want  string
	}{
		{"1", []LineResult{l(ClassPaid), l(ClassPatientResp)}, ClaimPaid},
		{"19", []LineResult{l(ClassContractual)}, ClaimPaid},
		{"1", []LineResult{l(ClassPaid), l(ClassDenied)}, ClaimPartiallyPaid},
		{"2", []LineResult{l(ClassUnderpaid)}, ClaimPartiallyPaid},
		{"1", []LineResult{l(ClassOverpaid)}, ClaimPaid},
		{"1", []LineResult{l(ClassDenied), l(ClassDenied)}, ClaimDenied},
		{"4", []LineResult{l(ClassPaid)}, ClaimDenied},
	}
	for _, tt := range tests {
		if got := ClaimStatusFor(tt.code, tt.lines); got != tt.want {
			t.Errorf("%s %v: got %s, want %s", tt.code, tt.lines, got, tt.want)
		}
	}
}

func TestMatchLine(t *testing.T) {
	billed := []BilledLine{
		{LineNumber: 1, LineControl: "C1-1", ProcedureCode: "H0015", ServiceDate: "20260302"},
		{LineNumber: 2, LineControl: "C1-2", ProcedureCode: "H0015", ServiceDate: "20260303"},
		{LineNumber: 3, LineControl: "C1-3", ProcedureCode: "90834", ServiceDate: "20260303"},
	}
	tests := []struct {
		name  string
		svc   x12.ServiceLinePayment
		taken []bool
		want  int
	}{
		{"by REF*6R", x12.ServiceLinePayment{LineControlNumber: "C1-2", ProcedureCode: "XXXXX"}, []bool{false, false, false}, 1},
		{"REF*6R unknown, by code and date", x12.ServiceLinePayment{LineControlNumber: "nope", ProcedureCode: "H0015", ServiceDate: "20260303"}, []bool{false, false, false}, 1},
		{"by code and date", x12.ServiceLinePayment{ProcedureCode: "H0015", ServiceDate: "20260302"}, []bool{false, false, false}, 0},
		{"taken line is skipped", x12.ServiceLinePayment{ProcedureCode: "H0015", ServiceDate: "20260302"}, []bool{true, false, false}, -1},
		{"no date, one candidate", x12.ServiceLinePayment{ProcedureCode: "90834"}, []bool{false, false, false}, 2},
		{"no date, two candidates", x12.ServiceLinePayment{ProcedureCode: "H0015"}, []bool{false, false, false}, -1},
		{"wrong date", x12.ServiceLinePayment{ProcedureCode: "90834", ServiceDate: "20260304"}, []bool{false, false, false}, -1},
	}
	for _, tt := range tests {
		if got := MatchLine(billed, tt.taken, tt.svc); got != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestPlanPostingPostReverseDuplicate(t *testing.T) {
	n := 0
	newID := func() string { n++; return fmt.Sprintf("id-%d", n) }
	now := time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)
	claim := func() *BilledClaim {
		return &BilledClaim{ID: "claim-1", ControlNumber: "C1", ClinicID: "clinic", PatientID: "patient", PayerID: "payer",
			Status: ClaimSubmitted, TotalCents: 30000, Lines: []BilledLine{
				{LineNumber: 1, ChargeID: "ch-1", ChargeStatus: ChargeSubmitted, LineControl: "C1-1", ProcedureCode: "H0015", ServiceDate: "20260302", ExpectedCents: 15000},
				{LineNumber: 2, ChargeID: "ch-2", ChargeStatus: ChargeSubmitted, LineControl: "C1-2", ProcedureCode: "H0015", ServiceDate: "20260303", ExpectedCents: 15000},
			}}
	}
	paid := x12.ClaimPayment{PatientControlNumber: "C1", StatusCode: "1", ChargedCents: 30000, PaidCents: 24000, PatientResponsibilityCents: 2000,
		Lines: []x12.ServiceLinePayment{
			{ProcedureCode: "H0015", ChargedCents: 15000, PaidCents: 12000, LineControlNumber: "C1-1",
				Adjustments: []x12.Adjustment{{Group: "CO", Reason: "45", AmountCents: 1000}, {Group: "PR", Reason: "2", AmountCents: 2000}}},
			{ProcedureCode: "H0015", ChargedCents: 15000, PaidCents: 12000, ServiceDate: "20260303",
				Adjustments: []x12.Adjustment{{Group: "CO", Reason: "45", AmountCents: 2000}, {Group: "OA", Reason: "23", AmountCents: 1000}}},
		}}
	reversal := paid
	reversal.StatusCode, reversal.PaidCents, reversal.ChargedCents = "22", -24000, -30000
	era := &x12.ERA{Transactions: []x12.Transaction{{PayerID: "P", Claims: []x12.ClaimPayment{paid, paid, reversal, paid}}}}
	claims := map[string]*BilledClaim{"C1": claim()}
	p := PlanPosting("remit", era, claims, newID, now)

	classes := []string{}
	for _, c := range p.Claims {
		classes = append(classes, c.Classification)
	}
	if fmt.Sprint(classes) != "[posted duplicate reversal posted]" {
		t.Fatalf("claims %v", classes)
	}
	first := p.Claims[0]
	if first.ClaimStatus != ClaimPartiallyPaid || first.PatientResp != 2000 || first.Contractual != 3000 {
		t.Fatalf("first posting %+v", first)
	}
	if c := first.Lines[0].Result.Classification; c != ClassPatientResp {
		t.Errorf("line 1 %s", c)
	}
	if r := first.Lines[1].Result; r.Classification != ClassUnderpaid || r.Variance != 1000 || first.Lines[1].LineNumber != 2 {
		t.Errorf("line 2 %+v", first.Lines[1])
	}
	queues := []string{}
	for _, w := range p.WorkItems {
		queues = append(queues, fmt.Sprintf("%s:%d", w.Queue, w.Amount))
	}
	// Underpayment of the first posting, overpayment for the duplicate, underpayment of the repost.
	if fmt.Sprint(queues) != "[underpayment:1000 overpayment:24000 underpayment:1000]" {
		t.Fatalf("work items %v", queues)
	}
	var ledger money.Cents
	for _, l := range p.Ledger {
		ledger += l.Amount
	}
	if len(p.Ledger) != 3 || ledger != 2000 {
		t.Fatalf("ledger %+v", p.Ledger)
	}
	changes := []string{}
	for _, c := range p.ChargeChanges {
		changes = append(changes, c.ChargeID+":"+c.From+">"+c.To)
	}
	want := "[ch-1:submitted>paid ch-2:submitted>paid ch-1:paid>submitted ch-2:paid>submitted ch-1:submitted>paid ch-2:submitted>paid]"
	if fmt.Sprint(changes) != want {
		t.Fatalf("charge changes %v", changes)
	}
	if p.Claims[2].ReversesRemitClaim != first.ID || len(p.Adjudications) != 3 || p.UnmatchedLines != 0 {
		t.Fatalf("reversal %+v adjudications %d", p.Claims[2], len(p.Adjudications))
	}
}

func TestPlanPostingDenialAndUnmatched(t *testing.T) {
	n := 0
	newID := func() string { n++; return fmt.Sprintf("id-%d", n) }
	claims := map[string]*BilledClaim{"C2": {ID: "claim-2", ClinicID: "clinic", PatientID: "p", PayerID: "payer", Status: ClaimSubmitted,
		TotalCents: 15000, Lines: []BilledLine{{LineNumber: 1, ChargeID: "ch", ChargeStatus: ChargeSubmitted, ProcedureCode: "H0015", ServiceDate: "20260302", ExpectedCents: 15000}}}}
	era := &x12.ERA{Transactions: []x12.Transaction{{PayerID: "P", Claims: []x12.ClaimPayment{
		{PatientControlNumber: "C2", StatusCode: "4", ChargedCents: 15000, Adjustments: []x12.Adjustment{{Group: "CO", Reason: "50", AmountCents: 15000}},
			Lines: []x12.ServiceLinePayment{{ProcedureCode: "H0015", ServiceDate: "20260302", ChargedCents: 15000},
				{ProcedureCode: "90834", ServiceDate: "20260302", ChargedCents: 100, PaidCents: 100}}},
		{PatientControlNumber: "UNKNOWN", StatusCode: "1", ChargedCents: 500, PaidCents: 500},
	}}}}
	p := PlanPosting("remit", era, claims, newID, time.Now())
	queues := []string{}
	for _, w := range p.WorkItems {
		queues = append(queues, fmt.Sprintf("%s:%d:%s", w.Queue, w.Amount, w.Reason))
	}
	want := "[unmatched:100: denial:15000:CO-50 unmatched:500:no claim with this control number]"
	if fmt.Sprint(queues) != want {
		t.Fatalf("work items %v", queues)
	}
	if p.Claims[0].ClaimStatus != ClaimDenied || len(p.ChargeChanges) != 1 || p.ChargeChanges[0].To != ChargeDenied || p.UnmatchedLines != 2 || p.MatchedClaims != 1 {
		t.Fatalf("posting %+v", p)
	}
}

func TestUpdateWorkItem(t *testing.T) {
	denial := WorkItem{Queue: QueueDenial, Status: WorkOpen, AppealStatus: AppealNone}
	under := WorkItem{Queue: QueueUnderpayment, Status: WorkOpen, AppealStatus: AppealNone}
	tests := []struct {
		name           string
		w              WorkItem
		status, appeal string
		ok             bool
	}{
		{"resolve", under, WorkResolved, "", true},
		{"appeal a denial", denial, "", AppealFiled, true},
		{"win before appealing", denial, "", AppealWon, false},
		{"appeal an underpayment", under, "", AppealFiled, false},
		{"win an appeal", WorkItem{Queue: QueueDenial, Status: WorkOpen, AppealStatus: AppealFiled}, WorkResolved, AppealWon, true},
		{"reopen a lost appeal", WorkItem{Queue: QueueDenial, Status: WorkResolved, AppealStatus: AppealLost}, "", AppealFiled, false},
	}
	for _, tt := range tests {
		_, _, err := UpdateWorkItem(tt.w, tt.status, tt.appeal)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err %v", tt.name, err)
		}
	}
}

func TestAging(t *testing.T) {
	var b Buckets
	for _, d := range []int{0, 30, 31, 60, 61, 90, 91, 120, 121, 400} {
		b.Add(d, 1)
	}
	if b != (Buckets{2, 2, 2, 2, 2, 10}) {
		t.Fatalf("%+v", b)
	}
	asOf := time.Date(2026, 3, 31, 1, 0, 0, 0, time.UTC)
	if d := AgeDays(time.Date(2026, 3, 1, 23, 0, 0, 0, time.UTC), asOf); d != 30 {
		t.Fatalf("days %d", d)
	}
	if Outstanding(100, 50, 30, 30, 0) != 0 || Outstanding(100, 50, 10, 10, 0) != 30 || Outstanding(100, 50, 10, 10, 20) != 10 ||
		Outstanding(100, 50, 10, 10, 40) != 0 {
		t.Fatal("outstanding")
	}
	if StatementDueDate(asOf) != "2026-04-30" {
		t.Fatal("due date")
	}
}
