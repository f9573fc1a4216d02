// Package migrations holds the dashboard schema's goose migrations.
package migrations

import "embed"

// FS holds the SQL migrations, applied by `dashboard migrate` and at start-up.
//
//go:embed *.sql
var FS embed.FS
