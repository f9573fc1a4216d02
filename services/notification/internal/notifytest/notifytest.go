// Package notifytest gives notification's tests databases on which the row-level security
// policies (migration 00005) bind: the tests connect as the admin role, which creates and so
// owns the tables (FORCE binds the owner; the role is neither a superuser nor BYPASSRLS), so
// the service's code sees only the clinics of its context's scope. The tests' own checks
// read through a second connection whose session scope is every clinic.
package notifytest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/testkit"
	"github.com/trellis-health/trellis/pkg/testkit/rlstest"
	"github.com/trellis-health/trellis/services/notification/migrations"
)

// Schema is notification's schema.
const Schema = "notification"

// SystemURL is dbURL with the clinic scope "*" (every clinic) set for the whole session
// (rlstest.SystemURL), for the tests' own connections only: the service never sets a session
// scope (a Store transaction sets its own, SET LOCAL, which overrides this one).
func SystemURL(t testing.TB, dbURL string) string { return rlstest.SystemURL(t, dbURL) }

// Open opens a pool on dbURL with search_path notification, closed when t ends.
func Open(t testing.TB, dbURL string, conns int32) *pgxpool.Pool {
	t.Helper()
	pool, err := pg.Open(context.Background(), dbURL, Schema, conns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Pools creates a fresh database with an empty notification schema and returns a pool for
// the code under test (no session scope: a query outside a scoped transaction sees no
// clinic's rows) and one in system scope for the test's own reads and writes.
func Pools(t testing.TB) (pool, system *pgxpool.Pool) {
	t.Helper()
	dbURL := testkit.Database(t)
	pool = Open(t, dbURL, 8)
	if _, err := pool.Exec(context.Background(), "CREATE SCHEMA IF NOT EXISTS "+Schema); err != nil {
		t.Fatal(err)
	}
	return pool, Open(t, SystemURL(t, dbURL), 4)
}

// Migrate applies pkg/bus's tables and notification's migrations.
func Migrate(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	if err := bus.Migrate(ctx, pool, Schema, nil); err != nil {
		t.Fatal(err)
	}
	if err := pg.Migrate(ctx, pool, Schema, "goose_db_version", migrations.FS, nil); err != nil {
		t.Fatal(err)
	}
}

// Store is a Store over pool that scopes every transaction as the service's does.
func Store(pool *pgxpool.Pool) *bus.Store {
	s := bus.NewStore(pool, Schema)
	s.EnableClinicScope()
	return s
}
