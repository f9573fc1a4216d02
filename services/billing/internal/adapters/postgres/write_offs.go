package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/bus"

	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// WorkItemPosting returns the remittance claim (the posting) work item w came from, by its
// ref ("line:<remittance line>" or "claim:<remittance claim>"), and whether that posting
// still stands (posted, neither reversed nor superseded). found is false when the ref names
// no remittance claim.
func (r *Remittances) WorkItemPosting(ctx context.Context, tx *bus.Tx, w domain.WorkItem) (remitClaimID string, active, found bool, err error) {
	var q string
	var id string
	switch {
	case strings.HasPrefix(w.Ref, "line:"):
		id = strings.TrimPrefix(w.Ref, "line:")
		q = `SELECT rc.id::text, rc.classification = 'posted' AND rc.reversed_by IS NULL
			FROM remittance_lines l JOIN remittance_claims rc ON rc.id = l.remittance_claim_id WHERE l.id = $1`
	case strings.HasPrefix(w.Ref, "claim:"):
		id = strings.TrimPrefix(w.Ref, "claim:")
		q = `SELECT rc.id::text, rc.classification = 'posted' AND rc.reversed_by IS NULL FROM remittance_claims rc WHERE rc.id = $1`
	default:
		return "", false, false, nil
	}
	err = tx.QueryRow(ctx, q, id).Scan(&remitClaimID, &active)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, false, nil
	}
	if err != nil {
		return "", false, false, fmt.Errorf("query work item posting: %w", err)
	}
	return remitClaimID, active, true, nil
}

// HeldChargeClinic returns the clinic of held charge id (an item of the holds queue); ok is
// false when id is no held charge.
func (r *Remittances) HeldChargeClinic(ctx context.Context, tx *bus.Tx, id string) (clinic string, ok bool, err error) {
	err = tx.QueryRow(ctx, `SELECT clinic_id::text FROM charges WHERE id = $1 AND status = 'held'`, id).Scan(&clinic)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("query held charge: %w", err)
	}
	return clinic, true, nil
}

// AddWriteOff stores write-off wo of posting remitClaimID, under the caller's idempotency key
// (empty: none), and the item after it (what is written off, its status). The item's row must
// be locked by tx (LockWorkItem); the table's checks refuse going beyond the item's amount.
func (r *Remittances) AddWriteOff(ctx context.Context, tx *bus.Tx, wo domain.WriteOff, remitClaimID, idempotencyKey string, item domain.WorkItem) error {
	_, err := tx.Exec(ctx, `INSERT INTO write_offs (id, work_item_id, queue, claim_id, clinic_id, payer_id, remittance_claim_id,
			amount_cents, reason, note, written_off_by, idempotency_key, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		wo.ID, wo.WorkItemID, wo.Queue, wo.ClaimID, wo.ClinicID, wo.PayerID, remitClaimID, wo.Amount, wo.Reason, wo.Note,
		wo.WrittenOffBy, idempotencyKey, wo.CreatedAt)
	if err != nil {
		return fmt.Errorf("insert write-off: %w", err)
	}
	_, err = tx.Exec(ctx, `UPDATE work_items SET written_off_cents = $2, status = $3, updated_at = $4 WHERE id = $1`,
		item.ID, item.WrittenOff, item.Status, item.UpdatedAt)
	if err != nil {
		return fmt.Errorf("update written-off item: %w", err)
	}
	return nil
}

// ListWriteOffs returns the newest write-offs in scope (clinic, claim: only that one; empty:
// any), at most limit.
func (r *Remittances) ListWriteOffs(ctx context.Context, scope domain.Scope, clinic, claim string, limit int) ([]domain.WriteOff, error) {
	return read(ctx, r.store, func(q querier) ([]domain.WriteOff, error) {
		rows, err := q.Query(ctx, `
			SELECT id::text, work_item_id::text, queue, claim_id::text, clinic_id::text, payer_id, amount_cents, reason, note,
				written_off_by, created_at
			FROM write_offs
			WHERE ($1::boolean OR clinic_id::text = ANY($2::text[])) AND ($3 = '' OR clinic_id::text = $3)
			  AND ($4 = '' OR claim_id::text = $4)
			ORDER BY created_at DESC, id DESC LIMIT $5`, scope.All, scope.Clinics, clinic, claim, limit)
		if err != nil {
			return nil, fmt.Errorf("query write-offs: %w", err)
		}
		return pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.WriteOff, error) {
			var w domain.WriteOff
			return w, row.Scan(&w.ID, &w.WorkItemID, &w.Queue, &w.ClaimID, &w.ClinicID, &w.PayerID, &w.Amount, &w.Reason, &w.Note,
				&w.WrittenOffBy, &w.CreatedAt)
		})
	})
}
