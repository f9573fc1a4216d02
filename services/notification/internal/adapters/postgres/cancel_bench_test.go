package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
	"github.com/trellis-health/trellis/services/notification/internal/notifytest"
)

// BenchmarkCancelQueued is the attendance consumer's cancel (a present patient's queued
// check-in) on a queue of 20,000 messages, one transaction per call as the consumer's.
func BenchmarkCancelQueued(b *testing.B) {
	pool, system := notifytest.Pools(b)
	notifytest.Migrate(b, pool)
	fillQueue(b, system, 2000, 10)
	rows, err := system.Query(sys(), `SELECT patient_id::text, subject_ref FROM messages WHERE kind = 'check_in' LIMIT 1000`)
	if err != nil {
		b.Fatal(err)
	}
	type pair struct{ patient, subject string }
	pairs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pair, error) {
		var p pair
		return p, r.Scan(&p.patient, &p.subject)
	})
	if err != nil {
		b.Fatal(err)
	}
	store := notifytest.Store(pool)
	repo := postgres.New(store, fieldcrypt.Dev())
	ctx := sys()
	b.ResetTimer()
	for i := range b.N {
		p := pairs[i%len(pairs)]
		err := store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
			_, err := repo.CancelQueued(ctx, tx, p.patient, p.subject, []string{domain.KindCheckIn}, domain.CancelAttendance)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
