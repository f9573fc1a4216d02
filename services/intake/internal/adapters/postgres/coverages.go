package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/services/intake/internal/domain"
)

// Coverages lists the patient's coverages: primary, secondary, tertiary, each latest start first.
func (repo Repository) Coverages(ctx context.Context, tx pgx.Tx, patientID string) ([]domain.Coverage, error) {
	rows, err := tx.Query(ctx, `SELECT id::text, patient_id::text, clinic_id::text, payer_id, plan, member_id_enc, group_number,
			subscriber_relationship, effective_from, effective_to, eligibility, priority, version, updated_at, updated_by, created_at
		FROM coverages WHERE patient_id = $1
		ORDER BY array_position($2::text[], priority), effective_from DESC, id`, patientID, domain.CoveragePriorities)
	if err != nil {
		return nil, fmt.Errorf("list coverages: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Coverage, error) {
		var c domain.Coverage
		var from time.Time
		var to *time.Time
		var member *string
		if err := r.Scan(&c.ID, &c.PatientID, &c.ClinicID, &c.PayerID, &c.Plan, &member, &c.GroupNumber,
			&c.SubscriberRelationship, &from, &to, &c.Eligibility, &c.Priority, &c.Version, &c.UpdatedAt, &c.UpdatedBy, &c.CreatedAt); err != nil {
			return domain.Coverage{}, err
		}
		var err error
		if c.MemberID, err = repo.open(member, "coverages", "member_id", c.ID); err != nil {
			return domain.Coverage{}, err
		}
		c.EffectiveFrom = coverageDate(from)
		if to != nil {
			c.EffectiveTo = coverageDate(*to)
		}
		c.UpdatedAt, c.CreatedAt = c.UpdatedAt.UTC(), c.CreatedAt.UTC()
		return c, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list coverages: %w", err)
	}
	return out, nil
}

// AddCoverage inserts c and its version 1.
func (repo Repository) AddCoverage(ctx context.Context, tx pgx.Tx, c domain.Coverage) error {
	member, err := repo.sealMember(c.MemberID, "coverages", c.ID)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO coverages (id, patient_id, clinic_id, payer_id, plan, member_id_enc, group_number,
			subscriber_relationship, effective_from, effective_to, eligibility, priority, version, updated_at, updated_by, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		c.ID, c.PatientID, c.ClinicID, c.PayerID, c.Plan, member, c.GroupNumber, c.SubscriberRelationship,
		c.EffectiveFrom.Time(), coverageEnd(c), c.Eligibility, c.Priority, c.Version, c.UpdatedAt, c.UpdatedBy, c.CreatedAt); err != nil {
		return fmt.Errorf("insert coverage: %w", err)
	}
	return repo.addCoverageVersion(ctx, tx, c)
}

// UpdateCoverage stores c's terms (if its stored version is the one before c's) and appends c
// to the coverage's versions.
func (repo Repository) UpdateCoverage(ctx context.Context, tx pgx.Tx, c domain.Coverage) error {
	member, err := repo.sealMember(c.MemberID, "coverages", c.ID)
	if err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `UPDATE coverages SET payer_id = $2, plan = $3, member_id_enc = $4, member_id = NULL, group_number = $5,
			subscriber_relationship = $6, effective_from = $7, effective_to = $8, eligibility = $9, priority = $10,
			version = $11, updated_at = $12, updated_by = $13
		WHERE id = $1 AND version = $11 - 1`,
		c.ID, c.PayerID, c.Plan, member, c.GroupNumber, c.SubscriberRelationship, c.EffectiveFrom.Time(), coverageEnd(c),
		c.Eligibility, c.Priority, c.Version, c.UpdatedAt, c.UpdatedBy)
	if err != nil {
		return fmt.Errorf("update coverage: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("update coverage %s: version %d is not the next one", c.ID, c.Version)
	}
	return repo.addCoverageVersion(ctx, tx, c)
}

func (repo Repository) addCoverageVersion(ctx context.Context, tx pgx.Tx, c domain.Coverage) error {
	member, err := repo.sealMember(c.MemberID, "coverage_versions", c.ID, strconv.Itoa(c.Version))
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO coverage_versions (coverage_id, version, patient_id, clinic_id, payer_id, plan,
			member_id_enc, group_number, subscriber_relationship, effective_from, effective_to, eligibility, priority, changed_at, changed_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		c.ID, c.Version, c.PatientID, c.ClinicID, c.PayerID, c.Plan, member, c.GroupNumber, c.SubscriberRelationship,
		c.EffectiveFrom.Time(), coverageEnd(c), c.Eligibility, c.Priority, c.UpdatedAt, c.UpdatedBy); err != nil {
		return fmt.Errorf("insert coverage version: %w", err)
	}
	return nil
}

// sealMember seals a member id (required: sealed even when empty, which validation refuses).
func (repo Repository) sealMember(v, table string, row ...string) (string, error) {
	s, err := repo.Crypt.Seal(v, fieldcrypt.AAD(table, "member_id", row...))
	if err != nil {
		return "", fmt.Errorf("encrypt %s.member_id: %w", table, err)
	}
	return s, nil
}

// coverageEnd is c's effective_to for a date column: NULL when open-ended.
func coverageEnd(c domain.Coverage) *time.Time {
	if c.EffectiveTo.IsZero() {
		return nil
	}
	t := c.EffectiveTo.Time()
	return &t
}

// coverageDate is the calendar date of a scanned date column.
func coverageDate(t time.Time) domain.Date {
	y, m, d := t.Date()
	return domain.NewDate(y, m, d)
}
