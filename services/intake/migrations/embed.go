// Package migrations embeds intake's goose migrations (its own schema only).
package migrations

import "embed"

// FS holds the SQL migrations.
//
//go:embed *.sql
var FS embed.FS
