package bus

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-health/trellis/pkg/telemetry"
	"github.com/trellis-health/trellis/pkg/testkit"
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
)

// Test fixtures: a fresh database with the bus tables and an effects table, an embedded
// JetStream server with the TEST context stream (trellis.test.>) and the platform streams.

const (
	testSchema  = "svc"
	testStream  = "TEST"
	testSubject = "trellis.test.patient.admitted.v1"
)

type fixture struct {
	t       testing.TB
	pool    *pgxpool.Pool
	store   *Store
	nats    *testkit.NATS
	nc      *nats.Conn
	js      jetstream.JetStream
	metrics *telemetry.Metrics
	log     *slog.Logger
}

type fixtureOpts struct {
	// duplicates overrides the TEST stream's dedup window (JetStream's minimum is 100ms).
	duplicates time.Duration
}

func newFixture(t testing.TB, o fixtureOpts) *fixture {
	t.Helper()
	ctx := context.Background()
	pool := testkit.Pool(t, testSchema)
	if err := Migrate(ctx, pool, testSchema, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE effects (
		id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		consumer text NOT NULL,
		event_id uuid NOT NULL,
		marker text NOT NULL,
		delivered int NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	n := testkit.StartNATS(t)
	nc, js := n.Connect(t)
	opts := StreamOptions{Storage: "memory"}
	sc := ContextStream("test", opts)
	if o.duplicates > 0 {
		sc.Duplicates = o.duplicates
	}
	if err := EnsureStreams(ctx, js, append(PlatformStreams(opts), sc)...); err != nil {
		t.Fatal(err)
	}
	return &fixture{
		t: t, pool: pool, store: NewStore(pool, "test"), nats: n, nc: nc, js: js,
		metrics: telemetry.NewMetrics("test"),
		log:     slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

// event returns a test event whose payload carries marker in PatientId (markers are test
// labels, never PHI).
func event(marker string) Event {
	return Event{Subject: testSubject, ClinicID: "0190c2a4-7d1e-7000-8000-000000000001",
		Payload: &intakev1.PatientAdmitted{PatientId: marker, ProgramTrack: "adult-evening"}}
}

// emit commits one transaction emitting an event per marker.
func (f *fixture) emit(markers ...string) {
	f.t.Helper()
	err := f.store.InTx(context.Background(), func(ctx context.Context, tx *Tx) error {
		for _, m := range markers {
			tx.Emit(event(m))
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) relay(cfg RelayConfig) *Relay {
	return NewRelay(f.store, f.js, testSchema, cfg, f.log, f.metrics)
}

// drain runs relay rounds until no unpublished row is left and returns how many it published.
// A round may publish nothing while any transaction that got its xid before the rows' own is
// still open anywhere in the Postgres cluster (pg_snapshot_xmin is cluster-wide, so tests of
// other packages running at the same time count), hence the retries.
func (f *fixture) drain(r *Relay) int {
	f.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	total := 0
	for {
		n, err := r.RunOnce(context.Background())
		if err != nil {
			f.t.Fatal(err)
		}
		total += n
		if n > 0 {
			continue
		}
		if f.unpublished() == 0 {
			return total
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("outbox not drained after 15s (%d rows left)", f.unpublished())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// roundWithWork runs relay rounds until one publishes something or fails (see drain).
func (f *fixture) roundWithWork(r *Relay) (int, error) {
	f.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		n, err := r.RunOnce(context.Background())
		if n > 0 || err != nil {
			return n, err
		}
		if time.Now().After(deadline) {
			f.t.Fatal("no relay round found work in 15s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (f *fixture) scalar(sql string, args ...any) int64 {
	f.t.Helper()
	var n int64
	if err := f.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func (f *fixture) unpublished() int64 {
	return f.scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
}

// effectsFor returns how many effect rows each marker has.
func (f *fixture) effects(consumer string) map[string]int {
	f.t.Helper()
	rows, err := f.pool.Query(context.Background(), "SELECT marker FROM effects WHERE consumer = $1", consumer)
	if err != nil {
		f.t.Fatal(err)
	}
	markers, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]int{}
	for _, m := range markers {
		out[m]++
	}
	return out
}

// streamMsgs returns every message in stream, in stream order.
func (f *fixture) streamMsgs(stream string) []*jetstream.RawStreamMsg {
	f.t.Helper()
	ctx := context.Background()
	s, err := f.js.Stream(ctx, stream)
	if err != nil {
		f.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	if info.State.Msgs == 0 {
		return nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			f.t.Fatalf("get %s seq %d: %v", stream, seq, err)
		}
		out = append(out, m)
	}
	return out
}

// decoded is a stream message's envelope and the marker of its payload.
type decoded struct {
	env    *eventsv1.Envelope
	marker string
}

func decode(t testing.TB, data []byte) decoded {
	t.Helper()
	env := &eventsv1.Envelope{}
	if err := proto.Unmarshal(data, env); err != nil {
		t.Fatalf("decode envelope: %v", err)
	}
	p := &intakev1.PatientAdmitted{}
	if err := env.GetPayload().UnmarshalTo(p); err != nil {
		t.Fatalf("decode payload: %v", err)
	}
	return decoded{env: env, marker: p.GetPatientId()}
}

func (f *fixture) streamMarkers(stream string) []string {
	f.t.Helper()
	var out []string
	for _, m := range f.streamMsgs(stream) {
		out = append(out, decode(f.t, m.Data).marker)
	}
	return out
}

// effectHandler records one effect row per applied event, in the consumer's transaction.
// before, when set, runs first and may fail the attempt.
func effectHandler(consumer string, before func(d *Delivery, marker string) error) Handler {
	return func(ctx context.Context, tx *Tx, d *Delivery) error {
		p := &intakev1.PatientAdmitted{}
		if err := d.Decode(p); err != nil {
			return err
		}
		if before != nil {
			if err := before(d, p.GetPatientId()); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO effects (consumer, event_id, marker, delivered) VALUES ($1, $2, $3, $4)`,
			consumer, d.Envelope.GetEventId(), p.GetPatientId(), int(d.NumDelivered))
		return err
	}
}

// startConsumer runs a consumer until the test ends (stopped before NATS and Postgres are).
func (f *fixture) startConsumer(cfg ConsumerConfig, h Handler) *Consumer {
	f.t.Helper()
	if cfg.Stream == "" {
		cfg.Stream = testStream
	}
	if len(cfg.Subjects) == 0 {
		cfg.Subjects = []string{"trellis.test.>"}
	}
	c := NewConsumer(cfg, f.store, f.js, h, f.log, f.metrics)
	f.background(c.Run)
	return c
}

// background runs fn until the test ends; cleanup cancels it and waits for it to return.
func (f *fixture) background(fn func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := fn(ctx); err != nil {
			f.t.Errorf("background: %v", err)
		}
	})
	f.t.Cleanup(func() { cancel(); wg.Wait() })
}

func (f *fixture) processed(consumer, outcome string) float64 {
	return testutil.ToFloat64(f.metrics.EventsProcessed.WithLabelValues(consumer, testSubject, outcome))
}

func (f *fixture) consumerInfo(name string) *jetstream.ConsumerInfo {
	f.t.Helper()
	c, err := f.js.Consumer(context.Background(), testStream, name)
	if err != nil {
		f.t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return info
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, 15*time.Second, what, cond)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newPoolLike opens a second pool on pool's database (another replica of the service).
func newPoolLike(ctx context.Context, pool *pgxpool.Pool) (*pgxpool.Pool, error) {
	return pgxpool.NewWithConfig(ctx, pool.Config())
}
