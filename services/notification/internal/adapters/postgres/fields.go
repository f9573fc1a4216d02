package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
)

// The encrypted fields (migration 00004, docs/security.md#field-encryption): each is sealed
// into <column>_enc bound to its table, column and row (fieldcrypt.AAD(table, column, row
// key)), and the phone numbers a text opt-out is checked against have a keyed hash in
// <column>_hash. The plaintext column is cleared to ” and never written: ” with no sealed
// value still means "no address". Opt-outs (sms_optouts) are looked up by the hash of the
// number, which is kept sealed beside it (for rotation and rehashing).
type encField struct {
	column string          // the plaintext column; the AAD names it
	kind   fieldcrypt.Kind // "" when the field has no hash column
}

type encTable struct {
	name   string
	key    string // the row key column (uuid), as text in the AAD
	fields []encField
}

var encTables = []encTable{
	{name: "recipients", key: "patient_id", fields: []encField{
		{column: "email"},
		{column: "phone", kind: fieldcrypt.KindPhone},
	}},
	{name: "preferences", key: "patient_id", fields: []encField{
		{column: "confidential_email"},
		{column: "confidential_phone", kind: fieldcrypt.KindPhone},
	}},
	{name: "messages", key: "id", fields: []encField{
		{column: "sent_to"},
	}},
}

// crypt seals, opens and hashes notification's encrypted fields.
type crypt struct{ k *fieldcrypt.Keyring }

// seal is v sealed for table.column of row, nil (NULL) when v is "".
func (c crypt) seal(v, table, column, row string) (any, error) {
	if v == "" {
		return nil, nil
	}
	s, err := c.k.Seal(v, fieldcrypt.AAD(table, column, canonical(row)))
	if err != nil {
		return nil, fmt.Errorf("encrypt %s.%s: %w", table, column, err)
	}
	return s, nil
}

// open is the value of a field: the plaintext column when it holds one (a row an older binary
// wrote since the last encryption pass: the later write), else the sealed one opened; "" when
// neither is set.
func (c crypt) open(plain string, sealed *string, table, column, row string) (string, error) {
	if plain != "" || sealed == nil {
		return plain, nil
	}
	v, err := c.k.Open(*sealed, fieldcrypt.AAD(table, column, canonical(row)))
	if err != nil {
		return "", fmt.Errorf("decrypt %s.%s of %s: %w", table, column, row, err)
	}
	return v, nil
}

// phoneHash is the keyed hash of a phone number, nil (NULL) when it has no digits.
func (c crypt) phoneHash(phone string) (any, error) {
	h, err := c.k.Hash(fieldcrypt.KindPhone, phone)
	if err != nil || h == nil {
		return nil, err
	}
	return h, nil
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
	Encrypted map[string]int // rows whose plaintext was encrypted (or hashed) and cleared
	Resealed  map[string]int // rows re-encrypted under the active key
	Rehashed  map[string]int // rows whose hashes were recomputed
}

// EncryptFields encrypts every value still held in plaintext (rows written before migration
// 00004, or by an older binary during a rolling update), clears the plaintext and fills the
// hashes, and turns plaintext opt-outs into hashed ones; with opts.Rotate it re-encrypts
// values under the active key, with opts.Rehash it recomputes every hash. Idempotent, in
// batches of rows locked FOR UPDATE (running services keep working). Only counts are
// returned, never a value. The rows of every clinic are only visible in system scope
// (auth.WithSystemScope in ctx): each batch's transaction sets the clinic scope of ctx.
func EncryptFields(ctx context.Context, pool *pgxpool.Pool, k *fieldcrypt.Keyring, opts EncryptOptions) (EncryptStats, error) {
	st := EncryptStats{Encrypted: map[string]int{}, Resealed: map[string]int{}, Rehashed: map[string]int{}}
	if opts.Batch <= 0 {
		opts.Batch = 500
	}
	c := crypt{k}
	for _, t := range encTables {
		if err := c.encryptTable(ctx, pool, t, opts, st); err != nil {
			return st, err
		}
	}
	if err := c.hashOptOuts(ctx, pool, opts, st); err != nil {
		return st, err
	}
	return st, nil
}

func (c crypt) encryptTable(ctx context.Context, pool *pgxpool.Pool, t encTable, opts EncryptOptions, st EncryptStats) error {
	sel := []string{t.key + "::text"}
	var need []string
	// The active key's prefix is quoted into the SQL: key ids are [A-Za-z0-9_-] only ('_'
	// escaped for LIKE).
	activePrefix := "'v1:" + strings.ReplaceAll(c.k.ActiveKeyID(), "_", `\_`) + ":%'"
	for _, f := range t.fields {
		sel = append(sel, "NULLIF("+f.column+", '')", f.column+"_enc")
		need = append(need, "NULLIF("+f.column+", '') IS NOT NULL")
		if opts.Rotate {
			need = append(need, "("+f.column+"_enc IS NOT NULL AND "+f.column+"_enc NOT LIKE "+activePrefix+")")
		}
		if opts.Rehash && f.kind != "" {
			need = append(need, f.column+"_enc IS NOT NULL")
		}
	}
	// Keyset pagination over the row key (one pass over the table, however rows change).
	var after *string
	for {
		q := `SELECT ` + strings.Join(sel, ", ") + ` FROM ` + t.name + ` WHERE (` + strings.Join(need, " OR ") + `)
			AND ($1::uuid IS NULL OR ` + t.key + ` > $1::uuid) ORDER BY ` + t.key + fmt.Sprintf(` LIMIT %d FOR UPDATE`, opts.Batch)
		n := 0
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
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
				if err := c.encryptRow(ctx, tx, t, rw.key, rw.plain, rw.enc, opts, st); err != nil {
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

func (c crypt) encryptRow(ctx context.Context, tx pgx.Tx, t encTable, key string, plain, enc []*string, opts EncryptOptions, st EncryptStats) error {
	var set []string
	args := []any{key}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	var encrypted, resealed, rehashed bool
	for i, f := range t.fields {
		aad := fieldcrypt.AAD(t.name, f.column, key)
		var value string
		switch {
		case plain[i] != nil:
			// Plaintext wins over a sealed value: only an older binary writes plaintext, so
			// it is the later write.
			value = *plain[i]
			s, err := c.k.Seal(value, aad)
			if err != nil {
				return err
			}
			set = append(set, f.column+"_enc = "+arg(s), f.column+" = ''")
			encrypted = true
		case enc[i] != nil:
			if opts.Rotate {
				s, changed, err := c.k.Reseal(*enc[i], aad)
				if err != nil {
					return fmt.Errorf("%s.%s of %s: %w", t.name, f.column, key, err)
				}
				if changed {
					set = append(set, f.column+"_enc = "+arg(s))
					resealed = true
				}
			}
			if !opts.Rehash || f.kind == "" {
				continue
			}
			v, err := c.k.Open(*enc[i], aad)
			if err != nil {
				return fmt.Errorf("%s.%s of %s: %w", t.name, f.column, key, err)
			}
			value = v
			rehashed = true
		default:
			continue
		}
		if f.kind != "" {
			h, err := c.k.Hash(f.kind, value)
			if err != nil {
				return fmt.Errorf("%s.%s of %s: %w", t.name, f.column, key, err)
			}
			var hv any
			if h != nil {
				hv = h
			}
			set = append(set, f.column+"_hash = "+arg(hv))
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
	if rehashed {
		st.Rehashed[t.name]++
	}
	return nil
}

// optOutAAD binds a sealed opt-out number to its column (the table has no row key but the
// number itself).
var optOutAAD = fieldcrypt.AAD("sms_optouts", "phone")

// hashOptOuts turns the opt-outs an older binary kept by number into opt-outs kept by hash and
// sealed number (merged with one already kept so: the later command wins); with opts.Rotate it
// re-seals the numbers under the active key, with opts.Rehash it recomputes their hashes. One
// transaction: opt-outs are few.
func (c crypt) hashOptOuts(ctx context.Context, pool *pgxpool.Pool, opts EncryptOptions, st EncryptStats) error {
	// sms_optouts is not per clinic (no policy, migration 00005); the scope is set all the
	// same, like every transaction's, should the pass ever touch a clinic's table here.
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := bus.SetClinicScope(ctx, tx); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT phone, phone_enc, opted_out, updated_at FROM sms_optouts
			WHERE phone IS NOT NULL OR $1 OR ($2 AND phone_enc NOT LIKE $3) FOR UPDATE`,
			opts.Rehash, opts.Rotate, "v1:"+strings.ReplaceAll(c.k.ActiveKeyID(), "_", `\_`)+":%")
		if err != nil {
			return fmt.Errorf("opt-outs: %w", err)
		}
		type optOut struct {
			phone, enc *string
			out        bool
			at         time.Time
		}
		list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (optOut, error) {
			var o optOut
			return o, row.Scan(&o.phone, &o.enc, &o.out, &o.at)
		})
		if err != nil {
			return fmt.Errorf("opt-outs: %w", err)
		}
		for _, o := range list {
			if o.phone != nil {
				if _, err := tx.Exec(ctx, `DELETE FROM sms_optouts WHERE phone = $1`, *o.phone); err != nil {
					return err
				}
				if err := c.upsertOptOut(ctx, tx, *o.phone, o.out, o.at); err != nil {
					return err
				}
				st.Encrypted["sms_optouts"]++
				continue
			}
			if o.enc == nil {
				continue
			}
			phone, err := c.k.Open(*o.enc, optOutAAD)
			if err != nil {
				return fmt.Errorf("opt-out: %w", err)
			}
			sealed, err := c.k.Seal(phone, optOutAAD)
			if err != nil {
				return err
			}
			h, err := c.phoneHash(phone)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE sms_optouts SET phone_enc = $2, phone_hash = $3 WHERE phone_enc = $1`, *o.enc, sealed, h); err != nil {
				return err
			}
			if opts.Rotate {
				st.Resealed["sms_optouts"]++
			}
			if opts.Rehash {
				st.Rehashed["sms_optouts"]++
			}
		}
		return nil
	})
}

// upsertOptOut records an opt-out (or opt-in) of a number by its hash, with the number
// sealed; the latest command wins.
func (c crypt) upsertOptOut(ctx context.Context, tx pgx.Tx, phone string, optedOut bool, at time.Time) error {
	h, err := c.phoneHash(phone)
	if err != nil || h == nil {
		return err
	}
	sealed, err := c.k.Seal(phone, optOutAAD)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO sms_optouts (phone_hash, phone_enc, opted_out, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (phone_hash) DO UPDATE SET opted_out = EXCLUDED.opted_out, updated_at = EXCLUDED.updated_at,
			phone_enc = EXCLUDED.phone_enc
		WHERE sms_optouts.updated_at <= EXCLUDED.updated_at`, h, sealed, optedOut, at)
	return err
}

// canonical is a row key as Postgres prints it (the encryption pass binds values to key::text):
// a UUID lower-case with dashes whatever form an event gave it in.
func canonical(row string) string {
	if u, err := uuid.Parse(row); err == nil {
		return u.String()
	}
	return row
}
