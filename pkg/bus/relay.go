package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/trellis-health/trellis/pkg/telemetry"
)

// RelayConfig tunes the outbox relay.
type RelayConfig struct {
	Batch       int           // rows per round, default 256
	IdlePoll    time.Duration // longest sleep when idle, default 1s
	PublishWait time.Duration // how long to wait for JetStream acks, default 10s
	Retention   time.Duration // how long published rows are kept for re-publish, default 7 days
	// InboxRetention: how long consumers remember applied event ids, default 37 days (the
	// streams' 30-day retention plus the outbox's 7).
	InboxRetention time.Duration
	PruneEvery     time.Duration // default 10m
}

// Relay publishes outbox rows to JetStream in commit order. Only rows whose transaction id is
// below the oldest still-running transaction (xid8 < pg_snapshot_xmin) are read, so a long
// open transaction holds later rows back instead of letting the relay skip past its rows.
// One relay per schema is active at a time (a transaction-scoped advisory lock), so several
// replicas of a service are safe. A crash between publish and marking rows published leads to
// a re-publish with the same Nats-Msg-Id: JetStream dedups within its window and consumers'
// inboxes dedup forever.
type Relay struct {
	store   *Store
	js      jetstream.JetStream
	cfg     RelayConfig
	lockKey int64
	log     *slog.Logger
	metrics *telemetry.Metrics
	tracer  trace.Tracer

	// afterPublish is a test hook run after JetStream acked a round and before the rows are
	// marked published; an error aborts the round as a crash there would.
	afterPublish func() error
}

// NewRelay returns a relay for store's outbox, publishing through js.
func NewRelay(store *Store, js jetstream.JetStream, schema string, cfg RelayConfig, log *slog.Logger, m *telemetry.Metrics) *Relay {
	if cfg.Batch <= 0 {
		cfg.Batch = 256
	}
	if cfg.IdlePoll <= 0 {
		cfg.IdlePoll = time.Second
	}
	if cfg.PublishWait <= 0 {
		cfg.PublishWait = 10 * time.Second
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 7 * 24 * time.Hour
	}
	if cfg.InboxRetention <= 0 {
		cfg.InboxRetention = 37 * 24 * time.Hour
	}
	if cfg.PruneEvery <= 0 {
		cfg.PruneEvery = 10 * time.Minute
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte("trellis-outbox-relay:" + schema))
	return &Relay{store: store, js: js, cfg: cfg, lockKey: int64(h.Sum64()), log: log, metrics: m,
		tracer: telemetry.Tracer("trellis/bus")}
}

// Run publishes until ctx ends. It polls with backoff when idle and wakes at once when the
// store commits new events.
func (r *Relay) Run(ctx context.Context) error {
	idle := 10 * time.Millisecond
	nextPrune, nextObserve := time.Now(), time.Now()
	for {
		n, err := r.RunOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		// Housekeeping runs on its own clock, also while a backlog drains (when the backlog
		// metrics matter most).
		if time.Now().After(nextPrune) {
			if err := r.prune(ctx); err != nil && ctx.Err() == nil {
				r.log.WarnContext(ctx, "outbox prune failed", "error", err)
			}
			nextPrune = time.Now().Add(r.cfg.PruneEvery)
		}
		if time.Now().After(nextObserve) {
			r.observeBacklog(ctx)
			nextObserve = time.Now().Add(5 * time.Second)
		}
		switch {
		case err != nil:
			r.log.WarnContext(ctx, "outbox relay round failed", "error", err)
			idle = min(max(idle*2, 100*time.Millisecond), r.cfg.IdlePoll)
		case n == r.cfg.Batch:
			idle = 10 * time.Millisecond
			continue // more waiting
		case n > 0:
			idle = 10 * time.Millisecond
		default:
			idle = min(idle*2, r.cfg.IdlePoll)
		}
		t := time.NewTimer(idle)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-r.store.wake:
			t.Stop()
			idle = 10 * time.Millisecond
		case <-t.C:
		}
	}
}

type outboxRow struct {
	seq     int64
	subject string
	eventID string
	headers map[string][]string
	payload []byte
}

// RunOnce publishes one batch and returns how many rows it published.
func (r *Relay) RunOnce(ctx context.Context) (int, error) {
	var published int
	err := pgx.BeginFunc(ctx, r.store.Pool, func(tx pgx.Tx) error {
		var locked bool
		if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1)", r.lockKey).Scan(&locked); err != nil {
			return err
		}
		if !locked {
			return nil // another replica's relay is active
		}
		rows, err := tx.Query(ctx, `
			SELECT seq, subject, event_id::text, headers, payload FROM outbox
			WHERE published_at IS NULL AND txid < pg_snapshot_xmin(pg_current_snapshot())
			ORDER BY txid, seq LIMIT $1`, r.cfg.Batch)
		if err != nil {
			return err
		}
		batch, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (outboxRow, error) {
			var o outboxRow
			var hj []byte
			if err := row.Scan(&o.seq, &o.subject, &o.eventID, &hj, &o.payload); err != nil {
				return o, err
			}
			return o, json.Unmarshal(hj, &o.headers)
		})
		if err != nil || len(batch) == 0 {
			return err
		}
		if err := r.publish(ctx, batch); err != nil {
			return err
		}
		if r.afterPublish != nil {
			if err := r.afterPublish(); err != nil {
				return err
			}
		}
		seqs := make([]int64, len(batch))
		for i, o := range batch {
			seqs[i] = o.seq
		}
		if _, err := tx.Exec(ctx, "UPDATE outbox SET published_at = now() WHERE seq = ANY($1)", seqs); err != nil {
			return err
		}
		published = len(batch)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return published, nil
}

// publish sends the batch asynchronously, in order, and waits for every ack.
func (r *Relay) publish(ctx context.Context, batch []outboxRow) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.PublishWait)
	defer cancel()
	type pending struct {
		f    jetstream.PubAckFuture
		span trace.Span
		row  *outboxRow
	}
	futures := make([]pending, 0, len(batch))
	var errs []error
	for i := range batch {
		o := &batch[i]
		carrier := telemetry.HeaderCarrier(o.headers)
		parent := telemetry.Propagator.Extract(ctx, carrier)
		sctx, span := r.tracer.Start(parent, "publish "+o.subject,
			trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(
				attribute.String("messaging.system", "nats"),
				attribute.String("messaging.operation.type", "publish"),
				attribute.String("messaging.destination.name", o.subject),
				attribute.String("messaging.message.id", o.eventID),
			))
		telemetry.Propagator.Inject(sctx, carrier) // the consumer's span is a child of this one
		msg := &nats.Msg{Subject: o.subject, Data: o.payload, Header: nats.Header(carrier)}
		f, err := r.js.PublishMsgAsync(msg, jetstream.WithMsgID(o.eventID))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "publish failed")
			span.End()
			r.metrics.EventsPublished.WithLabelValues(o.subject, "error").Inc()
			errs = append(errs, fmt.Errorf("publish %s: %w", o.eventID, err))
			break
		}
		futures = append(futures, pending{f: f, span: span, row: o})
	}
	for _, p := range futures {
		select {
		case <-p.f.Ok():
			r.metrics.EventsPublished.WithLabelValues(p.row.subject, "ok").Inc()
			p.span.End()
		case err := <-p.f.Err():
			p.span.RecordError(err)
			p.span.SetStatus(codes.Error, "publish not acknowledged")
			p.span.End()
			r.metrics.EventsPublished.WithLabelValues(p.row.subject, "error").Inc()
			errs = append(errs, fmt.Errorf("publish %s: %w", p.row.eventID, err))
		case <-ctx.Done():
			p.span.SetStatus(codes.Error, "publish ack timeout")
			p.span.End()
			errs = append(errs, fmt.Errorf("publish %s: %w", p.row.eventID, ctx.Err()))
		}
	}
	return errors.Join(errs...)
}

// prune deletes published outbox rows past their retention, and inbox rows old enough that
// JetStream can no longer redeliver their event (stream retention plus outbox retention, so a
// re-published event is still recognised).
func (r *Relay) prune(ctx context.Context) error {
	if _, err := r.store.Pool.Exec(ctx, "DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)",
		r.cfg.Retention.Seconds()); err != nil {
		return err
	}
	_, err := r.store.Pool.Exec(ctx, "DELETE FROM inbox WHERE received_at < now() - make_interval(secs => $1)",
		r.cfg.InboxRetention.Seconds())
	return err
}

func (r *Relay) observeBacklog(ctx context.Context) {
	var n int64
	var age float64
	err := r.store.Pool.QueryRow(ctx, `SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)
		FROM outbox WHERE published_at IS NULL`).Scan(&n, &age)
	if err == nil {
		r.metrics.OutboxBacklog.Set(float64(n))
		r.metrics.OutboxOldestAge.Set(age)
	}
}
