package domain

import (
	"time"

	"github.com/trellis-health/trellis/pkg/money"
)

// Buckets ages receivables: amounts by age in days (0-30, 31-60, 61-90, 91-120, over 120).
type Buckets struct {
	Days0To30, Days31To60, Days61To90, Days91To120, Over120, Total money.Cents
}

// Add puts amount, days old, in its bucket.
func (b *Buckets) Add(days int, amount money.Cents) {
	switch {
	case days <= 30:
		b.Days0To30 += amount
	case days <= 60:
		b.Days31To60 += amount
	case days <= 90:
		b.Days61To90 += amount
	case days <= 120:
		b.Days91To120 += amount
	default:
		b.Over120 += amount
	}
	b.Total += amount
}

// AgeDays counts whole calendar days (UTC) from since to asOf; never negative.
func AgeDays(since, asOf time.Time) int {
	s := time.Date(since.UTC().Year(), since.UTC().Month(), since.UTC().Day(), 0, 0, 0, 0, time.UTC)
	a := time.Date(asOf.UTC().Year(), asOf.UTC().Month(), asOf.UTC().Day(), 0, 0, 0, 0, time.UTC)
	return max(int(a.Sub(s).Hours()/24), 0)
}

// Outstanding is what a payer still owes on a claim: its total less what was paid, written
// off by contract (CO), moved to the patient (PR) and written off by billing staff (write-offs
// of its denials and underpayments). Never negative.
func Outstanding(total, paid, contractual, patientResp, writtenOff money.Cents) money.Cents {
	return max(total-paid-contractual-patientResp-writtenOff, 0)
}

// Scope limits a read to the clinics a caller sees: All, or the listed clinic ids.
type Scope struct {
	All     bool
	Clinics []string
}

// ClaimReceivable is one claim's outstanding amount and when it was submitted.
type ClaimReceivable struct {
	PayerID, ClinicID string
	SubmittedAt       time.Time
	Outstanding       money.Cents
}

// PatientReceivable is an account's positive balance and its first statement's date (the
// posting time when it has none).
type PatientReceivable struct {
	ClinicID string
	Since    time.Time
	Balance  money.Cents
}

// PatientBalance is an account's balance, its ledger and its last statement.
type PatientBalance struct {
	AccountID     string
	Balance       money.Cents
	Entries       []LedgerRow
	LastStatement *StatementIssued
}

// LedgerRow is one stored ledger entry.
type LedgerRow struct {
	ID, Kind, ClaimID, RemittanceID string
	Amount                          money.Cents
	CreatedAt                       time.Time
}
