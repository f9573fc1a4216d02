package app

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/services/intake/internal/domain"
)

// ClinicStore keeps intake's copy of the clinics scheduling configures (scheduling is the one
// source of clinics; intake needs each clinic's name and time zone).
type ClinicStore interface {
	// ApplyClinic stores c as configured at `at` by event eventID, unless the copy already
	// holds that or a later configuration (by at, then event id); it reports whether it
	// changed the row. A row only seeding wrote is always replaced.
	ApplyClinic(ctx context.Context, tx pgx.Tx, c domain.Clinic, at time.Time, eventID string) (bool, error)
}

// ClinicConfigured applies scheduling's ClinicConfigured event (occurred at `at`) to
// intake's copy of the clinic, in the consumer's transaction: a clinic scheduling creates
// becomes one intake takes referrals and admissions for. An event older than the copy changes
// nothing. It reports whether the copy changed.
func (s *Intake) ClinicConfigured(ctx context.Context, tx *bus.Tx, c domain.Clinic, at time.Time, eventID string) (bool, error) {
	// Postgres keeps microseconds: compare what is stored.
	return s.repo.ApplyClinic(ctx, tx, c, at.UTC().Truncate(time.Microsecond), eventID)
}
