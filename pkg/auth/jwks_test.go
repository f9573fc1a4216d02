package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fakeClock is a clock tests move forward.
type fakeClock struct{ offset atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *fakeClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// clockedJWKSVerifier is NewJWKSVerifier whose key cache runs on clock.
func clockedJWKSVerifier(url string, clock *fakeClock) *Verifier {
	v := NewJWKSVerifier(url, "https://idp.example", "trellis", nil)
	ks := &jwks{url: url, client: &http.Client{Timeout: 5 * time.Second}, now: clock.now}
	v.keyfunc = ks.keyfunc
	return v
}

// claimsToken signs c with m under kid (none: no kid header).
func claimsToken(t *testing.T, m jwt.SigningMethod, kid string, key any, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func goodClaims() Claims {
	now := time.Now()
	return Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "u1", Issuer: "https://idp.example",
		Audience: jwt.ClaimStrings{"trellis"}, IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute))}, Roles: []string{"billing"}, Clinics: []string{"c1"}}
}

// TestJWKSVerifierRejects: a JWKS verifier accepts a well-formed token signed by a published
// key, and refuses every token that is not exactly that.
func TestJWKSVerifierRejects(t *testing.T) {
	ctx := context.Background()
	k1, _ := rsa.GenerateKey(rand.Reader, 2048)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	raw, _ := ec.PublicKey.Bytes()
	srv := newJWKSServer(t)
	srv.serve(rsaJWK("k1", &k1.PublicKey), map[string]string{"kty": "EC", "kid": "ec1", "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:])})
	v := NewJWKSVerifier(srv.URL, "https://idp.example", "trellis", nil)
	if _, err := v.Verify(ctx, claimsToken(t, jwt.SigningMethodRS256, "k1", k1, goodClaims())); err != nil {
		t.Fatalf("a good token: %v", err)
	}
	with := func(edit func(*Claims)) Claims { c := goodClaims(); edit(&c); return c }
	later := func(d time.Duration) *jwt.NumericDate { return jwt.NewNumericDate(time.Now().Add(d)) }
	for name, tok := range map[string]string{
		"wrong audience":          claimsToken(t, jwt.SigningMethodRS256, "k1", k1, with(func(c *Claims) { c.Audience = jwt.ClaimStrings{"billing-api"} })),
		"no audience":             claimsToken(t, jwt.SigningMethodRS256, "k1", k1, with(func(c *Claims) { c.Audience = nil })),
		"wrong issuer":            claimsToken(t, jwt.SigningMethodRS256, "k1", k1, with(func(c *Claims) { c.Issuer = "https://evil.example" })),
		"expired":                 claimsToken(t, jwt.SigningMethodRS256, "k1", k1, with(func(c *Claims) { c.ExpiresAt = later(-2 * time.Minute) })),
		"no expiry":               claimsToken(t, jwt.SigningMethodRS256, "k1", k1, with(func(c *Claims) { c.ExpiresAt = nil })),
		"not yet valid":           claimsToken(t, jwt.SigningMethodRS256, "k1", k1, with(func(c *Claims) { c.NotBefore = later(5 * time.Minute) })),
		"issued in the future":    claimsToken(t, jwt.SigningMethodRS256, "k1", k1, with(func(c *Claims) { c.IssuedAt = later(5 * time.Minute) })),
		"no subject":              claimsToken(t, jwt.SigningMethodRS256, "k1", k1, with(func(c *Claims) { c.Subject = "" })),
		"alg none":                claimsToken(t, jwt.SigningMethodNone, "k1", jwt.UnsafeAllowNoneSignatureType, goodClaims()),
		"alg none without kid":    claimsToken(t, jwt.SigningMethodNone, "", jwt.UnsafeAllowNoneSignatureType, goodClaims()),
		"HS256 with a secret":     claimsToken(t, jwt.SigningMethodHS256, "k1", []byte("a-shared-secret-a-shared-secret!"), goodClaims()),
		"HS256 without kid":       claimsToken(t, jwt.SigningMethodHS256, "", []byte("a-shared-secret-a-shared-secret!"), goodClaims()),
		"HS256 keyed by the n":    claimsToken(t, jwt.SigningMethodHS256, "k1", k1.PublicKey.N.Bytes(), goodClaims()),
		"RS256 naming an EC key":  claimsToken(t, jwt.SigningMethodRS256, "ec1", k1, goodClaims()),
		"ES256 naming an RSA key": claimsToken(t, jwt.SigningMethodES256, "k1", ec, goodClaims()),
		"unknown key id":          claimsToken(t, jwt.SigningMethodRS256, "k9", k1, goodClaims()),
		"no key id":               claimsToken(t, jwt.SigningMethodRS256, "", k1, goodClaims()),
		"tampered":                claimsToken(t, jwt.SigningMethodRS256, "k1", k1, goodClaims()) + "A",
	} {
		if p, err := v.Verify(ctx, tok); !errors.Is(err, ErrInvalidToken) || p != nil {
			t.Errorf("%s: principal %v, err %v; want ErrInvalidToken", name, p, err)
		}
	}
	// Within the 30 s leeway, clock skew between hosts is tolerated.
	skewed := with(func(c *Claims) { c.ExpiresAt = later(-10 * time.Second); c.IssuedAt = later(10 * time.Second) })
	if _, err := v.Verify(ctx, claimsToken(t, jwt.SigningMethodRS256, "k1", k1, skewed)); err != nil {
		t.Fatalf("a token inside the leeway: %v", err)
	}
}

// TestJWKSKeyRotationWithoutRestart: the issuer publishes a new key and signs with it; the
// running verifier accepts it after at most 30 s, a burst of tokens naming unknown key ids
// causes at most one fetch per 30 s, and a key the issuer withdraws stops verifying within
// keysMaxAge (while an unreachable issuer does not lock everyone out).
func TestJWKSKeyRotationWithoutRestart(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{}
	k1, _ := rsa.GenerateKey(rand.Reader, 2048)
	k2, _ := rsa.GenerateKey(rand.Reader, 2048)
	srv := newJWKSServer(t)
	srv.serve(rsaJWK("k1", &k1.PublicKey))
	v := clockedJWKSVerifier(srv.URL, clock)
	tok1 := claimsToken(t, jwt.SigningMethodRS256, "k1", k1, goodClaims())
	tok2 := claimsToken(t, jwt.SigningMethodRS256, "k2", k2, goodClaims())
	verify := func(tok string) error { _, err := v.Verify(ctx, tok); return err }
	wantFetches := func(n int32, when string) {
		t.Helper()
		if got := srv.fetches.Load(); got != n {
			t.Fatalf("%s: %d JWKS fetches, want %d", when, got, n)
		}
	}
	burst := func(tok string) (accepted int32) {
		var wg sync.WaitGroup
		var ok atomic.Int32
		for range 20 {
			wg.Go(func() {
				if verify(tok) == nil {
					ok.Add(1)
				}
			})
		}
		wg.Wait()
		return ok.Load()
	}

	if err := verify(tok1); err != nil {
		t.Fatal(err)
	}
	wantFetches(1, "first token")

	// Rotation: the issuer publishes k2 next to k1 and starts signing with it.
	srv.serve(rsaJWK("k1", &k1.PublicKey), rsaJWK("k2", &k2.PublicKey))
	clock.advance(10 * time.Second)
	if n := burst(tok2); n != 0 {
		t.Fatalf("%d k2 tokens accepted 10 s after the last fetch, want 0 (at most one fetch per 30 s)", n)
	}
	wantFetches(1, "a burst of unknown key ids within 30 s of a fetch")
	clock.advance(21 * time.Second)
	if n := burst(tok2); n != 20 {
		t.Fatalf("%d of 20 k2 tokens accepted 31 s after the last fetch, want all", n)
	}
	wantFetches(2, "a burst of the new key id after 30 s")
	if err := verify(tok1); err != nil {
		t.Fatalf("k1, still published: %v", err)
	}
	// Tokens naming key ids nobody published: one fetch per 30 s however many arrive.
	bogus := claimsToken(t, jwt.SigningMethodRS256, "k-bogus", k1, goodClaims())
	clock.advance(31 * time.Second)
	for range 3 {
		if n := burst(bogus); n != 0 {
			t.Fatalf("%d tokens with an unpublished key id accepted", n)
		}
	}
	wantFetches(3, "60 tokens with an unpublished key id")

	// The issuer withdraws k1: it keeps verifying until the keys are keysMaxAge old, then not.
	srv.serve(rsaJWK("k2", &k2.PublicKey))
	clock.advance(keysMaxAge - time.Minute)
	if err := verify(tok1); err != nil {
		t.Fatalf("k1 before the keys are %s old: %v", keysMaxAge, err)
	}
	wantFetches(3, "known key ids within keysMaxAge")
	clock.advance(2 * time.Minute)
	if err := verify(tok1); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("withdrawn k1 after %s: %v, want ErrInvalidToken", keysMaxAge, err)
	}
	wantFetches(4, "the refresh of old keys")
	if err := verify(tok2); err != nil {
		t.Fatalf("k2: %v", err)
	}

	// The issuer goes down: the last keys keep verifying, and it is asked at most every 30 s.
	srv.mu.Lock()
	srv.doc = []byte("not json")
	srv.mu.Unlock()
	clock.advance(keysMaxAge + time.Minute)
	if n := burst(tok2); n != 20 {
		t.Fatalf("%d of 20 k2 tokens accepted while the issuer is down, want all (last keys kept)", n)
	}
	wantFetches(5, "old keys while the issuer is down")
}
