// Package postgres stores billing's aggregates in its own schema.
package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/bus"

	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// Accounts is the accounts table.
type Accounts struct{ store *bus.Store }

// NewAccounts returns the repository on store's pool (search_path is the billing schema).
func NewAccounts(store *bus.Store) *Accounts { return &Accounts{store: store} }

// Add inserts a unless a unique key (source event, or patient and clinic) is taken; it
// reports whether a row was inserted. A concurrent insert of the same key waits for the other
// transaction and then inserts nothing.
func (r *Accounts) Add(ctx context.Context, tx *bus.Tx, a domain.Account) (bool, error) {
	tag, err := tx.Exec(ctx, `
		INSERT INTO accounts (id, patient_id, clinic_id, enrollment_id, balance_cents, status, source_event_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT DO NOTHING`,
		a.ID, a.PatientID, a.ClinicID, a.EnrollmentID, a.BalanceCents, a.Status, a.SourceEventID)
	if err != nil {
		return false, fmt.Errorf("insert account: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// ForPatient returns the patient's accounts in every clinic.
func (r *Accounts) ForPatient(ctx context.Context, patientID string) ([]domain.Account, error) {
	return read(ctx, r.store, func(q querier) ([]domain.Account, error) {
		rows, err := q.Query(ctx, `
			SELECT id::text, patient_id::text, clinic_id::text, enrollment_id::text, balance_cents, status,
			       source_event_id::text, opened_at
			FROM accounts WHERE patient_id = $1`, patientID)
		if err != nil {
			return nil, fmt.Errorf("query accounts: %w", err)
		}
		out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Account, error) {
			var a domain.Account
			err := row.Scan(&a.ID, &a.PatientID, &a.ClinicID, &a.EnrollmentID, &a.BalanceCents, &a.Status,
				&a.SourceEventID, &a.OpenedAt)
			return a, err
		})
		if err != nil {
			return nil, fmt.Errorf("read accounts: %w", err)
		}
		return out, nil
	})
}
