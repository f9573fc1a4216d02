package postgres

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/fieldcrypt/backfill"
)

// The encrypted fields (migration 00010, docs/security.md#field-encryption): each is sealed
// into <column>_enc bound to its table, column and row (fieldcrypt.AAD(table, column, row
// key)). The plaintext column is cleared (NULL, or the empty string for NOT NULL DEFAULT empty
// columns) and never written. The files (837 claim files, 835 remittances) are sealed in
// place: their content column holds the sealed text (an X12 file starts with ISA, a sealed one
// with v1:). billing looks none of them up: no hashes. The pass itself is
// pkg/fieldcrypt/backfill.
var encTables = []backfill.Table{
	{Name: "patient_identities", Keys: []string{"patient_id"}, Fields: []backfill.Field{
		{Column: "date_of_birth", Plain: "to_char(date_of_birth, 'YYYY-MM-DD')"},
	}},
	{Name: "coverages", Keys: []string{"id"}, Fields: []backfill.Field{
		{Column: "member_id", Plain: "NULLIF(member_id, '')", Clear: "''"},
	}},
	{Name: "claim_files", Keys: []string{"id"}, Fields: []backfill.Field{
		// substring(... FOR 3) reads only the start of a large (TOASTed) file.
		{Column: "content", Enc: "content", Plain: "CASE WHEN substring(content FOR 3) <> 'v1:' THEN content END",
			EncRead: "CASE WHEN substring(content FOR 3) = 'v1:' THEN content END"},
	}},
	{Name: "remittances", Keys: []string{"id"}, Fields: []backfill.Field{
		{Column: "content", Enc: "content", Bytes: true,
			Plain:   "CASE WHEN substring(content FOR 3) <> 'v1:'::bytea THEN encode(content, 'hex') END",
			EncRead: "CASE WHEN substring(content FOR 3) = 'v1:'::bytea THEN convert_from(content, 'UTF8') END"},
	}},
}

// sealer seals and opens billing's encrypted fields.
type sealer struct{ k *fieldcrypt.Keyring }

// seal is v sealed for table.column of row, nil (NULL) when v is "".
func (s sealer) seal(v, table, column, row string) (any, error) {
	if v == "" {
		return nil, nil
	}
	out, err := s.k.Seal(v, fieldcrypt.AAD(table, column, canonical(row)))
	if err != nil {
		return nil, fmt.Errorf("encrypt %s.%s: %w", table, column, err)
	}
	return out, nil
}

// open is the value of a field: the plaintext column when it holds one (a row an older binary
// wrote since the last encryption pass: the later write), else the sealed one opened; "" when
// neither is set.
func (s sealer) open(plain, sealed *string, table, column, row string) (string, error) {
	if plain != nil && *plain != "" {
		return *plain, nil
	}
	if sealed == nil {
		return "", nil
	}
	v, err := s.k.Open(*sealed, fieldcrypt.AAD(table, column, canonical(row)))
	if err != nil {
		return "", fmt.Errorf("decrypt %s.%s of %s: %w", table, column, row, err)
	}
	return v, nil
}

// EncryptOptions selects what EncryptFields does beyond encrypting plaintext: Rotate
// (re-encrypt under the active key), Batch (rows per transaction, default 500). Rehash has
// nothing to do: billing keeps no hashes.
type EncryptOptions = backfill.Options

// EncryptStats counts what EncryptFields changed, by table (Rehashed stays empty).
type EncryptStats = backfill.Stats

// EncryptFields encrypts every value still held in plaintext (rows written before migration
// 00010, or by an older binary during a rolling update) and clears the plaintext; with
// opts.Rotate it re-encrypts values under the active key. Idempotent, in batches of rows
// locked FOR UPDATE (running services keep working; two runs at once are harmless). Only
// counts are returned, never a value. ctx must be in auth.WithSystemScope to see every
// clinic's rows (migration 00011): each batch's transaction sets the clinic scope of ctx.
func EncryptFields(ctx context.Context, pool *pgxpool.Pool, k *fieldcrypt.Keyring, opts EncryptOptions) (EncryptStats, error) {
	st := backfill.NewStats()
	err := backfill.Run(ctx, pool, k, encTables, opts, st)
	return st, err
}

// canonical is a row key as Postgres prints it (the encryption pass binds values to key::text):
// a UUID lower-case with dashes whatever form an event gave it in.
func canonical(row string) string {
	if u, err := uuid.Parse(row); err == nil {
		return u.String()
	}
	return row
}
