// Package auth verifies bearer tokens (OpenID Connect JWTs against a JWKS URL, or a local dev
// signing key) and carries the caller's identity: subject, roles and the clinics they may see.
package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// AllClinics in a token's clinics claim grants every clinic (network operators, services).
const AllClinics = "*"

// Principal is an authenticated caller.
type Principal struct {
	Subject string
	Roles   []string
	Clinics []string
}

// HasRole reports whether p holds any of roles.
func (p *Principal) HasRole(roles ...string) bool {
	for _, r := range roles {
		if slices.Contains(p.Roles, r) {
			return true
		}
	}
	return false
}

// CanSeeClinic reports whether p may act on clinicID.
func (p *Principal) CanSeeClinic(clinicID string) bool {
	return slices.Contains(p.Clinics, AllClinics) || slices.Contains(p.Clinics, clinicID)
}

// Claims is the token shape Trellis reads.
type Claims struct {
	jwt.RegisteredClaims
	Roles   []string `json:"roles"`
	Clinics []string `json:"clinics"`
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the caller in ctx, or nil.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// ErrInvalidToken is returned for any token that does not verify; the detail is deliberately
// not passed to the caller.
var ErrInvalidToken = errors.New("auth: invalid token")

// Verifier checks a raw bearer token.
type Verifier struct {
	issuer   string
	audience string
	keyfunc  jwt.Keyfunc
	methods  []string
}

// NewDevVerifier verifies HS256 tokens signed with a shared dev key (local stack and tests
// only; the services refuse it unless dev mode is on).
func NewDevVerifier(key []byte, issuer, audience string) *Verifier {
	return &Verifier{issuer: issuer, audience: audience, methods: []string{"HS256"},
		keyfunc: func(*jwt.Token) (any, error) { return key, nil }}
}

// NewJWKSVerifier verifies tokens signed by an OpenID Connect issuer whose keys are published at
// jwksURL. Keys are cached and refetched (at most every 30 s) when a token names an unknown
// key id, so key rotation needs no restart.
func NewJWKSVerifier(jwksURL, issuer, audience string, client *http.Client) *Verifier {
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	ks := &jwks{url: jwksURL, client: client}
	return &Verifier{issuer: issuer, audience: audience, keyfunc: ks.keyfunc,
		methods: []string{"RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA", "PS256"}}
}

// Verify parses and checks the token: signature (with one of the verifier's algorithms only:
// never "none", never HS256 for a JWKS verifier), expiry (required), not-before and issued-at
// (30 s leeway for clock skew), issuer and audience when configured, and a subject.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Principal, error) {
	opts := []jwt.ParserOption{jwt.WithValidMethods(v.methods), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithLeeway(30 * time.Second)}
	if v.issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.issuer))
	}
	if v.audience != "" {
		opts = append(opts, jwt.WithAudience(v.audience))
	}
	var c Claims
	if _, err := jwt.ParseWithClaims(raw, &c, v.keyfunc, opts...); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if c.Subject == "" {
		return nil, fmt.Errorf("%w: no subject", ErrInvalidToken)
	}
	return &Principal{Subject: c.Subject, Roles: c.Roles, Clinics: c.Clinics}, nil
}

// MintDev signs a dev token (HS256) for subject with roles and clinics, valid for ttl.
func MintDev(key []byte, issuer, audience, subject string, roles, clinics []string, ttl time.Duration) (string, error) {
	now := time.Now()
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: issuer, Subject: subject, IssuedAt: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Roles: roles, Clinics: clinics,
	}
	if audience != "" {
		c.Audience = jwt.ClaimStrings{audience}
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(key)
}

type jwks struct {
	url     string
	client  *http.Client
	now     func() time.Time // the clock (tests move it); nil: time.Now
	mu      sync.RWMutex     // guards keys, tried and fetched
	keys    map[string]any
	tried   time.Time  // last fetch attempt, successful or not
	fetched time.Time  // last successful fetch
	fetchMu sync.Mutex // one fetch at a time
}

// refetchEvery bounds how often an unknown key id (or a failing issuer) causes a fetch.
const refetchEvery = 30 * time.Second

// keysMaxAge is how long fetched keys are used before the next token refreshes them, so that a
// key the issuer withdraws (rotated out or revoked) stops verifying within this time even when
// no token names an unknown key. While the issuer cannot be reached the last keys stay in use.
const keysMaxAge = 10 * time.Minute

func (k *jwks) clock() time.Time {
	if k.now != nil {
		return k.now()
	}
	return time.Now()
}

// lookup returns the cached key for kid, whether the cache wants a refresh (the key id is
// unknown, or the keys are older than keysMaxAge) and whether a fetch was tried too recently
// for another.
func (k *jwks) lookup(kid string) (key any, ok, wantFetch, recent bool) {
	now := k.clock()
	k.mu.RLock()
	defer k.mu.RUnlock()
	key, ok = k.keys[kid]
	return key, ok, !ok || now.Sub(k.fetched) >= keysMaxAge, now.Sub(k.tried) < refetchEvery
}

func (k *jwks) keyfunc(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	key, ok, wantFetch, recent := k.lookup(kid)
	if ok && (!wantFetch || recent) {
		return key, nil // the common case never waits for a fetch
	}
	if !ok && recent {
		return nil, fmt.Errorf("unknown key id %q", kid)
	}
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	key, ok, wantFetch, recent = k.lookup(kid)
	if ok && (!wantFetch || recent) {
		return key, nil // another caller fetched meanwhile
	}
	if !ok && recent {
		return nil, fmt.Errorf("unknown key id %q", kid)
	}
	keys, err := k.refresh()
	now := k.clock()
	k.mu.Lock()
	k.tried = now // failures count too: a down issuer is not hammered
	if err == nil {
		k.keys, k.fetched = keys, now
	}
	k.mu.Unlock()
	if err != nil {
		if ok {
			return key, nil // the issuer is unreachable: keep verifying with the last keys
		}
		return nil, err
	}
	if key, ok := keys[kid]; ok {
		return key, nil
	}
	return nil, fmt.Errorf("unknown key id %q", kid)
}

func (k *jwks) refresh() (map[string]any, error) {
	resp, err := k.client.Get(k.url)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch jwks: status %d", resp.StatusCode)
	}
	var set struct {
		Keys []struct {
			Kty, Kid, Crv, N, E, X, Y string
		} `json:"keys"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("decode jwks: %w", err)
	}
	keys := map[string]any{}
	for _, j := range set.Keys {
		switch j.Kty {
		case "RSA":
			n, e := b64int(j.N), b64int(j.E)
			if n != nil && e != nil {
				keys[j.Kid] = &rsa.PublicKey{N: n, E: int(e.Int64())}
			}
		case "EC":
			crv := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384()}[j.Crv]
			if crv == nil {
				continue
			}
			// RFC 7518: x and y are full-length big-endian coordinates; the parser also checks
			// that the point is on the curve.
			size := (crv.Params().BitSize + 7) / 8
			x, errX := base64.RawURLEncoding.DecodeString(j.X)
			y, errY := base64.RawURLEncoding.DecodeString(j.Y)
			if errX != nil || errY != nil || len(x) != size || len(y) != size {
				continue
			}
			if pub, err := ecdsa.ParseUncompressedPublicKey(crv, append(append([]byte{4}, x...), y...)); err == nil {
				keys[j.Kid] = pub
			}
		case "OKP":
			if b, err := base64.RawURLEncoding.DecodeString(j.X); err == nil && j.Crv == "Ed25519" {
				keys[j.Kid] = ed25519.PublicKey(b)
			}
		}
	}
	return keys, nil
}

func b64int(s string) *big.Int {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil
	}
	return new(big.Int).SetBytes(b)
}
