package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// raise fails the statement with SQLSTATE code, as Postgres does to a deadlock's victim.
func raise(ctx context.Context, tx *Tx, code string) error {
	_, err := tx.Exec(ctx, fmt.Sprintf(`DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '%s'; END $$`, code))
	return err
}

func TestInTxRunsAVictimAgainWithoutItsEventsOrHooks(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	ctx := context.Background()
	for _, code := range []string{"40001", "40P01"} {
		_, err := f.pool.Exec(ctx, "TRUNCATE outbox")
		must(t, err)
		calls, hooks := 0, []int{}
		err = f.store.InTx(ctx, func(ctx context.Context, tx *Tx) error {
			calls++
			attempt := calls
			tx.Emit(event(fmt.Sprintf("attempt-%d", attempt)))
			tx.AfterCommit(func() { hooks = append(hooks, attempt) })
			if attempt == 1 {
				// The outbox rows of a flushed event are rolled back with the attempt too.
				if err := f.store.flush(ctx, tx); err != nil {
					return err
				}
				return fmt.Errorf("apply: %w", raise(ctx, tx, code))
			}
			return nil
		})
		must(t, err)
		if calls != 2 || len(hooks) != 1 || hooks[0] != 2 {
			t.Errorf("%s: fn ran %d times, hooks of attempts %v ran; want 2 runs and only the committed attempt's hook", code, calls, hooks)
		}
		if n := f.scalar("SELECT count(*) FROM outbox"); n != 1 {
			t.Errorf("%s: %d outbox rows, want the committed attempt's one", code, n)
		}
	}
}

func TestInTxGivesUpAndLeavesOtherErrorsAlone(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	ctx := context.Background()
	calls := 0
	err := f.store.InTx(ctx, func(ctx context.Context, tx *Tx) error { calls++; return raise(ctx, tx, "40P01") })
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "40P01" || calls != TxAttempts {
		t.Errorf("always a victim: %d attempts, error %v; want %d attempts and the deadlock error", calls, err, TxAttempts)
	}
	for _, fail := range []func(ctx context.Context, tx *Tx) error{
		func(ctx context.Context, tx *Tx) error { return raise(ctx, tx, "23505") }, // unique violation
		func(context.Context, *Tx) error { return errors.New("handler error") },
	} {
		calls = 0
		if err := f.store.InTx(ctx, func(ctx context.Context, tx *Tx) error { calls++; return fail(ctx, tx) }); err == nil || calls != 1 {
			t.Errorf("error %v after %d attempts; want it returned after one", err, calls)
		}
	}
}

// Two transactions locking two rows in opposite orders: Postgres aborts one with a deadlock,
// and InTx runs it again, so both commit.
func TestInTxSurvivesARealDeadlock(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	ctx := context.Background()
	_, err := f.pool.Exec(ctx, `CREATE TABLE locks (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
		INSERT INTO locks (id) VALUES (1), (2)`)
	must(t, err)
	var both sync.WaitGroup // each holds its first lock before either takes its second
	both.Add(2)
	var once [2]sync.Once
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, order := range [][2]int{{1, 2}, {2, 1}} {
		wg.Go(func() {
			errs[i] = f.store.InTx(ctx, func(ctx context.Context, tx *Tx) error {
				if _, err := tx.Exec(ctx, "UPDATE locks SET n = n + 1 WHERE id = $1", order[0]); err != nil {
					return err
				}
				once[i].Do(func() { both.Done(); both.Wait() })
				_, err := tx.Exec(ctx, "UPDATE locks SET n = n + 1 WHERE id = $1", order[1])
				return err
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("transaction %d: %v", i, err)
		}
	}
	if n := f.scalar("SELECT sum(n) FROM locks"); n != 4 {
		t.Errorf("sum of updates %d, want 4 (each transaction committed once)", n)
	}
}
