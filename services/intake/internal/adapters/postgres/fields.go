package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/services/intake/internal/domain"
)

// The encrypted fields (migration 00007): each is sealed into <column>_enc bound to its table,
// column and row (fieldcrypt.AAD(table, column, row key...)), and those intake looks up have a
// keyed hash in <column>_hash. The plaintext column is cleared (NULL, or ” for the consents'
// NOT NULL DEFAULT ” columns) and never written.
type encField struct {
	column string          // the plaintext column; the AAD names it
	plain  string          // SQL reading the plaintext as text, NULL when there is none
	clear  string          // what clears it
	kind   fieldcrypt.Kind // "" when the field has no hash column
}

type encTable struct {
	name   string
	keys   []string // the row key columns, as text in the AAD
	types  []string // their SQL types
	fields []encField
}

var encTables = []encTable{
	{name: "patients", keys: []string{"id"}, types: []string{"uuid"}, fields: []encField{
		{column: "date_of_birth", plain: "to_char(date_of_birth, 'YYYY-MM-DD')", clear: "NULL", kind: fieldcrypt.KindDateOfBirth},
		{column: "contact_email", plain: "contact_email", clear: "NULL", kind: fieldcrypt.KindEmail},
		{column: "phone", plain: "phone", clear: "NULL", kind: fieldcrypt.KindPhone},
	}},
	{name: "referrals", keys: []string{"id"}, types: []string{"uuid"}, fields: []encField{
		{column: "date_of_birth", plain: "to_char(date_of_birth, 'YYYY-MM-DD')", clear: "NULL", kind: fieldcrypt.KindDateOfBirth},
		{column: "phone", plain: "phone", clear: "NULL", kind: fieldcrypt.KindPhone},
		{column: "email", plain: "email", clear: "NULL", kind: fieldcrypt.KindEmail},
	}},
	{name: "consents", keys: []string{"id"}, types: []string{"uuid"}, fields: []encField{
		{column: "confidential_email", plain: "NULLIF(confidential_email, '')", clear: "''"},
		{column: "confidential_phone", plain: "NULLIF(confidential_phone, '')", clear: "''"},
	}},
	{name: "coverages", keys: []string{"id"}, types: []string{"uuid"}, fields: []encField{
		{column: "member_id", plain: "member_id", clear: "NULL"},
	}},
	{name: "coverage_versions", keys: []string{"coverage_id", "version"}, types: []string{"uuid", "int"}, fields: []encField{
		{column: "member_id", plain: "member_id", clear: "NULL"},
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

// EncryptOptions selects what EncryptFields does beyond encrypting plaintext.
type EncryptOptions struct {
	// Rotate re-encrypts values sealed by a key other than the active one (after a new key
	// was put first in FIELD_KEYS); the old key can be removed once a run reports none left.
	Rotate bool
	// Rehash recomputes every hash (after FIELD_HASH_KEY changed); it decrypts every value.
	Rehash bool
	// Batch is the number of rows per transaction (default 500).
	Batch int
}

// EncryptStats counts what EncryptFields changed, by table.
type EncryptStats struct {
	Encrypted map[string]int // rows whose plaintext was encrypted and cleared
	Resealed  map[string]int // rows re-encrypted under the active key
	Rehashed  map[string]int // rows whose hashes were recomputed
}

// EncryptFields encrypts every value still held in plaintext (rows written before migration
// 00007, or by an older binary during a rolling update), clears the plaintext and fills the
// hashes; with opts.Rotate it re-encrypts values under the active key, with opts.Rehash it
// recomputes every hash. Idempotent, in batches of rows locked FOR UPDATE (running services
// keep working; two runs at once are harmless). Only counts are returned or logged, never a
// value. The rows of every clinic are only visible in system scope (auth.WithSystemScope in
// ctx): each batch's transaction sets the clinic scope of ctx.
func EncryptFields(ctx context.Context, pool *pgxpool.Pool, k *fieldcrypt.Keyring, opts EncryptOptions) (EncryptStats, error) {
	st := EncryptStats{Encrypted: map[string]int{}, Resealed: map[string]int{}, Rehashed: map[string]int{}}
	if opts.Batch <= 0 {
		opts.Batch = 500
	}
	r := Repository{Crypt: k}
	for _, t := range encTables {
		if err := r.encryptTable(ctx, pool, t, opts, st); err != nil {
			return st, err
		}
	}
	return st, nil
}

func (r Repository) encryptTable(ctx context.Context, pool *pgxpool.Pool, t encTable, opts EncryptOptions, st EncryptStats) error {
	keyCols := make([]string, len(t.keys))
	for i, c := range t.keys {
		keyCols[i] = c + "::text"
	}
	var sel, need []string
	sel = append(sel, keyCols...)
	// The active key's prefix is quoted into the SQL: key ids are [A-Za-z0-9_-] only ('_'
	// escaped for LIKE).
	activePrefix := "'v1:" + strings.ReplaceAll(r.Crypt.ActiveKeyID(), "_", `\_`) + ":%'"
	for _, f := range t.fields {
		sel = append(sel, f.plain, f.column+"_enc")
		need = append(need, f.plain+" IS NOT NULL")
		if opts.Rotate {
			need = append(need, "("+f.column+"_enc IS NOT NULL AND "+f.column+"_enc NOT LIKE "+activePrefix+")")
		}
		if opts.Rehash && f.kind != "" {
			need = append(need, f.column+"_enc IS NOT NULL")
		}
	}
	// Keyset pagination over the row key (one pass over the table, however rows change).
	var after []any
	for {
		var args []any
		where := "(" + strings.Join(need, " OR ") + ")"
		if after != nil {
			ph := make([]string, len(after))
			for i := range after {
				args = append(args, after[i])
				ph[i] = fmt.Sprintf("$%d::text::%s", len(args), t.types[i])
			}
			where += " AND (" + strings.Join(t.keys, ", ") + ") > (" + strings.Join(ph, ", ") + ")"
		}
		q := `SELECT ` + strings.Join(sel, ", ") + ` FROM ` + t.name + ` WHERE ` + where +
			` ORDER BY ` + strings.Join(t.keys, ", ") + fmt.Sprintf(` LIMIT %d FOR UPDATE`, opts.Batch)
		n := 0
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if err := bus.SetClinicScope(ctx, tx); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, q, args...)
			if err != nil {
				return err
			}
			type row struct {
				key   []string
				plain []*string
				enc   []*string
			}
			var batch []row
			for rows.Next() {
				rw := row{key: make([]string, len(t.keys)), plain: make([]*string, len(t.fields)), enc: make([]*string, len(t.fields))}
				dest := make([]any, 0, len(sel))
				for i := range rw.key {
					dest = append(dest, &rw.key[i])
				}
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
				if err := r.encryptRow(ctx, tx, t, rw.key, rw.plain, rw.enc, opts, st); err != nil {
					return err
				}
			}
			n = len(batch)
			if n > 0 {
				after = make([]any, len(t.keys))
				for i, v := range batch[n-1].key {
					after[i] = v
				}
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

func (r Repository) encryptRow(ctx context.Context, tx pgx.Tx, t encTable, key []string, plain, enc []*string, opts EncryptOptions, st EncryptStats) error {
	var set []string
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	var encrypted, resealed, rehashed bool
	for i, f := range t.fields {
		aad := fieldcrypt.AAD(t.name, f.column, key...)
		var value string
		switch {
		case plain[i] != nil:
			// Plaintext wins over a sealed value: only an older binary writes plaintext, so
			// it is the later write.
			value = *plain[i]
			s, err := r.Crypt.Seal(value, aad)
			if err != nil {
				return err
			}
			set = append(set, f.column+"_enc = "+arg(s), f.column+" = "+f.clear)
			encrypted = true
		case enc[i] != nil:
			if opts.Rotate {
				s, changed, err := r.Crypt.Reseal(*enc[i], aad)
				if err != nil {
					return fmt.Errorf("%s.%s of %s: %w", t.name, f.column, strings.Join(key, "/"), err)
				}
				if changed {
					set = append(set, f.column+"_enc = "+arg(s))
					resealed = true
				}
			}
			if !opts.Rehash || f.kind == "" {
				continue
			}
			v, err := r.Crypt.Open(*enc[i], aad)
			if err != nil {
				return fmt.Errorf("%s.%s of %s: %w", t.name, f.column, strings.Join(key, "/"), err)
			}
			value = v
			rehashed = true
		default:
			continue
		}
		if f.kind != "" {
			h, err := r.hash(f.kind, value)
			if err != nil {
				return fmt.Errorf("%s.%s of %s: %w", t.name, f.column, strings.Join(key, "/"), err)
			}
			set = append(set, f.column+"_hash = "+arg(h))
		}
	}
	if len(set) == 0 {
		return nil
	}
	var where []string
	for i, c := range t.keys {
		where = append(where, c+" = "+arg(key[i])+"::text::"+t.types[i])
	}
	if _, err := tx.Exec(ctx, `UPDATE `+t.name+` SET `+strings.Join(set, ", ")+` WHERE `+strings.Join(where, " AND "), args...); err != nil {
		return err
	}
	if encrypted {
		st.Encrypted[t.name]++
	}
	if resealed {
		st.Resealed[t.name]++
	}
	if rehashed {
		st.Rehashed[t.name]++
	}
	return nil
}
