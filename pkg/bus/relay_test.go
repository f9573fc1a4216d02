package bus

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/trellis-health/trellis/pkg/telemetry"
)

// A relay that dies after JetStream acked a round but before it marked the rows published
// publishes them again on its next round. JetStream's dedup window is made as short as the
// server allows (100ms) and the second round runs after it has passed, so both copies really
// are in the stream (asserted): the consumer's inbox alone must keep the effect single.
func TestRelayCrashAfterPublishRepublishesAndInboxAppliesOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{duplicates: 100 * time.Millisecond})
	f.emit("a", "b", "c")

	r := f.relay(RelayConfig{})
	crashes := 0
	r.afterPublish = func() error {
		if crashes == 0 {
			crashes++
			return errors.New("simulated crash between publish and mark-published")
		}
		return nil
	}
	if n, err := f.roundWithWork(r); err == nil || n != 0 {
		t.Fatalf("crashing round: n=%d err=%v, want 0 and an error", n, err)
	}
	if got := f.unpublished(); got != 3 {
		t.Fatalf("after crash: %d unpublished rows, want 3 (marking must roll back)", got)
	}
	if got := len(f.streamMsgs(testStream)); got != 3 {
		t.Fatalf("after crash: %d messages in stream, want 3", got)
	}

	// Let the dedup window (100ms; the server purges ids on a timer) expire.
	time.Sleep(400 * time.Millisecond)
	if n := f.drain(r); n != 3 {
		t.Fatalf("second round published %d, want 3", n)
	}
	if got := f.unpublished(); got != 0 {
		t.Fatalf("%d rows still unpublished", got)
	}
	msgs := f.streamMsgs(testStream)
	if len(msgs) != 6 {
		t.Fatalf("stream holds %d messages, want 6 (every event twice; dedup window too long?)", len(msgs))
	}
	// Same event ids both times (Nats-Msg-Id and envelope): the re-publish is the same event.
	ids := map[string]int{}
	for _, m := range msgs {
		d := decode(t, m.Data)
		if m.Header.Get(HeaderMsgID) != d.env.GetEventId() {
			t.Fatalf("Nats-Msg-Id %q != envelope event id %q", m.Header.Get(HeaderMsgID), d.env.GetEventId())
		}
		ids[d.env.GetEventId()]++
	}
	for id, n := range ids {
		if n != 2 {
			t.Fatalf("event %s in stream %d times, want 2", id, n)
		}
	}

	const name = "test--crash"
	f.startConsumer(ConsumerConfig{Name: name}, effectHandler(name, nil))
	eventually(t, "6 deliveries processed", func() bool {
		return f.processed(name, "ok")+f.processed(name, "duplicate") == 6
	})
	if got, want := f.effects(name), map[string]int{"a": 1, "b": 1, "c": 1}; !maps.Equal(got, want) {
		t.Fatalf("effects %v, want %v", got, want)
	}
	if ok, dup := f.processed(name, "ok"), f.processed(name, "duplicate"); ok != 3 || dup != 3 {
		t.Fatalf("processed ok=%v duplicate=%v, want 3 and 3", ok, dup)
	}
	if n := f.scalar("SELECT count(*) FROM inbox WHERE consumer = $1", name); n != 3 {
		t.Fatalf("inbox rows %d, want 3", n)
	}
}

// Inside JetStream's dedup window a re-publish after a crash is absorbed by the server.
func TestRelayCrashInsideDedupWindowIsAbsorbedByJetStream(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	f.emit("a", "b")
	r := f.relay(RelayConfig{})
	crashed := false
	r.afterPublish = func() error {
		if !crashed {
			crashed = true
			return errors.New("crash")
		}
		return nil
	}
	if _, err := f.roundWithWork(r); err == nil {
		t.Fatal("want the crashing round to fail")
	}
	if n := f.drain(r); n != 2 {
		t.Fatalf("re-published %d rows, want 2", n)
	}
	if got := f.streamMarkers(testStream); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("stream %v, want [a b] once each", got)
	}
}

// A transaction that is still open holds back every row of later transactions, so the relay
// publishes in commit-id order and never skips the open transaction's rows.
func TestRelayHoldsBackRowsBehindAnOpenTransaction(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// holdA runs inside A's transaction before it blocks; it must give A its xid.
		holdA func(ctx context.Context, s *Store, tx *Tx) error
	}{
		{"outbox row written, transaction open", func(ctx context.Context, s *Store, tx *Tx) error {
			return s.writeOutbox(ctx, tx.Tx, []Event{event("A")})
		}},
		{"domain write done, event emitted at commit", func(ctx context.Context, s *Store, tx *Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO effects (consumer, event_id, marker, delivered) VALUES ('domain', $1, 'A', 0)`, NewID())
			tx.Emit(event("A"))
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, fixtureOpts{})
			ctx := context.Background()
			started, release, doneA := make(chan struct{}), make(chan struct{}), make(chan error, 1)
			var releaseOnce sync.Once
			releaseA := func() { releaseOnce.Do(func() { close(release) }) }
			t.Cleanup(releaseA) // a failing test must not leave A holding a pooled connection
			go func() {
				doneA <- f.store.InTx(ctx, func(ctx context.Context, tx *Tx) error {
					if err := tc.holdA(ctx, f.store, tx); err != nil {
						return err
					}
					close(started)
					<-release
					return nil
				})
			}()
			<-started
			f.emit("B") // B commits while A is open
			if got := f.unpublished(); got != 1 {
				t.Fatalf("visible unpublished rows %d, want B's 1", got)
			}

			r := f.relay(RelayConfig{})
			for range 3 {
				n, err := r.RunOnce(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if n != 0 {
					t.Fatalf("relay published %d rows while an older transaction was open", n)
				}
			}
			if got := f.streamMarkers(testStream); len(got) != 0 {
				t.Fatalf("stream %v, want nothing while A is open", got)
			}

			releaseA()
			must(t, <-doneA)
			if n := f.drain(r); n != 2 {
				t.Fatalf("published %d, want 2", n)
			}
			if got := f.streamMarkers(testStream); !slices.Equal(got, []string{"A", "B"}) {
				t.Fatalf("stream order %v, want [A B] (txid order)", got)
			}
		})
	}
}

// Two relays on the same schema (two replicas, each with its own pool) run against writers
// committing concurrently. The advisory lock lets one relay publish at a time: every row is
// published exactly once (counted at the producers, so JetStream's dedup cannot hide a double
// publish), and each writer's events appear in the order that writer committed them.
func TestTwoRelaysOnOneSchemaPublishEachRowOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{duplicates: 100 * time.Millisecond})
	ctx := context.Background()
	pool2, err := newPoolLike(ctx, f.pool)
	must(t, err)
	t.Cleanup(pool2.Close)
	store2 := NewStore(pool2, "test")

	m1, m2 := telemetry.NewMetrics("test"), telemetry.NewMetrics("test")
	cfg := RelayConfig{Batch: 16, IdlePoll: 20 * time.Millisecond}
	r1 := NewRelay(f.store, f.js, testSchema, cfg, f.log, m1)
	r2 := NewRelay(store2, f.js, testSchema, cfg, f.log, m2)
	f.background(r1.Run)
	f.background(r2.Run)

	const writers, perWriter = 4, 60
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			s := f.store
			if w%2 == 1 {
				s = store2
			}
			for i := range perWriter {
				err := s.InTx(ctx, func(ctx context.Context, tx *Tx) error {
					tx.Emit(event(fmt.Sprintf("w%d-%04d-0", w, i)), event(fmt.Sprintf("w%d-%04d-1", w, i)))
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	total := writers * perWriter * 2
	eventually(t, "all rows published", func() bool { return f.unpublished() == 0 })

	published := func(m *telemetry.Metrics) float64 {
		return testutil.ToFloat64(m.EventsPublished.WithLabelValues(testSubject, "ok"))
	}
	p1, p2 := published(m1), published(m2)
	if p1+p2 != float64(total) {
		t.Fatalf("relays published %v + %v = %v times, want %d: a row was published by both", p1, p2, p1+p2, total)
	}
	got := f.streamMarkers(testStream)
	if len(got) != total {
		t.Fatalf("stream holds %d messages, want %d", len(got), total)
	}
	seen := map[string]bool{}
	last := map[byte]string{}
	for _, m := range got {
		if seen[m] {
			t.Fatalf("duplicate %s in stream", m)
		}
		seen[m] = true
		w := m[1]
		if m < last[w] {
			t.Fatalf("writer %c: %s published after %s", w, m, last[w])
		}
		last[w] = m
	}
	t.Logf("relay 1 published %v, relay 2 published %v", p1, p2)
}

// Run wakes on commit instead of waiting for its (long) idle poll.
func TestRelayRunWakesOnCommit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	r := f.relay(RelayConfig{IdlePoll: time.Minute})
	f.background(r.Run)
	time.Sleep(300 * time.Millisecond) // let it go idle
	start := time.Now()
	f.emit("x")
	eventually(t, "row published", func() bool { return f.unpublished() == 0 })
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("publish took %s; the wake-up did not work", d)
	}
}

func TestRelayPruneAndBacklog(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	ctx := context.Background()
	f.emit("old", "recent")
	r := f.relay(RelayConfig{Retention: time.Hour})
	if n := f.drain(r); n != 2 {
		t.Fatalf("published %d", n)
	}
	f.emit("pending")
	_, err := f.pool.Exec(ctx, `UPDATE outbox SET published_at = now() - interval '2 hours',
		created_at = now() - interval '2 hours' WHERE seq = (SELECT min(seq) FROM outbox)`)
	must(t, err)
	_, err = f.pool.Exec(ctx, `UPDATE outbox SET created_at = now() - interval '90 seconds' WHERE published_at IS NULL`)
	must(t, err)

	must(t, r.prune(ctx))
	if n := f.scalar("SELECT count(*) FROM outbox"); n != 2 {
		t.Fatalf("after prune %d rows, want 2 (recent published + pending)", n)
	}
	if n := f.unpublished(); n != 1 {
		t.Fatalf("prune touched unpublished rows: %d left, want 1", n)
	}
	r.observeBacklog(ctx)
	if got := testutil.ToFloat64(f.metrics.OutboxBacklog); got != 1 {
		t.Fatalf("backlog gauge %v, want 1", got)
	}
	if age := testutil.ToFloat64(f.metrics.OutboxOldestAge); age < 89 || age > 120 {
		t.Fatalf("oldest age gauge %v, want about 90s", age)
	}
}

// A round that cannot reach JetStream fails and leaves every row for the next round.
func TestRelayPublishFailureKeepsRows(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	ctx := context.Background()
	f.emit("a")
	// No stream listens on this subject: JetStream answers "no responders".
	_, err := f.pool.Exec(ctx, "UPDATE outbox SET subject = 'trellis.nowhere.thing.happened.v1'")
	must(t, err)
	r := f.relay(RelayConfig{PublishWait: 2 * time.Second})
	if n, err := f.roundWithWork(r); err == nil || n != 0 {
		t.Fatalf("n=%d err=%v, want a failed round", n, err)
	}
	if got := f.unpublished(); got != 1 {
		t.Fatalf("%d unpublished, want 1", got)
	}
	if got := testutil.ToFloat64(f.metrics.EventsPublished.WithLabelValues("trellis.nowhere.thing.happened.v1", "error")); got != 1 {
		t.Fatalf("publish errors counted %v, want 1", got)
	}
}
