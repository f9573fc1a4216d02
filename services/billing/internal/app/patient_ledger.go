package app

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/money"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"

	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// LedgerRepo stores patient ledger entries and statements (implemented by adapters/postgres).
type LedgerRepo interface {
	// PostCharge adds a ledger entry of kind self_pay_charge for chargeID to the account of
	// the patient at the clinic and moves its balance, unless an entry with ref exists. It
	// reports whether it posted.
	PostCharge(ctx context.Context, tx *bus.Tx, accountID, chargeID, ref string, amount money.Cents, at time.Time) (bool, error)
	// AccountID returns the patient's account at the clinic, if there is one.
	AccountID(ctx context.Context, tx *bus.Tx, patientID, clinicID string) (string, bool, error)
	// DueStatements returns, locked, the accounts that owe something, had ledger activity
	// since their last statement, and had no statement since notBefore; at most limit.
	DueStatements(ctx context.Context, tx *bus.Tx, notBefore time.Time, limit int) ([]domain.AccountChange, error)
	// AddStatements stores statements (in one statement).
	AddStatements(ctx context.Context, tx *bus.Tx, list []domain.StatementIssued) error
}

// PatientLedger posts what patients owe for their own care: self-pay charges (status
// patient_billed) go to the patient's account when billed and come back off it when voided;
// and it issues statements on a cycle. (What payers leave to patients after a remittance is
// posted by the remittance area, which also issues a statement right away.)
type PatientLedger struct {
	store    *bus.Store
	repo     LedgerRepo
	accounts *App
	// cycle: at most one statement per account per cycle.
	cycle time.Duration
	now   func() time.Time
	newID func() string
}

// NewPatientLedger returns the patient ledger; accounts opens an account a self-pay charge
// needs before the enrollment's account arrived.
func NewPatientLedger(store *bus.Store, repo LedgerRepo, accounts *App, cycle time.Duration) *PatientLedger {
	return &PatientLedger{store: store, repo: repo, accounts: accounts, cycle: cycle, now: time.Now, newID: bus.NewID}
}

// Billed posts a self-pay charge to the patient's account, in tx, opening the account (and
// announcing AccountOpened) if the enrollment's event has not opened it yet. Posting twice
// posts once.
func (l *PatientLedger) Billed(ctx context.Context, tx *bus.Tx, ch domain.Charge) error {
	return l.post(ctx, tx, ch, "self-pay:"+ch.ID, money.Cents(ch.AmountCents))
}

// Unbilled takes a voided self-pay charge back off the patient's account, in tx.
func (l *PatientLedger) Unbilled(ctx context.Context, tx *bus.Tx, ch domain.Charge) error {
	return l.post(ctx, tx, ch, "self-pay-void:"+ch.ID, -money.Cents(ch.AmountCents))
}

func (l *PatientLedger) post(ctx context.Context, tx *bus.Tx, ch domain.Charge, ref string, amount money.Cents) error {
	accountID, ok, err := l.repo.AccountID(ctx, tx, ch.PatientID, ch.ClinicID)
	if err != nil {
		return err
	}
	if !ok {
		source := ch.ID // the charge names no event of its own when it lists none
		if len(ch.SourceEventIDs) > 0 {
			source = ch.SourceEventIDs[0]
		}
		acc, _, err := l.accounts.OpenAccount(ctx, tx, source, domain.Enrollment{
			EnrollmentID: ch.EnrollmentID, PatientID: ch.PatientID, ClinicID: ch.ClinicID})
		if err != nil {
			return err
		}
		if accountID, ok, err = l.repo.AccountID(ctx, tx, acc.PatientID, acc.ClinicID); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("self-pay charge %s: no account after opening one", ch.ID)
		}
	}
	_, err = l.repo.PostCharge(ctx, tx, accountID, ch.ID, ref, amount, l.now().UTC())
	return err
}

// IssueStatements issues a statement (StatementReady) for every account that owes something,
// had ledger activity since its last statement, and had no statement within the cycle. It
// returns how many it issued. The statement worker runs it periodically; billing staff can run
// it at once (RemittanceService.IssueStatements).
func (l *PatientLedger) IssueStatements(ctx context.Context) (int, error) {
	return l.issue(ctx)
}

// IssueStatementsFor is IssueStatements on behalf of a caller, who needs every clinic
// (ErrForbidden): the cycle is network-wide.
func (l *PatientLedger) IssueStatementsFor(ctx context.Context, viewer domain.Viewer) (int, error) {
	if !viewer.CanSeeClinic(auth.AllClinics) {
		return 0, fmt.Errorf("%w: the statement cycle spans clinics; the caller needs every clinic", domain.ErrForbidden)
	}
	return l.issue(ctx)
}

func (l *PatientLedger) issue(ctx context.Context) (int, error) {
	const batch = 500
	total := 0
	for {
		n := 0
		err := l.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
			now := l.now().UTC()
			due, err := l.repo.DueStatements(ctx, tx, now.Add(-l.cycle), batch)
			if err != nil {
				return err
			}
			list := make([]domain.StatementIssued, len(due))
			for i, a := range due {
				list[i] = domain.StatementIssued{ID: l.newID(), AccountID: a.AccountID, PatientID: a.PatientID, ClinicID: a.ClinicID,
					DueDate: domain.StatementDueDate(now), Balance: a.Balance, IssuedAt: now}
			}
			if err := l.repo.AddStatements(ctx, tx, list); err != nil {
				return err
			}
			for _, s := range list {
				tx.Emit(bus.Event{Subject: SubjectStatementReady, ClinicID: s.ClinicID, Payload: &billingv1.StatementReady{
					StatementId: s.ID, AccountId: s.AccountID, PatientId: s.PatientID, ClinicId: s.ClinicID,
					BalanceCents: int64(s.Balance), DueDate: s.DueDate, IssuedAt: timestamppb.New(s.IssuedAt)}})
			}
			n = len(due)
			return nil
		})
		total += n
		if err != nil || n < batch {
			return total, err
		}
	}
}

// RunStatementCycle issues due statements every interval until ctx ends (a failed pass is
// retried at the next tick).
func (l *PatientLedger) RunStatementCycle(ctx context.Context, interval time.Duration, onError func(error)) error {
	if interval <= 0 {
		return fmt.Errorf("statement check interval: must be positive, got %s", interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := l.IssueStatements(ctx); err != nil && ctx.Err() == nil {
			onError(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
