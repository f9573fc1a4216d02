package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-health/trellis/pkg/bus"
)

// IdempotencyStore keeps idempotency keys and the first response given under each.
type IdempotencyStore interface {
	// ClaimIdempotencyKey stores k, or returns the key already stored under (subject, key).
	ClaimIdempotencyKey(ctx context.Context, tx pgx.Tx, k IdempotencyKey) (*IdempotencyKey, error)
	// SaveIdempotencyResponse records the response of the call that claimed (subject, key).
	SaveIdempotencyResponse(ctx context.Context, tx pgx.Tx, subject, key string, response []byte) error
	// PruneIdempotencyKeys deletes up to limit keys created before before, oldest first, and
	// returns how many it deleted.
	PruneIdempotencyKeys(ctx context.Context, tx pgx.Tx, before time.Time, limit int) (int64, error)
}

// Call identifies one creating call for idempotency: who made it, with which key, and a hash
// of what was asked (see RequestHash).
type Call struct {
	Caller string // token subject: keys are scoped per caller
	Key    string
	Hash   []byte
}

// Once runs a creating call at most once per (caller, key), inside tx. A new key runs do and
// stores its response with the key, in the same transaction (so a failed call leaves no key
// behind and may be retried with it). A repeated key with the same request returns the first
// response in resp and replayed=true without running do; with a different request it fails
// with ErrIdempotencyKeyReused. The key is claimed before any rule is checked, so a replay
// never fails because the world has changed since the first call.
func Once[T proto.Message](ctx context.Context, tx pgx.Tx, store IdempotencyStore, call Call, resp T, do func() (T, error)) (T, bool, error) {
	var zero T
	prior, err := store.ClaimIdempotencyKey(ctx, tx, IdempotencyKey{
		Subject: call.Caller, Key: call.Key, RequestHash: call.Hash, Response: []byte{},
	})
	if err != nil {
		return zero, false, err
	}
	if prior != nil {
		if !bytes.Equal(prior.RequestHash, call.Hash) {
			return zero, false, ErrIdempotencyKeyReused
		}
		if err := proto.Unmarshal(prior.Response, resp); err != nil {
			return zero, false, fmt.Errorf("decode stored response: %w", err)
		}
		return resp, true, nil
	}
	out, err := do()
	if err != nil {
		return zero, false, err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(out)
	if err != nil {
		return zero, false, err
	}
	if err := store.SaveIdempotencyResponse(ctx, tx, call.Caller, call.Key, b); err != nil {
		return zero, false, err
	}
	return out, false, nil
}

// RequestHash identifies a request for idempotency: the procedure and the deterministic
// encoding of the request with its idempotency key cleared (clear is called on a copy).
func RequestHash[T proto.Message](procedure string, req T, clear func(T)) ([]byte, error) {
	c := proto.Clone(req).(T)
	clear(c)
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write([]byte(procedure))
	h.Write([]byte{0})
	h.Write(b)
	return h.Sum(nil), nil
}

// Idempotency keys are kept for a retention period and then pruned: the stored responses hold
// PHI (names, contact details), which must not outlive their use. A repeat of a call after its
// key was pruned runs as a new call.
const (
	DefaultIdempotencyRetention = 30 * 24 * time.Hour
	// MinIdempotencyRetention: clients may retry a call for a day (an offline device, a queue).
	MinIdempotencyRetention = 24 * time.Hour
	// PruneInterval is how often RunIdempotencyPruner prunes.
	PruneInterval = time.Hour
	pruneBatch    = 1000 // keys deleted per transaction, so no prune holds locks for long
)

// PruneIdempotencyKeys deletes the idempotency keys older than retention (created before now
// minus retention), a batch per transaction, and returns how many it deleted.
func (s *Intake) PruneIdempotencyKeys(ctx context.Context, retention time.Duration) (int64, error) {
	before := s.now().Add(-retention)
	var total int64
	for {
		var n int64
		err := s.tx.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
			var err error
			n, err = s.repo.PruneIdempotencyKeys(ctx, tx, before, pruneBatch)
			return err
		})
		total += n
		if err != nil || n < pruneBatch {
			return total, err
		}
	}
}

// RunIdempotencyPruner prunes the idempotency keys older than retention at once and then every
// interval, until ctx ends (a platform worker: see service.Platform.Go). A failed prune is
// logged and tried again at the next interval; it never stops the service.
func (s *Intake) RunIdempotencyPruner(ctx context.Context, retention, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := s.PruneIdempotencyKeys(ctx, retention)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			s.log.ErrorContext(ctx, "pruning idempotency keys failed", "error", err, "pruned", n)
		case n > 0:
			s.log.InfoContext(ctx, "idempotency keys pruned", "pruned", n, "retention", retention.String())
		default:
			s.log.DebugContext(ctx, "idempotency keys pruned", "pruned", n, "retention", retention.String())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
