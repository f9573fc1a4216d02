package domain

import (
	"slices"
	"strings"
	"time"

	"github.com/trellis-health/trellis/pkg/money"

	"github.com/trellis-health/trellis/services/billing/internal/x12"
)

// Remittance posting: the rules that turn an 835 (x12.ERA) into postings against the claims
// billing sent. PlanPosting is pure; the app loads the claims, plans, and stores the plan in
// one transaction.

// Claim statuses (claims.status).
const (
	ClaimSubmitted     = "submitted"
	ClaimPaid          = "paid"
	ClaimPartiallyPaid = "partially_paid"
	ClaimDenied        = "denied"
	ClaimReversed      = "reversed"
)

// Line classifications (remittance_lines.classification): how the gap between expected and
// paid is explained.
const (
	ClassPaid          = "paid"                   // paid in full, nothing to explain
	ClassContractual   = "contractual"            // the gap is CO adjustments only
	ClassPatientResp   = "patient_responsibility" // the gap includes PR (posted to the patient)
	ClassDenied        = "denied"                 // nothing paid, nothing to the patient
	ClassUnderpaid     = "underpaid"              // expected - paid - PR - CO > 0
	ClassOverpaid      = "overpaid"               // expected - paid - PR - CO < 0
	ClassUnmatched     = "unmatched"              // no claim line to compare with
	ClassReversal      = "reversal"               // a status 22 claim's line
	ClassDuplicate     = "duplicate"              // the claim was already posted
	ClaimClassPosted   = "posted"
	ClaimClassReversal = "reversal"
	ClaimClassDup      = "duplicate"
	ClaimClassNone     = "unmatched"
)

// Work queues.
const (
	QueueDenial       = "denial"
	QueueUnderpayment = "underpayment"
	QueueOverpayment  = "overpayment"
	QueueUnmatched    = "unmatched"
	QueueHolds        = "holds" // not stored: held charges
)

// BilledLine is a claim line as billing sent it.
type BilledLine struct {
	LineNumber    int
	ChargeID      string
	ChargeStatus  string
	LineControl   string // REF*6R
	ProcedureCode string
	ServiceDate   string // YYYYMMDD
	ExpectedCents money.Cents
}

// BilledClaim is a claim as billing sent it, with its current posting state.
type BilledClaim struct {
	ID, ControlNumber, ClinicID, PatientID, PayerID, Status string
	TotalCents                                              money.Cents
	Lines                                                   []BilledLine
	// Active is the claim's posting no reversal has undone yet, if any.
	Active *ActivePosting
	// For a correction (frequency 7 or 8): the claim it corrects, whose active posting (if
	// any) a posting of the correction supersedes.
	Corrects *BilledClaim
}

// ChargeOnOtherClaim is a BilledLine's ChargeStatus when its charge has moved on to a
// correction claim: a posting of this claim leaves the charge alone (the correction's posting
// decides it), so no charge is counted twice.
const ChargeOnOtherClaim = "on another claim"

// ActivePosting is what a reversal must undo.
type ActivePosting struct {
	RemitClaimID     string
	PatientRespCents money.Cents // posted to the patient's ledger
	WorkItemRefs     []string
}

// AdjustmentTotals sums CAS amounts by meaning.
type AdjustmentTotals struct {
	Contractual money.Cents // CO
	PatientResp money.Cents // PR
	Other       money.Cents // OA, PI, CR and anything else
}

// SumAdjustments adds up adjustments by group.
func SumAdjustments(adjs ...[]x12.Adjustment) AdjustmentTotals {
	var t AdjustmentTotals
	for _, list := range adjs {
		for _, a := range list {
			switch a.Group {
			case "CO":
				t.Contractual += money.Cents(a.AmountCents)
			case "PR":
				t.PatientResp += money.Cents(a.AmountCents)
			default:
				t.Other += money.Cents(a.AmountCents)
			}
		}
	}
	return t
}

// LineResult is a classified line: the gap between expected and paid, explained.
type LineResult struct {
	Expected, Paid, PatientResp, Contractual money.Cents
	// Variance = Expected - Paid - PatientResp - Contractual: positive is underpaid.
	Variance       money.Cents
	Classification string
}

// ClassifyLine explains the gap between expected (the claim line charge: contract rate x
// units) and paid. Denied: the claim was denied (status 4), or nothing was paid and nothing
// falls to the patient on a line that expected money. Otherwise the variance decides
// (underpaid > 0, overpaid < 0); with no variance, PR makes it patient responsibility, CO
// alone contractual, nothing at all paid.
func ClassifyLine(expected, paid money.Cents, adj AdjustmentTotals, claimDenied bool) LineResult {
	r := LineResult{Expected: expected, Paid: paid, PatientResp: adj.PatientResp, Contractual: adj.Contractual}
	r.Variance = expected - paid - adj.PatientResp - adj.Contractual
	switch {
	case claimDenied || (paid == 0 && adj.PatientResp == 0 && expected > 0):
		r.Classification = ClassDenied
	case r.Variance > 0:
		r.Classification = ClassUnderpaid
	case r.Variance < 0:
		r.Classification = ClassOverpaid
	case adj.PatientResp != 0:
		r.Classification = ClassPatientResp
	case adj.Contractual != 0:
		r.Classification = ClassContractual
	default:
		r.Classification = ClassPaid
	}
	return r
}

// Claim status codes of CLP02.
func isReversal(code string) bool { return code == "22" }
func isDenial(code string) bool   { return code == "4" }

// ClaimStatusFor is the claim's status after a (non-reversal) posting: denied for status 4 or
// when every line is denied; partially paid when a line is denied or underpaid; else paid.
func ClaimStatusFor(statusCode string, lines []LineResult) string {
	if isDenial(statusCode) {
		return ClaimDenied
	}
	denied, short := 0, 0
	for _, l := range lines {
		switch l.Classification {
		case ClassDenied:
			denied++
		case ClassUnderpaid:
			short++
		}
	}
	switch {
	case len(lines) > 0 && denied == len(lines):
		return ClaimDenied
	case denied+short > 0:
		return ClaimPartiallyPaid
	default:
		return ClaimPaid
	}
}

// MatchLine finds the billed line an SVC answers: by REF*6R, else by procedure code and
// service date among lines not yet taken (by procedure code alone when the SVC has no date
// and exactly one line fits). It returns -1 when none does.
func MatchLine(billed []BilledLine, taken []bool, svc x12.ServiceLinePayment) int {
	if svc.LineControlNumber != "" {
		for i, b := range billed {
			if !taken[i] && b.LineControl == svc.LineControlNumber {
				return i
			}
		}
	}
	found, n := -1, 0
	for i, b := range billed {
		if taken[i] || b.ProcedureCode != svc.ProcedureCode {
			continue
		}
		if svc.ServiceDate != "" {
			if b.ServiceDate == svc.ServiceDate {
				return i
			}
			continue
		}
		found, n = i, n+1
	}
	if n == 1 {
		return found
	}
	return -1
}

// WorkItemFor is the queue and amount a classified line opens, if any: denied (the expected
// amount), underpaid (the variance), overpaid (the excess), unmatched (what was paid).
func WorkItemFor(r LineResult) (queue string, amount money.Cents, ok bool) {
	switch r.Classification {
	case ClassDenied:
		return QueueDenial, r.Expected, true
	case ClassUnderpaid:
		return QueueUnderpayment, r.Variance, true
	case ClassOverpaid:
		return QueueOverpayment, -r.Variance, true
	case ClassUnmatched:
		return QueueUnmatched, r.Paid, true
	}
	return "", 0, false
}

// denialReasons lists the non-PR adjustment codes ("CO-50") of a denial, for the work item.
func denialReasons(adjs ...[]x12.Adjustment) string {
	var out []string
	for _, list := range adjs {
		for _, a := range list {
			if a.Group != "PR" {
				if code := a.Group + "-" + a.Reason; !slices.Contains(out, code) {
					out = append(out, code)
				}
			}
		}
	}
	return strings.Join(out, " ")
}

// Remittance is an uploaded 835 file and what posting it did.
type Remittance struct {
	ID, SHA256, FileName, Payer string
	Content                     []byte
	Summary                     x12.Summary
	MatchedClaims               int
	UnmatchedLines              int
	WorkItems                   int
	PostedAt                    time.Time
}

// StatementIssued is a statement for an account whose balance rose.
type StatementIssued struct {
	ID, AccountID, PatientID, ClinicID, DueDate, RemittanceID string
	Balance                                                   money.Cents
	IssuedAt                                                  time.Time
}

// AccountChange is an account's balance after a posting and how much the posting moved it.
type AccountChange struct {
	AccountID, PatientID, ClinicID string
	Balance, Delta                 money.Cents
}
