package bus

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Republish marks published outbox rows created in [since, until) as unpublished again, so the
// relay sends them once more, in their original order and with their original event ids. Use
// it after a stream lost messages (a restore, a cluster failure); consumers' inboxes make the
// repeat harmless. An empty subject selects every subject. It returns how many rows it marked.
func Republish(ctx context.Context, pool *pgxpool.Pool, since, until time.Time, subject string) (int64, error) {
	if !since.Before(until) {
		return 0, errors.New("bus: republish needs since before until")
	}
	tag, err := pool.Exec(ctx, `UPDATE outbox SET published_at = NULL
		WHERE published_at IS NOT NULL AND created_at >= $1 AND created_at < $2 AND ($3 = '' OR subject = $3)`,
		since, until, subject)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}
