package bus

import (
	"context"
	"maps"
	"testing"
)

// With LockKeys, a group's transaction holds every message's advisory locks before the first
// handler runs (in one sorted pass), not one by one as the handlers take them.
func TestConsumerGroupTakesEveryLockKeyFirst(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	const name = "test--group-locks"
	held := map[string]bool{}
	handler := func(ctx context.Context, tx *Tx, d *Delivery) error {
		if len(held) > 0 {
			return nil
		}
		// At the first handler: which of the group's keys does this transaction hold?
		rows, err := tx.Query(ctx, `SELECT k, EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory'
			AND l.pid = pg_backend_pid() AND l.granted AND l.objsubid = 1
			AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended(k, 0))
			FROM unnest(ARRAY['lock:c', 'lock:a', 'lock:b', 'lock:other']) AS k`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			var ok bool
			if err := rows.Scan(&k, &ok); err != nil {
				return err
			}
			held[k] = ok
		}
		return rows.Err()
	}
	c, cons := f.groupConsumer(ConsumerConfig{Name: name, TxBatch: 16,
		LockKeys: func(d *Delivery) []string { return []string{"lock:" + decodeMarker(d)} }}, handler)
	f.publishEvents("c", "a", "b")
	c.processGroup(context.Background(), f.fetch(cons, 3), newInFlight())
	want := map[string]bool{"lock:a": true, "lock:b": true, "lock:c": true, "lock:other": false}
	if !maps.Equal(held, want) {
		t.Fatalf("locks held at the first handler %v, want %v", held, want)
	}
	if got := f.scalar("SELECT count(*) FROM inbox WHERE consumer = $1", name); got != 3 {
		t.Fatalf("%d messages applied, want 3", got)
	}
}
