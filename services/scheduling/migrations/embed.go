// Package migrations holds the scheduling schema's goose migrations.
package migrations

import "embed"

// FS holds the SQL migrations, applied by `scheduling migrate` and at start-up.
//
//go:embed *.sql
var FS embed.FS
