package bus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
)

// attempts counts handler calls per marker and when they happened.
type attempts struct {
	mu    sync.Mutex
	times map[string][]time.Time
}

func newAttempts() *attempts { return &attempts{times: map[string][]time.Time{}} }

func (a *attempts) record(marker string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.times[marker] = append(a.times[marker], time.Now())
	return len(a.times[marker])
}

func (a *attempts) count(marker string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.times[marker])
}

func (a *attempts) at(marker string) []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.times[marker]...)
}

// publishRaw puts data on subject with the given Nats-Msg-Id, bypassing the outbox.
func (f *fixture) publishRaw(subject, msgID string, data []byte) {
	f.t.Helper()
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(HeaderMsgID, msgID)
	if _, err := f.js.PublishMsg(context.Background(), m); err != nil {
		f.t.Fatal(err)
	}
}

// envelopeBytes commits an event and returns its envelope as the relay would publish it.
func (f *fixture) envelopeBytes(ev Event) []byte {
	f.t.Helper()
	must(f.t, f.store.InTx(context.Background(), func(ctx context.Context, tx *Tx) error {
		tx.Emit(ev)
		return nil
	}))
	var body []byte
	must(f.t, f.pool.QueryRow(context.Background(),
		"UPDATE outbox SET published_at = now() WHERE seq = (SELECT max(seq) FROM outbox) RETURNING payload").Scan(&body))
	return body
}

// The same event delivered twice (as two distinct JetStream messages, so JetStream's dedup
// does not apply) has one effect: the inbox recognises the second copy.
func TestConsumerAppliesARedeliveredEventOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	body := f.envelopeBytes(event("twice"))
	f.publishRaw(testSubject, "copy-1", body)
	f.publishRaw(testSubject, "copy-2", body)
	if got := len(f.streamMsgs(testStream)); got != 2 {
		t.Fatalf("stream holds %d messages, want 2", got)
	}

	const name = "test--dup"
	f.startConsumer(ConsumerConfig{Name: name}, effectHandler(name, nil))
	eventually(t, "both copies settled", func() bool {
		return f.processed(name, "ok")+f.processed(name, "duplicate") == 2
	})
	if got := f.effects(name); !maps.Equal(got, map[string]int{"twice": 1}) {
		t.Fatalf("effects %v, want one", got)
	}
	if f.processed(name, "duplicate") != 1 {
		t.Fatalf("duplicate outcome %v, want 1", f.processed(name, "duplicate"))
	}
	// The outcome is counted when the handler returns; the ack reaches the server just after.
	eventually(t, "the duplicate acked too (no ack pending, ack floor at 2)", func() bool {
		info := f.consumerInfo(name)
		return info.NumAckPending == 0 && info.AckFloor.Stream == 2
	})
}

// Poison input is copied to DEADLETTER with its reason and original subject, counted, and
// terminated rather than redelivered; the consumer carries on with good messages.
func TestConsumerDeadLettersPoisonMessages(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	const name = "test--poison"
	calls := newAttempts()
	handler := effectHandler(name, func(d *Delivery, marker string) error {
		calls.record(marker)
		if marker == "poison" {
			return Permanent(errors.New("clinic is not known"))
		}
		return nil
	})

	garbage := []byte{0xff, 0xff, 0xff, 0x01}
	noID, _ := proto.Marshal(&eventsv1.Envelope{EventType: "x"})
	wrongType := f.envelopeBytes(Event{Subject: "trellis.test.thing.renamed.v1", Payload: wrapperspb.String("not a patient")})
	poison := f.envelopeBytes(event("poison"))
	good := f.envelopeBytes(event("good"))
	inputs := []struct {
		subject string
		data    []byte
		reason  string
	}{
		{"trellis.test.garbage.arrived.v1", garbage, "decode envelope"},
		{"trellis.test.empty.arrived.v1", noID, "lacks event_id"},
		{"trellis.test.thing.renamed.v1", wrongType, "want trellis.intake.v1.PatientAdmitted"},
		{testSubject, poison, "clinic is not known"},
	}
	for i, in := range inputs {
		f.publishRaw(in.subject, "m"+strconv.Itoa(i), in.data)
	}
	f.publishRaw(testSubject, "good", good)

	f.startConsumer(ConsumerConfig{Name: name, HandlerTimeout: 500 * time.Millisecond, AckWait: time.Second}, handler)
	eventually(t, "4 dead letters", func() bool { return len(f.streamMsgs(DeadLetterStream)) == 4 })
	eventually(t, "good message applied", func() bool { return f.effects(name)["good"] == 1 })

	dls := f.streamMsgs(DeadLetterStream)
	for i, in := range inputs {
		dl := dls[i]
		if dl.Subject != "trellis.deadletter."+name {
			t.Errorf("dead letter %d on %q", i, dl.Subject)
		}
		if r := dl.Header.Get(HeaderDLReason); !strings.Contains(r, in.reason) {
			t.Errorf("dead letter %d reason %q, want it to mention %q", i, r, in.reason)
		}
		for h, want := range map[string]string{
			HeaderDLSubject: in.subject, HeaderDLConsumer: name, HeaderDLStream: testStream,
			HeaderDLDeliveries: "1", HeaderDLStreamSequence: strconv.Itoa(i + 1),
		} {
			if got := dl.Header.Get(h); got != want {
				t.Errorf("dead letter %d header %s = %q, want %q", i, h, got, want)
			}
		}
		if !bytes.Equal(dl.Data, in.data) {
			t.Errorf("dead letter %d body differs from the original", i)
		}
	}
	if got := testutil.ToFloat64(f.metrics.DeadLetters.WithLabelValues(name)); got != 4 {
		t.Fatalf("trellis_dead_letters_total = %v, want 4", got)
	}
	if got := f.processed(name, "dead_letter"); got != 1 {
		t.Fatalf("dead_letter outcome for %s = %v, want 1", testSubject, got)
	}

	// Terminated, not redelivered: nothing pending, and after AckWait has passed the poison
	// handler has still run once.
	time.Sleep(1500 * time.Millisecond)
	if info := f.consumerInfo(name); info.NumAckPending != 0 || info.NumRedelivered != 0 {
		t.Fatalf("ack pending %d, redelivered %d; want 0 and 0", info.NumAckPending, info.NumRedelivered)
	}
	if n := calls.count("poison"); n != 1 {
		t.Fatalf("poison handled %d times, want 1", n)
	}
	if got := f.effects(name); !maps.Equal(got, map[string]int{"good": 1}) {
		t.Fatalf("effects %v: the poison transaction must roll back", got)
	}
	// The inbox row of the poison event rolled back with it, so a replay after a fix applies it.
	if n := f.scalar("SELECT count(*) FROM inbox WHERE consumer = $1", name); n != 1 {
		t.Fatalf("inbox rows %d, want 1 (the good event)", n)
	}
	// The terminations were captured in the advisory stream.
	var terminated int
	for _, m := range f.streamMsgs(AdvisoryStream) {
		if strings.HasPrefix(m.Subject, "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.") {
			terminated++
		}
	}
	if terminated != 4 {
		t.Fatalf("%d termination advisories captured, want 4", terminated)
	}
}

// A transient failure is retried with the configured backoff (NakWithDelay) and applied once.
func TestConsumerRetriesTransientFailures(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	const name = "test--flaky"
	calls := newAttempts()
	f.emit("flaky")
	f.drain(f.relay(RelayConfig{}))
	backoff := func(attempt uint64) time.Duration { return time.Duration(attempt) * 200 * time.Millisecond }
	f.startConsumer(ConsumerConfig{Name: name, MaxDeliver: 5, Backoff: backoff}, effectHandler(name, func(d *Delivery, m string) error {
		if calls.record(m) < 3 {
			return errors.New("database is busy")
		}
		return nil
	}))
	eventually(t, "applied", func() bool { return f.effects(name)["flaky"] == 1 })
	if d := f.scalar("SELECT delivered FROM effects WHERE consumer = $1", name); d != 3 {
		t.Fatalf("applied on delivery %d, want 3", d)
	}
	at := calls.at("flaky")
	for i := 1; i < len(at); i++ {
		if gap, want := at[i].Sub(at[i-1]), backoff(uint64(i)); gap < want-20*time.Millisecond {
			t.Fatalf("attempt %d came %s after the previous one, want at least %s (NakWithDelay)", i+1, gap, want)
		}
	}
	if r, ok := f.processed(name, "retry"), f.processed(name, "ok"); r != 2 || ok != 1 {
		t.Fatalf("outcomes retry=%v ok=%v, want 2 and 1", r, ok)
	}
	time.Sleep(500 * time.Millisecond)
	if n := calls.count("flaky"); n != 3 {
		t.Fatalf("handled %d times, want 3", n)
	}
	if got := f.effects(name); !maps.Equal(got, map[string]int{"flaky": 1}) {
		t.Fatalf("effects %v", got)
	}
}

// A message that keeps failing is dead-lettered on its MaxDeliver-th attempt.
func TestConsumerDeadLettersAfterMaxDeliver(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	const name = "test--doomed"
	calls := newAttempts()
	f.emit("doomed")
	f.drain(f.relay(RelayConfig{}))
	f.startConsumer(ConsumerConfig{Name: name, MaxDeliver: 3, HandlerTimeout: 500 * time.Millisecond, AckWait: time.Second,
		Backoff: func(uint64) time.Duration { return 50 * time.Millisecond }},
		effectHandler(name, func(d *Delivery, m string) error {
			calls.record(m)
			return errors.New("downstream unavailable")
		}))
	eventually(t, "dead letter", func() bool { return len(f.streamMsgs(DeadLetterStream)) == 1 })
	dl := f.streamMsgs(DeadLetterStream)[0]
	if got := dl.Header.Get(HeaderDLDeliveries); got != "3" {
		t.Fatalf("dead-lettered after %s deliveries, want 3", got)
	}
	if r := dl.Header.Get(HeaderDLReason); !strings.Contains(r, "downstream unavailable") {
		t.Fatalf("reason %q", r)
	}
	time.Sleep(1500 * time.Millisecond) // past AckWait: a non-terminated message would be back
	if n := calls.count("doomed"); n != 3 {
		t.Fatalf("handled %d times, want 3", n)
	}
	if info := f.consumerInfo(name); info.NumAckPending != 0 {
		t.Fatalf("ack pending %d", info.NumAckPending)
	}
	if got := testutil.ToFloat64(f.metrics.DeadLetters.WithLabelValues(name)); got != 1 {
		t.Fatalf("dead letters %v, want 1", got)
	}
	if got := len(f.effects(name)); got != 0 {
		t.Fatalf("effects %d, want none", got)
	}
}

// The handler's context carries HandlerTimeout; a handler stuck past it is retried.
func TestConsumerHandlerTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	const name = "test--slow"
	calls := newAttempts()
	f.emit("slow")
	f.drain(f.relay(RelayConfig{}))
	f.startConsumer(ConsumerConfig{Name: name, HandlerTimeout: 300 * time.Millisecond,
		Backoff: func(uint64) time.Duration { return 10 * time.Millisecond }},
		func(ctx context.Context, tx *Tx, d *Delivery) error {
			if calls.record("slow") == 1 {
				if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > 300*time.Millisecond {
					return Permanent(errors.New("handler context lacks the HandlerTimeout deadline"))
				}
				<-ctx.Done() // a stuck call that honours its context
				return ctx.Err()
			}
			return effectHandler(name, nil)(ctx, tx, d)
		})
	eventually(t, "applied on retry", func() bool {
		return f.effects(name)["slow"] == 1 || len(f.streamMsgs(DeadLetterStream)) > 0
	})
	if dls := f.streamMsgs(DeadLetterStream); len(dls) > 0 {
		t.Fatal(dls[0].Header.Get(HeaderDLReason))
	}
	if n := calls.count("slow"); n != 2 {
		t.Fatalf("handled %d times, want 2", n)
	}
}

// Events emitted while handling an event carry its correlation id and name it as cause.
func TestConsumerHandlerEmitsWithCause(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	const name = "test--chain"
	must(t, f.store.InTx(WithCause(context.Background(), "corr-1", "req-1"), func(ctx context.Context, tx *Tx) error {
		tx.Emit(event("first"))
		return nil
	}))
	r := f.relay(RelayConfig{})
	f.drain(r)
	f.startConsumer(ConsumerConfig{Name: name, Subjects: []string{testSubject}}, func(ctx context.Context, tx *Tx, d *Delivery) error {
		tx.Emit(Event{Subject: "trellis.test.patient.welcomed.v1", Payload: wrapperspb.String(d.Envelope.GetEventId())})
		return nil
	})
	eventually(t, "follow-up event in outbox", func() bool { return f.scalar("SELECT count(*) FROM outbox") == 2 })
	f.drain(r)
	msgs := f.streamMsgs(testStream)
	if len(msgs) != 2 {
		t.Fatalf("%d messages", len(msgs))
	}
	first, second := decode(t, msgs[0].Data).env, &eventsv1.Envelope{}
	must(t, proto.Unmarshal(msgs[1].Data, second))
	if first.GetCorrelationId() != "corr-1" || first.GetCausationId() != "req-1" {
		t.Fatalf("first event correlation %q causation %q", first.GetCorrelationId(), first.GetCausationId())
	}
	if second.GetCorrelationId() != "corr-1" || second.GetCausationId() != first.GetEventId() {
		t.Fatalf("follow-up correlation %q causation %q, want corr-1 and %s",
			second.GetCorrelationId(), second.GetCausationId(), first.GetEventId())
	}
	if got := msgs[1].Header.Get(HeaderCausationID); got != first.GetEventId() {
		t.Fatalf("causation-id header %q", got)
	}
}

func TestExpBackoff(t *testing.T) {
	b := ExpBackoff(100*time.Millisecond, time.Second)
	for attempt, want := range map[uint64]time.Duration{
		0: 100 * time.Millisecond, 1: 100 * time.Millisecond, 2: 200 * time.Millisecond,
		3: 400 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 60: time.Second,
	} {
		if got := b(attempt); got != want {
			t.Errorf("attempt %d: %s, want %s", attempt, got, want)
		}
	}
}

func TestConsumerConfigDefaults(t *testing.T) {
	c := ConsumerConfig{HandlerTimeout: 30 * time.Second, AckWait: 10 * time.Second}
	c.defaults()
	if c.AckWait <= c.HandlerTimeout {
		t.Fatalf("AckWait %s must exceed HandlerTimeout %s", c.AckWait, c.HandlerTimeout)
	}
	if c.Batch != 32 || c.MaxDeliver != 40 || c.Backoff == nil || c.TxBatch != DefaultTxBatch {
		t.Fatalf("defaults %+v", c)
	}
	// A failing dependency must be able to stay down for an hour (a failover, a deploy gone
	// wrong) before its events are dead-lettered.
	var budget time.Duration
	for attempt := uint64(1); attempt < uint64(c.MaxDeliver); attempt++ {
		budget += c.Backoff(attempt)
	}
	if budget < time.Hour {
		t.Fatalf("default retries give up after %s, want at least an hour", budget)
	}
}

func TestTxSizeShrinksWhenHandlersAreSlow(t *testing.T) {
	c := &Consumer{cfg: ConsumerConfig{TxBatch: 1000}}
	c.cfg.defaults() // HandlerTimeout 10s
	if got := c.txSize(); got != maxTxBatch {
		t.Fatalf("TxBatch 1000: %d, want the ceiling %d", got, maxTxBatch)
	}
	c.cfg.TxBatch = 16
	c.avgHandle.Store(int64(time.Millisecond))
	if got := c.txSize(); got != 16 {
		t.Fatalf("fast handlers: %d, want 16", got)
	}
	c.avgHandle.Store(int64(time.Second)) // half of HandlerTimeout fits 5 such messages
	if got := c.txSize(); got != 5 {
		t.Fatalf("1s handlers: %d, want 5", got)
	}
	c.avgHandle.Store(int64(time.Minute))
	if got := c.txSize(); got != 1 {
		t.Fatalf("very slow handlers: %d, want 1", got)
	}
	c.cfg.TxBatch = 1
	c.avgHandle.Store(int64(time.Millisecond))
	if got := c.txSize(); got != 1 {
		t.Fatalf("TxBatch 1: %d, want 1", got)
	}
}

func TestFetchSizeShrinksWhenHandlersAreSlow(t *testing.T) {
	c := &Consumer{cfg: ConsumerConfig{}}
	c.cfg.defaults() // AckWait 25s, Batch 32
	if got := c.fetchSize(); got != 32 {
		t.Fatalf("no history: fetch %d, want 32", got)
	}
	c.avgHandle.Store(int64(time.Millisecond))
	if got := c.fetchSize(); got != 32 {
		t.Fatalf("fast handlers: fetch %d, want 32", got)
	}
	c.avgHandle.Store(int64(2 * time.Second)) // a third of AckWait fits 4 such messages
	if got := c.fetchSize(); got != 4 {
		t.Fatalf("2s handlers: fetch %d, want 4", got)
	}
	c.avgHandle.Store(int64(time.Minute))
	if got := c.fetchSize(); got != 1 {
		t.Fatalf("very slow handlers: fetch %d, want 1", got)
	}
}

// A consumer whose durable disappears (deleted by an operator, lost with a stream restore)
// creates it again and goes on consuming.
func TestConsumerRecoversWhenItsDurableIsDeleted(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	const name = "test--recreated"
	c := f.startConsumer(ConsumerConfig{Name: name}, effectHandler(name, nil))
	f.emit("before")
	f.drain(f.relay(RelayConfig{}))
	eventually(t, "first event applied", func() bool { return f.effects(name)["before"] == 1 })
	must(t, f.js.DeleteConsumer(context.Background(), testStream, name))
	f.emit("after")
	f.drain(f.relay(RelayConfig{}))
	eventually(t, "event after the deletion applied", func() bool { return f.effects(name)["after"] == 1 })
	eventually(t, "consumer ready again", c.Ready)
}

func TestPermanent(t *testing.T) {
	base := errors.New("bad")
	if Permanent(nil) != nil {
		t.Fatal("Permanent(nil) must be nil")
	}
	p := Permanent(base)
	if !IsPermanent(p) || !errors.Is(p, base) || p.Error() != "bad" {
		t.Fatalf("Permanent(base) = %v", p)
	}
	if IsPermanent(base) {
		t.Fatal("a plain error is not permanent")
	}
	if wrapped := errors.Join(errors.New("ctx"), p); !IsPermanent(wrapped) {
		t.Fatal("IsPermanent must see through wrapping")
	}
}

func TestMatchClinic(t *testing.T) {
	d := &Delivery{Envelope: &eventsv1.Envelope{ClinicId: "c1"}}
	if err := d.MatchClinic("c1"); err != nil {
		t.Fatalf("same clinic: %v", err)
	}
	if err := d.MatchClinic("c2"); err == nil || !IsPermanent(err) {
		t.Fatalf("other clinic: %v, want a permanent error", err)
	}
	if err := (&Delivery{Envelope: &eventsv1.Envelope{}}).MatchClinic("c2"); err != nil {
		t.Fatalf("network-wide envelope: %v", err)
	}
}

// Messages of a batch that wait behind slow handlers longer than AckWait are not redelivered
// to another replica while they wait: the consumer marks them in progress before handling
// them, so each is delivered once (the inbox would absorb a second delivery, but it costs a
// handler run and, for a slow handler, races the first).
func TestConsumerBatchOutlastingAckWaitIsNotRedelivered(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	const name = "test--slow-batch"
	for i := range 10 {
		f.publishRaw(testSubject, "slow"+strconv.Itoa(i), f.envelopeBytes(event("m"+strconv.Itoa(i))))
	}
	// Ten 250 ms handlers take 2.5 s, well past the 1 s AckWait that started at the fetch; a
	// second replica pulls all the while. Each handler has 900 ms (AckWait must exceed it): a
	// tighter timeout failed handlers slowed by a loaded machine, and their retries showed as
	// redeliveries.
	cfg := ConsumerConfig{Name: name, Batch: 10, HandlerTimeout: 900 * time.Millisecond, AckWait: time.Second}
	h := effectHandler(name, func(d *Delivery, marker string) error {
		time.Sleep(250 * time.Millisecond)
		return nil
	})
	f.startConsumer(cfg, h)
	eventually(t, "first replica holds the batch", func() bool {
		c, err := f.js.Consumer(context.Background(), testStream, name)
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		return err == nil && info.NumAckPending == 10
	})
	f.startConsumer(cfg, h)
	eventually(t, "ten applied", func() bool { return len(f.effects(name)) == 10 })
	time.Sleep(1200 * time.Millisecond) // past another AckWait: any redelivery would show
	// A redelivered copy would have met the inbox and counted as a duplicate.
	if n := f.processed(name, "duplicate"); n != 0 {
		t.Fatalf("%v messages delivered twice, want 0", n)
	}
	if n := f.processed(name, "ok"); n != 10 {
		t.Fatalf("%v applied, want 10", n)
	}
}

// A dead letter's reason, which operators read, keeps only the SQL state of a Postgres error:
// Postgres quotes the values a statement was given.
func TestDeadLetterReasonKeepsNoPostgresValues(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	const name = "test--pgreason"
	f.publishRaw(testSubject, "q", f.envelopeBytes(event("quoting")))
	f.startConsumer(ConsumerConfig{Name: name}, func(ctx context.Context, tx *Tx, d *Delivery) error {
		_, err := tx.Exec(ctx, `SELECT $1::date`, "birth date of Jane Roe")
		return Permanent(fmt.Errorf("apply: %w", err))
	})
	eventually(t, "a dead letter", func() bool { return len(f.streamMsgs(DeadLetterStream)) == 1 })
	r := f.streamMsgs(DeadLetterStream)[0].Header.Get(HeaderDLReason)
	if strings.Contains(r, "Jane") || !strings.Contains(r, "apply: postgres error SQLSTATE 22007") {
		t.Errorf("dead letter reason %q", r)
	}
}
