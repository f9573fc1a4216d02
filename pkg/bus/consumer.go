package bus

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/telemetry"
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
)

// Delivery is one event handed to a handler.
type Delivery struct {
	Subject      string
	Envelope     *eventsv1.Envelope
	NumDelivered uint64
}

// Decode unpacks the payload into m. A payload of another type is a permanent error.
func (d *Delivery) Decode(m proto.Message) error {
	if err := d.Envelope.GetPayload().UnmarshalTo(m); err != nil {
		return Permanent(fmt.Errorf("payload is %s, want %s: %w", d.Envelope.GetEventType(),
			m.ProtoReflect().Descriptor().FullName(), err))
	}
	return nil
}

// MatchClinic checks that the payload's clinic is the envelope's; a mismatch is a permanent
// error (a producer bug, or a forged message), so the event is dead-lettered, not applied to
// the wrong clinic. An envelope without a clinic (network-wide events) matches anything.
func (d *Delivery) MatchClinic(payloadClinicID string) error {
	if env := d.Envelope.GetClinicId(); env != "" && env != payloadClinicID {
		return Permanent(errors.New("envelope clinic_id differs from the payload's"))
	}
	return nil
}

// Handler applies one event inside tx. The inbox row is already written in tx; emitted events
// go to the outbox in tx. Return Permanent(err) for input that will never succeed (it goes to
// the dead-letter stream); any other error is retried with backoff.
type Handler func(ctx context.Context, tx *Tx, d *Delivery) error

type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool { return errors.As(err, new(permanentError)) }

// ConsumerConfig declares one durable pull consumer.
type ConsumerConfig struct {
	Name           string   // durable name, "<service>--<purpose>"
	Stream         string   // e.g. "INTAKE"
	Subjects       []string // filter subjects
	Batch          int      // most messages per fetch, default 32 (fewer when handlers are slow)
	HandlerTimeout time.Duration
	AckWait        time.Duration // must exceed HandlerTimeout; default HandlerTimeout*2+5s
	// MaxDeliver: after this many failed attempts a message is dead-lettered. The default (40,
	// with the default backoff about 3 hours) outlasts a database failover or a deploy: an
	// outage delays events, it does not dead-letter them. Permanent errors are dead-lettered at once.
	MaxDeliver int
	Backoff    func(attempt uint64) time.Duration // default 200 ms doubling to 5 min
	// TxBatch: most messages of a fetched batch applied in one transaction (each one's inbox
	// row, handler and outbox rows, each under a savepoint), acked after the commit. Default
	// 16, at most 64 (Postgres caches 64 subtransactions per transaction); 1 applies every
	// message in a transaction of its own. Fewer are grouped when handlers are slow, so that
	// a group fits in half of HandlerTimeout, which applies per transaction. See ADR 12.
	TxBatch int
	// LockKeys, when set, names the advisory locks a message's handler takes (the text whose
	// hashtextextended(key, 0) it passes to pg_advisory_xact_lock). A group's transaction then
	// takes every key of the group first, sorted, before any handler runs, so groups holding
	// several patients' locks never deadlock with each other or with single-lock callers such
	// as the API; the handlers' own lock calls find them held (advisory locks are re-entrant).
	// Without it, consumers whose handlers lock should keep TxBatch 1.
	LockKeys func(d *Delivery) []string
	// Partitions, with PartitionKey, applies a fetched batch with that many workers at once:
	// messages of one key (e.g. patient and clinic) go to the same worker, in stream order;
	// different keys run concurrently, each worker in its own transactions. For handlers whose
	// work is bounded by round trips rather than by Postgres: the messages of different keys
	// must not depend on each other's order. Default 1 (one message after the other), at most
	// 16; each busy partition holds a pooled connection (DB_MAX_CONNS).
	Partitions   int
	PartitionKey func(d *Delivery) string
	// AfterApply, when set, runs once per transaction that applied messages (a TxBatch group,
	// or one message), after their handlers and before the commit, with the deliveries whose
	// handlers succeeded in it (not the duplicates, not those rolled back to their savepoint),
	// in stream order: for a write that belongs to the group rather than to each message, such
	// as the dashboard's newest event time per stream (one statement per transaction instead
	// of one per message, and its row locked only until the commit that follows). Its error
	// fails the transaction as a whole: a group is then applied one message per transaction.
	AfterApply func(ctx context.Context, tx *Tx, applied []*Delivery) error
}

// DefaultTxBatch is ConsumerConfig.TxBatch when unset; maxTxBatch its ceiling.
const (
	DefaultTxBatch = 16
	maxTxBatch     = 64
)

func (c *ConsumerConfig) defaults() {
	if c.Batch <= 0 {
		c.Batch = 32
	}
	if c.HandlerTimeout <= 0 {
		c.HandlerTimeout = 10 * time.Second
	}
	if c.AckWait <= c.HandlerTimeout {
		c.AckWait = 2*c.HandlerTimeout + 5*time.Second
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 40
	}
	if c.Backoff == nil {
		c.Backoff = ExpBackoff(200*time.Millisecond, 5*time.Minute)
	}
	if c.TxBatch <= 0 {
		c.TxBatch = DefaultTxBatch
	}
	c.TxBatch = min(c.TxBatch, maxTxBatch)
	c.Partitions = min(max(c.Partitions, 1), maxPartitions)
}

// maxPartitions bounds ConsumerConfig.Partitions: each partition may hold a pooled connection.
const maxPartitions = 16

// ExpBackoff doubles from base for each attempt, capped at ceiling.
func ExpBackoff(base, ceiling time.Duration) func(uint64) time.Duration {
	return func(attempt uint64) time.Duration {
		d := base
		for i := uint64(1); i < attempt && d < ceiling; i++ {
			d *= 2
		}
		return min(d, ceiling)
	}
}

// Consumer runs a handler over a durable JetStream consumer with an inbox for idempotency.
type Consumer struct {
	cfg     ConsumerConfig
	store   *Store
	js      jetstream.JetStream
	handle  Handler
	log     *slog.Logger
	metrics *telemetry.Metrics
	tracer  trace.Tracer
	ready   atomic.Bool
	// noSavepoints applies a group without a savepoint per message: any handler error rolls
	// the whole group back (benchmarks compare the two).
	noSavepoints bool
	// commits counts the transactions run to apply messages, committed or not (benchmarks
	// report events per transaction from it).
	commits atomic.Int64
	// avgHandle is a moving average of the time one message takes, in nanoseconds; it sizes
	// the next fetch so that a batch is done well within AckWait.
	avgHandle atomic.Int64
}

// NewConsumer prepares a consumer; Run ensures the durable and then consumes.
func NewConsumer(cfg ConsumerConfig, store *Store, js jetstream.JetStream, h Handler, log *slog.Logger, m *telemetry.Metrics) *Consumer {
	cfg.defaults()
	return &Consumer{cfg: cfg, store: store, js: js, handle: h, log: log.With("consumer", cfg.Name),
		metrics: m, tracer: telemetry.Tracer("trellis/bus")}
}

// Name is the durable name.
func (c *Consumer) Name() string { return c.cfg.Name }

// Ensure creates or updates the durable consumer (idempotent).
func (c *Consumer) Ensure(ctx context.Context) (jetstream.Consumer, error) {
	cc := jetstream.ConsumerConfig{
		Durable:        c.cfg.Name,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        c.cfg.AckWait,
		MaxDeliver:     -1, // the limit is enforced here, so the last attempt can still be dead-lettered
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		MaxAckPending:  max(1000, c.cfg.Batch*4),
		FilterSubjects: c.cfg.Subjects,
	}
	cons, err := c.js.CreateOrUpdateConsumer(ctx, c.cfg.Stream, cc)
	if err != nil {
		return nil, fmt.Errorf("bus: ensure consumer %s on %s: %w", c.cfg.Name, c.cfg.Stream, err)
	}
	return cons, nil
}

// Ready reports whether the durable consumer exists and Run is fetching.
func (c *Consumer) Ready() bool { return c.ready.Load() }

// Run ensures the durable consumer (waiting for its stream to exist), then fetches and handles
// messages until ctx ends. On shutdown the message in hand is finished and the rest of the
// batch is handed back for redelivery. A fetch that fails (NATS restarting, the consumer or
// stream gone) backs off and ensures the consumer again.
func (c *Consumer) Run(ctx context.Context) error {
	backoff := ExpBackoff(100*time.Millisecond, 5*time.Second)
	var failures uint64
	var cons jetstream.Consumer
	for ctx.Err() == nil {
		if cons == nil {
			var err error
			if cons, err = c.Ensure(ctx); err != nil {
				c.ready.Store(false)
				failures++
				c.log.WarnContext(ctx, "consumer not ready; retrying", "error", err, "attempt", failures)
				sleep(ctx, backoff(failures))
				continue
			}
			c.ready.Store(true)
		}
		batch, err := cons.Fetch(c.fetchSize(), jetstream.FetchMaxWait(time.Second))
		if err == nil {
			c.handleBatch(ctx, batch)
			err = batch.Error()
		}
		if err == nil || errors.Is(err, nats.ErrTimeout) || ctx.Err() != nil {
			failures = 0
			continue
		}
		failures++
		c.log.WarnContext(ctx, "fetch failed; backing off", "error", err, "attempt", failures)
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) ||
			errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, nats.ErrNoResponders) || failures > 3 {
			cons = nil // ensure it again
			c.ready.Store(false)
		}
		sleep(ctx, backoff(failures))
	}
	c.ready.Store(false)
	return nil
}

func (c *Consumer) handleBatch(ctx context.Context, batch jetstream.MessageBatch) {
	// AckWait starts for every message of a batch at the fetch. The messages waiting behind
	// slow ones are marked in progress every third of AckWait (the server restarts their ack
	// timers), so none is redelivered to another replica while it waits its turn here.
	waiting := newInFlight()
	queue := make(chan jetstream.Msg, c.cfg.Batch)
	go func() {
		defer close(queue)
		for msg := range batch.Messages() {
			waiting.add(msg)
			queue <- msg
		}
	}()
	stop := waiting.heartbeat(c.cfg.AckWait / 3)
	defer stop()
	if c.cfg.Partitions <= 1 || c.cfg.PartitionKey == nil {
		c.work(ctx, queue, waiting)
		return
	}
	// Partitions: each message goes to the worker of its key's partition, so one key's
	// messages keep their stream order while other keys' are applied meanwhile, each worker
	// in transactions of its own. The batch is done when every worker is.
	parts := make([]chan jetstream.Msg, c.cfg.Partitions)
	var wg sync.WaitGroup
	for i := range parts {
		parts[i] = make(chan jetstream.Msg, c.cfg.Batch)
		wg.Go(func() { c.work(ctx, parts[i], waiting) })
	}
	for msg := range queue {
		parts[c.partition(msg)] <- msg
	}
	for _, p := range parts {
		close(p)
	}
	wg.Wait()
}

// partition is the worker of msg's key (0 for a message that cannot be decoded: it is
// dead-lettered there).
func (c *Consumer) partition(msg jetstream.Msg) int {
	env, err := decodeEnvelope(msg.Data())
	if err != nil {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(c.cfg.PartitionKey(&Delivery{Subject: msg.Subject(), Envelope: env})))
	return int(h.Sum32() % uint32(c.cfg.Partitions))
}

// work applies the messages of queue in order, grouping what has already arrived.
func (c *Consumer) work(ctx context.Context, queue <-chan jetstream.Msg, waiting *inFlight) {
	for msg := range queue {
		if ctx.Err() != nil {
			// Shutting down: hand the rest back now rather than after AckWait.
			waiting.done(msg)
			_ = msg.NakWithDelay(time.Second)
			continue
		}
		// Group what has already arrived (never waiting for more) into one transaction.
		group := []jetstream.Msg{msg}
		for limit := c.txSize(); len(group) < limit; {
			next, ok := pending(queue)
			if !ok {
				break
			}
			group = append(group, next)
		}
		start := time.Now()
		// Finish the group even when shutdown starts mid-way: its transaction is short.
		if len(group) == 1 {
			c.process(context.WithoutCancel(ctx), msg)
			waiting.done(msg)
		} else {
			c.processGroup(context.WithoutCancel(ctx), group, waiting)
		}
		took := int64(time.Since(start)) / int64(len(group))
		c.avgHandle.Store((c.avgHandle.Load()*7 + took) / 8)
	}
}

// pending returns the next message of queue if one is there already.
func pending(queue <-chan jetstream.Msg) (jetstream.Msg, bool) {
	select {
	case m, ok := <-queue:
		return m, ok
	default:
		return nil, false
	}
}

// inFlight is the set of fetched messages not yet settled.
type inFlight struct {
	mu   sync.Mutex
	msgs map[jetstream.Msg]struct{}
}

func newInFlight() *inFlight { return &inFlight{msgs: map[jetstream.Msg]struct{}{}} }

func (f *inFlight) add(m jetstream.Msg) { f.mu.Lock(); f.msgs[m] = struct{}{}; f.mu.Unlock() }

func (f *inFlight) done(m jetstream.Msg) { f.mu.Lock(); delete(f.msgs, m); f.mu.Unlock() }

// heartbeat marks every unsettled message in progress each interval until stop is called.
func (f *inFlight) heartbeat(every time.Duration) (stop func()) {
	quit, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				f.mu.Lock()
				for m := range f.msgs {
					_ = m.InProgress()
				}
				f.mu.Unlock()
			}
		}
	}()
	return func() { close(quit); <-stopped }
}

// fetchSize asks for as many messages as can be handled in a third of AckWait at the recent
// pace (AckWait starts for every message of a batch when it is fetched), between 1 and Batch.
func (c *Consumer) fetchSize() int {
	avg := c.avgHandle.Load()
	if avg <= 0 {
		return c.cfg.Batch
	}
	return int(min(max(int64(c.cfg.AckWait/3)/avg, 1), int64(c.cfg.Batch)))
}

// txSize is how many messages go in one transaction: TxBatch, fewer when the recent pace
// says a group that size would not finish in half of HandlerTimeout.
func (c *Consumer) txSize() int {
	avg := c.avgHandle.Load()
	if avg <= 0 || c.cfg.TxBatch <= 1 {
		return c.cfg.TxBatch
	}
	return int(min(max(int64(c.cfg.HandlerTimeout/2)/avg, 1), int64(c.cfg.TxBatch)))
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// process handles one message in a transaction of its own and settles it: ack, nak with
// delay, or dead-letter then term.
func (c *Consumer) process(ctx context.Context, msg jetstream.Msg) {
	it := c.begin(ctx, msg)
	c.finish(it, c.handleMsg(it.ctx, msg, it.subject, it.delivered, it.streamSeq))
}

// received is a message being processed, with its span.
type received struct {
	msg       jetstream.Msg
	ctx       context.Context // carries the span
	span      trace.Span
	start     time.Time
	subject   string
	delivered uint64
	streamSeq uint64
}

// begin starts the message's CONSUMER span (a child of the producer's, from the headers).
func (c *Consumer) begin(ctx context.Context, msg jetstream.Msg) *received {
	it := &received{msg: msg, start: time.Now(), subject: msg.Subject(), delivered: 1}
	if md, err := msg.Metadata(); err == nil {
		it.delivered, it.streamSeq = md.NumDelivered, md.Sequence.Stream
	}
	subject, delivered := it.subject, it.delivered
	carrier := telemetry.HeaderCarrier(msg.Headers())
	parent := telemetry.Propagator.Extract(ctx, carrier)
	it.ctx, it.span = c.tracer.Start(parent, "process "+subject,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", subject),
			attribute.String("messaging.consumer.group.name", c.cfg.Name),
			attribute.String("messaging.message.id", carrier.Get(HeaderMsgID)),
			attribute.Int64("messaging.message.delivery_count", int64(delivered)),
		))
	return it
}

// finish records the outcome on the span and in the metrics, and ends the span.
func (c *Consumer) finish(it *received, outcome string) {
	it.span.SetAttributes(attribute.String("trellis.outcome", outcome))
	if outcome == "retry" || outcome == "dead_letter" {
		it.span.SetStatus(codes.Error, outcome)
	}
	it.span.End()
	c.metrics.EventsProcessed.WithLabelValues(c.cfg.Name, it.subject, outcome).Inc()
	c.metrics.ProcessingSeconds.WithLabelValues(c.cfg.Name, it.subject).Observe(time.Since(it.start).Seconds())
}

func (c *Consumer) handleMsg(ctx context.Context, msg jetstream.Msg, subject string, delivered, streamSeq uint64) string {
	env, err := decodeEnvelope(msg.Data())
	if err != nil {
		return c.deadLetter(ctx, msg, subject, delivered, streamSeq, err)
	}
	duplicate, err := c.apply(ctx, subject, env, delivered)
	return c.settle(ctx, msg, subject, delivered, streamSeq, env, duplicate, err)
}

// decodeEnvelope unpacks a message's envelope; one without an event id or payload is an error.
func decodeEnvelope(data []byte) (*eventsv1.Envelope, error) {
	env := &eventsv1.Envelope{}
	if err := proto.Unmarshal(data, env); err != nil {
		return nil, fmt.Errorf("decode envelope: %w", err)
	}
	if env.GetEventId() == "" || env.GetPayload() == nil {
		return nil, errors.New("decode envelope: envelope lacks event_id or payload")
	}
	return env, nil
}

// settle acks, naks with backoff or dead-letters a message after its handling returned err.
func (c *Consumer) settle(ctx context.Context, msg jetstream.Msg, subject string, delivered, streamSeq uint64,
	env *eventsv1.Envelope, duplicate bool, err error) string {
	switch {
	case err == nil:
		if ackErr := msg.Ack(); ackErr != nil {
			c.log.WarnContext(ctx, "ack failed; the inbox will absorb the redelivery", "error", ackErr)
		}
		if duplicate {
			return "duplicate"
		}
		return "ok"
	case IsPermanent(err) || delivered >= uint64(c.cfg.MaxDeliver):
		return c.deadLetter(ctx, msg, subject, delivered, streamSeq, err)
	default:
		delay := c.cfg.Backoff(delivered)
		c.log.WarnContext(ctx, "event handling failed; will retry", "subject", subject,
			"event_id", env.GetEventId(), "attempt", delivered, "retry_in", delay.String(), "error", pg.Redact(err))
		_ = msg.NakWithDelay(delay)
		return "retry"
	}
}

// apply runs the handler on env in one transaction with the event's inbox row; duplicate
// means the inbox already had it (nothing was applied).
//
// An event is applied for no caller, so the handler's context carries auth.WithSystemScope and,
// on a store with the clinic scope on, its transaction sees every clinic's rows ("*"). A
// handler that should see less narrows it itself (SetClinicScope).
func (c *Consumer) apply(ctx context.Context, subject string, env *eventsv1.Envelope, delivered uint64) (duplicate bool, err error) {
	d := &Delivery{Subject: subject, Envelope: env, NumDelivered: delivered}
	hctx, cancel := context.WithTimeout(auth.WithSystemScope(WithCause(ctx, env.GetCorrelationId(), env.GetEventId())), c.cfg.HandlerTimeout)
	defer cancel()
	defer c.commits.Add(1)
	err = c.store.InTx(hctx, func(ctx context.Context, tx *Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
			c.cfg.Name, env.GetEventId())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			duplicate = true
			return nil
		}
		if err := c.handle(ctx, tx, d); err != nil || c.cfg.AfterApply == nil {
			return err
		}
		return c.cfg.AfterApply(ctx, tx, []*Delivery{d})
	})
	return duplicate, err
}

// deadLetter copies the message with its reason to the dead-letter stream, then terminates it.
// If the copy cannot be stored the message is retried instead: nothing is dropped silently.
func (c *Consumer) deadLetter(ctx context.Context, msg jetstream.Msg, subject string, delivered, streamSeq uint64, cause error) string {
	// A Postgres message can quote the event's values; the reason is shown to operators.
	reason := pg.Redact(cause)
	if len(reason) > 512 {
		reason = reason[:512]
	}
	dl := nats.NewMsg(DeadLetterSubject(c.cfg.Name))
	dl.Data = msg.Data()
	for k, v := range msg.Headers() {
		if k != HeaderMsgID {
			dl.Header[k] = v
		}
	}
	stream := c.cfg.Stream
	if md, err := msg.Metadata(); err == nil {
		stream = md.Stream
	}
	dl.Header.Set(HeaderDLReason, reason)
	dl.Header.Set(HeaderDLConsumer, c.cfg.Name)
	dl.Header.Set(HeaderDLSubject, subject)
	dl.Header.Set(HeaderDLStream, stream)
	dl.Header.Set(HeaderDLStreamSequence, strconv.FormatUint(streamSeq, 10))
	dl.Header.Set(HeaderDLDeliveries, strconv.FormatUint(delivered, 10))
	// One dead letter per original message, even if this step itself is retried.
	dl.Header.Set(HeaderMsgID, fmt.Sprintf("dl:%s:%s:%d", c.cfg.Name, stream, streamSeq))
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := c.js.PublishMsg(pctx, dl); err != nil {
		c.log.ErrorContext(ctx, "dead-letter publish failed; will retry", "subject", subject, "error", err)
		_ = msg.NakWithDelay(c.cfg.Backoff(delivered))
		return "retry"
	}
	c.metrics.DeadLetters.WithLabelValues(c.cfg.Name).Inc()
	c.log.ErrorContext(ctx, "event dead-lettered", "subject", subject, "stream_seq", streamSeq,
		"attempts", delivered, "reason", reason)
	_ = msg.TermWithReason(reason)
	return "dead_letter"
}
