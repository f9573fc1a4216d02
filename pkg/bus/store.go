package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/telemetry"
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
)

// Store runs a service's units of work: one Postgres transaction holding the state change and
// the events it emits (written to the outbox before commit). After a commit that emitted
// events it wakes the relay, so publishing does not wait for the next poll.
type Store struct {
	Pool     *pgxpool.Pool
	producer string
	wake     chan struct{}
	now      func() time.Time
	scoped   bool // every transaction sets trellis.clinics from its context (EnableClinicScope)
}

// NewStore returns a Store for the service named producer.
func NewStore(pool *pgxpool.Pool, producer string) *Store {
	return &Store{Pool: pool, producer: producer, wake: make(chan struct{}, 1), now: time.Now}
}

// Tx is a unit of work: a pgx transaction plus the events emitted in it.
type Tx struct {
	pgx.Tx
	events      []Event
	afterCommit []func()
	emitted     bool // outbox rows were written (the relay is woken after commit)
}

// Emit queues events to be written to the outbox in this transaction.
func (t *Tx) Emit(events ...Event) { t.events = append(t.events, events...) }

// AfterCommit registers fn to run once the transaction has committed (never after a rollback),
// for in-process signals such as waking a worker that picks up what was just written.
func (t *Tx) AfterCommit(fn func()) { t.afterCommit = append(t.afterCommit, fn) }

// InTx runs fn in a transaction. Events emitted by fn are written to the outbox in the same
// transaction; if fn fails nothing is written and nothing is published.
//
// A transaction that fails with a serialization failure or a deadlock (SQLSTATE 40001, 40P01:
// Postgres chose it as the victim; nothing of it was kept) is run again, fn included, up to
// TxAttempts times in all, after a short random pause that grows with each attempt (so two
// victims of the same cycle do not meet again). fn must therefore do nothing outside tx that
// cannot be repeated: its events are only queued and its AfterCommit hooks run only after the
// attempt that committed.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context, tx *Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.inTx(ctx, fn)
		if err == nil || attempt >= TxAttempts || !retryable(err) {
			return err
		}
		t := time.NewTimer(rand.N(txRetryPause << attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// TxAttempts is how many times InTx runs a transaction that Postgres aborted as the victim of
// a deadlock or a serialization failure; txRetryPause the base of the random pause between.
const (
	TxAttempts   = 4
	txRetryPause = 5 * time.Millisecond
)

// retryable reports whether err is a serialization failure or a deadlock: a transaction
// Postgres rolled back so that another could go on, which succeeds when run again.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// inTx is one attempt of InTx.
func (s *Store) inTx(ctx context.Context, fn func(ctx context.Context, tx *Tx) error) error {
	var tx *Tx
	err := pgx.BeginTxFunc(ctx, s.Pool, s.txOptions(ctx, ""), func(ptx pgx.Tx) error {
		tx = &Tx{Tx: ptx}
		if err := fn(ctx, tx); err != nil {
			return err
		}
		return s.flush(ctx, tx)
	})
	if err != nil {
		return err
	}
	if tx.emitted {
		s.Wake()
	}
	for _, fn := range tx.afterCommit {
		fn()
	}
	return nil
}

// ClinicSetting is the transaction-local Postgres setting that holds a transaction's clinic
// scope (auth.ClinicScope: clinic ids separated by commas, "*" for every clinic, "" for
// none); the row-level security policies of a service's tables compare clinic_id with it.
const ClinicSetting = "trellis.clinics"

// EnableClinicScope makes every transaction of s (InTx, Read) set ClinicSetting from its
// context (auth.ClinicScope), in the same round trip as its BEGIN, for a service whose tables
// have row-level security policies on it (docs/security.md, "Row-level security"). Call it before
// the store is used. A context with neither a principal nor auth.WithSystemScope gets no
// clinic: the transaction sees no clinic's rows.
func (s *Store) EnableClinicScope() { s.scoped = true }

// Read runs fn in a read-only transaction, scoped as InTx is: for queries that change nothing
// and emit nothing.
func (s *Store) Read(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.Pool, s.txOptions(ctx, pgx.ReadOnly), func(tx pgx.Tx) error { return fn(ctx, tx) })
}

// txOptions begins a transaction, and with the clinic scope on sets ClinicSetting in the same
// simple-protocol query (one round trip; the value is a literal: auth.ClinicScope keeps only
// UUIDs and "*", and anything else is refused here).
func (s *Store) txOptions(ctx context.Context, mode pgx.TxAccessMode) pgx.TxOptions {
	opts := pgx.TxOptions{AccessMode: mode}
	if !s.scoped {
		return opts
	}
	begin := "BEGIN"
	if mode != "" {
		begin += " " + string(mode)
	}
	opts.BeginQuery = begin + "; SELECT pg_catalog.set_config('" + ClinicSetting + "', '" + literalScope(auth.ClinicScope(ctx)) + "', true)"
	return opts
}

// SetClinicScope sets ClinicSetting in tx from ctx (auth.ClinicScope) until tx ends or the next
// call: for work that changes scope inside a transaction it did not begin, such as an event
// handler declaring auth.WithSystemScope, or a deliberate cross-clinic query.
func SetClinicScope(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, "SELECT pg_catalog.set_config('"+ClinicSetting+"', $1, true)", auth.ClinicScope(ctx)); err != nil {
		return fmt.Errorf("bus: set clinic scope: %w", err)
	}
	return nil
}

// literalScope returns scope if it holds only what a clinic scope can (hex digits, '-', ','
// and '*'), else "" (no clinic): it is spliced into SQL as a literal.
func literalScope(scope string) string {
	for i := 0; i < len(scope); i++ {
		c := scope[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || c == '-' || c == ',' || c == '*') {
			return ""
		}
	}
	return scope
}

// flush writes the events emitted so far in tx to the outbox, with the cause and trace
// context of ctx. A consumer applying several messages in one transaction flushes after each,
// so every event names the message that caused it.
func (s *Store) flush(ctx context.Context, tx *Tx) error {
	if len(tx.events) == 0 {
		return nil
	}
	if err := s.writeOutbox(ctx, tx.Tx, tx.events); err != nil {
		return err
	}
	tx.events = tx.events[:0]
	tx.emitted = true
	return nil
}

// Wake nudges the relay (non-blocking).
func (s *Store) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Store) writeOutbox(ctx context.Context, tx pgx.Tx, events []Event) error {
	correlationID, causationID := CauseFrom(ctx)
	// Trace context of the unit of work, stored so the relay's PRODUCER span continues it.
	carrier := telemetry.HeaderCarrier{}
	telemetry.Propagator.Inject(ctx, carrier)
	// Few events (a consumer's handler, an API call): one INSERT each, pipelined in one round
	// trip. Many (an 835 posting emits one per claim and per charge): one INSERT of arrays,
	// whose planning and per-statement overhead is paid once; rows keep the emission order.
	bulk := len(events) >= bulkOutbox
	var ids, subjects []string
	var headers, payloads [][]byte
	batch := &pgx.Batch{}
	for _, e := range events {
		if err := e.Validate(); err != nil {
			return err
		}
		payload, err := anypb.New(e.Payload)
		if err != nil {
			return fmt.Errorf("bus: pack %s: %w", e.Subject, err)
		}
		id := NewID()
		corr := correlationID
		if corr == "" {
			corr = id
		}
		occurred := s.now().UTC()
		env := &eventsv1.Envelope{
			EventId:       id,
			EventType:     string(e.Payload.ProtoReflect().Descriptor().FullName()),
			OccurredAt:    timestamppb.New(occurred),
			ClinicId:      e.ClinicID,
			CorrelationId: corr,
			CausationId:   causationID,
			Producer:      s.producer,
			Payload:       payload,
		}
		body, err := proto.Marshal(env)
		if err != nil {
			return fmt.Errorf("bus: marshal %s: %w", e.Subject, err)
		}
		h := telemetry.HeaderCarrier{}
		for k, v := range carrier {
			h[k] = v
		}
		h.Set(HeaderEventType, env.EventType)
		h.Set(HeaderCorrelationID, corr)
		if causationID != "" {
			h.Set(HeaderCausationID, causationID)
		}
		h.Set(HeaderOccurredAt, occurred.Format(time.RFC3339Nano))
		if e.ClinicID != "" {
			h.Set(HeaderClinicID, e.ClinicID)
		}
		h.Set(HeaderContentType, ContentTypeProto)
		hj, err := json.Marshal(h)
		if err != nil {
			return err
		}
		if bulk {
			ids, subjects, headers, payloads = append(ids, id), append(subjects, e.Subject), append(headers, hj), append(payloads, body)
			continue
		}
		batch.Queue(`INSERT INTO outbox (event_id, subject, headers, payload) VALUES ($1, $2, $3, $4)`,
			id, e.Subject, hj, body)
	}
	if bulk {
		// ORDER BY the ordinality: seq (the relay's order within a transaction) follows emission.
		_, err := tx.Exec(ctx, `INSERT INTO outbox (event_id, subject, headers, payload)
			SELECT e, s, h, p FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::bytea[]) WITH ORDINALITY AS u(e, s, h, p, n)
			ORDER BY n`, ids, subjects, headers, payloads)
		return err
	}
	return tx.SendBatch(ctx, batch).Close()
}

// bulkOutbox is the number of events from which writeOutbox inserts them in one statement.
const bulkOutbox = 8
