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

// Once runs a call at most once per (caller, key), inside tx. A new key runs do and stores its
// response with the key, in the same transaction (so a failed call leaves no key behind and
// may be retried with it). A repeated key with the same request returns the first response in
// resp and replayed=true without running do; with a different request it fails with
// ErrKeyReused. The key is claimed before do runs, so a replay never fails because the world
// has changed since the first call.
func Once[T proto.Message](ctx context.Context, tx pgx.Tx, store Store, call Call, resp T, do func() (T, error)) (T, bool, error) {
	var zero T
	prior, err := store.ClaimIdempotencyKey(ctx, tx, Key{
		Subject: call.Caller, Key: call.Key, RequestHash: call.Hash, Response: []byte{},
	})
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
