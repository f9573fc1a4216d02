// Package migrations holds the billing schema's goose migrations.
package migrations

import "embed"

// FS holds the SQL migrations, applied by `billing migrate` and at start-up.
//
//go:embed *.sql
var FS embed.FS
