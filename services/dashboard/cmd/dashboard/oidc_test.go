package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	"github.com/trellis-health/trellis/services/dashboard/internal/web"

	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"
)

const (
	oidcClientID     = "trellis-dashboard"
	oidcClientSecret = "client-secret-for-tests"
	sessionKey       = "session-key-for-tests-0123456789abcdef"
	// dashboardHost is the dashboard's name in the redirect URL; the test's client dials the
	// real address for it (the port is only known once the service listens).
	dashboardHost = "dashboard.test"
	redirectURL   = "http://" + dashboardHost + "/auth/callback"
)

// testIssuer is a small OpenID Connect issuer: discovery, JWKS, /authorize (signs the next
// user in at once) and /token (authorization code with PKCE S256).
type testIssuer struct {
	*httptest.Server
	t   *testing.T
	key *rsa.PrivateKey

	mu    sync.Mutex
	user  jwt.MapClaims                // claims of whoever signs in next
	tweak func(claims jwt.MapClaims)   // changes the ID token (a bad nonce, audience, ...)
	codes map[string]map[string]string // code -> challenge, nonce, redirect_uri
	// accessTokens are the access tokens issued, in order.
	accessTokens []string

	pkceRejected atomic.Int32 // token requests whose code_verifier did not match the challenge
}

func newTestIssuer(t *testing.T) *testIssuer {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &testIssuer{t: t, key: key, codes: map[string]map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer": is.URL, "authorization_endpoint": is.URL + "/authorize", "token_endpoint": is.URL + "/token",
			"jwks_uri": is.URL + "/jwks", "end_session_endpoint": is.URL + "/logout",
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"}, "code_challenge_methods_supported": []string{"S256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		b64 := base64.RawURLEncoding.EncodeToString
		writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]string{{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
			"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes())}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != oidcClientID || q.Get("response_type") != "code" || q.Get("redirect_uri") != redirectURL ||
			q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" ||
			!strings.Contains(" "+q.Get("scope")+" ", " openid ") {
			http.Error(w, "bad authorization request: "+q.Encode(), http.StatusBadRequest)
			return
		}
		code := rand.Text()
		is.mu.Lock()
		is.codes[code] = map[string]string{"challenge": q.Get("code_challenge"), "nonce": q.Get("nonce"), "redirect_uri": q.Get("redirect_uri")}
		is.mu.Unlock()
		http.Redirect(w, r, redirectURL+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
		}
		is.mu.Lock()
		c, found := is.codes[r.PostFormValue("code")]
		delete(is.codes, r.PostFormValue("code")) // a code is good once
		user, tweak := is.user, is.tweak
		is.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		switch {
		case id != oidcClientID || secret != oidcClientSecret:
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
			return
		case r.PostFormValue("grant_type") != "authorization_code" || !found || r.PostFormValue("redirect_uri") != c["redirect_uri"]:
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
			return
		case base64.RawURLEncoding.EncodeToString(sum[:]) != c["challenge"]:
			is.pkceRejected.Add(1)
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "PKCE verification failed"})
			return
		}
		now := time.Now()
		claims := jwt.MapClaims{"iss": is.URL, "aud": oidcClientID, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "nonce": c["nonce"]}
		for k, v := range user {
			claims[k] = v
		}
		if tweak != nil {
			tweak(claims)
		}
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
		tok.Header["kid"] = "k1"
		raw, err := tok.SignedString(key)
		if err != nil {
			t.Error(err)
		}
		at := rand.Text()
		is.mu.Lock()
		is.accessTokens = append(is.accessTokens, at)
		is.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": 300, "id_token": raw})
	})
	is.Server = httptest.NewServer(mux)
	t.Cleanup(is.Close)
	return is
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (is *testIssuer) next(user jwt.MapClaims, tweak func(jwt.MapClaims)) {
	is.mu.Lock()
	is.user, is.tweak = user, tweak
	is.mu.Unlock()
}

// browser is a client with a cookie jar that stops at each redirect, so the test sees every step.
type browser struct {
	t *testing.T
	*http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == dashboardHost+":80" {
			addr = e.Addr
		}
		return dialer.DialContext(ctx, network, addr)
	}}
	return &browser{t: e.t, Client: &http.Client{Jar: jar, Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// get fetches u ("/path" on the dashboard, or an absolute URL).
func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	if strings.HasPrefix(u, "/") {
		u = "http://" + dashboardHost + u
	}
	resp, err := b.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// post sends a form to path on the dashboard.
func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.PostForm("http://"+dashboardHost+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// authorize starts a sign-in at /auth/login and lets the issuer answer: the callback URL.
func (b *browser) authorize(is *testIssuer, next string) *url.URL {
	b.t.Helper()
	resp, _ := b.get("/auth/login?next=" + url.QueryEscape(next))
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), is.URL+"/authorize?") {
		b.t.Fatalf("/auth/login: %d to %s", resp.StatusCode, loc)
	}
	var flowCookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == web.FlowCookieName {
			flowCookie = c
		}
	}
	if flowCookie == nil || !flowCookie.HttpOnly || flowCookie.SameSite != http.SameSiteLaxMode || flowCookie.MaxAge <= 0 || flowCookie.MaxAge > 600 {
		b.t.Errorf("sign-in cookie: %+v", flowCookie)
	}
	resp, body := b.get(loc.String())
	cb, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || cb.Path != "/auth/callback" {
		b.t.Fatalf("issuer /authorize: %d to %s: %s", resp.StatusCode, cb, body)
	}
	return cb
}

// callback delivers the issuer's answer to the dashboard.
func (b *browser) callback(cb *url.URL) (*http.Response, string) {
	b.t.Helper()
	return b.get(cb.RequestURI())
}

func (b *browser) signedIn() bool {
	b.t.Helper()
	resp, _ := b.get("/overview")
	return resp.StatusCode == http.StatusOK
}

func startOIDC(t *testing.T) (*env, *testIssuer) {
	t.Helper()
	is := newTestIssuer(t)
	var cfg Config
	svc := servicetest.Start(t, newSpec(&cfg), &cfg, map[string]string{
		// As in production: the platform verifies the issuer's access tokens (AUTH_JWKS_URL).
		"AUTH_DEV_MODE": "false", "AUTH_DEV_KEY": "", "AUTH_JWKS_URL": is.URL + "/jwks", "AUTH_ISSUER": is.URL,
		"OIDC_ISSUER": is.URL, "OIDC_CLIENT_ID": oidcClientID, "OIDC_CLIENT_SECRET": oidcClientSecret,
		"OIDC_REDIRECT_URL": redirectURL, "DASHBOARD_SESSION_KEY": sessionKey,
	})
	systemScoped(t, svc)
	return &env{Service: svc, t: t}, is
}

func TestOIDCSignIn(t *testing.T) {
	e, is := startOIDC(t)
	e.feed(time.Now().UTC())
	operatorOfA := jwt.MapClaims{"sub": "idp-user-1", "roles": []string{"operator", "clinician"}, "clinics": []string{clinicA}}

	// The sign-in page offers the organization's sign-in only (no dev form without dev mode).
	b := e.browser()
	resp, _ := b.get("/clinics/" + clinicA)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin?next="+url.QueryEscape("/clinics/"+clinicA) {
		t.Fatalf("signed out: %d to %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page := b.get(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="signin-oidc"`) ||
		!strings.Contains(page, `href="/auth/login?next=%2Fclinics%2F`+clinicA+`"`) || strings.Contains(page, `id="role"`) {
		t.Fatalf("sign-in page: %d %s", resp.StatusCode, page)
	}

	t.Run("success, scoped to the user's clinics", func(t *testing.T) {
		is.next(operatorOfA, nil)
		b := e.browser()
		resp, body := b.callback(b.authorize(is, "/clinics/"+clinicA))
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/clinics/"+clinicA {
			t.Fatalf("callback: %d to %s: %s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
		var session *http.Cookie
		for _, c := range resp.Cookies() {
			switch c.Name {
			case web.CookieName:
				session = c
			case web.FlowCookieName:
				if c.MaxAge >= 0 {
					t.Errorf("the sign-in cookie is not cleared: %+v", c)
				}
			}
		}
		if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/" {
			t.Fatalf("session cookie: %+v", session)
		}
		p, err := web.SessionVerifier(sessionKey).Verify(context.Background(), session.Value)
		if err != nil || p.Subject != "idp-user-1" || len(p.Roles) != 1 || p.Roles[0] != "operator" || len(p.Clinics) != 1 {
			t.Errorf("session: %+v %v", p, err)
		}
		if resp, _ := b.get("/clinics/" + clinicA); resp.StatusCode != http.StatusOK {
			t.Errorf("clinic A after sign-in: %d", resp.StatusCode)
		}
		if resp, _ := b.get("/clinics/" + clinicB); resp.StatusCode != http.StatusNotFound {
			t.Errorf("clinic B: %d, want 404", resp.StatusCode)
		}
		resp, body = b.get("/api/overview.json")
		var o web.Overview
		if err := json.Unmarshal([]byte(body), &o); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("overview: %d %v", resp.StatusCode, err)
		}
		if len(o.Clinics) != 1 || o.Clinics[0].ClinicID != clinicA {
			t.Errorf("a user of clinic A sees %+v", o.Clinics)
		}
		// An answer delivered to a browser that did not start the sign-in is refused.
		if resp, _ := e.browser().callback(b.authorize(is, "/overview")); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("a callback in another browser: %d", resp.StatusCode)
		}

		// Sign out (the page's form, with its CSRF token): the session is gone, and the page
		// links to the issuer's end of session.
		_, page := b.get("/overview")
		resp, _ = b.post("/signout", url.Values{"csrf": {csrfOf(t, page)}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin?signed_out=1" {
			t.Errorf("sign out: %d to %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		_, page = b.get("/signin?signed_out=1")
		if !strings.Contains(page, `id="end-session" href="`+is.URL+`/logout?client_id=`+oidcClientID+`"`) {
			t.Errorf("signed-out page has no end-session link: %s", page)
		}
		if b.signedIn() {
			t.Error("still signed in after signing out")
		}
	})

	t.Run("wrong state", func(t *testing.T) {
		is.next(operatorOfA, nil)
		b := e.browser()
		cb := b.authorize(is, "/overview")
		q := cb.Query()
		q.Set("state", "forged")
		cb.RawQuery = q.Encode()
		if resp, _ := b.callback(cb); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("wrong state: %d, want 400", resp.StatusCode)
		}
		if b.signedIn() {
			t.Error("signed in with a wrong state")
		}
	})

	t.Run("code of another sign-in: the PKCE verifier does not match", func(t *testing.T) {
		is.next(operatorOfA, nil)
		victim, attacker := e.browser(), e.browser()
		stolen := attacker.authorize(is, "/overview")
		own := victim.authorize(is, "/overview")
		q := own.Query()
		q.Set("code", stolen.Query().Get("code")) // the victim's state, the attacker's code
		own.RawQuery = q.Encode()
		if resp, _ := victim.callback(own); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("another sign-in's code: %d, want 401", resp.StatusCode)
		}
		if victim.signedIn() {
			t.Error("signed in with another sign-in's code")
		}
		if is.pkceRejected.Load() != 1 {
			t.Error("the issuer did not refuse the verifier")
		}
	})

	for name, tweak := range map[string]func(jwt.MapClaims){
		"nonce mismatch":   func(c jwt.MapClaims) { c["nonce"] = "another-nonce" },
		"no nonce":         func(c jwt.MapClaims) { delete(c, "nonce") },
		"wrong audience":   func(c jwt.MapClaims) { c["aud"] = "another-client" },
		"expired ID token": func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() },
		"wrong issuer":     func(c jwt.MapClaims) { c["iss"] = "https://elsewhere.example" },
	} {
		t.Run(name, func(t *testing.T) {
			is.next(operatorOfA, tweak)
			b := e.browser()
			if resp, _ := b.callback(b.authorize(is, "/overview")); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s: %d, want 401", name, resp.StatusCode)
			}
			if b.signedIn() {
				t.Errorf("signed in despite %s", name)
			}
		})
	}

	t.Run("a user without a dashboard role gets 403", func(t *testing.T) {
		is.next(jwt.MapClaims{"sub": "idp-user-2", "roles": []string{"clinician"}, "clinics": []string{clinicA}}, nil)
		b := e.browser()
		resp, body := b.callback(b.authorize(is, "/overview"))
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "no dashboard role") {
			t.Errorf("no role: %d %s", resp.StatusCode, body)
		}
		if b.signedIn() {
			t.Error("signed in without a role")
		}
	})

	t.Run("expired session", func(t *testing.T) {
		b := e.browser()
		u, _ := url.Parse("http://" + dashboardHost + "/")
		for _, ttl := range []time.Duration{time.Minute, -time.Hour} {
			tok, err := web.MintSession(sessionKey, "idp-user-1", []string{"admin"}, []string{"*"}, ttl)
			if err != nil {
				t.Fatal(err)
			}
			b.Jar.SetCookies(u, []*http.Cookie{{Name: web.CookieName, Value: tok, Path: "/"}})
			resp, _ := b.get("/overview")
			want, to := http.StatusOK, ""
			if ttl < 0 {
				want, to = http.StatusSeeOther, "/signin?next=%2Foverview"
			}
			if resp.StatusCode != want || resp.Header.Get("Location") != to {
				t.Errorf("session for %s: %d to %q", ttl, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
		// A dev token is no session here: dev mode is off.
		dev, err := auth.MintDev([]byte(servicetest.DevKey), "trellis-dev", "trellis", "dev", []string{"admin"}, []string{"*"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if code, _, _ := e.get("/overview", dev); code != http.StatusSeeOther {
			t.Errorf("a dev token without dev mode: %d", code)
		}
	})
}

// After an OIDC sign-in, the calls the dashboard makes to billing for the user carry the
// issuer's access token (which billing verifies against the issuer), never the dashboard's
// own session token.
func TestOIDCUserBillingCallsCarryTheIssuersToken(t *testing.T) {
	is := newTestIssuer(t)
	var cfg Config
	fake := &fakeBilling{cfg: &cfg}
	mux := http.NewServeMux()
	mux.Handle(billingv1connect.NewRemittanceServiceHandler(fake))
	billing := httptest.NewServer(mux)
	t.Cleanup(billing.Close)
	svc := servicetest.Start(t, newSpec(&cfg), &cfg, map[string]string{
		"AUTH_DEV_MODE": "false", "AUTH_DEV_KEY": "", "AUTH_JWKS_URL": is.URL + "/jwks", "AUTH_ISSUER": is.URL,
		"OIDC_ISSUER": is.URL, "OIDC_CLIENT_ID": oidcClientID, "OIDC_CLIENT_SECRET": oidcClientSecret,
		"OIDC_REDIRECT_URL": redirectURL, "DASHBOARD_SESSION_KEY": sessionKey, "BILLING_URL": billing.URL,
	})
	systemScoped(t, svc)
	e := &env{Service: svc, t: t}
	b := e.browser()
	is.next(jwt.MapClaims{"sub": "idp-biller-1", "roles": []string{"billing"}, "clinics": []string{"*"}}, nil)
	if resp, _ := b.callback(b.authorize(is, "/billing")); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback: %d", resp.StatusCode)
	}
	if resp, _ := b.get("/billing"); resp.StatusCode != http.StatusOK {
		t.Fatalf("/billing: %d", resp.StatusCode)
	}
	is.mu.Lock()
	issued := slices.Clone(is.accessTokens)
	is.mu.Unlock()
	seen := fake.sawTokens()
	if len(issued) != 1 || len(seen) == 0 {
		t.Fatalf("issued %d access tokens, billing saw %d calls", len(issued), len(seen))
	}
	for _, h := range seen {
		if h != "Bearer "+issued[0] {
			t.Errorf("billing was called with %.20q..., want the issuer's access token", h)
		}
	}
}
