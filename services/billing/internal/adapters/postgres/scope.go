package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/bus"
)

// The repositories' reads that are not part of a unit of work (the listings and lookups the
// RPCs answer with) run in a read-only transaction of the store (bus.Store.Read), never on the
// pool: the transaction begins with the clinic scope of ctx (the caller's clinics, or every
// clinic in auth.WithSystemScope), which the row-level security policies of migration 00011
// compare clinic_id with. A query on the pool would carry no scope and see no clinic's rows.

// read runs fn in a read-only transaction scoped from ctx and returns what it returns.
func read[T any](ctx context.Context, s *bus.Store, fn func(q querier) (T, error)) (T, error) {
	var out T
	err := s.Read(ctx, func(_ context.Context, tx pgx.Tx) error {
		var err error
		out, err = fn(tx)
		return err
	})
	return out, err
}

// read2 is read for a function of two results.
func read2[A, B any](ctx context.Context, s *bus.Store, fn func(q querier) (A, B, error)) (A, B, error) {
	var a A
	var b B
	err := s.Read(ctx, func(_ context.Context, tx pgx.Tx) error {
		var err error
		a, b, err = fn(tx)
		return err
	})
	return a, b, err
}
