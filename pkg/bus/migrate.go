package bus

import (
	"context"
	"embed"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trellis-health/trellis/pkg/pg"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or upgrades the outbox and inbox tables in schema. They are versioned in
// their own goose table (bus_db_version) so the platform evolves them independently of each
// service's own migrations.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string, log *slog.Logger) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	return pg.Migrate(ctx, pool, schema, "bus_db_version", sub, log)
}
