package bus

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
)

// AfterApply runs once per transaction, after the handlers, in that transaction, with the
// deliveries applied in it: not a duplicate, not one rolled back to its savepoint. A message
// applied alone gets its own call.
func TestConsumerAfterApplyOncePerTransaction(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	const name = "test--after-apply"
	x := newTxids()
	var mu sync.Mutex
	type call struct {
		markers []string
		txid    string
	}
	var calls []call
	cfg := ConsumerConfig{Name: name, TxBatch: 16, AfterApply: func(ctx context.Context, tx *Tx, applied []*Delivery) error {
		c := call{}
		for _, d := range applied {
			c.markers = append(c.markers, decodeMarker(d))
		}
		if err := tx.QueryRow(ctx, "SELECT pg_current_xact_id()::text").Scan(&c.txid); err != nil {
			return err
		}
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
		return nil
	}}
	h := x.recording(effectHandler(name, func(d *Delivery, marker string) error {
		if marker == "poison" {
			return Permanent(errors.New("not applicable"))
		}
		return nil
	}))
	c, cons := f.groupConsumer(cfg, h)

	bodies := f.publishEvents("old")
	c.process(context.Background(), f.fetch(cons, 1)[0])
	f.publishRaw(testSubject, "old-2", bodies["old"]) // a duplicate
	f.publishEvents("m1", "poison", "m3")
	c.processGroup(context.Background(), f.fetch(cons, 4), newInFlight())

	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 2 || !slices.Equal(calls[0].markers, []string{"old"}) || !slices.Equal(calls[1].markers, []string{"m1", "m3"}) {
		t.Fatalf("calls %+v, want [old] then [m1 m3]", calls)
	}
	if ids := x.of("m1"); len(ids) != 1 || ids[0] != calls[1].txid {
		t.Fatalf("AfterApply ran in transaction %s, the group's handlers in %v", calls[1].txid, ids)
	}
}
