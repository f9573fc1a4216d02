// Package postgres stores scheduling's aggregates in its own schema.
package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/bus"

	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
)

// Enrollments is the enrollments table.
type Enrollments struct{ pool *pgxpool.Pool }

// NewEnrollments returns the repository on pool (search_path is the scheduling schema).
func NewEnrollments(pool *pgxpool.Pool) *Enrollments { return &Enrollments{pool: pool} }

// Add inserts e unless a unique key (source event, or patient/clinic/track/start date) is
// taken; it reports whether a row was inserted. A concurrent insert of the same key waits for
// the other transaction and then inserts nothing.
func (r *Enrollments) Add(ctx context.Context, tx *bus.Tx, e domain.Enrollment) (bool, error) {
	tag, err := tx.Exec(ctx, `
		INSERT INTO enrollments (id, patient_id, clinic_id, program_track, start_date, status, source_event_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT DO NOTHING`,
		e.ID, e.PatientID, e.ClinicID, e.ProgramTrack, e.StartDate, e.Status, e.SourceEventID)
	if err != nil {
		return false, fmt.Errorf("insert enrollment: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// ForPatient returns the patient's enrollments in every clinic.
func (r *Enrollments) ForPatient(ctx context.Context, patientID string) ([]domain.Enrollment, error) {
	rows, err := r.pool.Query(ctx, `
		SELECT id::text, patient_id::text, clinic_id::text, program_track, start_date, status,
		       source_event_id::text, created_at
		FROM enrollments WHERE patient_id = $1`, patientID)
	if err != nil {
		return nil, fmt.Errorf("query enrollments: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Enrollment, error) {
		var e domain.Enrollment
		err := row.Scan(&e.ID, &e.PatientID, &e.ClinicID, &e.ProgramTrack, &e.StartDate, &e.Status,
			&e.SourceEventID, &e.CreatedAt)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("read enrollments: %w", err)
	}
	return out, nil
}
