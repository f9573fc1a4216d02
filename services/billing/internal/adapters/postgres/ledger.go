package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/money"

	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// Ledger is the patient ledger's self-pay entries and the statement cycle.
type Ledger struct{}

// NewLedger returns the repository (every method works in a transaction it is given).
func NewLedger() *Ledger { return &Ledger{} }

// AccountID returns the patient's account at the clinic.
func (r *Ledger) AccountID(ctx context.Context, tx *bus.Tx, patientID, clinicID string) (string, bool, error) {
	var id string
	err := tx.QueryRow(ctx, `SELECT id::text FROM accounts WHERE patient_id = $1 AND clinic_id = $2`, patientID, clinicID).Scan(&id)
	if err == pgx.ErrNoRows {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("account of patient: %w", err)
	}
	return id, true, nil
}

// PostCharge adds a self_pay_charge entry and moves the account's balance in one statement;
// an entry with the same ref already there posts nothing.
func (r *Ledger) PostCharge(ctx context.Context, tx *bus.Tx, accountID, chargeID, ref string, amount money.Cents, at time.Time) (bool, error) {
	tag, err := tx.Exec(ctx, `
		WITH ins AS (INSERT INTO ledger_entries (id, account_id, kind, amount_cents, ref, charge_id, created_at, clinic_id)
			SELECT $1, a.id, 'self_pay_charge', $3, $4, $5, $6, a.clinic_id FROM accounts a WHERE a.id = $2
			ON CONFLICT (ref) DO NOTHING
			RETURNING account_id, amount_cents)
		UPDATE accounts a SET balance_cents = a.balance_cents + ins.amount_cents FROM ins WHERE a.id = ins.account_id`,
		bus.NewID(), accountID, int64(amount), ref, chargeID, at)
	if err != nil {
		return false, fmt.Errorf("post self-pay charge: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// DueStatements returns, locked (skipping accounts another pass holds), the accounts with a
// positive balance, a ledger entry newer than their last statement, and no statement after
// notBefore.
func (r *Ledger) DueStatements(ctx context.Context, tx *bus.Tx, notBefore time.Time, limit int) ([]domain.AccountChange, error) {
	rows, err := tx.Query(ctx, `
		SELECT a.id::text, a.patient_id::text, a.clinic_id::text, a.balance_cents
		FROM accounts a
		LEFT JOIN LATERAL (SELECT max(issued_at) AS last FROM statements s WHERE s.account_id = a.id) st ON true
		WHERE a.balance_cents > 0
		  AND (st.last IS NULL OR st.last <= $1)
		  AND EXISTS (SELECT 1 FROM ledger_entries l WHERE l.account_id = a.id AND (st.last IS NULL OR l.created_at > st.last))
		ORDER BY a.id
		LIMIT $2
		FOR UPDATE OF a SKIP LOCKED`, notBefore, limit)
	if err != nil {
		return nil, fmt.Errorf("due statements: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.AccountChange, error) {
		var c domain.AccountChange
		var balance int64
		err := row.Scan(&c.AccountID, &c.PatientID, &c.ClinicID, &balance)
		c.Balance = money.Cents(balance)
		return c, err
	})
}

// AddStatements stores statements of the cycle (no remittance), in one statement.
func (r *Ledger) AddStatements(ctx context.Context, tx *bus.Tx, list []domain.StatementIssued) error {
	return insertStatements(ctx, tx, list)
}

// insertStatements stores statements in one INSERT of arrays (a remittance's or a cycle's
// hundreds of statements in one round trip, not one each).
func insertStatements(ctx context.Context, tx *bus.Tx, list []domain.StatementIssued) error {
	if len(list) == 0 {
		return nil
	}
	n := len(list)
	ids, accounts, dues, remittances, clinics := make([]string, n), make([]string, n), make([]string, n), make([]*string, n), make([]string, n)
	balances, issued := make([]int64, n), make([]time.Time, n)
	for i, s := range list {
		ids[i], accounts[i], dues[i], remittances[i], clinics[i] = s.ID, s.AccountID, s.DueDate, nullable(s.RemittanceID), s.ClinicID
		balances[i], issued[i] = int64(s.Balance), s.IssuedAt
	}
	if _, err := tx.Exec(ctx, `INSERT INTO statements (id, account_id, balance_cents, due_date, remittance_id, issued_at, clinic_id)
		SELECT v.id::uuid, v.account_id::uuid, v.balance, v.due_date::date, v.remittance_id::uuid, v.issued_at, v.clinic_id::uuid
		FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::timestamptz[], $7::text[])
		     AS v(id, account_id, balance, due_date, remittance_id, issued_at, clinic_id)`,
		ids, accounts, balances, dues, remittances, issued, clinics); err != nil {
		return fmt.Errorf("insert statements: %w", err)
	}
	return nil
}
