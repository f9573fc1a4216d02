package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/trellis-health/trellis/pkg/bus"

	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// Config holds payers, contracts and the sliding scale.
type Config struct{ store *bus.Store }

// NewConfig returns the repository on store's pool.
func NewConfig(store *bus.Store) *Config { return &Config{store: store} }

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// UpsertPayer inserts or updates p in tx; it reports whether anything changed.
func (r *Config) UpsertPayer(ctx context.Context, tx *bus.Tx, p domain.Payer) (bool, error) {
	tag, err := tx.Exec(ctx, `
		INSERT INTO payers (code, name, kind, x12_payer_id) VALUES ($1, $2, $3, $4)
		ON CONFLICT (code) DO UPDATE SET name = excluded.name, kind = excluded.kind,
			x12_payer_id = excluded.x12_payer_id, updated_at = now()
		WHERE (payers.name, payers.kind, payers.x12_payer_id) IS DISTINCT FROM (excluded.name, excluded.kind, excluded.x12_payer_id)`,
		p.Code, p.Name, p.Kind, p.X12PayerID)
	if err != nil {
		return false, fmt.Errorf("upsert payer: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Payers returns every payer by code.
func (r *Config) Payers(ctx context.Context) ([]domain.Payer, error) {
	return read(ctx, r.store, func(q querier) ([]domain.Payer, error) {
		rows, err := q.Query(ctx, `SELECT code, name, kind, x12_payer_id FROM payers ORDER BY code`)
		if err != nil {
			return nil, fmt.Errorf("query payers: %w", err)
		}
		return pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Payer, error) {
			var p domain.Payer
			return p, row.Scan(&p.Code, &p.Name, &p.Kind, &p.X12PayerID)
		})
	})
}

// PayerExists reports whether a payer has code, locking it against deletion until tx ends.
func (r *Config) PayerExists(ctx context.Context, tx *bus.Tx, code string) (bool, error) {
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM payers WHERE code = $1 FOR SHARE) p`, code).Scan(&n); err != nil {
		return false, fmt.Errorf("payer exists: %w", err)
	}
	return n == 1, nil
}

// LockPayerClinic serializes, until tx ends, the changes to one payer's contracts at one clinic
// (the no-overlap rule is checked under it).
func (r *Config) LockPayerClinic(ctx context.Context, tx *bus.Tx, payerID, clinicID string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('billing.contracts:' || $1 || ':' || $2, 0))`, payerID, clinicID); err != nil {
		return fmt.Errorf("lock contracts: %w", err)
	}
	return nil
}

const contractCols = `id::text, payer_id, clinic_id::text, billing_mode, claim_type, per_diem_minimum_minutes,
	below_minimum, timely_filing_days, effective_from::text, coalesce(effective_to::text, ''), requires_authorization`

// Contract returns the contract with id, read in tx; ok is false if there is none.
func (r *Config) Contract(ctx context.Context, tx *bus.Tx, id string) (domain.Contract, bool, error) {
	cs, err := r.contracts(ctx, tx, `WHERE id = $1 FOR UPDATE`, id)
	if err != nil || len(cs) == 0 {
		return domain.Contract{}, false, err
	}
	return cs[0], true, nil
}

// PayerClinicContracts returns the contracts of a payer at a clinic, read in tx.
func (r *Config) PayerClinicContracts(ctx context.Context, tx *bus.Tx, payerID, clinicID string) ([]domain.Contract, error) {
	return r.contracts(ctx, tx, `WHERE payer_id = $1 AND clinic_id = $2`, payerID, clinicID)
}

// ClinicContracts returns a clinic's contracts by payer and start date.
func (r *Config) ClinicContracts(ctx context.Context, clinicID string) ([]domain.Contract, error) {
	return read(ctx, r.store, func(q querier) ([]domain.Contract, error) {
		return r.contracts(ctx, q, `WHERE clinic_id = $1`, clinicID)
	})
}

func (r *Config) contracts(ctx context.Context, q querier, where string, args ...any) ([]domain.Contract, error) {
	rows, err := q.Query(ctx, `SELECT `+contractCols+` FROM contracts `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("query contracts: %w", err)
	}
	cs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Contract, error) {
		var c domain.Contract
		err := row.Scan(&c.ID, &c.PayerID, &c.ClinicID, &c.Mode, &c.ClaimType, &c.PerDiemMinimumMinutes,
			&c.BelowMinimum, &c.TimelyFilingDays, &c.EffectiveFrom, &c.EffectiveTo, &c.RequiresAuthorization)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("read contracts: %w", err)
	}
	for i := range cs {
		rows, err := q.Query(ctx, `
			SELECT service, procedure_code, revenue_code, modifiers, rate_cents, min_minutes, max_minutes
			FROM contract_codes WHERE contract_id = $1 ORDER BY position`, cs[i].ID)
		if err != nil {
			return nil, fmt.Errorf("query contract codes: %w", err)
		}
		cs[i].Codes, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.ServiceCode, error) {
			var sc domain.ServiceCode
			err := row.Scan(&sc.Service, &sc.ProcedureCode, &sc.RevenueCode, &sc.Modifiers, &sc.RateCents, &sc.MinMinutes, &sc.MaxMinutes)
			if sc.Modifiers == nil {
				sc.Modifiers = []string{}
			}
			return sc, err
		})
		if err != nil {
			return nil, fmt.Errorf("read contract codes: %w", err)
		}
		if cs[i].Codes == nil {
			cs[i].Codes = []domain.ServiceCode{}
		}
	}
	sortContracts(cs)
	return cs, nil
}

// SaveContract inserts or replaces c (and its codes) in tx.
func (r *Config) SaveContract(ctx context.Context, tx *bus.Tx, c domain.Contract) error {
	var to *string
	if c.EffectiveTo != "" {
		to = &c.EffectiveTo
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO contracts (id, payer_id, clinic_id, billing_mode, claim_type, per_diem_minimum_minutes,
			below_minimum, timely_filing_days, effective_from, effective_to, requires_authorization)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (id) DO UPDATE SET payer_id = excluded.payer_id, clinic_id = excluded.clinic_id,
			billing_mode = excluded.billing_mode, claim_type = excluded.claim_type,
			per_diem_minimum_minutes = excluded.per_diem_minimum_minutes, below_minimum = excluded.below_minimum,
			timely_filing_days = excluded.timely_filing_days, effective_from = excluded.effective_from,
			effective_to = excluded.effective_to, requires_authorization = excluded.requires_authorization,
			updated_at = now()`,
		c.ID, c.PayerID, c.ClinicID, c.Mode, c.ClaimType, c.PerDiemMinimumMinutes, c.BelowMinimum,
		c.TimelyFilingDays, c.EffectiveFrom, to, c.RequiresAuthorization); err != nil {
		// The id is a contract of a clinic outside the caller's scope: the row-level security
		// policy hid it from Contract, so this looked like a new contract, and refuses the
		// update ON CONFLICT found (42501). The same answer as when the app sees the clinic.
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" {
			return fmt.Errorf("%w: clinic", domain.ErrForbidden)
		}
		return fmt.Errorf("save contract: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM contract_codes WHERE contract_id = $1`, c.ID); err != nil {
		return fmt.Errorf("clear contract codes: %w", err)
	}
	for i, sc := range c.Codes {
		if _, err := tx.Exec(ctx, `
			INSERT INTO contract_codes (contract_id, position, service, procedure_code, revenue_code, modifiers,
				rate_cents, min_minutes, max_minutes, clinic_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			c.ID, i, sc.Service, sc.ProcedureCode, sc.RevenueCode, sc.Modifiers, sc.RateCents, sc.MinMinutes, sc.MaxMinutes, c.ClinicID); err != nil {
			return fmt.Errorf("save contract code: %w", err)
		}
	}
	return nil
}

// SlidingScale returns the tiers by max_fpl_percent.
func (r *Config) SlidingScale(ctx context.Context) ([]domain.Tier, error) {
	return read(ctx, r.store, func(q querier) ([]domain.Tier, error) { return r.slidingScale(ctx, q) })
}

func (r *Config) slidingScale(ctx context.Context, q querier) ([]domain.Tier, error) {
	rows, err := q.Query(ctx, `SELECT max_fpl_percent, discount_percent FROM sliding_scale ORDER BY max_fpl_percent`)
	if err != nil {
		return nil, fmt.Errorf("query sliding scale: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Tier, error) {
		var t domain.Tier
		return t, row.Scan(&t.MaxFPLPercent, &t.DiscountPercent)
	})
}

// ReplaceSlidingScale replaces the tiers in tx; it reports whether they changed.
func (r *Config) ReplaceSlidingScale(ctx context.Context, tx *bus.Tx, tiers []domain.Tier) (bool, error) {
	if _, err := tx.Exec(ctx, `LOCK TABLE sliding_scale IN EXCLUSIVE MODE`); err != nil {
		return false, fmt.Errorf("lock sliding scale: %w", err)
	}
	old, err := r.slidingScale(ctx, tx)
	if err != nil {
		return false, err
	}
	if sameTiers(old, tiers) {
		return false, nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM sliding_scale`); err != nil {
		return false, fmt.Errorf("clear sliding scale: %w", err)
	}
	for _, t := range tiers {
		if _, err := tx.Exec(ctx, `INSERT INTO sliding_scale (max_fpl_percent, discount_percent) VALUES ($1, $2)`,
			t.MaxFPLPercent, t.DiscountPercent); err != nil {
			return false, fmt.Errorf("save tier: %w", err)
		}
	}
	return true, nil
}

func sameTiers(a, b []domain.Tier) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sortContracts(cs []domain.Contract) {
	slices.SortFunc(cs, func(a, b domain.Contract) int {
		return cmp.Or(cmp.Compare(a.PayerID, b.PayerID), cmp.Compare(a.EffectiveFrom, b.EffectiveFrom), cmp.Compare(a.ID, b.ID))
	})
}
