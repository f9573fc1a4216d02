// Package pg connects a service to its own Postgres schema, runs its embedded migrations and
// hands transactions to repositories.
package pg

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// ValidIdent reports whether s is a safe unquoted Postgres identifier (schema or role name).
func ValidIdent(s string) bool { return identRE.MatchString(s) }

// Open returns a pool whose sessions use only schema (search_path), so unqualified table names
// resolve to the service's own tables.
func Open(ctx context.Context, url, schema string, maxConns int32) (*pgxpool.Pool, error) {
	if !ValidIdent(schema) {
		return nil, fmt.Errorf("pg: invalid schema name %q", schema)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pg: parse url: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pg: connect: %w", err)
	}
	return pool, nil
}

// InTx runs fn in a transaction, committing when it returns nil and rolling back otherwise.
func InTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, pool, fn)
}

// Migrate applies the goose migrations in fsys (SQL files at its root) to schema, creating the
// schema when missing. table names goose's version table inside the schema, so that every
// service, and the platform's own tables, are versioned independently. A Postgres session
// lock lets several replicas start at once. The migrations run with search_path set to schema
// (on connections of their own), whatever pool's search_path is.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema, table string, fsys fs.FS, log *slog.Logger) error {
	if !ValidIdent(schema) || !ValidIdent(table) {
		return fmt.Errorf("pg: invalid schema or table name %q.%q", schema, table)
	}
	// CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema exists,
	// which a provisioned service role does not have: look first.
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
		return fmt.Errorf("pg: look up schema %s: %w", schema, err)
	}
	if !exists {
		if _, err := pool.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
			return fmt.Errorf("pg: create schema %s: %w", schema, err)
		}
	}
	cfg := pool.Config()
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MinConns, cfg.MaxConns = 0, max(cfg.MaxConns, 2) // goose's lock holds one connection
	mpool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("pg: migrations for %s: %w", schema, err)
	}
	defer mpool.Close()
	db := stdlib.OpenDBFromPool(mpool)
	defer db.Close()
	// One lock per version table, so services sharing a database migrate side by side, and a
	// short retry period, so replicas starting together do not wait in 5 s steps.
	h := fnv.New64a()
	_, _ = h.Write([]byte("trellis-migrate:" + schema + "." + table))
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(int64(h.Sum64())), lock.WithLockTimeout(1, 300))
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithTableName(schema+"."+table),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return fmt.Errorf("pg: migrations for %s: %w", schema, err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("pg: migrate %s: %w", schema, err)
	}
	for _, r := range results {
		if log != nil {
			log.InfoContext(ctx, "migration applied", "schema", schema, "table", table,
				"version", r.Source.Version, "file", r.Source.Path, "duration_ms", r.Duration.Milliseconds())
		}
	}
	return nil
}

// IsUniqueViolation reports whether err is a unique-constraint violation.
func IsUniqueViolation(err error) bool {
	var pgErr interface{ SQLState() string }
	return errors.As(err, &pgErr) && pgErr.SQLState() == "23505"
}

// Redact returns err's text for logs and dead-letter reasons with every Postgres error in it
// reduced to what cannot hold patient data: its SQL state, and the constraint, table and column
// it names (schema names). A Postgres message can quote the values of a statement ("invalid
// input syntax for type date: ..."), so it is dropped; the text the code wrapped around it
// ("lock patient charges: ...") is kept. Errors that are not from Postgres are returned as they
// are.
func Redact(err error) string {
	if err == nil {
		return ""
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err.Error()
	}
	safe := "postgres error SQLSTATE " + pgErr.Code
	for _, kv := range [][2]string{{"constraint", pgErr.ConstraintName}, {"table", pgErr.TableName}, {"column", pgErr.ColumnName}} {
		if kv[1] != "" {
			safe += " " + kv[0] + " " + kv[1]
		}
	}
	return strings.ReplaceAll(err.Error(), pgErr.Error(), safe)
}
