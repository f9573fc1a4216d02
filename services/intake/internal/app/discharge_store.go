package app

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/services/intake/internal/domain"
)

// DischargeStore is the storage for episodes and discharge; every method runs in the caller's transaction.
type DischargeStore interface {
	// LockEpisodeForDischarge reads the episode and locks it until tx ends (so two discharges
	// of one episode run one after the other); nil when there is none with that id.
	LockEpisodeForDischarge(ctx context.Context, tx pgx.Tx, id string) (*domain.CareEpisode, error)
	// SaveDischarge stores the discharge of an admitted episode (e, as returned by
	// CareEpisode.Discharge).
	SaveDischarge(ctx context.Context, tx pgx.Tx, e domain.CareEpisode) error
}
