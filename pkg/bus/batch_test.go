package bus

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
)

// Tests of ConsumerConfig.TxBatch: several messages of a fetched batch applied in one
// transaction. Most drive processGroup directly with messages fetched by hand, so that which
// messages share a transaction does not depend on how fast they arrive.

// groupConsumer returns a consumer that is not running and a pull handle on its durable.
func (f *fixture) groupConsumer(cfg ConsumerConfig, h Handler) (*Consumer, jetstream.Consumer) {
	f.t.Helper()
	if cfg.Stream == "" {
		cfg.Stream = testStream
	}
	if len(cfg.Subjects) == 0 {
		cfg.Subjects = []string{"trellis.test.>"}
	}
	c := NewConsumer(cfg, f.store, f.js, h, f.log, f.metrics)
	cons, err := c.Ensure(context.Background())
	must(f.t, err)
	return c, cons
}

// fetch pulls exactly n messages (they are already in the stream).
func (f *fixture) fetch(cons jetstream.Consumer, n int) []jetstream.Msg {
	f.t.Helper()
	var out []jetstream.Msg
	deadline := time.Now().Add(15 * time.Second)
	for len(out) < n {
		if time.Now().After(deadline) {
			f.t.Fatalf("fetched %d of %d messages", len(out), n)
		}
		batch, err := cons.Fetch(n-len(out), jetstream.FetchMaxWait(time.Second))
		must(f.t, err)
		for m := range batch.Messages() {
			out = append(out, m)
		}
	}
	return out
}

// publishEvents commits one event per marker and publishes each as its own message (ids
// "<marker>"), returning the envelopes by marker.
func (f *fixture) publishEvents(markers ...string) map[string][]byte {
	f.t.Helper()
	bodies := map[string][]byte{}
	for _, m := range markers {
		bodies[m] = f.envelopeBytes(event(m))
		f.publishRaw(testSubject, m, bodies[m])
	}
	return bodies
}

// txids records, per marker, the transaction each handler call ran in.
type txids struct {
	mu sync.Mutex
	m  map[string][]string
}

func newTxids() *txids { return &txids{m: map[string][]string{}} }

// recording wraps h to note the transaction id of every call.
func (x *txids) recording(h Handler) Handler {
	return func(ctx context.Context, tx *Tx, d *Delivery) error {
		var id string
		if err := tx.QueryRow(ctx, "SELECT pg_current_xact_id()::text").Scan(&id); err != nil {
			return err
		}
		p := decodeMarker(d)
		x.mu.Lock()
		x.m[p] = append(x.m[p], id)
		x.mu.Unlock()
		return h(ctx, tx, d)
	}
}

func (x *txids) of(marker string) []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.m[marker])
}

// decodeMarker is the marker of a test event ("" for another payload).
func decodeMarker(d *Delivery) string {
	p := &intakev1.PatientAdmitted{}
	if d.Envelope.GetPayload().UnmarshalTo(p) != nil {
		return ""
	}
	return p.GetPatientId()
}

// sameTx fails unless every marker's first call ran in one transaction.
func sameTx(t *testing.T, x *txids, markers ...string) {
	t.Helper()
	var first string
	for _, m := range markers {
		ids := x.of(m)
		if len(ids) == 0 {
			t.Fatalf("%s never handled", m)
		}
		if first == "" {
			first = ids[0]
		} else if ids[0] != first {
			t.Fatalf("%s ran in transaction %s, want %s (one transaction for the group)", m, ids[0], first)
		}
	}
}

// A group holding a copy of an event applied earlier and two copies of a new one applies
// each event once: the inbox skips the earlier one and the copy of one seen in the group.
func TestConsumerGroupSkipsDuplicates(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	const name = "test--group-dup"
	x := newTxids()
	c, cons := f.groupConsumer(ConsumerConfig{Name: name, TxBatch: 16}, x.recording(effectHandler(name, nil)))

	bodies := f.publishEvents("old")
	c.processGroup(context.Background(), f.fetch(cons, 1), newInFlight())
	if got := f.effects(name); !maps.Equal(got, map[string]int{"old": 1}) {
		t.Fatalf("effects %v after the first event", got)
	}

	bodies["a"] = f.envelopeBytes(event("a"))
	f.publishRaw(testSubject, "a-1", bodies["a"])
	f.publishRaw(testSubject, "old-2", bodies["old"])
	f.publishRaw(testSubject, "a-2", bodies["a"])
	f.publishEvents("b")
	c.processGroup(context.Background(), f.fetch(cons, 4), newInFlight())

	if got := f.effects(name); !maps.Equal(got, map[string]int{"old": 1, "a": 1, "b": 1}) {
		t.Fatalf("effects %v, want each event once", got)
	}
	if ok, dup := f.processed(name, "ok"), f.processed(name, "duplicate"); ok != 3 || dup != 2 {
		t.Fatalf("outcomes ok=%v duplicate=%v, want 3 and 2", ok, dup)
	}
	sameTx(t, x, "a", "b")
	eventually(t, "all five acked", func() bool {
		info := f.consumerInfo(name)
		return info.NumAckPending == 0 && info.AckFloor.Stream == 5
	})
}

// A permanent error in the middle of a group dead-letters that message alone; the others are
// applied once, in the same transaction, and their handlers run once.
func TestConsumerGroupDeadLettersThePoisonOnly(t *testing.T) {
	t.Parallel()
	for _, savepoints := range []bool{true, false} {
		t.Run("savepoints="+strconv.FormatBool(savepoints), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, fixtureOpts{})
			const name = "test--group-poison"
			calls := newAttempts()
			x := newTxids()
			h := x.recording(effectHandler(name, func(d *Delivery, marker string) error {
				calls.record(marker)
				if marker == "poison" {
					return Permanent(errors.New("clinic is not known"))
				}
				return nil
			}))
			c, cons := f.groupConsumer(ConsumerConfig{Name: name, TxBatch: 16}, h)
			c.noSavepoints = !savepoints
			f.publishEvents("m1", "m2", "poison", "m4")
			c.processGroup(context.Background(), f.fetch(cons, 4), newInFlight())

			if got := f.effects(name); !maps.Equal(got, map[string]int{"m1": 1, "m2": 1, "m4": 1}) {
				t.Fatalf("effects %v", got)
			}
			dls := f.streamMsgs(DeadLetterStream)
			if len(dls) != 1 || !strings.Contains(dls[0].Header.Get(HeaderDLReason), "clinic is not known") ||
				dls[0].Header.Get(HeaderDLStreamSequence) != "3" {
				t.Fatalf("dead letters %d, want the poison (stream seq 3)", len(dls))
			}
			if n := f.scalar("SELECT count(*) FROM inbox WHERE consumer = $1", name); n != 3 {
				t.Fatalf("inbox rows %d, want 3 (the poison's rolled back)", n)
			}
			if ok, dl := f.processed(name, "ok"), f.processed(name, "dead_letter"); ok != 3 || dl != 1 {
				t.Fatalf("outcomes ok=%v dead_letter=%v, want 3 and 1", ok, dl)
			}
			if savepoints {
				// Rolled back to its savepoint: nobody else ran twice.
				for _, m := range []string{"m1", "m2", "poison", "m4"} {
					if n := calls.count(m); n != 1 {
						t.Fatalf("%s handled %d times, want 1", m, n)
					}
				}
				sameTx(t, x, "m1", "m2", "m4")
			} else if n := calls.count("poison"); n != 2 {
				// The group rolled back; each message then ran alone.
				t.Fatalf("poison handled %d times, want 2 (in the group, then alone)", n)
			}
			eventually(t, "all settled", func() bool { return f.consumerInfo(name).NumAckPending == 0 })
		})
	}
}

// A transient error in a group naks that message with backoff; it is applied once on its
// redelivery, and the others once in the group.
func TestConsumerGroupRetriesTheFailedMessage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	const name = "test--group-flaky"
	calls := newAttempts()
	h := effectHandler(name, func(d *Delivery, marker string) error {
		if calls.record(marker) == 1 && marker == "flaky" {
			return errors.New("database is busy")
		}
		return nil
	})
	cfg := ConsumerConfig{Name: name, TxBatch: 16, Backoff: func(uint64) time.Duration { return 100 * time.Millisecond }}
	c, cons := f.groupConsumer(cfg, h)
	f.publishEvents("m1", "flaky", "m3")
	c.processGroup(context.Background(), f.fetch(cons, 3), newInFlight())
	if got := f.effects(name); !maps.Equal(got, map[string]int{"m1": 1, "m3": 1}) {
		t.Fatalf("effects %v after the group", got)
	}
	if r := f.processed(name, "retry"); r != 1 {
		t.Fatalf("retry outcomes %v, want 1", r)
	}
	f.background(c.Run)
	eventually(t, "flaky applied on redelivery", func() bool { return f.effects(name)["flaky"] == 1 })
	if d := f.scalar("SELECT delivered FROM effects WHERE consumer = $1 AND marker = 'flaky'", name); d != 2 {
		t.Fatalf("flaky applied on delivery %d, want 2", d)
	}
	eventually(t, "all acked", func() bool { return f.consumerInfo(name).NumAckPending == 0 })
	if got := f.effects(name); !maps.Equal(got, map[string]int{"m1": 1, "flaky": 1, "m3": 1}) {
		t.Fatalf("effects %v", got)
	}
	for _, m := range []string{"m1", "m3"} {
		if n := calls.count(m); n != 1 {
			t.Fatalf("%s handled %d times, want 1", m, n)
		}
	}
}

// A group whose transaction committed but whose acks never left (the process died) comes back
// whole after AckWait; the inbox absorbs every message.
func TestConsumerGroupRedeliveredAfterCrashBeforeAck(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	const name = "test--group-crash"
	cfg := ConsumerConfig{Name: name, TxBatch: 16, HandlerTimeout: 400 * time.Millisecond, AckWait: time.Second}
	c, cons := f.groupConsumer(cfg, effectHandler(name, nil))
	f.publishEvents("m1", "m2", "m3")
	msgs := f.fetch(cons, 3)
	group := make([]*member, len(msgs))
	for i, msg := range msgs {
		group[i] = &member{received: c.begin(context.Background(), msg)}
		group[i].env, group[i].undecoded = decodeEnvelope(msg.Data())
	}
	must(t, c.applyGroup(context.Background(), group)) // committed; no ack follows
	if got := f.effects(name); len(got) != 3 {
		t.Fatalf("effects %v", got)
	}

	f.background(c.Run)
	eventually(t, "the group redelivered and absorbed", func() bool { return f.processed(name, "duplicate") == 3 })
	eventually(t, "all acked", func() bool { return f.consumerInfo(name).NumAckPending == 0 })
	if got := f.effects(name); !maps.Equal(got, map[string]int{"m1": 1, "m2": 1, "m3": 1}) {
		t.Fatalf("effects %v, want each once", got)
	}
}

// A running consumer applies a backlog in stream order, several events per transaction, and
// each event it emits names the event that caused it.
func TestConsumerGroupsKeepStreamOrderAndCauses(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	const name = "test--group-order"
	const n = 60
	var want []string
	for i := range n {
		m := "m" + strconv.Itoa(i)
		want = append(want, m)
		must(t, f.store.InTx(WithCause(context.Background(), "corr-"+m, "req-"+m), func(ctx context.Context, tx *Tx) error {
			tx.Emit(event(m))
			return nil
		}))
	}
	f.drain(f.relay(RelayConfig{}))
	x := newTxids()
	effect := effectHandler(name, nil)
	h := x.recording(func(ctx context.Context, tx *Tx, d *Delivery) error {
		tx.Emit(Event{Subject: "trellis.test.patient.welcomed.v1", Payload: wrapperspb.String(d.Envelope.GetEventId())})
		return effect(ctx, tx, d)
	})
	f.startConsumer(ConsumerConfig{Name: name, Subjects: []string{testSubject}, TxBatch: 16}, h)
	eventually(t, "all applied", func() bool { return f.processed(name, "ok") == n })

	rows, err := f.pool.Query(context.Background(), "SELECT marker FROM effects WHERE consumer = $1 ORDER BY id", name)
	must(t, err)
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	must(t, err)
	if !slices.Equal(got, want) {
		t.Fatalf("applied in order %v, want %v", got, want)
	}
	txs := map[string]bool{}
	for _, m := range want {
		txs[x.of(m)[0]] = true
	}
	t.Logf("%d events in %d transactions", n, len(txs))

	// The follow-ups, in the outbox in the same order, each caused by its own event.
	rows, err = f.pool.Query(context.Background(),
		"SELECT payload FROM outbox WHERE subject = 'trellis.test.patient.welcomed.v1' ORDER BY seq")
	must(t, err)
	bodies, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	must(t, err)
	if len(bodies) != n {
		t.Fatalf("%d follow-ups, want %d", len(bodies), n)
	}
	sources := map[string]decoded{}
	for _, m := range f.streamMsgs(testStream) {
		d := decode(t, m.Data)
		sources[d.env.GetEventId()] = d
	}
	for i, b := range bodies {
		env := &eventsv1.Envelope{}
		must(t, proto.Unmarshal(b, env))
		src, ok := sources[env.GetCausationId()]
		if !ok || src.marker != want[i] || env.GetCorrelationId() != "corr-"+want[i] {
			t.Fatalf("follow-up %d: causation %q correlation %q, want the event of %s", i,
				env.GetCausationId(), env.GetCorrelationId(), want[i])
		}
	}
}

// When the group's transaction fails as a whole (here its HandlerTimeout runs out), every
// message is applied again in a transaction of its own, once.
func TestConsumerGroupFallsBackToOneTransactionEach(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	const name = "test--group-fallback"
	calls := newAttempts()
	h := func(ctx context.Context, tx *Tx, d *Delivery) error {
		marker := decodeMarker(d)
		if calls.record(marker) == 1 && marker == "stuck" {
			<-ctx.Done() // a stuck call that honours its context
			return ctx.Err()
		}
		return effectHandler(name, nil)(ctx, tx, d)
	}
	c, cons := f.groupConsumer(ConsumerConfig{Name: name, TxBatch: 16, HandlerTimeout: 300 * time.Millisecond}, h)
	f.publishEvents("m1", "stuck", "m3")
	c.processGroup(context.Background(), f.fetch(cons, 3), newInFlight())
	if got := f.effects(name); !maps.Equal(got, map[string]int{"m1": 1, "stuck": 1, "m3": 1}) {
		t.Fatalf("effects %v, want each once", got)
	}
	// m1 ran in the group and again alone; m3 only alone (the group gave up at stuck).
	if a, b, s := calls.count("m1"), calls.count("m3"), calls.count("stuck"); a != 2 || b != 1 || s != 2 {
		t.Fatalf("calls m1=%d m3=%d stuck=%d, want 2, 1, 2", a, b, s)
	}
	if ok := f.processed(name, "ok"); ok != 3 {
		t.Fatalf("ok outcomes %v, want 3", ok)
	}
}
