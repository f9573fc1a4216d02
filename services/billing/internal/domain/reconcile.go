package domain

import (
	"time"

	"github.com/trellis-health/trellis/pkg/money"

	"github.com/trellis-health/trellis/services/billing/internal/x12"
)

// RemitClaim is one CLP of a remittance as posted.
type RemitClaim struct {
	ID                 string
	Position           int // 1-based ordinal of the CLP in the file
	ClaimID, ClinicID  string
	PatientControl     string
	PayerClaimNumber   string
	StatusCode         string
	Charged, Paid      money.Cents
	PatientResp        money.Cents // PR adjustments, claim and lines
	Contractual        money.Cents // CO adjustments, claim and lines, except on denied lines
	Adjustments        []x12.Adjustment
	Classification     string // posted, reversal, duplicate, unmatched
	ClaimStatus        string // the claim's status after this CLP (matched claims)
	Lines              []RemitLine
	ReversesRemitClaim string // for a reversal: the posting it undid
}

// RemitLine is one SVC as posted.
type RemitLine struct {
	ID                                      string
	Position                                int
	ClaimID                                 string
	LineNumber                              int // 0: no claim line
	ChargeID                                string
	ProcedureCode, ServiceDate, LineControl string
	Charged                                 money.Cents
	Result                                  LineResult
	Adjustments                             []x12.Adjustment
	Remarks                                 []string
}

// WorkItem is an entry of a reconciliation work queue.
type WorkItem struct {
	ID, Queue, Ref, RemittanceID, ClaimID, ClinicID, PayerID string
	Amount                                                   money.Cents
	WrittenOff                                               money.Cents // by write-offs (denials and underpayments)
	Reason, Status, AppealStatus                             string
	CreatedAt, UpdatedAt                                     time.Time
}

// ClaimUpdate is a claim's new posting state.
type ClaimUpdate struct {
	ClaimID, Status, PayerClaimNumber string
	Paid, PatientResp                 money.Cents
}

// ChargeChange is a charge moving from one status to another.
type ChargeChange struct {
	ChargeID, ClinicID, PatientID, From, To string
}

// LedgerPosting is an amount for a patient's account at a clinic; Ref makes it once-only.
type LedgerPosting struct {
	Ref, PatientID, ClinicID, Kind, ClaimID string
	Amount                                  money.Cents
}

// Ledger entry kinds.
const (
	LedgerPatientResp = "patient_responsibility"
	LedgerPayment     = "payment"
	LedgerAdjustment  = "adjustment"
)

// Adjudication is what ClaimAdjudicated carries.
type Adjudication struct {
	ClaimID, ClinicID, PatientID, PayerID, Status     string
	Charged, Paid, Contractual, PatientResp, Variance money.Cents
}

// Posting is everything posting one remittance changes, in order.
type Posting struct {
	Claims         []RemitClaim
	WorkItems      []WorkItem
	ClaimUpdates   []ClaimUpdate
	ChargeChanges  []ChargeChange
	Ledger         []LedgerPosting
	Adjudications  []Adjudication
	MatchedClaims  int
	UnmatchedLines int
}

// PlanPosting decides how remittance remittanceID (era) posts against claims (by control
// number, CLP01; the map is updated as the plan goes, so one file can post, reverse and post
// again the same claim). now stamps the work items.
//
//   - A CLP matching no claim is stored unmatched; each of its lines (or the claim when it has
//     none) opens an 'unmatched' work item.
//   - Status 22 undoes the claim's active posting (claim reversed, amounts zeroed, charges back
//     to submitted, patient responsibility taken back, that posting's open work items resolved).
//   - A claim that already has an active posting is not posted again: the CLP is stored as a
//     duplicate and what it paid opens an 'overpayment' item (no charge is counted twice).
//   - Otherwise each SVC is matched to a claim line and classified; a claim without SVC lines
//     is classified as one line against the claim total. Status 4 denies the whole claim (one
//     'denial' item); otherwise denied, underpaid, overpaid and unmatched lines open items.
//     The claim's PR (claim and line CAS) goes to the patient's ledger.
func PlanPosting(remittanceID string, era *x12.ERA, claims map[string]*BilledClaim, newID func() string, now time.Time) Posting {
	var p Posting
	pos := 0
	item := func(queue, ref, claimID, clinicID, payerID, reason string, amount money.Cents) {
		p.WorkItems = append(p.WorkItems, WorkItem{ID: newID(), Queue: queue, Ref: ref, RemittanceID: remittanceID,
			ClaimID: claimID, ClinicID: clinicID, PayerID: payerID, Amount: amount, Reason: reason,
			Status: "open", AppealStatus: "none", CreatedAt: now, UpdatedAt: now})
	}
	for _, tx := range era.Transactions {
		for _, clp := range tx.Claims {
			pos++
			adj := SumAdjustments(clp.Adjustments)
			for _, l := range clp.Lines {
				a := SumAdjustments(l.Adjustments)
				adj.Contractual += a.Contractual
				adj.PatientResp += a.PatientResp
				adj.Other += a.Other
			}
			rc := RemitClaim{ID: newID(), Position: pos, PatientControl: clp.PatientControlNumber,
				PayerClaimNumber: clp.PayerClaimNumber, StatusCode: clp.StatusCode,
				Charged: money.Cents(clp.ChargedCents), Paid: money.Cents(clp.PaidCents),
				PatientResp: adj.PatientResp, Contractual: adj.Contractual, Adjustments: clp.Adjustments}
			bc := claims[clp.PatientControlNumber]
			switch {
			case bc == nil:
				rc.Classification = ClaimClassNone
				p.planUnmatched(&rc, clp, newID, func(ref string, amount money.Cents) {
					item(QueueUnmatched, ref, "", "", tx.PayerID, "no claim with this control number", amount)
				})
			case isReversal(clp.StatusCode):
				p.MatchedClaims++
				rc.ClaimID, rc.ClinicID, rc.Classification = bc.ID, bc.ClinicID, ClaimClassReversal
				p.planLines(&rc, clp, bc, newID, false, ClassReversal)
				if bc.Active == nil {
					rc.ClaimStatus = bc.Status
					if !corrected(bc) {
						// A corrected claim's reversal after its correction's posting superseded
						// its own is expected: nothing to work.
						item(QueueUnmatched, "claim:"+rc.ID, bc.ID, bc.ClinicID, bc.PayerID, "reversal of a claim with no posting", rc.Paid)
					}
					break
				}
				p.planReversal(&rc, bc)
			case bc.Active != nil:
				p.MatchedClaims++
				rc.ClaimID, rc.ClinicID, rc.Classification, rc.ClaimStatus = bc.ID, bc.ClinicID, ClaimClassDup, bc.Status
				p.planLines(&rc, clp, bc, newID, false, ClassDuplicate)
				if rc.Paid != 0 {
					item(QueueOverpayment, "claim:"+rc.ID, bc.ID, bc.ClinicID, bc.PayerID, "claim already posted", rc.Paid)
				}
			default:
				p.MatchedClaims++
				rc.ClaimID, rc.ClinicID, rc.Classification = bc.ID, bc.ClinicID, ClaimClassPosted
				p.planClaim(&rc, clp, bc, newID, item)
			}
			p.Claims = append(p.Claims, rc)
		}
	}
	return p
}

// planUnmatched stores the lines of a CLP that matched no claim, one item each.
func (p *Posting) planUnmatched(rc *RemitClaim, clp x12.ClaimPayment, newID func() string, item func(string, money.Cents)) {
	for i, l := range clp.Lines {
		rl := remitLine(newID(), i+1, l)
		rl.Result = ClassifyLine(rl.Charged, money.Cents(l.PaidCents), SumAdjustments(l.Adjustments), false)
		rl.Result.Classification = ClassUnmatched
		rc.Lines = append(rc.Lines, rl)
		p.UnmatchedLines++
		item("line:"+rl.ID, rl.Result.Paid)
	}
	if len(clp.Lines) == 0 {
		p.UnmatchedLines++
		item("claim:"+rc.ID, rc.Paid)
	}
}

func remitLine(id string, position int, l x12.ServiceLinePayment) RemitLine {
	return RemitLine{ID: id, Position: position, ProcedureCode: l.ProcedureCode, ServiceDate: l.ServiceDate,
		LineControl: l.LineControlNumber, Charged: money.Cents(l.ChargedCents), Adjustments: l.Adjustments, Remarks: l.Remarks}
}

// planLines matches and stores the lines of a CLP; classify false labels them all with label
// (reversal, duplicate) and changes nothing. It returns the match of each line (-1: none).
func (p *Posting) planLines(rc *RemitClaim, clp x12.ClaimPayment, bc *BilledClaim, newID func() string, classify bool, label string) []int {
	taken := make([]bool, len(bc.Lines))
	matches := make([]int, len(clp.Lines))
	for i, l := range clp.Lines {
		rl := remitLine(newID(), i+1, l)
		m := MatchLine(bc.Lines, taken, l)
		matches[i] = m
		expected := rl.Charged
		if m >= 0 {
			taken[m] = true
			b := bc.Lines[m]
			rl.ClaimID, rl.LineNumber, rl.ChargeID, expected = bc.ID, b.LineNumber, b.ChargeID, b.ExpectedCents
		}
		rl.Result = ClassifyLine(expected, money.Cents(l.PaidCents), SumAdjustments(l.Adjustments), classify && isDenial(clp.StatusCode))
		switch {
		case !classify:
			rl.Result.Classification = label
		case m < 0:
			rl.Result.Classification = ClassUnmatched
			p.UnmatchedLines++
		}
		rc.Lines = append(rc.Lines, rl)
	}
	return matches
}

// planClaim posts a CLP against its claim.
func (p *Posting) planClaim(rc *RemitClaim, clp x12.ClaimPayment, bc *BilledClaim, newID func() string,
	item func(queue, ref, claimID, clinicID, payerID, reason string, amount money.Cents)) {
	denied := isDenial(clp.StatusCode)
	var results []LineResult
	var variance money.Cents
	matches := p.planLines(rc, clp, bc, newID, true, "")
	chargeTo := map[int]string{} // billed line index -> charge status
	for i, rl := range rc.Lines {
		r := rl.Result
		if r.Classification != ClassUnmatched {
			results = append(results, r)
			variance += r.Variance
			to := ChargePaid
			if r.Classification == ClassDenied {
				to = ChargeDenied
			}
			chargeTo[matches[i]] = to
		}
		if q, amount, ok := WorkItemFor(r); ok && !(denied && q == QueueDenial) {
			reason := ""
			if q == QueueDenial {
				reason = denialReasons(clp.Adjustments, clp.Lines[i].Adjustments)
			}
			item(q, "line:"+rl.ID, bc.ID, bc.ClinicID, bc.PayerID, reason, amount)
		}
	}
	if len(clp.Lines) == 0 {
		// One line against the claim total with the claim's adjustments.
		r := ClassifyLine(bc.TotalCents, rc.Paid, SumAdjustments(clp.Adjustments), denied)
		results = append(results, r)
		variance = r.Variance
		to := ChargePaid
		if r.Classification == ClassDenied {
			to = ChargeDenied
		}
		for i := range bc.Lines {
			chargeTo[i] = to
		}
		if q, amount, ok := WorkItemFor(r); ok && !(denied && q == QueueDenial) {
			item(q, "claim:"+rc.ID, bc.ID, bc.ClinicID, bc.PayerID, denialReasons(clp.Adjustments), amount)
		}
	}
	p.supersede(rc, bc)
	rc.ClaimStatus = ClaimStatusFor(clp.StatusCode, results)
	if len(clp.Lines) > 0 && rc.ClaimStatus == ClaimPaid && len(chargeTo) < len(bc.Lines) {
		rc.ClaimStatus = ClaimPartiallyPaid // a billed line no SVC answered
	}
	if corrected(bc) {
		rc.ClaimStatus = bc.Status // its correction is what the payer owes on now
	}
	// Contractual is what the contract writes off: CO on what was not denied (a denial's CO,
	// e.g. CO-50, is still owed while it is appealed).
	rc.Contractual = 0
	if rc.ClaimStatus != ClaimDenied {
		rc.Contractual = SumAdjustments(clp.Adjustments).Contractual
		for _, rl := range rc.Lines {
			if rl.Result.Classification != ClassDenied {
				rc.Contractual += rl.Result.Contractual
			}
		}
	}
	if denied {
		for i := range bc.Lines {
			chargeTo[i] = ChargeDenied
		}
		var all [][]x12.Adjustment
		all = append(all, clp.Adjustments)
		for _, l := range clp.Lines {
			all = append(all, l.Adjustments)
		}
		item(QueueDenial, "claim:"+rc.ID, bc.ID, bc.ClinicID, bc.PayerID, denialReasons(all...), bc.TotalCents)
	}
	for i := range bc.Lines {
		to, ok := chargeTo[i]
		if ok && bc.Lines[i].ChargeStatus == ChargeSubmitted {
			p.ChargeChanges = append(p.ChargeChanges, ChargeChange{ChargeID: bc.Lines[i].ChargeID, ClinicID: bc.ClinicID,
				PatientID: bc.PatientID, From: ChargeSubmitted, To: to})
			bc.Lines[i].ChargeStatus = to
		}
	}
	if rc.PatientResp != 0 {
		p.Ledger = append(p.Ledger, LedgerPosting{Ref: "pr:" + rc.ID, PatientID: bc.PatientID, ClinicID: bc.ClinicID,
			Kind: LedgerPatientResp, ClaimID: bc.ID, Amount: rc.PatientResp})
	}
	p.ClaimUpdates = append(p.ClaimUpdates, ClaimUpdate{ClaimID: bc.ID, Status: rc.ClaimStatus,
		PayerClaimNumber: rc.PayerClaimNumber, Paid: rc.Paid, PatientResp: rc.PatientResp})
	p.Adjudications = append(p.Adjudications, Adjudication{ClaimID: bc.ID, ClinicID: bc.ClinicID, PatientID: bc.PatientID,
		PayerID: bc.PayerID, Status: rc.ClaimStatus, Charged: rc.Charged, Paid: rc.Paid, Contractual: rc.Contractual,
		PatientResp: rc.PatientResp, Variance: variance})
	bc.Status = rc.ClaimStatus
	bc.Active = &ActivePosting{RemitClaimID: rc.ID, PatientRespCents: rc.PatientResp}
}

// planReversal undoes bc's active posting.
func (p *Posting) planReversal(rc *RemitClaim, bc *BilledClaim) {
	rc.ReversesRemitClaim = bc.Active.RemitClaimID
	status := ClaimReversed
	if corrected(bc) {
		status = bc.Status
	}
	rc.ClaimStatus = status
	if pr := bc.Active.PatientRespCents; pr != 0 {
		p.Ledger = append(p.Ledger, LedgerPosting{Ref: "reversal:" + bc.Active.RemitClaimID, PatientID: bc.PatientID,
			ClinicID: bc.ClinicID, Kind: LedgerAdjustment, ClaimID: bc.ID, Amount: -pr})
	}
	for i, l := range bc.Lines {
		if l.ChargeStatus == ChargePaid || l.ChargeStatus == ChargeDenied {
			p.ChargeChanges = append(p.ChargeChanges, ChargeChange{ChargeID: l.ChargeID, ClinicID: bc.ClinicID,
				PatientID: bc.PatientID, From: l.ChargeStatus, To: ChargeSubmitted})
			bc.Lines[i].ChargeStatus = ChargeSubmitted
		}
	}
	p.ClaimUpdates = append(p.ClaimUpdates, ClaimUpdate{ClaimID: bc.ID, Status: status, PayerClaimNumber: rc.PayerClaimNumber})
	p.Adjudications = append(p.Adjudications, Adjudication{ClaimID: bc.ID, ClinicID: bc.ClinicID, PatientID: bc.PatientID,
		PayerID: bc.PayerID, Status: status, Charged: rc.Charged, Paid: rc.Paid, Contractual: rc.Contractual,
		PatientResp: rc.PatientResp})
	bc.Status = status
	bc.Active = nil
}

// corrected reports whether a correction claim (7 or 8) replaced or voided bc.
func corrected(bc *BilledClaim) bool { return bc.Status == ClaimReplaced || bc.Status == ClaimVoided }

// supersede undoes the active posting of the claim bc corrects, if any, as a posting of bc
// (rc) replaces it: that posting no longer counts (reversed by rc, its open work items
// resolved), its patient responsibility is taken back, and the corrected claim keeps its
// status with zero amounts. Its charges are bc's now, so none moves.
func (p *Posting) supersede(rc *RemitClaim, bc *BilledClaim) {
	o := bc.Corrects
	if o == nil || o.Active == nil {
		return
	}
	rc.ReversesRemitClaim = o.Active.RemitClaimID
	if pr := o.Active.PatientRespCents; pr != 0 {
		p.Ledger = append(p.Ledger, LedgerPosting{Ref: "reversal:" + o.Active.RemitClaimID, PatientID: o.PatientID,
			ClinicID: o.ClinicID, Kind: LedgerAdjustment, ClaimID: o.ID, Amount: -pr})
	}
	p.ClaimUpdates = append(p.ClaimUpdates, ClaimUpdate{ClaimID: o.ID, Status: o.Status})
	o.Active = nil
}
