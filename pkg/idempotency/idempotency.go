// Package idempotency runs a creating call at most once per (caller, key): the first call's
// response is stored with the key, in the call's transaction, and a repeat with the same
// request replays it. It holds the mechanism only; which calls take a key, and how a reused
// key is reported, are the services' business.
package idempotency

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"
)

// ErrKeyReused: the caller already used this idempotency key for a different request.
var ErrKeyReused = errors.New("idempotency key already used for a different request")

// Key is a stored idempotency key with the first call's response.
type Key struct {
	Subject     string // token subject of the caller; keys are scoped per caller
	Key         string
	RequestHash []byte
	Response    []byte
}

// Store keeps idempotency keys and the first response given under each (Postgres implements
// it); every method runs in the caller's transaction.
type Store interface {
	// ClaimIdempotencyKey stores k, or returns the key already stored under (subject, key).
	ClaimIdempotencyKey(ctx context.Context, tx pgx.Tx, k Key) (*Key, error)
	// QueueIdempotencyClaim queues in b what ClaimIdempotencyKey does; result, called in the
	// same transaction once b has been sent and closed, returns what ClaimIdempotencyKey would.
	QueueIdempotencyClaim(b *pgx.Batch, k Key) (result func(ctx context.Context, tx pgx.Tx) (*Key, error))
	// SaveIdempotencyResponse records the response of the call that claimed (subject, key).
	SaveIdempotencyResponse(ctx context.Context, tx pgx.Tx, subject, key string, response []byte) error
}

// Call identifies one call for idempotency: who made it, with which key, and a hash of what
// was asked (see RequestHash).
type Call struct {
	Caller string // token subject: keys are scoped per caller
	Key    string
	Hash   []byte
}

func (c Call) key() Key {
	return Key{Subject: c.Caller, Key: c.Key, RequestHash: c.Hash, Response: []byte{}}
}

// Once runs a call at most once per (caller, key), inside tx. A new key runs do and stores its
// response with the key, in the same transaction (so a failed call leaves no key behind and
// may be retried with it). A repeated key with the same request returns the first response in
// resp and replayed=true without running do; with a different request it fails with
// ErrKeyReused. The key is claimed before do runs, so a replay never fails because the world
// has changed since the first call.
func Once[T proto.Message](ctx context.Context, tx pgx.Tx, store Store, call Call, resp T, do func() (T, error)) (T, bool, error) {
	prior, err := store.ClaimIdempotencyKey(ctx, tx, call.key())
	return run(ctx, tx, store, call, prior, err, resp, do)
}

// Claim is the claim of a call's key sent ahead, in the round trip of the caller's own first
// statements (Queue), for OnceClaimed: a call that checks first whether the caller may see
// the record it names (a lookup that must come before any replay) saves a round trip.
type Claim struct {
	store  Store
	call   Call
	result func(ctx context.Context, tx pgx.Tx) (*Key, error)
}

// NewClaim returns the claim of call's key in store, not sent yet.
func NewClaim(store Store, call Call) *Claim { return &Claim{store: store, call: call} }

// Queue adds the claim to b, after the statements already queued; b must be sent in the
// call's transaction, and closed, before OnceClaimed.
func (c *Claim) Queue(b *pgx.Batch) { c.result = c.store.QueueIdempotencyClaim(b, c.call.key()) }

// OnceClaimed is Once for a claim that was queued and sent (Claim.Queue); a claim that was
// not queued is made here, as Once does. The caller decides what to do before it, such as
// refusing a caller who may not see the record: the claim is then undone with the
// transaction, and nothing stored is handed out.
func OnceClaimed[T proto.Message](ctx context.Context, tx pgx.Tx, c *Claim, resp T, do func() (T, error)) (T, bool, error) {
	if c.result == nil {
		return Once(ctx, tx, c.store, c.call, resp, do)
	}
	prior, err := c.result(ctx, tx)
	return run(ctx, tx, c.store, c.call, prior, err, resp, do)
}

// run finishes Once once the key is claimed (prior nil) or found (prior).
func run[T proto.Message](ctx context.Context, tx pgx.Tx, store Store, call Call, prior *Key, err error, resp T, do func() (T, error)) (T, bool, error) {
	var zero T
	if err != nil {
		return zero, false, err
	}
	if prior != nil {
		if !bytes.Equal(prior.RequestHash, call.Hash) {
			return zero, false, ErrKeyReused
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
