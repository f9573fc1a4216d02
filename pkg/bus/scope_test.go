package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/testkit"
)

const scopeClinicA, scopeClinicB = "0190a000-0000-7000-8000-00000000000a", "0190a000-0000-7000-8000-00000000000b"

func scopeOf(clinics ...string) context.Context {
	return auth.WithPrincipal(context.Background(), &auth.Principal{Subject: "s", Clinics: clinics})
}

// setting reads ClinicSetting in a transaction of s begun with ctx (NULL: "<unset>").
func setting(t *testing.T, s *Store, ctx context.Context, read bool) string {
	t.Helper()
	var v *string
	q := func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT current_setting('`+ClinicSetting+`', true)`).Scan(&v)
	}
	var err error
	if read {
		err = s.Read(ctx, q)
	} else {
		err = s.InTx(ctx, func(ctx context.Context, tx *Tx) error { return q(ctx, tx) })
	}
	if err != nil {
		t.Fatal(err)
	}
	if v == nil {
		return "<unset>"
	}
	return *v
}

// With the clinic scope on, every transaction (InTx, Read) holds the scope of its context, and
// only for the transaction; without it nothing is set.
func TestStoreClinicScope(t *testing.T) {
	pool := testkit.Pool(t, "svc")
	plain := NewStore(pool, "svc")
	scoped := NewStore(pool, "svc")
	scoped.EnableClinicScope()
	for _, read := range []bool{false, true} {
		for _, tc := range []struct {
			name string
			ctx  context.Context
			want string
		}{
			{"principal", scopeOf(scopeClinicA, scopeClinicB), scopeClinicA + "," + scopeClinicB},
			{"every clinic", scopeOf(auth.AllClinics), "*"},
			{"system scope", auth.WithSystemScope(context.Background()), "*"},
			{"none", context.Background(), ""},
			{"no clinic id", scopeOf("x'); SELECT 1; --"), ""},
		} {
			if got := setting(t, scoped, tc.ctx, read); got != tc.want {
				t.Errorf("read %v, %s: %s = %q, want %q", read, tc.name, ClinicSetting, got, tc.want)
			}
			if got := setting(t, plain, tc.ctx, read); got != "<unset>" && got != "" {
				t.Errorf("read %v, %s: a store without the scope set %q", read, tc.name, got)
			}
		}
	}
	// Read is read-only.
	err := scoped.Read(scopeOf(scopeClinicA), func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `CREATE TABLE read_only_probe (id int)`)
		return err
	})
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "25006" {
		t.Errorf("a write in Read: %v, want read_only_sql_transaction", err)
	}
	// SetClinicScope changes the scope inside a transaction.
	err = scoped.InTx(auth.WithSystemScope(context.Background()), func(ctx context.Context, tx *Tx) error {
		if err := SetClinicScope(scopeOf(scopeClinicB), tx); err != nil {
			return err
		}
		var v string
		if err := tx.QueryRow(ctx, `SELECT current_setting('`+ClinicSetting+`')`).Scan(&v); err != nil {
			return err
		}
		if v != scopeClinicB {
			t.Errorf("after SetClinicScope: %q", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A consumer acts for no caller: every handler runs in system scope, and on a store with the
// clinic scope on its transaction sees every clinic ("*"), whether messages are applied one per
// transaction or in groups, and when a dead letter is replayed.
func TestConsumerRunsInSystemScope(t *testing.T) {
	t.Parallel()
	for _, batch := range []int{1, 8} {
		t.Run(fmt.Sprint("TxBatch ", batch), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, fixtureOpts{})
			f.store.EnableClinicScope()
			name := fmt.Sprintf("test--scope-%d", batch)
			var mu sync.Mutex
			seen := map[string]string{}
			h := effectHandler(name, nil)
			f.startConsumer(ConsumerConfig{Name: name, TxBatch: batch}, func(ctx context.Context, tx *Tx, d *Delivery) error {
				var v string
				if err := tx.QueryRow(ctx, `SELECT current_setting('`+ClinicSetting+`')`).Scan(&v); err != nil {
					return err
				}
				if !auth.IsSystemScope(ctx) {
					v += " (context not in system scope)"
				}
				mu.Lock()
				seen[d.Envelope.GetEventId()] = v
				mu.Unlock()
				return h(ctx, tx, d)
			})
			f.publishEvents("a", "b", "c", "d")
			eventually(t, "four events applied", func() bool { return len(f.effects(name)) == 4 })
			mu.Lock()
			defer mu.Unlock()
			for id, v := range seen {
				if v != "*" {
					t.Errorf("event %s: handler saw %s = %q, want \"*\"", id, ClinicSetting, v)
				}
			}
		})
	}
}

// The cost of the clinic scope: a transaction with one query, without the scope, with it set
// in the BEGIN's round trip (what Store does), and with it set by a statement of its own.
func BenchmarkInTxClinicScope(b *testing.B) {
	pool := testkit.Pool(b, "svc")
	ctx := scopeOf(scopeClinicA, scopeClinicB)
	one := func(ctx context.Context, tx *Tx) error {
		var n int
		return tx.QueryRow(ctx, `SELECT 1`).Scan(&n)
	}
	plain := NewStore(pool, "svc")
	scoped := NewStore(pool, "svc")
	scoped.EnableClinicScope()
	b.Run("unscoped", func(b *testing.B) {
		for b.Loop() {
			if err := plain.InTx(ctx, one); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("scoped-in-begin", func(b *testing.B) {
		for b.Loop() {
			if err := scoped.InTx(ctx, one); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("scoped-extra-statement", func(b *testing.B) {
		for b.Loop() {
			if err := plain.InTx(ctx, func(ctx context.Context, tx *Tx) error {
				if err := SetClinicScope(ctx, tx); err != nil {
					return err
				}
				return one(ctx, tx)
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
