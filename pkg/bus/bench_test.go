package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// One event in 16 fails its first attempt (a transient error, retried after 1 ms): the
	// cost of the fallback, with and without a savepoint per message.
	for _, sp := range []bool{true, false} {
		b.Run(fmt.Sprintf("tx=16/failing/savepoints=%v", sp), func(b *testing.B) {
			benchConsume(b, ConsumerConfig{TxBatch: 16, Backoff: func(uint64) time.Duration { return time.Millisecond }}, !sp, false, true)
		})
	}
	b.Run("tx=1/failing", func(b *testing.B) {
		benchConsume(b, ConsumerConfig{TxBatch: 1, Backoff: func(uint64) time.Duration { return time.Millisecond }}, false, false, true)
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

func benchConsume(b *testing.B, cfg ConsumerConfig, noSavepoints, emit bool, failing ...bool) {
	requirePostgres(b)
	f := newFixture(b, fixtureOpts{})
	seedOutbox(b, f, b.N)
	f.drain(f.relay(RelayConfig{Batch: 1000}))
	f.log = slog.New(slog.DiscardHandler) // retries would log a warning each
	cfg.Name = "bench--consume"
	h := effectHandler(cfg.Name, nil)
	if len(failing) > 0 && failing[0] {
		apply := h
		h = func(ctx context.Context, tx *Tx, d *Delivery) error {
			if id := d.Envelope.GetEventId(); d.NumDelivered == 1 && id[len(id)-1] == '0' {
				return errors.New("busy")
			}
			return apply(ctx, tx, d)
		}
	}
	if emit {
		effect := h
		h = func(ctx context.Context, tx *Tx, d *Delivery) error {
			tx.Emit(Event{Subject: "trellis.test.patient.welcomed.v1", ClinicID: d.Envelope.GetClinicId(),
				Payload: wrapperspb.String(d.Envelope.GetEventId())})
			return effect(ctx, tx, d)
		}
	}
	// This machine's pace drifts; a raw baseline just before and just after, on the same
	// pool, gives a ratio that is steadier than either figure.
	raw := rawCommitRate(b, f, 300)
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
	rate := float64(b.N) / b.Elapsed().Seconds()
	raw = (raw + rawCommitRate(b, f, 300)) / 2
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(raw, "raw-tx/s")
	b.ReportMetric(rate/raw, "x-raw")
	b.ReportMetric(float64(b.N)/float64(c.commits.Load()), "events/tx")
}

// rawCommitRate times n single-row INSERT and COMMIT transactions (BenchmarkRawInsertCommit's
// loop) and returns their rate per second.
func rawCommitRate(b *testing.B, f *fixture, n int) float64 {
	b.Helper()
	ctx := context.Background()
	_, err := f.pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS raw_outbox (LIKE outbox INCLUDING ALL)`)
	must(b, err)
	body := []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	headers := []byte(`{"event-type":["trellis.intake.v1.PatientAdmitted"],"content-type":["application/protobuf"]}`)
	start := time.Now()
	for range n {
		err := pgx.BeginFunc(ctx, f.pool, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO raw_outbox (event_id, subject, headers, payload) VALUES ($1, $2, $3, $4)`,
				NewID(), testSubject, headers, body)
			return err
		})
		must(b, err)
	}
	return float64(n) / time.Since(start).Seconds()
}
