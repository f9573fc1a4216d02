package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/fieldcrypt/backfill"
)

// The encrypted fields (migration 00004, docs/security.md#field-encryption): each is sealed
// into <column>_enc bound to its table, column and row (fieldcrypt.AAD(table, column, row
// key)), and the phone numbers a text opt-out is checked against have a keyed hash in
// <column>_hash. The plaintext column is cleared to ” and never written: ” with no sealed
// value still means "no address". Opt-outs (sms_optouts) are looked up by the hash of the
// number, which is kept sealed beside it (for rotation and rehashing). The pass itself is
// pkg/fieldcrypt/backfill; the opt-outs are notification's own (hashOptOuts).
var encTables = []backfill.Table{
	{Name: "recipients", Keys: []string{"patient_id"}, Fields: []backfill.Field{
		{Column: "email", Plain: "NULLIF(email, '')", Clear: "''"},
		{Column: "phone", Plain: "NULLIF(phone, '')", Clear: "''", Kind: fieldcrypt.KindPhone},
	}},
	{Name: "preferences", Keys: []string{"patient_id"}, Fields: []backfill.Field{
		{Column: "confidential_email", Plain: "NULLIF(confidential_email, '')", Clear: "''"},
		{Column: "confidential_phone", Plain: "NULLIF(confidential_phone, '')", Clear: "''", Kind: fieldcrypt.KindPhone},
	}},
	{Name: "messages", Keys: []string{"id"}, Fields: []backfill.Field{
		{Column: "sent_to", Plain: "NULLIF(sent_to, '')", Clear: "''"},
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

// EncryptOptions selects what EncryptFields does beyond encrypting plaintext: Rotate
// (re-encrypt under the active key), Rehash (recompute every hash), Batch (rows per
// transaction, default 500).
type EncryptOptions = backfill.Options

// EncryptStats counts what EncryptFields changed, by table (Encrypted counts the opt-outs
// kept by number that were hashed).
type EncryptStats = backfill.Stats

// EncryptFields encrypts every value still held in plaintext (rows written before migration
// 00004, or by an older binary during a rolling update), clears the plaintext and fills the
// hashes, and turns plaintext opt-outs into hashed ones; with opts.Rotate it re-encrypts
// values under the active key, with opts.Rehash it recomputes every hash. Idempotent, in
// batches of rows locked FOR UPDATE (running services keep working). Only counts are
// returned, never a value. The rows of every clinic are only visible in system scope
// (auth.WithSystemScope in ctx): each batch's transaction sets the clinic scope of ctx.
func EncryptFields(ctx context.Context, pool *pgxpool.Pool, k *fieldcrypt.Keyring, opts EncryptOptions) (EncryptStats, error) {
	st := backfill.NewStats()
	if err := backfill.Run(ctx, pool, k, encTables, opts, st); err != nil {
		return st, err
	}
	if err := (crypt{k}).hashOptOuts(ctx, pool, opts, st); err != nil {
		return st, err
	}
	return st, nil
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
	return backfill.InTx(ctx, pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT phone, phone_enc, opted_out, updated_at FROM sms_optouts
			WHERE phone IS NOT NULL OR $1 OR ($2 AND phone_enc NOT LIKE $3) FOR UPDATE`,
			opts.Rehash, opts.Rotate, backfill.ActiveLike(c.k))
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
