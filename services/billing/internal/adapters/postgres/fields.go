package postgres

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
)

// The encrypted fields (migration 00010, docs/security.md#field-encryption): each is sealed
// into <column>_enc bound to its table, column and row (fieldcrypt.AAD(table, column, row
// key)). The plaintext column is cleared (NULL, or ” for NOT NULL DEFAULT ” columns) and
// never written. The files (837 claim files, 835 remittances) are sealed in place: their
// content column holds the sealed text (an X12 file starts with ISA, a sealed one with v1:).
// billing looks none of them up: no hashes.
type encField struct {
	column  string // the plaintext column; the AAD names it
	plain   string // SQL reading the plaintext as text, NULL when there is none
	clear   string // what clears it; "" when the sealed value replaces it in place
	enc     string // the column the sealed value goes to (default <column>_enc)
	encRead string // SQL reading the sealed value, NULL when there is none (default enc)
	hex     bool   // bytea: plain reads hex (decoded before sealing), sealed text is written as bytes
}

func (f encField) encCol() string {
	if f.enc == "" {
		return f.column + "_enc"
	}
	return f.enc
}

// param is a sealed value as the enc column takes it.
func (f encField) param(sealed string) any {
	if f.hex {
		return []byte(sealed)
	}
	return sealed
}

func (f encField) encSQL() string {
	if f.encRead == "" {
		return f.encCol()
	}
	return f.encRead
}

type encTable struct {
	name   string
	key    string // the row key column (uuid), as text in the AAD
	fields []encField
}

var encTables = []encTable{
	{name: "patient_identities", key: "patient_id", fields: []encField{
		{column: "date_of_birth", plain: "to_char(date_of_birth, 'YYYY-MM-DD')", clear: "NULL"},
	}},
	{name: "coverages", key: "id", fields: []encField{
		{column: "member_id", plain: "NULLIF(member_id, '')", clear: "''"},
	}},
	{name: "claim_files", key: "id", fields: []encField{
		// substring(... FOR 3) reads only the start of a large (TOASTed) file.
		{column: "content", enc: "content", plain: "CASE WHEN substring(content FOR 3) <> 'v1:' THEN content END",
			encRead: "CASE WHEN substring(content FOR 3) = 'v1:' THEN content END"},
	}},
	{name: "remittances", key: "id", fields: []encField{
		{column: "content", enc: "content", hex: true,
			plain:   "CASE WHEN substring(content FOR 3) <> 'v1:'::bytea THEN encode(content, 'hex') END",
			encRead: "CASE WHEN substring(content FOR 3) = 'v1:'::bytea THEN convert_from(content, 'UTF8') END"},
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

// EncryptOptions selects what EncryptFields does beyond encrypting plaintext.
type EncryptOptions struct {
	// Rotate re-encrypts values sealed by a key other than the active one (after a new key
	// was put first in FIELD_KEYS); the old key can be removed once a run reports none left.
	Rotate bool
	// Batch is the number of rows per transaction (default 500).
	Batch int
}

// EncryptStats counts what EncryptFields changed, by table.
type EncryptStats struct {
	Encrypted map[string]int // rows whose plaintext was encrypted and cleared
	Resealed  map[string]int // rows re-encrypted under the active key
}

// EncryptFields encrypts every value still held in plaintext (rows written before migration
// 00010, or by an older binary during a rolling update) and clears the plaintext; with
// opts.Rotate it re-encrypts values under the active key. Idempotent, in batches of rows
// locked FOR UPDATE (running services keep working; two runs at once are harmless). Only
// counts are returned, never a value. ctx must be in auth.WithSystemScope to see every
// clinic's rows (migration 00011).
func EncryptFields(ctx context.Context, pool *pgxpool.Pool, k *fieldcrypt.Keyring, opts EncryptOptions) (EncryptStats, error) {
	st := EncryptStats{Encrypted: map[string]int{}, Resealed: map[string]int{}}
	if opts.Batch <= 0 {
		opts.Batch = 500
	}
	s := sealer{k}
	for _, t := range encTables {
		if err := s.encryptTable(ctx, pool, t, opts, st); err != nil {
			return st, err
		}
	}
	return st, nil
}

func (s sealer) encryptTable(ctx context.Context, pool *pgxpool.Pool, t encTable, opts EncryptOptions, st EncryptStats) error {
	sel := []string{t.key + "::text"}
	var need []string
	// The active key's prefix is quoted into the SQL: key ids are [A-Za-z0-9_-] only ('_'
	// escaped for LIKE).
	activePrefix := "'v1:" + strings.ReplaceAll(s.k.ActiveKeyID(), "_", `\_`) + ":%'"
	for _, f := range t.fields {
		sel = append(sel, f.plain, f.encSQL())
		need = append(need, f.plain+" IS NOT NULL")
		if opts.Rotate {
			need = append(need, "("+f.encSQL()+" IS NOT NULL AND "+f.encSQL()+" NOT LIKE "+activePrefix+")")
		}
	}
	// Keyset pagination over the row key (one pass over the table, however rows change).
	var after *string
	for {
		q := `SELECT ` + strings.Join(sel, ", ") + ` FROM ` + t.name + ` WHERE (` + strings.Join(need, " OR ") + `)
			AND ($1::uuid IS NULL OR ` + t.key + ` > $1::uuid) ORDER BY ` + t.key + fmt.Sprintf(` LIMIT %d FOR UPDATE`, opts.Batch)
		n := 0
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			// The clinic scope of ctx (callers pass auth.WithSystemScope: the pass covers
			// every clinic's rows; without it the row-level security policies hide them all).
			if err := bus.SetClinicScope(ctx, tx); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, q, after)
			if err != nil {
				return err
			}
			type row struct {
				key        string
				plain, enc []*string
			}
			var batch []row
			for rows.Next() {
				rw := row{plain: make([]*string, len(t.fields)), enc: make([]*string, len(t.fields))}
				dest := []any{&rw.key}
				for i := range t.fields {
					dest = append(dest, &rw.plain[i], &rw.enc[i])
				}
				if err := rows.Scan(dest...); err != nil {
					rows.Close()
					return err
				}
				batch = append(batch, rw)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for _, rw := range batch {
				if err := s.encryptRow(ctx, tx, t, rw.key, rw.plain, rw.enc, opts, st); err != nil {
					return err
				}
			}
			if n = len(batch); n > 0 {
				last := batch[n-1].key
				after = &last
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("encrypt fields of %s: %w", t.name, err)
		}
		if n < opts.Batch {
			return nil
		}
	}
}

func (s sealer) encryptRow(ctx context.Context, tx pgx.Tx, t encTable, key string, plain, enc []*string, opts EncryptOptions, st EncryptStats) error {
	var set []string
	args := []any{key}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	var encrypted, resealed bool
	for i, f := range t.fields {
		aad := fieldcrypt.AAD(t.name, f.column, key)
		switch {
		case plain[i] != nil:
			// Plaintext wins over a sealed value: only an older binary writes plaintext, so
			// it is the later write.
			value := *plain[i]
			if f.hex {
				b, err := hex.DecodeString(value)
				if err != nil {
					return fmt.Errorf("%s.%s of %s: %w", t.name, f.column, key, err)
				}
				value = string(b)
			}
			sealed, err := s.k.Seal(value, aad)
			if err != nil {
				return err
			}
			set = append(set, f.encCol()+" = "+arg(f.param(sealed)))
			if f.clear != "" {
				set = append(set, f.column+" = "+f.clear)
			}
			encrypted = true
		case enc[i] != nil && opts.Rotate:
			sealed, changed, err := s.k.Reseal(*enc[i], aad)
			if err != nil {
				return fmt.Errorf("%s.%s of %s: %w", t.name, f.column, key, err)
			}
			if changed {
				set = append(set, f.encCol()+" = "+arg(f.param(sealed)))
				resealed = true
			}
		}
	}
	if len(set) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE `+t.name+` SET `+strings.Join(set, ", ")+` WHERE `+t.key+` = $1::uuid`, args...); err != nil {
		return err
	}
	if encrypted {
		st.Encrypted[t.name]++
	}
	if resealed {
		st.Resealed[t.name]++
	}
	return nil
}

// canonical is a row key as Postgres prints it (the encryption pass binds values to key::text):
// a UUID lower-case with dashes whatever form an event gave it in.
func canonical(row string) string {
	if u, err := uuid.Parse(row); err == nil {
		return u.String()
	}
	return row
}
