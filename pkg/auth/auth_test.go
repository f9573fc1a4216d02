package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var devKey = []byte("dev-key-for-tests-0123456789abcdef")

func TestMintDevVerifyRoundTrip(t *testing.T) {
	tok, err := MintDev(devKey, "trellis-dev", "trellis", "user-1", []string{"intake"}, []string{"c1", "c2"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewDevVerifier(devKey, "trellis-dev", "trellis").Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "user-1" || !p.HasRole("billing", "intake") || p.HasRole("admin") ||
		!p.CanSeeClinic("c2") || p.CanSeeClinic("c3") {
		t.Fatalf("principal %+v", p)
	}
	ctx := WithPrincipal(context.Background(), p)
	if PrincipalFrom(ctx) != p || PrincipalFrom(context.Background()) != nil {
		t.Fatal("principal not carried in context")
	}
	all := &Principal{Clinics: []string{AllClinics}}
	if !all.CanSeeClinic("anything") {
		t.Fatal("the * clinic grants every clinic")
	}
}

func TestDevVerifierRejects(t *testing.T) {
	v := NewDevVerifier(devKey, "trellis-dev", "trellis")
	mint := func(key []byte, iss, aud, sub string, ttl time.Duration) string {
		tok, err := MintDev(key, iss, aud, sub, []string{"admin"}, []string{AllClinics}, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsTok, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{Subject: "x", Issuer: "trellis-dev",
		Audience: jwt.ClaimStrings{"trellis"}, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Minute))}).SignedString(rsaKey)
	noneTok, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.RegisteredClaims{Subject: "x", Issuer: "trellis-dev",
		Audience: jwt.ClaimStrings{"trellis"}, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Minute))}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: "x", Issuer: "trellis-dev",
		Audience: jwt.ClaimStrings{"trellis"}}).SignedString(devKey)
	for name, tok := range map[string]string{
		"expired":            mint(devKey, "trellis-dev", "trellis", "u", -2*time.Minute),
		"wrong key":          mint([]byte("another-key-another-key-another!!"), "trellis-dev", "trellis", "u", time.Minute),
		"wrong audience":     mint(devKey, "trellis-dev", "billing-api", "u", time.Minute),
		"no audience":        mint(devKey, "trellis-dev", "", "u", time.Minute),
		"wrong issuer":       mint(devKey, "someone-else", "trellis", "u", time.Minute),
		"no subject":         mint(devKey, "trellis-dev", "trellis", "", time.Minute),
		"no expiry":          noExp,
		"RS256 to dev":       rsTok,
		"alg none":           noneTok,
		"garbage":            "not.a.token",
		"empty":              "",
		"tampered signature": mint(devKey, "trellis-dev", "trellis", "u", time.Minute) + "x",
	} {
		if p, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrInvalidToken) || p != nil {
			t.Errorf("%s: principal %v err %v, want ErrInvalidToken", name, p, err)
		}
	}
	// Within the 30s leeway an just-expired token still passes (clock skew between hosts).
	if _, err := v.Verify(context.Background(), mint(devKey, "trellis-dev", "trellis", "u", -10*time.Second)); err != nil {
		t.Fatalf("token inside leeway: %v", err)
	}
}

// jwksServer serves a JWKS document that the test can replace, counting fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	doc     []byte
	fetches atomic.Int32
}

func newJWKSServer(t *testing.T) *jwksServer {
	s := &jwksServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.doc)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(keys ...map[string]string) {
	doc, _ := json.Marshal(map[string]any{"keys": keys})
	s.mu.Lock()
	s.doc = doc
	s.mu.Unlock()
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, k *rsa.PublicKey) map[string]string {
	return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
}

func signed(t *testing.T, m jwt.SigningMethod, kid string, key any, iss, aud string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, Claims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: "svc-user", Issuer: iss, Audience: jwt.ClaimStrings{aud},
			ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Minute))},
		Roles: []string{"billing"}, Clinics: []string{"c1"},
	})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jwksVerifier is NewJWKSVerifier with a handle on its key cache, so tests can age it.
func jwksVerifier(url string) (*Verifier, *jwks) {
	v := NewJWKSVerifier(url, "https://idp.example", "trellis", nil)
	ks := &jwks{url: url, client: &http.Client{Timeout: 5 * time.Second}}
	v.keyfunc = ks.keyfunc
	return v, ks
}

func TestJWKSVerifierAndKeyRotation(t *testing.T) {
	ctx := context.Background()
	k1, _ := rsa.GenerateKey(rand.Reader, 2048)
	k2, _ := rsa.GenerateKey(rand.Reader, 2048)
	srv := newJWKSServer(t)
	srv.serve(rsaJWK("k1", &k1.PublicKey))
	v, ks := jwksVerifier(srv.URL)

	p, err := v.Verify(ctx, signed(t, jwt.SigningMethodRS256, "k1", k1, "https://idp.example", "trellis"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "svc-user" || !p.HasRole("billing") || !p.CanSeeClinic("c1") {
		t.Fatalf("principal %+v", p)
	}
	if _, err := v.Verify(ctx, signed(t, jwt.SigningMethodRS256, "k1", k1, "https://idp.example", "trellis")); err != nil {
		t.Fatal(err)
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches, want 1 (keys are cached)", n)
	}
	for name, tok := range map[string]string{
		"wrong issuer":   signed(t, jwt.SigningMethodRS256, "k1", k1, "https://evil.example", "trellis"),
		"wrong audience": signed(t, jwt.SigningMethodRS256, "k1", k1, "https://idp.example", "other"),
		"wrong key":      signed(t, jwt.SigningMethodRS256, "k1", k2, "https://idp.example", "trellis"),
		// Algorithm confusion: an HMAC token keyed with the public key must not verify.
		"HS256 with the public key": signed(t, jwt.SigningMethodHS256, "k1", k1.PublicKey.N.Bytes(), "https://idp.example", "trellis"),
	} {
		if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: err %v, want ErrInvalidToken", name, err)
		}
	}

	// The issuer rotates to k2. Right after a fetch an unknown key id is refused without
	// hammering the issuer (at most one fetch per 30s)...
	srv.serve(rsaJWK("k2", &k2.PublicKey))
	tok2 := signed(t, jwt.SigningMethodRS256, "k2", k2, "https://idp.example", "trellis")
	if _, err := v.Verify(ctx, tok2); err == nil || !strings.Contains(err.Error(), `unknown key id "k2"`) {
		t.Fatalf("err %v, want unknown key id while the cache is fresh", err)
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want still 1", n)
	}
	// ...and once the cache is older than that, the unknown key id triggers a refresh.
	ks.mu.Lock()
	ks.tried = time.Now().Add(-31 * time.Second)
	ks.mu.Unlock()
	if _, err := v.Verify(ctx, tok2); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	// The retired key is gone with the refresh.
	if _, err := v.Verify(ctx, signed(t, jwt.SigningMethodRS256, "k1", k1, "https://idp.example", "trellis")); err == nil {
		t.Fatal("a token signed with the retired key still verifies")
	}
}

func TestJWKSVerifierECAndEdDSAKeys(t *testing.T) {
	ctx := context.Background()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	raw, err := ec.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	srv := newJWKSServer(t)
	srv.serve(
		map[string]string{"kty": "EC", "kid": "ec1", "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:])},
		// Malformed and unsupported keys are skipped, not fatal.
		map[string]string{"kty": "EC", "kid": "short", "crv": "P-256", "x": b64(raw[1:20]), "y": b64(raw[33:])},
		map[string]string{"kty": "EC", "kid": "offcurve", "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[1:33])},
		map[string]string{"kty": "EC", "kid": "p521", "crv": "P-521", "x": "AA", "y": "AA"},
		map[string]string{"kty": "oct", "kid": "sym", "k": "c2VjcmV0"},
		map[string]string{"kty": "OKP", "kid": "ed1", "crv": "Ed25519", "x": b64(edPub)},
	)
	v := NewJWKSVerifier(srv.URL, "https://idp.example", "trellis", nil)
	if _, err := v.Verify(ctx, signed(t, jwt.SigningMethodES256, "ec1", ec, "https://idp.example", "trellis")); err != nil {
		t.Fatalf("ES256: %v", err)
	}
	if _, err := v.Verify(ctx, signed(t, jwt.SigningMethodEdDSA, "ed1", edPriv, "https://idp.example", "trellis")); err != nil {
		t.Fatalf("EdDSA: %v", err)
	}
	for _, kid := range []string{"short", "offcurve", "sym"} {
		if _, err := v.Verify(ctx, signed(t, jwt.SigningMethodES256, kid, ec, "https://idp.example", "trellis")); err == nil {
			t.Errorf("kid %s: a malformed key was accepted", kid)
		}
	}
}

func TestJWKSVerifierIssuerDown(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer srv.Close()
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	v := NewJWKSVerifier(srv.URL, "", "", nil)
	if _, err := v.Verify(context.Background(), signed(t, jwt.SigningMethodRS256, "k", k, "i", "a")); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("err %v", err)
	}
}

// While the issuer is down, failed fetches are rate-limited too: a burst of tokens with an
// unknown key id causes one fetch, not one each.
func TestJWKSDownIssuerIsNotHammered(t *testing.T) {
	var fetches atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	v := NewJWKSVerifier(srv.URL, "https://idp.example", "trellis", nil)
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tok := signed(t, jwt.SigningMethodRS256, "k1", k, "https://idp.example", "trellis")
	for range 5 {
		if _, err := v.Verify(context.Background(), tok); err == nil {
			t.Fatal("verified a token while the issuer is down")
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for 5 tokens, want 1", n)
	}
}
