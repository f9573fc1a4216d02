package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// Reader runs fn in a read-only transaction in the clinic scope of ctx (pkg/bus Store.Read:
// the caller's clinics, or every clinic in auth.WithSystemScope). The repositories' queries
// outside a unit of work go through it, never through the pool, so row-level security
// (migration 00009) always has a scope to compare with.
type Reader interface {
	Read(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error
}

// textColumn collects rows of one text column.
func textColumn(rows pgx.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// read runs one query in a read-only scoped transaction of db and collects its rows.
func read[T any](ctx context.Context, db Reader, collect func(pgx.Rows, error) (T, error), sql string, args ...any) (T, error) {
	var out T
	err := db.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		out, err = collect(tx.Query(ctx, sql, args...))
		return err
	})
	return out, err
}
