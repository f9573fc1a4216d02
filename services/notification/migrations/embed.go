// Package migrations holds the notification schema's goose migrations.
package migrations

import "embed"

// FS holds the SQL migrations, applied by `notification migrate` and at start-up.
//
//go:embed *.sql
var FS embed.FS
