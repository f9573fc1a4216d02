package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/trellis-health/trellis/pkg/bus"
)

// PGSettings reads the durability settings the baseline and the services run with, and
// whether autovacuum runs.
func PGSettings(ctx context.Context, pool *pgxpool.Pool) (settings string, autovacuum bool, err error) {
	var sc, fsync, method, av string
	if err := pool.QueryRow(ctx, `SELECT current_setting('synchronous_commit'), current_setting('fsync'),
		current_setting('wal_sync_method'), current_setting('autovacuum')`).Scan(&sc, &fsync, &method, &av); err != nil {
		return "", false, err
	}
	return fmt.Sprintf("synchronous_commit=%s, fsync=%s, wal_sync_method=%s, autovacuum=%s", sc, fsync, method, av), av == "on", nil
}

// Vacuum runs VACUUM (ANALYZE) on the database of pool: the harness's stand-in, between
// phases, for the autovacuum a production server runs when this one has it off (tables
// whose rows are updated, like notification's queue or the outboxes, otherwise carry every
// dead row of the earlier phases). Tables the role may not vacuum are skipped (a server notice pgx drops):
// the harness passes the privileged pool when it has one.
func Vacuum(ctx context.Context, pool *pgxpool.Pool) (time.Duration, error) {
	t0 := time.Now()
	_, err := pool.Exec(ctx, `VACUUM (ANALYZE)`)
	return time.Since(t0), err
}

// PGCommits measures durable single-row commits: each of workers connections runs
// `BEGIN; INSERT one outbox-shaped row; COMMIT` (as pkg/bus's outbox writes one) for d, in a
// scratch schema it drops afterwards. It returns commits per second.
func PGCommits(ctx context.Context, pool *pgxpool.Pool, workers int, d time.Duration) (float64, error) {
	const schema = "bench_baseline"
	if _, err := pool.Exec(ctx, `DROP SCHEMA IF EXISTS `+schema+` CASCADE; CREATE SCHEMA `+schema+`;
		CREATE TABLE `+schema+`.raw_outbox (
			seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			event_id     uuid        NOT NULL UNIQUE,
			txid         xid8        NOT NULL DEFAULT pg_current_xact_id(),
			subject      text        NOT NULL,
			headers      jsonb       NOT NULL DEFAULT '{}',
			payload      bytea       NOT NULL,
			created_at   timestamptz NOT NULL DEFAULT now(),
			published_at timestamptz);
		CREATE INDEX ON `+schema+`.raw_outbox (txid, seq) WHERE published_at IS NULL`); err != nil {
		return 0, fmt.Errorf("baseline schema: %w", err)
	}
	defer func() { _, _ = pool.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+schema+` CASCADE`) }()
	payload := make([]byte, 320) // about an AttendanceRecorded envelope
	_, _ = rand.Read(payload)
	headers := `{"event-type":["trellis.scheduling.v1.AttendanceRecorded"],"content-type":["application/protobuf"]}`
	var n atomic.Int64
	var firstErr error
	var once sync.Once
	deadline := time.Now().Add(d)
	began := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					_, err := tx.Exec(ctx, `INSERT INTO `+schema+`.raw_outbox (event_id, subject, headers, payload) VALUES ($1, $2, $3, $4)`,
						bus.NewID(), "trellis.scheduling.attendance.recorded.v1", headers, payload)
					return err
				})
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, fmt.Errorf("baseline insert: %w", firstErr)
	}
	return float64(n.Load()) / time.Since(began).Seconds(), nil
}

// JetStreamRates measures, on a scratch stream with file storage (deleted afterwards),
// publishes with acks for d (workers publishers, each with up to 256 asynchronous publishes
// in flight, with message ids as the relay sends them), then how fast workers fetchers of
// one durable pull consumer (batches of 32, explicit acks, as pkg/bus consumes) fetch and ack
// them all.
func JetStreamRates(ctx context.Context, natsURL string, workers int, d time.Duration) (pub, cons float64, err error) {
	nc, err := nats.Connect(natsURL, nats.Name("trellis-bench"))
	if err != nil {
		return 0, 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(256))
	if err != nil {
		return 0, 0, err
	}
	const name = "BENCH_BASELINE"
	_ = js.DeleteStream(ctx, name)
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"bench.baseline.>"},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute})
	if err != nil {
		return 0, 0, fmt.Errorf("baseline stream: %w", err)
	}
	defer func() { _ = js.DeleteStream(context.Background(), name) }()
	payload := make([]byte, 320)
	_, _ = rand.Read(payload)

	var acked atomic.Int64
	var pubErr error
	var once sync.Once
	deadline := time.Now().Add(d)
	began := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			pjs, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(256))
			if err != nil {
				once.Do(func() { pubErr = err })
				return
			}
			var futures []jetstream.PubAckFuture
			for time.Now().Before(deadline) && ctx.Err() == nil {
				f, err := pjs.PublishAsync("bench.baseline.attendance", payload, jetstream.WithMsgID(bus.NewID()))
				if err != nil {
					once.Do(func() { pubErr = err })
					return
				}
				futures = append(futures, f)
				if len(futures) >= 256 {
					acked.Add(wait(futures, &once, &pubErr))
					futures = futures[:0]
				}
			}
			acked.Add(wait(futures, &once, &pubErr))
		})
	}
	wg.Wait()
	pubSecs := time.Since(began).Seconds()
	if pubErr != nil {
		return 0, 0, fmt.Errorf("baseline publish: %w", pubErr)
	}
	pub = float64(acked.Load()) / pubSecs

	c, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: 30 * time.Second, MaxAckPending: 10000})
	if err != nil {
		return pub, 0, err
	}
	total := acked.Load()
	var done atomic.Int64
	var consErr error
	began = time.Now()
	for range workers {
		wg.Go(func() {
			for done.Load() < total && ctx.Err() == nil && time.Since(began) < 2*time.Minute {
				batch, err := c.Fetch(32, jetstream.FetchMaxWait(200*time.Millisecond))
				if err != nil {
					once.Do(func() { consErr = err })
					return
				}
				for m := range batch.Messages() {
					if err := m.Ack(); err != nil {
						once.Do(func() { consErr = err })
						return
					}
					done.Add(1)
				}
				if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
					once.Do(func() { consErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if consErr != nil {
		return pub, 0, fmt.Errorf("baseline consume: %w", consErr)
	}
	if err := nc.Flush(); err != nil {
		return pub, 0, err
	}
	return pub, float64(done.Load()) / time.Since(began).Seconds(), nil
}

func wait(fs []jetstream.PubAckFuture, once *sync.Once, errp *error) int64 {
	var n int64
	for _, f := range fs {
		select {
		case <-f.Ok():
			n++
		case err := <-f.Err():
			once.Do(func() { *errp = err })
		case <-time.After(30 * time.Second):
			once.Do(func() { *errp = errors.New("no publish ack within 30 s") })
		}
	}
	return n
}
