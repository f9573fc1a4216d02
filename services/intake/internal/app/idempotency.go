package app

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/idempotency"
)

// IdempotencyStore keeps idempotency keys (see idempotency.Once) and prunes them
// (idempotency.Postgres implements it).
type IdempotencyStore interface {
	idempotency.Store
	// PruneIdempotencyKeys deletes up to limit keys created before before, oldest first, and
	// returns how many it deleted.
	PruneIdempotencyKeys(ctx context.Context, tx pgx.Tx, before time.Time, limit int) (int64, error)
}

// Idempotency keys are kept for a retention period and then pruned: the stored responses hold
// PHI (names, contact details), which must not outlive their use. A repeat of a call after its
// key was pruned runs as a new call.
const (
	DefaultIdempotencyRetention = 30 * 24 * time.Hour
	// MinIdempotencyRetention: clients may retry a call for a day (an offline device, a queue).
	MinIdempotencyRetention = 24 * time.Hour
	// PruneInterval is how often RunIdempotencyPruner prunes.
	PruneInterval = time.Hour
	pruneBatch    = 1000 // keys deleted per transaction, so no prune holds locks for long
)

// PruneIdempotencyKeys deletes the idempotency keys older than retention (created before now
// minus retention), a batch per transaction, and returns how many it deleted.
func (s *Intake) PruneIdempotencyKeys(ctx context.Context, retention time.Duration) (int64, error) {
	before := s.now().Add(-retention)
	var total int64
	for {
		var n int64
		err := s.tx.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
			var err error
			n, err = s.repo.PruneIdempotencyKeys(ctx, tx, before, pruneBatch)
			return err
		})
		total += n
		if err != nil || n < pruneBatch {
			return total, err
		}
	}
}

// RunIdempotencyPruner prunes the idempotency keys older than retention at once and then every
// interval, until ctx ends (a platform worker: see service.Platform.Go). A failed prune is
// logged and tried again at the next interval; it never stops the service.
func (s *Intake) RunIdempotencyPruner(ctx context.Context, retention, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := s.PruneIdempotencyKeys(ctx, retention)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			s.log.ErrorContext(ctx, "pruning idempotency keys failed", "error", err, "pruned", n)
		case n > 0:
			s.log.InfoContext(ctx, "idempotency keys pruned", "pruned", n, "retention", retention.String())
		default:
			s.log.DebugContext(ctx, "idempotency keys pruned", "pruned", n, "retention", retention.String())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
