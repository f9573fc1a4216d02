package idempotency

import (
	"context"
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

// ClaimIdempotencyKey inserts k unless (subject, key) exists, and then returns the stored one.
// A concurrent transaction inserting the same key makes this wait for it to end (Postgres
// speculative insertion), so two racing calls never both proceed.
func (Postgres) ClaimIdempotencyKey(ctx context.Context, tx pgx.Tx, k Key) (*Key, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO idempotency_keys (subject, key, request_hash, response)
		VALUES ($1, $2, $3, $4) ON CONFLICT (subject, key) DO NOTHING`, k.Subject, k.Key, k.RequestHash, k.Response)
	if err != nil {
		return nil, fmt.Errorf("claim idempotency key: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return nil, nil
	}
	prior := Key{Subject: k.Subject, Key: k.Key}
	err = tx.QueryRow(ctx, `SELECT request_hash, response FROM idempotency_keys WHERE subject = $1 AND key = $2`,
		k.Subject, k.Key).Scan(&prior.RequestHash, &prior.Response)
	if err != nil {
		return nil, fmt.Errorf("read idempotency key: %w", err)
	}
	return &prior, nil
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
