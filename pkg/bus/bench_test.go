package bus

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/trellis-health/trellis/pkg/testkit"
)

// Benchmarks of the bus against real Postgres and embedded JetStream. Compare them as ratios
// within one run: BenchmarkRawInsertCommit (one single-row INSERT and COMMIT) is the baseline
// for OutboxWrite, InboxConsume and ConsumeHop, BenchmarkRawJetStreamPublish for RelayPublish:
//
//	go test -run '^$' -bench . -benchtime=2000x ./pkg/bus/

func requirePostgres(b *testing.B) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, testkit.AdminURL())
	if err != nil {
		b.Skipf("Postgres unreachable: %v", err)
	}
	_ = c.Close(ctx)
}

// BenchmarkRawInsertCommit: BEGIN; one INSERT of an outbox-shaped row; COMMIT, through pgx.
func BenchmarkRawInsertCommit(b *testing.B) {
	requirePostgres(b)
	f := newFixture(b, fixtureOpts{})
	ctx := context.Background()
	_, err := f.pool.Exec(ctx, `CREATE TABLE raw_outbox (LIKE outbox INCLUDING ALL)`)
	must(b, err)
	body := f.envelopeBytes(event("bench"))
	headers := []byte(`{"event-type":["trellis.intake.v1.PatientAdmitted"],"content-type":["application/protobuf"]}`)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		err := pgx.BeginFunc(ctx, f.pool, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO raw_outbox (event_id, subject, headers, payload) VALUES ($1, $2, $3, $4)`,
				NewID(), testSubject, headers, body)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
}

// BenchmarkOutboxWrite: Store.InTx with one Emit (envelope marshal, headers, outbox insert).
func BenchmarkOutboxWrite(b *testing.B) {
	requirePostgres(b)
	f := newFixture(b, fixtureOpts{})
	ctx := context.Background()
	ev := event("bench")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		err := f.store.InTx(ctx, func(ctx context.Context, tx *Tx) error {
			tx.Emit(ev)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
}

// seedOutbox writes n unpublished events, 500 per transaction (not timed).
func seedOutbox(b *testing.B, f *fixture, n int) {
	b.Helper()
	for done := 0; done < n; {
		k := min(500, n-done)
		err := f.store.InTx(context.Background(), func(ctx context.Context, tx *Tx) error {
			for range k {
				tx.Emit(event("bench"))
			}
			return nil
		})
		must(b, err)
		done += k
	}
}

// BenchmarkRelayPublish: relay throughput over pre-written rows (default batch of 256, file
// storage as in production), from the first round until every row is acked and marked.
func BenchmarkRelayPublish(b *testing.B) {
	requirePostgres(b)
	f := newFixture(b, fixtureOpts{})
	ctx := context.Background()
	s, err := f.js.Stream(ctx, testStream)
	must(b, err)
	cfg := s.CachedInfo().Config
	cfg.Storage = jetstream.FileStorage
	must(b, f.js.DeleteStream(ctx, testStream))
	_, err = f.js.CreateStream(ctx, cfg)
	must(b, err)
	seedOutbox(b, f, b.N)
	r := f.relay(RelayConfig{})
	b.ResetTimer()
	if n := f.drain(r); n != b.N {
		b.Fatalf("published %d of %d", n, b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkRawJetStreamPublish: the relay's ceiling on this machine: async publishes of the
// same bodies with Nats-Msg-Id to a file-storage stream, in windows of 256 (the relay's batch),
// waiting for every ack, with no Postgres at all.
func BenchmarkRawJetStreamPublish(b *testing.B) {
	requirePostgres(b) // keeps the fixture (and its database) uniform with the other benchmarks
	f := newFixture(b, fixtureOpts{})
	ctx := context.Background()
	s, err := f.js.Stream(ctx, testStream)
	must(b, err)
	cfg := s.CachedInfo().Config
	cfg.Storage = jetstream.FileStorage
	must(b, f.js.DeleteStream(ctx, testStream))
	_, err = f.js.CreateStream(ctx, cfg)
	must(b, err)
	body := f.envelopeBytes(event("bench"))
	b.ResetTimer()
	for done := 0; done < b.N; {
		window := min(256, b.N-done)
		futures := make([]jetstream.PubAckFuture, 0, window)
		for range window {
			fut, err := f.js.PublishAsync(testSubject, body, jetstream.WithMsgID(NewID()))
			must(b, err)
			futures = append(futures, fut)
		}
		for _, fut := range futures {
			select {
			case <-fut.Ok():
			case err := <-fut.Err():
				b.Fatal(err)
			}
		}
		done += window
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkInboxConsume: a consumer applying pre-published events (inbox insert plus one
// effect row each), TxBatch messages per transaction (tx=1 is one transaction per event).
func BenchmarkInboxConsume(b *testing.B) {
	for _, n := range []int{1, 4, 16, 32} {
		b.Run(fmt.Sprintf("tx=%d", n), func(b *testing.B) {
			benchConsume(b, ConsumerConfig{TxBatch: n}, false, false)
		})
	}
	b.Run("tx=16/no-savepoints", func(b *testing.B) {
		benchConsume(b, ConsumerConfig{TxBatch: 16}, true, false)
	})
}

// BenchmarkConsumeHop: one pipeline hop: each event's inbox row, an effect row and one
// emitted event in the outbox (what scheduling, billing and notification do per event).
func BenchmarkConsumeHop(b *testing.B) {
	for _, n := range []int{1, 16} {
		b.Run(fmt.Sprintf("tx=%d", n), func(b *testing.B) {
			benchConsume(b, ConsumerConfig{TxBatch: n}, false, true)
		})
	}
}

func benchConsume(b *testing.B, cfg ConsumerConfig, noSavepoints, emit bool) {
	requirePostgres(b)
	f := newFixture(b, fixtureOpts{})
	seedOutbox(b, f, b.N)
	f.drain(f.relay(RelayConfig{Batch: 1000}))
	cfg.Name = "bench--consume"
	h := effectHandler(cfg.Name, nil)
	if emit {
		effect := h
		h = func(ctx context.Context, tx *Tx, d *Delivery) error {
			tx.Emit(Event{Subject: "trellis.test.patient.welcomed.v1", ClinicID: d.Envelope.GetClinicId(),
				Payload: wrapperspb.String(d.Envelope.GetEventId())})
			return effect(ctx, tx, d)
		}
	}
	b.ResetTimer()
	c := NewConsumer(cfg, f.store, f.js, h, f.log, f.metrics)
	c.cfg.Stream, c.cfg.Subjects = testStream, []string{testSubject}
	c.noSavepoints = noSavepoints
	f.background(c.Run)
	deadline := time.Now().Add(5 * time.Minute)
	for f.processed(cfg.Name, "ok") < float64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("processed %v of %d", f.processed(cfg.Name, "ok"), b.N)
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
