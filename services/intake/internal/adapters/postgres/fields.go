package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/fieldcrypt/backfill"
	"github.com/trellis-health/trellis/services/intake/internal/domain"
)

// The encrypted fields (migration 00007): each is sealed into <column>_enc bound to its table,
// column and row (fieldcrypt.AAD(table, column, row key...)), and those intake looks up have a
// keyed hash in <column>_hash. The plaintext column is cleared (NULL, or the empty string
// for the consents' NOT NULL DEFAULT empty columns) and never written. The pass itself is
// pkg/fieldcrypt/backfill.
var encTables = []backfill.Table{
	{Name: "patients", Keys: []string{"id"}, Fields: []backfill.Field{
		{Column: "date_of_birth", Plain: "to_char(date_of_birth, 'YYYY-MM-DD')", Kind: fieldcrypt.KindDateOfBirth},
		{Column: "contact_email", Kind: fieldcrypt.KindEmail},
		{Column: "phone", Kind: fieldcrypt.KindPhone},
	}},
	{Name: "referrals", Keys: []string{"id"}, Fields: []backfill.Field{
		{Column: "date_of_birth", Plain: "to_char(date_of_birth, 'YYYY-MM-DD')", Kind: fieldcrypt.KindDateOfBirth},
		{Column: "phone", Kind: fieldcrypt.KindPhone},
		{Column: "email", Kind: fieldcrypt.KindEmail},
	}},
	{Name: "consents", Keys: []string{"id"}, Fields: []backfill.Field{
		{Column: "confidential_email", Plain: "NULLIF(confidential_email, '')", Clear: "''"},
		{Column: "confidential_phone", Plain: "NULLIF(confidential_phone, '')", Clear: "''"},
	}},
	{Name: "coverages", Keys: []string{"id"}, Fields: []backfill.Field{
		{Column: "member_id"},
	}},
	{Name: "coverage_versions", Keys: []string{"coverage_id", "version"}, Types: []string{"uuid", "int"}, Fields: []backfill.Field{
		{Column: "member_id"},
	}},
}

// seal is v sealed for table.column of row, nil (NULL) when v is "".
func (r Repository) seal(v, table, column string, row ...string) (any, error) {
	if v == "" {
		return nil, nil
	}
	s, err := r.Crypt.Seal(v, fieldcrypt.AAD(table, column, row...))
	if err != nil {
		return nil, fmt.Errorf("encrypt %s.%s: %w", table, column, err)
	}
	return s, nil
}

// open is the plaintext of a sealed column, "" when it is NULL.
func (r Repository) open(s *string, table, column string, row ...string) (string, error) {
	if s == nil {
		return "", nil
	}
	v, err := r.Crypt.Open(*s, fieldcrypt.AAD(table, column, row...))
	if err != nil {
		return "", fmt.Errorf("decrypt %s.%s of %s: %w", table, column, strings.Join(row, "/"), err)
	}
	return v, nil
}

// openDate is a sealed date of birth; zero when it is NULL.
func (r Repository) openDate(s *string, table string, row string) (domain.Date, error) {
	v, err := r.open(s, table, "date_of_birth", row)
	if err != nil || v == "" {
		return domain.Date{}, err
	}
	d, err := domain.ParseDate(v)
	if err != nil {
		return domain.Date{}, fmt.Errorf("decrypt %s.date_of_birth of %s: not a date", table, row)
	}
	return d, nil
}

// hash is the keyed hash of v for lookups, nil (NULL) when v is empty.
func (r Repository) hash(kind fieldcrypt.Kind, v string) (any, error) {
	h, err := r.Crypt.Hash(kind, v)
	if err != nil {
		return nil, fmt.Errorf("hash %s: %w", kind, err)
	}
	if h == nil {
		return nil, nil
	}
	return h, nil
}

func dateText(d domain.Date) string {
	if d.IsZero() {
		return ""
	}
	return d.String()
}

// EncryptOptions selects what EncryptFields does beyond encrypting plaintext: Rotate
// (re-encrypt under the active key), Rehash (recompute every hash), Batch (rows per
// transaction, default 500).
type EncryptOptions = backfill.Options

// EncryptStats counts what EncryptFields changed, by table.
type EncryptStats = backfill.Stats

// EncryptFields encrypts every value still held in plaintext (rows written before migration
// 00007, or by an older binary during a rolling update), clears the plaintext and fills the
// hashes; with opts.Rotate it re-encrypts values under the active key, with opts.Rehash it
// recomputes every hash. Idempotent, in batches of rows locked FOR UPDATE (running services
// keep working; two runs at once are harmless). Only counts are returned or logged, never a
// value. The rows of every clinic are only visible in system scope (auth.WithSystemScope in
// ctx): each batch's transaction sets the clinic scope of ctx.
func EncryptFields(ctx context.Context, pool *pgxpool.Pool, k *fieldcrypt.Keyring, opts EncryptOptions) (EncryptStats, error) {
	st := backfill.NewStats()
	err := backfill.Run(ctx, pool, k, encTables, opts, st)
	return st, err
}
