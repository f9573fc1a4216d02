package bus

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// With Partitions, messages of different keys are applied at the same time and each key's
// messages in stream order.
func TestConsumerPartitionsRunKeysConcurrentlyInOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	const name = "test--partitions"
	var running, most atomic.Int32
	var mu sync.Mutex
	seen := map[string][]string{} // key -> markers in the order handled
	keyOf := func(d *Delivery) string { return decodeMarker(d)[:1] }
	f.startConsumer(ConsumerConfig{Name: name, Partitions: 4, PartitionKey: keyOf},
		func(ctx context.Context, tx *Tx, d *Delivery) error {
			n := running.Add(1)
			defer running.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(20 * time.Millisecond)
			mu.Lock()
			seen[keyOf(d)] = append(seen[keyOf(d)], decodeMarker(d))
			mu.Unlock()
			return nil
		})
	var want []string
	for i := range 6 {
		for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
			want = append(want, fmt.Sprintf("%s%d", k, i))
		}
	}
	f.publishEvents(want...)
	eventually(t, "every message applied", func() bool {
		return f.scalar("SELECT count(*) FROM inbox WHERE consumer = $1", name) == int64(len(want))
	})
	mu.Lock()
	defer mu.Unlock()
	for k, got := range seen {
		if !slices.IsSorted(got) || len(got) != 6 {
			t.Errorf("key %s handled in order %v, want its 6 messages in stream order", k, got)
		}
	}
	if most.Load() < 2 {
		t.Errorf("at most %d handlers ran at once, want several partitions at work", most.Load())
	}
}
