package idempotency_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/trellis-health/trellis/pkg/idempotency"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/testkit"
)

const ddl = `CREATE TABLE idempotency_keys (
    subject      text        NOT NULL,
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    response     bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject, key)
)`

func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := testkit.Pool(t, "idem")
	if _, err := pool.Exec(context.Background(), ddl); err != nil {
		t.Fatal(err)
	}
	return pool
}

// once runs idempotency.Once in its own transaction; do counts its runs and answers out (or
// fails with doErr).
func once(t *testing.T, pool *pgxpool.Pool, call idempotency.Call, out string, doErr error, runs *int) (string, bool, error) {
	t.Helper()
	var got string
	var replayed bool
	err := pg.InTx(context.Background(), pool, func(tx pgx.Tx) error {
		resp, r, err := idempotency.Once(context.Background(), tx, idempotency.Postgres{}, call, &wrapperspb.StringValue{},
			func() (*wrapperspb.StringValue, error) {
				*runs++
				if doErr != nil {
					return nil, doErr
				}
				return wrapperspb.String(out), nil
			})
		if err != nil {
			return err
		}
		got, replayed = resp.GetValue(), r
		return nil
	})
	return got, replayed, err
}

func hash(t *testing.T, procedure, v string) []byte {
	t.Helper()
	h, err := idempotency.RequestHash(procedure, wrapperspb.String(v), func(*wrapperspb.StringValue) {})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func keys(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM idempotency_keys`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOnce(t *testing.T) {
	pool := newPool(t)
	runs := 0
	first := idempotency.Call{Caller: "alice", Key: "k1", Hash: hash(t, "/Create", "a")}

	got, replayed, err := once(t, pool, first, "first", nil, &runs)
	if err != nil || replayed || got != "first" || runs != 1 {
		t.Fatalf("new key: got %q replayed=%v err=%v runs=%d", got, replayed, err, runs)
	}

	// Same key, same request: the first response, without running the call.
	got, replayed, err = once(t, pool, first, "second", nil, &runs)
	if err != nil || !replayed || got != "first" || runs != 1 {
		t.Fatalf("replay: got %q replayed=%v err=%v runs=%d", got, replayed, err, runs)
	}

	// Same key, different request.
	reused := idempotency.Call{Caller: "alice", Key: "k1", Hash: hash(t, "/Create", "b")}
	if _, _, err = once(t, pool, reused, "other", nil, &runs); !errors.Is(err, idempotency.ErrKeyReused) || runs != 1 {
		t.Fatalf("reuse: err=%v runs=%d, want ErrKeyReused and no run", err, runs)
	}

	// Keys are scoped per caller: bob's k1 is a new key.
	bob := idempotency.Call{Caller: "bob", Key: "k1", Hash: hash(t, "/Create", "b")}
	got, replayed, err = once(t, pool, bob, "bob's", nil, &runs)
	if err != nil || replayed || got != "bob's" || runs != 2 {
		t.Fatalf("other caller: got %q replayed=%v err=%v runs=%d", got, replayed, err, runs)
	}
	if n := keys(t, pool); n != 2 {
		t.Fatalf("%d keys stored, want 2", n)
	}
}

func TestOnceFailedCallLeavesNoKey(t *testing.T) {
	pool := newPool(t)
	runs := 0
	call := idempotency.Call{Caller: "alice", Key: "k1", Hash: hash(t, "/Create", "a")}
	boom := errors.New("boom")

	if _, _, err := once(t, pool, call, "", boom, &runs); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	if n := keys(t, pool); n != 0 {
		t.Fatalf("%d keys stored after a failed call, want 0", n)
	}
	// The key may be retried, even with another request, and runs the call again.
	call.Hash = hash(t, "/Create", "b")
	got, replayed, err := once(t, pool, call, "retried", nil, &runs)
	if err != nil || replayed || got != "retried" || runs != 2 {
		t.Fatalf("retry: got %q replayed=%v err=%v runs=%d", got, replayed, err, runs)
	}
}

func TestRequestHash(t *testing.T) {
	clear := func(m *wrapperspb.StringValue) { m.Value = "" }
	req := wrapperspb.String("key-1")
	a, err := idempotency.RequestHash("/A", req, clear)
	if err != nil {
		t.Fatal(err)
	}
	if req.GetValue() != "key-1" {
		t.Fatal("RequestHash cleared the caller's request, not a copy")
	}
	b, _ := idempotency.RequestHash("/A", wrapperspb.String("key-2"), clear)
	c, _ := idempotency.RequestHash("/B", wrapperspb.String("key-1"), clear)
	if string(a) != string(b) {
		t.Error("requests differing only in the cleared field hash differently")
	}
	if string(a) == string(c) {
		t.Error("the same request to two procedures hashes the same")
	}
	d, _ := idempotency.RequestHash("/A", wrapperspb.String("x"), func(*wrapperspb.StringValue) {})
	if string(a) == string(d) {
		t.Error("different requests hash the same")
	}
}

func TestPruneIdempotencyKeys(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO idempotency_keys (subject, key, request_hash, response, created_at) VALUES
		('a', 'old1', '', '', now() - interval '3 days'),
		('a', 'old2', '', '', now() - interval '2 days'),
		('a', 'new', '', '', now())`); err != nil {
		t.Fatal(err)
	}
	prune := func(limit int) int64 {
		var n int64
		err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
			var err error
			n, err = idempotency.Postgres{}.PruneIdempotencyKeys(ctx, tx, time.Now().Add(-24*time.Hour), limit)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := prune(1); n != 1 {
		t.Fatalf("pruned %d, want 1 (the limit)", n)
	}
	var left string
	if err := pool.QueryRow(ctx, `SELECT string_agg(key, ',' ORDER BY key) FROM idempotency_keys`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != "new,old2" {
		t.Fatalf("keys left %q, want the oldest pruned first (new,old2)", left)
	}
	if n := prune(10); n != 1 || keys(t, pool) != 1 {
		t.Fatalf("pruned %d, want 1, leaving the new key", n)
	}
}

// A call racing a call with the same key waits for it, then replays its response (its claim
// statement could not see the row committed while it waited: the key is read again).
func TestOnceWaitsForARacingCall(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	call := idempotency.Call{Caller: "alice", Key: "k1", Hash: hash(t, "/Create", "a")}
	first, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = first.Rollback(ctx) }()
	if _, _, err := idempotency.Once(ctx, first, idempotency.Postgres{}, call, &wrapperspb.StringValue{},
		func() (*wrapperspb.StringValue, error) { return wrapperspb.String("first"), nil }); err != nil {
		t.Fatal(err)
	}
	type result struct {
		got      string
		replayed bool
		err      error
	}
	done := make(chan result, 1)
	runs := 0
	go func() {
		got, replayed, err := once(t, pool, call, "second", nil, &runs)
		done <- result{got, replayed, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("the racing call did not wait for the first: %+v", r)
	case <-time.After(300 * time.Millisecond):
	}
	if err := first.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || !r.replayed || r.got != "first" || runs != 0 {
		t.Fatalf("racing call: %+v, runs=%d; want the first response replayed", r, runs)
	}
}

// onceClaimed runs idempotency.OnceClaimed with the claim sent in one batch with a statement
// of the caller's (as a lookup that checks access would be), and reports whether that
// statement's result was there before do ran.
func onceClaimed(t *testing.T, pool *pgxpool.Pool, call idempotency.Call, out string, runs *int) (string, bool, error) {
	t.Helper()
	var got string
	var replayed bool
	err := pg.InTx(context.Background(), pool, func(tx pgx.Tx) error {
		c := idempotency.NewClaim(idempotency.Postgres{}, call)
		b := &pgx.Batch{}
		var looked int
		b.Queue(`SELECT 42`).QueryRow(func(row pgx.Row) error { return row.Scan(&looked) })
		c.Queue(b)
		if err := tx.SendBatch(context.Background(), b).Close(); err != nil {
			return err
		}
		if looked != 42 {
			return errors.New("the caller's statement did not run")
		}
		resp, r, err := idempotency.OnceClaimed(context.Background(), tx, c, &wrapperspb.StringValue{},
			func() (*wrapperspb.StringValue, error) {
				*runs++
				return wrapperspb.String(out), nil
			})
		if err != nil {
			return err
		}
		got, replayed = resp.GetValue(), r
		return nil
	})
	return got, replayed, err
}

// A claim sent with the caller's statements behaves as Once: a new key runs the call, a repeat
// replays it, another request under the key is refused; a claim not queued is made by
// OnceClaimed itself.
func TestOnceClaimed(t *testing.T) {
	pool := newPool(t)
	runs := 0
	call := idempotency.Call{Caller: "alice", Key: "k1", Hash: hash(t, "/Create", "a")}
	got, replayed, err := onceClaimed(t, pool, call, "first", &runs)
	if err != nil || replayed || got != "first" || runs != 1 {
		t.Fatalf("new key: got %q replayed=%v err=%v runs=%d", got, replayed, err, runs)
	}
	got, replayed, err = onceClaimed(t, pool, call, "second", &runs)
	if err != nil || !replayed || got != "first" || runs != 1 {
		t.Fatalf("replay: got %q replayed=%v err=%v runs=%d", got, replayed, err, runs)
	}
	// Once sees the same key.
	if got, replayed, err = once(t, pool, call, "third", nil, &runs); err != nil || !replayed || got != "first" {
		t.Fatalf("Once after OnceClaimed: got %q replayed=%v err=%v", got, replayed, err)
	}
	reused := idempotency.Call{Caller: "alice", Key: "k1", Hash: hash(t, "/Create", "b")}
	if _, _, err := onceClaimed(t, pool, reused, "other", &runs); !errors.Is(err, idempotency.ErrKeyReused) || runs != 1 {
		t.Fatalf("reuse: err=%v runs=%d, want ErrKeyReused and no run", err, runs)
	}
	// Not queued: claimed by OnceClaimed.
	err = pg.InTx(context.Background(), pool, func(tx pgx.Tx) error {
		c := idempotency.NewClaim(idempotency.Postgres{}, idempotency.Call{Caller: "bob", Key: "k1", Hash: hash(t, "/Create", "a")})
		resp, r, err := idempotency.OnceClaimed(context.Background(), tx, c, &wrapperspb.StringValue{},
			func() (*wrapperspb.StringValue, error) { return wrapperspb.String("bob's"), nil })
		if err == nil && (r || resp.GetValue() != "bob's") {
			err = errors.New("not queued: replayed or wrong response")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := keys(t, pool); n != 2 {
		t.Fatalf("%d keys stored, want 2", n)
	}
}
