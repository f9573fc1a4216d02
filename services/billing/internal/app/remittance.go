package app

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"

	"github.com/trellis-health/trellis/services/billing/internal/domain"
	"github.com/trellis-health/trellis/services/billing/internal/x12"
)

// Subjects the remittance area emits (see events.proto).
const (
	SubjectRemittancePosted = "trellis.billing.remittance.posted.v1"
	SubjectClaimAdjudicated = "trellis.billing.claim.adjudicated.v1"
	// Also the charges area's subject (charges.go); named here so the areas stay independent.
	SubjectStatementReady = "trellis.billing.statement.ready.v1"
)

// RemittanceRepo stores remittances and their postings (implemented by adapters/postgres).
type RemittanceRepo interface {
	InsertRemittance(ctx context.Context, tx *bus.Tx, r domain.Remittance) (domain.Remittance, bool, error)
	FinishRemittance(ctx context.Context, tx *bus.Tx, r domain.Remittance) error
	ListRemittances(ctx context.Context, scope domain.Scope, limit int) ([]domain.Remittance, error)
	LockClaimPatients(ctx context.Context, tx *bus.Tx, controls []string) error
	LoadClaims(ctx context.Context, tx *bus.Tx, controls []string) (map[string]*domain.BilledClaim, error)
	SavePosting(ctx context.Context, tx *bus.Tx, remittanceID string, p domain.Posting) error
	PostLedger(ctx context.Context, tx *bus.Tx, remittanceID string, entries []domain.LedgerPosting, newID func() string, at time.Time) ([]domain.AccountChange, error)
	AddStatements(ctx context.Context, tx *bus.Tx, list []domain.StatementIssued) error
	WorkItems(ctx context.Context, scope domain.Scope, queue, clinic, status string) ([]domain.WorkItem, error)
	HeldCharges(ctx context.Context, scope domain.Scope, clinic string) ([]domain.WorkItem, error)
	LockWorkItem(ctx context.Context, tx *bus.Tx, id string) (domain.WorkItem, bool, error)
	SaveWorkItem(ctx context.Context, tx *bus.Tx, w domain.WorkItem) error
	ClaimReceivables(ctx context.Context, scope domain.Scope, clinic string) ([]domain.ClaimReceivable, error)
	PatientReceivables(ctx context.Context, scope domain.Scope, clinic string) ([]domain.PatientReceivable, error)
	PatientBalance(ctx context.Context, patientID, clinicID string) (domain.PatientBalance, bool, error)
	WriteOffRepo
}

// Remittances is the use cases of 835 posting, work queues, aging and patient balances.
type Remittances struct {
	store *bus.Store
	repo  RemittanceRepo
	newID func() string
	now   func() time.Time
}

// NewRemittances returns the remittance use cases.
func NewRemittances(store *bus.Store, repo RemittanceRepo) *Remittances {
	return &Remittances{store: store, repo: repo, newID: bus.NewID, now: time.Now}
}

// remitScope is what viewer sees. Principals list their clinics; anything else sees only what
// CanSeeClinic grants for the all-clinics marker.
func remitScope(viewer domain.Viewer) domain.Scope {
	if viewer.CanSeeClinic(auth.AllClinics) {
		return domain.Scope{All: true}
	}
	if p, ok := viewer.(*auth.Principal); ok {
		return domain.Scope{Clinics: p.Clinics}
	}
	return domain.Scope{}
}

// Upload is the outcome of UploadRemittance.
type Upload struct {
	Remittance domain.Remittance
	Duplicate  bool
	// PatientIDs are the patients of the claims the file matched, sorted (none for a duplicate).
	PatientIDs []string
}

// UploadRemittance parses content as an 835 and posts it in one transaction (see
// domain.PlanPosting), emitting ClaimAdjudicated per claim, ChargeStatusChanged per charge,
// StatementReady per account whose balance rose, and RemittancePosted. A file spans clinics:
// the caller needs every clinic (ErrForbidden). Content seen before posts nothing: Duplicate,
// with the first upload. Unreadable content is a ValidationError on content; a readable file
// that breaks balancing rules is posted, its deviations kept in the summary.
func (r *Remittances) UploadRemittance(ctx context.Context, viewer domain.Viewer, fileName string, content []byte) (Upload, error) {
	if !viewer.CanSeeClinic(auth.AllClinics) {
		return Upload{}, fmt.Errorf("%w: a remittance spans clinics; the caller needs every clinic", domain.ErrForbidden)
	}
	era, err := x12.ParseERA(content)
	if err != nil {
		return Upload{}, &domain.ValidationError{Violations: []domain.Violation{
			{Field: "content", Rule: "x12.readable", Msg: "is not a readable X12 835 file"}}}
	}
	sum := sha256.Sum256(content)
	now := r.now().UTC()
	rem := domain.Remittance{ID: r.newID(), SHA256: hex.EncodeToString(sum[:]), FileName: fileName,
		Content: content, Summary: era.Summary(), PostedAt: now}
	if len(era.Transactions) > 0 {
		rem.Payer = cmp.Or(era.Transactions[0].PayerID, era.Transactions[0].PayerName)
	}
	var out Upload
	err = r.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		stored, inserted, err := r.repo.InsertRemittance(ctx, tx, rem)
		if err != nil || !inserted {
			out = Upload{Remittance: stored, Duplicate: true}
			return err
		}
		var controls []string
		for _, t := range era.Transactions {
			for _, c := range t.Claims {
				controls = append(controls, c.PatientControlNumber)
			}
		}
		// The patients' charges locks first, sorted, then the rows (claims, charges, accounts).
		if err := r.repo.LockClaimPatients(ctx, tx, controls); err != nil {
			return err
		}
		claims, err := r.repo.LoadClaims(ctx, tx, controls)
		if err != nil {
			return err
		}
		plan := domain.PlanPosting(rem.ID, era, claims, r.newID, now)
		if err := r.repo.SavePosting(ctx, tx, rem.ID, plan); err != nil {
			return err
		}
		changes, err := r.repo.PostLedger(ctx, tx, rem.ID, plan.Ledger, r.newID, now)
		if err != nil {
			return err
		}
		rem.MatchedClaims, rem.UnmatchedLines, rem.WorkItems = plan.MatchedClaims, plan.UnmatchedLines, len(plan.WorkItems)
		if err := r.repo.FinishRemittance(ctx, tx, rem); err != nil {
			return err
		}
		if err := r.issueStatements(ctx, tx, rem, changes); err != nil {
			return err
		}
		r.emitPosting(tx, rem, plan)
		out = Upload{Remittance: rem, PatientIDs: claimPatients(claims)}
		return nil
	})
	return out, err
}

// claimPatients are the distinct patients of claims, sorted.
func claimPatients(claims map[string]*domain.BilledClaim) []string {
	var out []string
	for _, c := range claims {
		if c.PatientID != "" {
			out = append(out, c.PatientID)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// issueStatements stores and announces a statement for each account whose balance rose and
// is owed (all in one statement).
func (r *Remittances) issueStatements(ctx context.Context, tx *bus.Tx, rem domain.Remittance, changes []domain.AccountChange) error {
	var list []domain.StatementIssued
	for _, c := range changes {
		if c.Delta <= 0 || c.Balance <= 0 {
			continue
		}
		list = append(list, domain.StatementIssued{ID: r.newID(), AccountID: c.AccountID, PatientID: c.PatientID, ClinicID: c.ClinicID,
			DueDate: domain.StatementDueDate(rem.PostedAt), RemittanceID: rem.ID, Balance: c.Balance, IssuedAt: rem.PostedAt})
	}
	if err := r.repo.AddStatements(ctx, tx, list); err != nil {
		return err
	}
	for _, s := range list {
		tx.Emit(bus.Event{Subject: SubjectStatementReady, ClinicID: s.ClinicID, Payload: &billingv1.StatementReady{
			StatementId: s.ID, AccountId: s.AccountID, PatientId: s.PatientID, ClinicId: s.ClinicID,
			BalanceCents: int64(s.Balance), DueDate: s.DueDate, IssuedAt: timestamppb.New(s.IssuedAt)}})
	}
	return nil
}

var remitClaimStatuses = map[string]billingv1.ClaimStatus{
	domain.ClaimSubmitted:     billingv1.ClaimStatus_CLAIM_STATUS_SUBMITTED,
	domain.ClaimPaid:          billingv1.ClaimStatus_CLAIM_STATUS_PAID,
	domain.ClaimPartiallyPaid: billingv1.ClaimStatus_CLAIM_STATUS_PARTIALLY_PAID,
	domain.ClaimDenied:        billingv1.ClaimStatus_CLAIM_STATUS_DENIED,
	domain.ClaimReversed:      billingv1.ClaimStatus_CLAIM_STATUS_REVERSED,
	domain.ClaimReplaced:      billingv1.ClaimStatus_CLAIM_STATUS_REPLACED,
	domain.ClaimVoided:        billingv1.ClaimStatus_CLAIM_STATUS_VOIDED,
}

func (r *Remittances) emitPosting(tx *bus.Tx, rem domain.Remittance, p domain.Posting) {
	at := timestamppb.New(rem.PostedAt)
	for _, a := range p.Adjudications {
		tx.Emit(bus.Event{Subject: SubjectClaimAdjudicated, ClinicID: a.ClinicID, Payload: &billingv1.ClaimAdjudicated{
			ClaimId: a.ClaimID, ClinicId: a.ClinicID, PatientId: a.PatientID, PayerId: a.PayerID,
			Status: remitClaimStatuses[a.Status], ChargedCents: int64(a.Charged), PaidCents: int64(a.Paid),
			ContractualCents: int64(a.Contractual), PatientResponsibilityCents: int64(a.PatientResp),
			VarianceCents: int64(a.Variance), RemittanceId: rem.ID}})
	}
	for _, c := range p.ChargeChanges {
		tx.Emit(bus.Event{Subject: SubjectChargeStatusChanged, ClinicID: c.ClinicID, Payload: &billingv1.ChargeStatusChanged{
			ChargeId: c.ChargeID, ClinicId: c.ClinicID, PatientId: c.PatientID, From: chargeStatuses[c.From],
			To: chargeStatuses[c.To], Reason: "remittance", ChangedAt: at}})
	}
	// A remittance spans clinics: its event names none.
	tx.Emit(bus.Event{Subject: SubjectRemittancePosted, Payload: &billingv1.RemittancePosted{
		RemittanceId: rem.ID, PayerId: rem.Payer, Claims: int32(rem.Summary.Claims), ServiceLines: int32(rem.Summary.ServiceLines),
		TotalPaidCents: rem.Summary.TotalPaidCents, UnmatchedLines: int32(rem.UnmatchedLines),
		Deviations: int32(len(rem.Summary.Deviations)), PostedAt: at}})
}

// ListRemittances lists the newest remittances touching the viewer's clinics.
func (r *Remittances) ListRemittances(ctx context.Context, viewer domain.Viewer, limit int) ([]domain.Remittance, error) {
	if limit <= 0 {
		limit = 50
	}
	return r.repo.ListRemittances(ctx, remitScope(viewer), limit)
}

// ListWorkItems lists a queue in the viewer's clinics (clinic: only that one, which the
// viewer must see; status: only that status). The holds queue is the held charges.
func (r *Remittances) ListWorkItems(ctx context.Context, viewer domain.Viewer, queue, clinic, status string) ([]domain.WorkItem, error) {
	if clinic != "" && !viewer.CanSeeClinic(clinic) {
		return nil, fmt.Errorf("%w: clinic", domain.ErrForbidden)
	}
	if queue == domain.QueueHolds {
		if status == domain.WorkResolved {
			return nil, nil
		}
		return r.repo.HeldCharges(ctx, remitScope(viewer), clinic)
	}
	return r.repo.WorkItems(ctx, remitScope(viewer), queue, clinic, status)
}

// UpdateWorkItem changes a work item's status or appeal status (domain.UpdateWorkItem). An
// item in a clinic the viewer cannot see (or without a clinic, for a viewer without every
// clinic) is ErrNotFound, like an absent one.
func (r *Remittances) UpdateWorkItem(ctx context.Context, viewer domain.Viewer, id, status, appeal string) (domain.WorkItem, error) {
	var out domain.WorkItem
	err := r.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		w, ok, err := r.repo.LockWorkItem(ctx, tx, id)
		if err != nil {
			return err
		}
		if !ok || !viewer.CanSeeClinic(cmp.Or(w.ClinicID, auth.AllClinics)) {
			return domain.ErrNotFound
		}
		w, changed, err := domain.UpdateWorkItem(w, status, appeal)
		if err != nil {
			return err
		}
		out = w
		if !changed {
			return nil
		}
		out.UpdatedAt = r.now().UTC()
		return r.repo.SaveWorkItem(ctx, tx, out)
	})
	return out, err
}

// PayerAging is one payer's outstanding claims at one clinic.
type PayerAging struct {
	PayerID, ClinicID string
	Claims            int
	Buckets           domain.Buckets
}

// PatientAging is what a clinic's patients owe.
type PatientAging struct {
	ClinicID string
	Accounts int
	Buckets  domain.Buckets
}

// Aging is the receivables aging as of a day.
type Aging struct {
	AsOf     time.Time
	Payers   []PayerAging
	Patients []PatientAging
}

// ReceivablesAging ages what payers owe (by claim submission) and what patients owe (by their
// first statement) in the viewer's clinics (clinic: only that one, which it must see).
func (r *Remittances) ReceivablesAging(ctx context.Context, viewer domain.Viewer, clinic string) (Aging, error) {
	if clinic != "" && !viewer.CanSeeClinic(clinic) {
		return Aging{}, fmt.Errorf("%w: clinic", domain.ErrForbidden)
	}
	out := Aging{AsOf: r.now().UTC()}
	claims, err := r.repo.ClaimReceivables(ctx, remitScope(viewer), clinic)
	if err != nil {
		return out, err
	}
	payers := map[[2]string]*PayerAging{}
	for _, c := range claims {
		if c.Outstanding <= 0 {
			continue
		}
		k := [2]string{c.PayerID, c.ClinicID}
		if payers[k] == nil {
			payers[k] = &PayerAging{PayerID: c.PayerID, ClinicID: c.ClinicID}
		}
		payers[k].Claims++
		payers[k].Buckets.Add(domain.AgeDays(c.SubmittedAt, out.AsOf), c.Outstanding)
	}
	for _, p := range payers {
		out.Payers = append(out.Payers, *p)
	}
	slices.SortFunc(out.Payers, func(a, b PayerAging) int {
		return cmp.Or(cmp.Compare(a.ClinicID, b.ClinicID), cmp.Compare(a.PayerID, b.PayerID))
	})
	accounts, err := r.repo.PatientReceivables(ctx, remitScope(viewer), clinic)
	if err != nil {
		return out, err
	}
	clinics := map[string]*PatientAging{}
	for _, a := range accounts {
		if clinics[a.ClinicID] == nil {
			clinics[a.ClinicID] = &PatientAging{ClinicID: a.ClinicID}
		}
		clinics[a.ClinicID].Accounts++
		clinics[a.ClinicID].Buckets.Add(domain.AgeDays(a.Since, out.AsOf), a.Balance)
	}
	for _, p := range clinics {
		out.Patients = append(out.Patients, *p)
	}
	slices.SortFunc(out.Patients, func(a, b PatientAging) int { return cmp.Compare(a.ClinicID, b.ClinicID) })
	return out, nil
}

// PatientBalance returns the patient's account at clinic (ErrForbidden for a clinic the
// viewer cannot see, ErrNotFound when there is no account).
func (r *Remittances) PatientBalance(ctx context.Context, viewer domain.Viewer, patientID, clinicID string) (domain.PatientBalance, error) {
	if !viewer.CanSeeClinic(clinicID) {
		return domain.PatientBalance{}, fmt.Errorf("%w: clinic", domain.ErrForbidden)
	}
	b, ok, err := r.repo.PatientBalance(ctx, patientID, clinicID)
	if err == nil && !ok {
		err = domain.ErrNotFound
	}
	return b, err
}
