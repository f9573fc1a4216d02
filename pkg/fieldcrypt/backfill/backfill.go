// Package backfill is the field-encryption pass the services share (docs/security.md#field-encryption):
// it seals the values still held in plaintext (rows written before field encryption, or by an
// older binary during a rolling update), clears the plaintext and fills the lookup hashes;
// with Options.Rotate it re-seals values under the active key, with Options.Rehash it
// recomputes every hash. Each service describes only its tables (Table, Field) and runs Run.
//
// It is a package of its own so that pkg/fieldcrypt stays free of the database and pkg/bus.
package backfill

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
)

// DefaultBatch is the number of rows per transaction when Options.Batch is not set.
const DefaultBatch = 500

// Field is an encrypted column: the value is sealed into Enc bound to its table, column and
// row (fieldcrypt.AAD(table, Column, row key...)), and the plaintext column is cleared.
type Field struct {
	Column string // the plaintext column; the AAD names it
	// Plain is SQL reading the plaintext as text, NULL when there is none (default Column).
	Plain string
	// Clear is the SQL value that clears the plaintext column (default NULL). Not used when
	// the sealed value replaces the plaintext in place (Enc is Column).
	Clear string
	// Enc is the column the sealed value goes to (default <Column>_enc).
	Enc string
	// EncRead is SQL reading the sealed value as text, NULL when there is none (default Enc).
	EncRead string
	// Bytes: a bytea column; Plain reads it as hex (decoded before sealing) and the sealed
	// text is written as bytes.
	Bytes bool
	// Kind is the kind of the keyed hash kept in <Column>_hash; "" when there is none.
	Kind fieldcrypt.Kind
}

func (f Field) plain() string {
	if f.Plain == "" {
		return f.Column
	}
	return f.Plain
}

func (f Field) enc() string {
	if f.Enc == "" {
		return f.Column + "_enc"
	}
	return f.Enc
}

func (f Field) encRead() string {
	if f.EncRead == "" {
		return f.enc()
	}
	return f.EncRead
}

// inPlace: the sealed value replaces the plaintext in the same column (nothing to clear).
func (f Field) inPlace() bool { return f.enc() == f.Column }

func (f Field) clear() string {
	if f.Clear == "" {
		return "NULL"
	}
	return f.Clear
}

// param is a sealed value as the Enc column takes it.
func (f Field) param(sealed string) any {
	if f.Bytes {
		return []byte(sealed)
	}
	return sealed
}

// Table is a table with encrypted fields.
type Table struct {
	Name string
	// Keys are the row key columns, their text (key::text) in the AAD in this order.
	Keys []string
	// Types are the SQL types of Keys (default uuid each).
	Types  []string
	Fields []Field
}

func (t Table) keyType(i int) string {
	if i < len(t.Types) {
		return t.Types[i]
	}
	return "uuid"
}

// Options selects what Run does beyond encrypting plaintext.
type Options struct {
	// Rotate re-encrypts values sealed by a key other than the active one (after a new key
	// was put first in FIELD_KEYS); the old key can be removed once a run reports none left.
	Rotate bool
	// Rehash recomputes every hash (after FIELD_HASH_KEY changed); it decrypts every value
	// of a field with a hash (Field.Kind). No effect on fields without one.
	Rehash bool
	// Batch is the number of rows per transaction (default DefaultBatch).
	Batch int
}

// Stats counts what Run changed, by table (a table appears once a row of it changed).
type Stats struct {
	Encrypted map[string]int // rows whose plaintext was encrypted and cleared
	Resealed  map[string]int // rows re-encrypted under the active key
	Rehashed  map[string]int // rows whose hashes were recomputed
}

// NewStats is Stats with empty maps.
func NewStats() Stats {
	return Stats{Encrypted: map[string]int{}, Resealed: map[string]int{}, Rehashed: map[string]int{}}
}

// Total is the sum of the counts of m (one of Stats' maps).
func Total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// ActiveLike is the LIKE pattern of values sealed by k's active key ("v1:<kid>:%", '_'
// escaped). Key ids are [A-Za-z0-9_-] only (fieldcrypt.Parse), so it may be quoted into SQL.
func ActiveLike(k *fieldcrypt.Keyring) string {
	return fieldcrypt.Version + ":" + strings.ReplaceAll(k.ActiveKeyID(), "_", `\_`) + ":%"
}

// InTx runs fn in a transaction of pool with the clinic scope of ctx set (bus.SetClinicScope):
// the pass covers every clinic's rows when ctx is in system scope (auth.WithSystemScope);
// without it the row-level security policies hide them all.
func InTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := bus.SetClinicScope(ctx, tx); err != nil {
			return err
		}
		return fn(tx)
	})
}

// Run is the pass over tables, in order, adding to st (NewStats) what it changed. Idempotent,
// in batches of opts.Batch rows locked FOR UPDATE, each batch its own transaction (InTx: ctx
// must be in system scope to see every clinic's rows), so running services keep working and
// two runs at once are harmless. Plaintext wins over a sealed value of the same field: only an
// older binary writes plaintext, so it is the later write. Errors and st hold counts, table
// and column names and row keys, never a value.
func Run(ctx context.Context, pool *pgxpool.Pool, k *fieldcrypt.Keyring, tables []Table, opts Options, st Stats) error {
	if opts.Batch <= 0 {
		opts.Batch = DefaultBatch
	}
	for _, t := range tables {
		if err := runTable(ctx, pool, k, t, opts, st); err != nil {
			return err
		}
	}
	return nil
}

// selectSQL is the query of a batch: the key columns as text, then each field's plaintext and
// sealed value, of the rows with something to do, after the key of the previous batch
// (placeholders $1... when after is true).
func selectSQL(k *fieldcrypt.Keyring, t Table, opts Options, after bool) string {
	sel := make([]string, 0, len(t.Keys)+2*len(t.Fields))
	for _, c := range t.Keys {
		sel = append(sel, c+"::text")
	}
	var need []string
	activeLike := "'" + ActiveLike(k) + "'"
	for _, f := range t.Fields {
		sel = append(sel, f.plain(), f.encRead())
		need = append(need, f.plain()+" IS NOT NULL")
		if opts.Rotate {
			need = append(need, "("+f.encRead()+" IS NOT NULL AND "+f.encRead()+" NOT LIKE "+activeLike+")")
		}
		if opts.Rehash && f.Kind != "" {
			need = append(need, f.encRead()+" IS NOT NULL")
		}
	}
	where := "(" + strings.Join(need, " OR ") + ")"
	if after {
		ph := make([]string, len(t.Keys))
		for i := range t.Keys {
			ph[i] = fmt.Sprintf("$%d::text::%s", i+1, t.keyType(i))
		}
		where += " AND (" + strings.Join(t.Keys, ", ") + ") > (" + strings.Join(ph, ", ") + ")"
	}
	return `SELECT ` + strings.Join(sel, ", ") + ` FROM ` + t.Name + ` WHERE ` + where +
		` ORDER BY ` + strings.Join(t.Keys, ", ") + fmt.Sprintf(` LIMIT %d FOR UPDATE`, opts.Batch)
}

type row struct {
	key        []string
	plain, enc []*string
}

func runTable(ctx context.Context, pool *pgxpool.Pool, k *fieldcrypt.Keyring, t Table, opts Options, st Stats) error {
	// Keyset pagination over the row key (one pass over the table, however rows change).
	var after []any
	for {
		q := selectSQL(k, t, opts, after != nil)
		n := 0
		err := InTx(ctx, pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, q, after...)
			if err != nil {
				return err
			}
			var batch []row
			for rows.Next() {
				rw := row{key: make([]string, len(t.Keys)), plain: make([]*string, len(t.Fields)), enc: make([]*string, len(t.Fields))}
				dest := make([]any, 0, len(t.Keys)+2*len(t.Fields))
				for i := range rw.key {
					dest = append(dest, &rw.key[i])
				}
				for i := range t.Fields {
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
				if err := runRow(ctx, tx, k, t, rw, opts, st); err != nil {
					return err
				}
			}
			if n = len(batch); n > 0 {
				after = make([]any, len(t.Keys))
				for i, v := range batch[n-1].key {
					after[i] = v
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("encrypt fields of %s: %w", t.Name, err)
		}
		if n < opts.Batch {
			return nil
		}
	}
}

func runRow(ctx context.Context, tx pgx.Tx, k *fieldcrypt.Keyring, t Table, rw row, opts Options, st Stats) error {
	var set []string
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	where := func(f Field, err error) error {
		return fmt.Errorf("%s.%s of %s: %w", t.Name, f.Column, strings.Join(rw.key, "/"), err)
	}
	var encrypted, resealed, rehashed bool
	for i, f := range t.Fields {
		aad := fieldcrypt.AAD(t.Name, f.Column, rw.key...)
		var value string
		switch {
		case rw.plain[i] != nil:
			value = *rw.plain[i]
			if f.Bytes {
				b, err := hex.DecodeString(value)
				if err != nil {
					return where(f, err)
				}
				value = string(b)
			}
			sealed, err := k.Seal(value, aad)
			if err != nil {
				return err
			}
			set = append(set, f.enc()+" = "+arg(f.param(sealed)))
			if !f.inPlace() {
				set = append(set, f.Column+" = "+f.clear())
			}
			encrypted = true
		case rw.enc[i] != nil:
			if opts.Rotate {
				sealed, changed, err := k.Reseal(*rw.enc[i], aad)
				if err != nil {
					return where(f, err)
				}
				if changed {
					set = append(set, f.enc()+" = "+arg(f.param(sealed)))
					resealed = true
				}
			}
			if !opts.Rehash || f.Kind == "" {
				continue
			}
			v, err := k.Open(*rw.enc[i], aad)
			if err != nil {
				return where(f, err)
			}
			value = v
			rehashed = true
		default:
			continue
		}
		if f.Kind != "" {
			h, err := k.Hash(f.Kind, value)
			if err != nil {
				return where(f, fmt.Errorf("hash %s: %w", f.Kind, err))
			}
			var hv any // NULL when there is nothing to match on
			if h != nil {
				hv = h
			}
			set = append(set, f.Column+"_hash = "+arg(hv))
		}
	}
	if len(set) == 0 {
		return nil
	}
	cond := make([]string, len(t.Keys))
	for i, c := range t.Keys {
		cond[i] = c + " = " + arg(rw.key[i]) + "::text::" + t.keyType(i)
	}
	if _, err := tx.Exec(ctx, `UPDATE `+t.Name+` SET `+strings.Join(set, ", ")+` WHERE `+strings.Join(cond, " AND "), args...); err != nil {
		return err
	}
	if encrypted {
		st.Encrypted[t.Name]++
	}
	if resealed {
		st.Resealed[t.Name]++
	}
	if rehashed {
		st.Rehashed[t.Name]++
	}
	return nil
}
