package idempotency

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is the Store over a table idempotency_keys in the service's own schema (unqualified:
// the pool's search_path picks it). Each service creates the table in its migrations:
//
//	CREATE TABLE idempotency_keys (
//	    subject      text        NOT NULL,
//	    key          text        NOT NULL,
//	    request_hash bytea       NOT NULL,
//	    response     bytea       NOT NULL,
//	    created_at   timestamptz NOT NULL DEFAULT now(),
//	    PRIMARY KEY (subject, key)
//	);
//
// A repository embeds Postgres to implement Store.
type Postgres struct{}

var _ Store = Postgres{}

// ClaimIdempotencyKey inserts k unless (subject, key) exists, and then returns the stored one,
// in one round trip (claimSQL). A concurrent transaction inserting the same key makes this wait
// for it to end (Postgres speculative insertion), so two racing calls never both proceed.
func (p Postgres) ClaimIdempotencyKey(ctx context.Context, tx pgx.Tx, k Key) (*Key, error) {
	b := &pgx.Batch{}
	result := p.QueueIdempotencyClaim(b, k)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	return result(ctx, tx)
}

// claimSQL inserts the key, or else reads the stored one, in one statement: one row, claimed
// (true) or the stored key's (false). No row when the conflicting key was committed by a
// transaction this statement waited for: its snapshot, taken before the wait, cannot see the
// row, which a second statement then reads.
const claimSQL = `WITH ins AS (
		INSERT INTO idempotency_keys (subject, key, request_hash, response) VALUES ($1, $2, $3, $4)
		ON CONFLICT (subject, key) DO NOTHING RETURNING true)
	SELECT true, NULL::bytea, NULL::bytea FROM ins
	UNION ALL
	SELECT false, request_hash, response FROM idempotency_keys
	WHERE subject = $1 AND key = $2 AND NOT EXISTS (SELECT FROM ins)`

// QueueIdempotencyClaim queues ClaimIdempotencyKey's statement in b.
func (Postgres) QueueIdempotencyClaim(b *pgx.Batch, k Key) func(ctx context.Context, tx pgx.Tx) (*Key, error) {
	var ran, claimed, read bool
	prior := Key{Subject: k.Subject, Key: k.Key}
	var qerr error
	b.Queue(claimSQL, k.Subject, k.Key, k.RequestHash, k.Response).Query(func(rows pgx.Rows) error {
		ran = true
		for rows.Next() {
			if err := rows.Scan(&claimed, &prior.RequestHash, &prior.Response); err != nil {
				return err
			}
			read = true
		}
		qerr = rows.Err()
		return qerr
	})
	return func(ctx context.Context, tx pgx.Tx) (*Key, error) {
		switch {
		case !ran: // the batch was not sent, or failed before the claim
			return nil, errors.New("claim idempotency key: the claim's batch was not sent")
		case qerr != nil:
			return nil, fmt.Errorf("claim idempotency key: %w", qerr)
		case read && claimed:
			return nil, nil
		case read:
			return &prior, nil
		}
		err := tx.QueryRow(ctx, `SELECT request_hash, response FROM idempotency_keys WHERE subject = $1 AND key = $2`,
			k.Subject, k.Key).Scan(&prior.RequestHash, &prior.Response)
		if err != nil {
			return nil, fmt.Errorf("read idempotency key: %w", err)
		}
		return &prior, nil
	}
}

// SaveIdempotencyResponse records the response of the call that claimed (subject, key).
func (Postgres) SaveIdempotencyResponse(ctx context.Context, tx pgx.Tx, subject, key string, response []byte) error {
	if _, err := tx.Exec(ctx, `UPDATE idempotency_keys SET response = $3 WHERE subject = $1 AND key = $2`,
		subject, key, response); err != nil {
		return fmt.Errorf("save idempotency response: %w", err)
	}
	return nil
}

// PruneIdempotencyKeys deletes up to limit keys created before before, oldest first (an index
// on created_at serves it), and returns how many it deleted.
func (Postgres) PruneIdempotencyKeys(ctx context.Context, tx pgx.Tx, before time.Time, limit int) (int64, error) {
	tag, err := tx.Exec(ctx, `DELETE FROM idempotency_keys WHERE (subject, key) IN (
			SELECT subject, key FROM idempotency_keys WHERE created_at < $1 ORDER BY created_at LIMIT $2)`, before, limit)
	if err != nil {
		return 0, fmt.Errorf("prune idempotency keys: %w", err)
	}
	return tag.RowsAffected(), nil
}
