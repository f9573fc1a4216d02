package web

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"github.com/trellis-health/trellis/pkg/auth"
)

// OIDC configures sign-in with an OpenID Connect issuer (authorization code flow with PKCE).
type OIDC struct {
	Issuer       string // discovery: Issuer + "/.well-known/openid-configuration"
	ClientID     string
	ClientSecret string // empty for a public client
	RedirectURL  string // this dashboard's /auth/callback as registered at the issuer
	Scopes       []string
	RolesClaim   string // ID token claim with the user's roles ("roles"; "a.b" reads a nested claim)
	ClinicsClaim string // ID token claim with the user's clinic ids or "*" ("clinics")
	// SessionKey (at least 32 bytes) is the secret the keys that encrypt the sign-in cookie
	// and sign the session are derived from.
	SessionKey string
	SessionTTL time.Duration // how long a session lasts (default SessionTTL)
	HTTPClient *http.Client  // for discovery, keys and the token exchange (default: 10 s timeout)
}

// FlowCookieName is the short-lived cookie that carries one sign-in's state, nonce and PKCE
// verifier (encrypted) from /auth/login to /auth/callback.
const FlowCookieName = "trellis_dashboard_oidc"

// UpstreamCookieName holds, encrypted, the issuer's access token of an OIDC sign-in: the
// dashboard forwards it to the services it calls for the user (billing's work queues), which
// verify it against the issuer's keys. The dashboard's own session token is for the dashboard
// only.
const UpstreamCookieName = "trellis_dashboard_upstream"

// The session an OpenID Connect sign-in ends with is a token of the dashboard's own: HS256,
// signed with a key derived from the session key, with this issuer and audience.
const (
	SessionIssuer   = "trellis-dashboard"
	SessionAudience = "trellis-dashboard-session"
)

const flowTTL = 10 * time.Minute

func deriveKey(secret, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, []byte(secret), nil, "trellis-dashboard "+purpose+" v1", 32)
	if err != nil {
		panic(err) // only for a key length hkdf cannot produce
	}
	return k
}

// SessionVerifier verifies the sessions MintSession signs with secret.
func SessionVerifier(secret string) *auth.Verifier {
	return auth.NewDevVerifier(deriveKey(secret, "session"), SessionIssuer, SessionAudience)
}

// MintSession signs a session for subject with roles and clinics, valid for ttl.
func MintSession(secret, subject string, roles, clinics []string, ttl time.Duration) (string, error) {
	return auth.MintDev(deriveKey(secret, "session"), SessionIssuer, SessionAudience, subject, roles, clinics, ttl)
}

type oidcFlow struct {
	cfg    OIDC
	aead   cipher.AEAD
	client *http.Client
	now    func() time.Time

	mu   sync.Mutex
	prov *oidc.Provider // discovered on first use; a failed discovery is retried next time
}

func newOIDCFlow(cfg OIDC, now func() time.Time) (*oidcFlow, error) {
	switch {
	case cfg.ClientID == "":
		return nil, errors.New("web: OIDC_CLIENT_ID is required with OIDC_ISSUER")
	case len(cfg.SessionKey) < 32:
		return nil, errors.New("web: DASHBOARD_SESSION_KEY of at least 32 bytes is required with OIDC_ISSUER")
	}
	if u, err := url.Parse(cfg.RedirectURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("web: OIDC_REDIRECT_URL %q is not an absolute http(s) URL", cfg.RedirectURL)
	}
	if !slices.Contains(cfg.Scopes, oidc.ScopeOpenID) {
		cfg.Scopes = append([]string{oidc.ScopeOpenID}, cfg.Scopes...)
	}
	if cfg.RolesClaim == "" {
		cfg.RolesClaim = "roles"
	}
	if cfg.ClinicsClaim == "" {
		cfg.ClinicsClaim = "clinics"
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = SessionTTL
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	block, err := aes.NewCipher(deriveKey(cfg.SessionKey, "sign-in flow"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &oidcFlow{cfg: cfg, aead: aead, client: client, now: now}, nil
}

func (o *oidcFlow) ctx(ctx context.Context) context.Context { return oidc.ClientContext(ctx, o.client) }

// provider discovers the issuer once (the key set it returns refreshes itself).
func (o *oidcFlow) provider(ctx context.Context) (*oidc.Provider, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.prov != nil {
		return o.prov, nil
	}
	ctx, cancel := context.WithTimeout(o.ctx(context.WithoutCancel(ctx)), 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(ctx, o.cfg.Issuer)
	if err != nil {
		return nil, err
	}
	o.prov = p
	return p, nil
}

// endSession is the issuer's end_session_endpoint (for a "sign out there too" link), when it
// has been discovered and has one.
func (o *oidcFlow) endSession() string {
	o.mu.Lock()
	p := o.prov
	o.mu.Unlock()
	if p == nil {
		return ""
	}
	var c struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := p.Claims(&c); err != nil || !strings.HasPrefix(c.EndSession, "http") {
		return ""
	}
	u, err := url.Parse(c.EndSession)
	if err != nil {
		return ""
	}
	q := u.Query()
	q.Set("client_id", o.cfg.ClientID)
	u.RawQuery = q.Encode()
	return u.String()
}

func (o *oidcFlow) oauth(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret, RedirectURL: o.cfg.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: o.cfg.Scopes}
}

// flow is what the sign-in cookie carries between /auth/login and /auth/callback.
type flow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"r"`
	Expires  int64  `json:"e"`
}

func (o *oidcFlow) seal(f flow) (string, error) {
	plain, err := json.Marshal(f)
	if err != nil {
		return "", err
	}
	return o.sealBytes(plain, FlowCookieName), nil
}

// sealBytes encrypts plain for a cookie named name (the name is bound as associated data, so
// one cookie's value cannot be replayed as another's).
func (o *oidcFlow) sealBytes(plain []byte, name string) string {
	nonce := make([]byte, o.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(o.aead.Seal(nonce, nonce, plain, []byte(name)))
}

func (o *oidcFlow) openBytes(v, name string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(b) < o.aead.NonceSize() {
		return nil, errors.New("malformed")
	}
	return o.aead.Open(nil, b[:o.aead.NonceSize()], b[o.aead.NonceSize():], []byte(name))
}

// upstream is what the upstream cookie carries: the issuer's access token and its expiry.
type upstream struct {
	AccessToken string `json:"t"`
	Expires     int64  `json:"e"`
}

// upstreamToken returns the issuer's access token of r's OIDC sign-in, or "" when there is
// none (dev sign-in) or it has expired.
func (h *Handler) upstreamToken(r *http.Request) string {
	c, err := r.Cookie(UpstreamCookieName)
	if err != nil || h.oidc == nil {
		return ""
	}
	plain, err := h.oidc.openBytes(c.Value, UpstreamCookieName)
	var u upstream
	if err != nil || json.Unmarshal(plain, &u) != nil || h.oidc.now().Unix() > u.Expires {
		return ""
	}
	return u.AccessToken
}

func (o *oidcFlow) open(v string) (flow, error) {
	var f flow
	plain, err := o.openBytes(v, FlowCookieName)
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(plain, &f); err != nil {
		return f, err
	}
	if o.now().Unix() > f.Expires {
		return f, errors.New("expired")
	}
	return f, nil
}

func (o *oidcFlow) secure(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(o.cfg.RedirectURL, "https://")
}

func (o *oidcFlow) flowCookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: FlowCookieName, Value: value, Path: "/auth/", HttpOnly: true, Secure: o.secure(r),
		SameSite: http.SameSiteLaxMode, MaxAge: maxAge}
}

func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// setupOIDC turns the OpenID Connect sign-in on when configured.
func (h *Handler) setupOIDC() error {
	if h.cfg.OIDC == nil {
		return nil
	}
	o, err := newOIDCFlow(*h.cfg.OIDC, h.cfg.Now)
	if err != nil {
		return err
	}
	h.oidc, h.sessions = o, SessionVerifier(o.cfg.SessionKey)
	return nil
}

func (h *Handler) authFail(w http.ResponseWriter, status int, msg string) {
	h.render(w, "error", status, view{Title: http.StatusText(status), Page: "error", Error: msg})
}

// oidcLogin starts a sign-in: it keeps a fresh state, nonce and PKCE verifier in the sign-in
// cookie and sends the browser to the issuer with the state, the nonce and the S256 challenge.
func (h *Handler) oidcLogin(w http.ResponseWriter, r *http.Request) {
	if h.oidc == nil {
		http.NotFound(w, r)
		return
	}
	p, err := h.oidc.provider(r.Context())
	if err != nil {
		h.cfg.Log.WarnContext(r.Context(), "oidc discovery failed", "issuer", h.oidc.cfg.Issuer, "error", err)
		h.authFail(w, http.StatusBadGateway, "Your organization's sign-in service cannot be reached; try again in a minute.")
		return
	}
	f := flow{State: randomString(), Nonce: randomString(), Verifier: oauth2.GenerateVerifier(),
		Next: safeNext(r.URL.Query().Get("next")), Expires: h.oidc.now().Add(flowTTL).Unix()}
	sealed, err := h.oidc.seal(f)
	if err != nil {
		h.authFail(w, http.StatusInternalServerError, "Sign-in failed; try again.")
		return
	}
	http.SetCookie(w, h.oidc.flowCookie(r, sealed, int(flowTTL.Seconds())))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, h.oidc.oauth(p).AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)), http.StatusFound)
}

var oauthErrorCode = regexp.MustCompile(`^[a-z_]{1,64}$`)

// oidcCallback finishes a sign-in: the state must be the sign-in cookie's, the code is
// exchanged with the PKCE verifier, the ID token must verify (signature, issuer, audience,
// expiry) and carry the cookie's nonce; the user's roles and clinics then go into a session
// of the dashboard's own.
func (h *Handler) oidcCallback(w http.ResponseWriter, r *http.Request) {
	if h.oidc == nil {
		http.NotFound(w, r)
		return
	}
	o, q := h.oidc, r.URL.Query()
	c, err := r.Cookie(FlowCookieName)
	var f flow
	if err == nil {
		f, err = o.open(c.Value)
	}
	http.SetCookie(w, o.flowCookie(r, "", -1)) // one use only
	const again = "This sign-in has expired or is not this browser's; sign in again."
	if err != nil || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1 {
		h.authFail(w, http.StatusBadRequest, again)
		return
	}
	if e := q.Get("error"); e != "" {
		if !oauthErrorCode.MatchString(e) {
			e = "error"
		}
		h.authFail(w, http.StatusUnauthorized, "Your organization's sign-in service did not sign you in ("+e+").")
		return
	}
	if iss := q.Get("iss"); iss != "" && iss != o.cfg.Issuer { // RFC 9207
		h.authFail(w, http.StatusBadRequest, again)
		return
	}
	p, err := o.provider(r.Context())
	if err != nil {
		h.cfg.Log.WarnContext(r.Context(), "oidc discovery failed", "issuer", o.cfg.Issuer, "error", err)
		h.authFail(w, http.StatusBadGateway, "Your organization's sign-in service cannot be reached; try again in a minute.")
		return
	}
	ctx := o.ctx(r.Context())
	tok, err := o.oauth(p).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(f.Verifier))
	if err != nil {
		h.cfg.Log.WarnContext(r.Context(), "oidc code exchange failed", "error", err)
		h.authFail(w, http.StatusUnauthorized, "Sign-in failed: the sign-in service did not accept this sign-in. Sign in again.")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: o.cfg.ClientID, Now: o.now}).Verify(ctx, raw)
	if err == nil && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		err = errors.New("nonce mismatch")
	}
	if err == nil && idt.AccessTokenHash != "" {
		err = idt.VerifyAccessToken(tok.AccessToken)
	}
	var claims map[string]any
	if err == nil {
		err = idt.Claims(&claims)
	}
	if err != nil {
		h.cfg.Log.WarnContext(r.Context(), "oidc id token rejected", "error", err)
		h.authFail(w, http.StatusUnauthorized, "Sign-in failed: the sign-in service's answer did not verify. Sign in again.")
		return
	}
	var roles, clinics []string
	for _, role := range claimStrings(claims, o.cfg.RolesClaim) {
		if slices.Contains(Roles, role) && !slices.Contains(roles, role) {
			roles = append(roles, role)
		}
	}
	for _, id := range claimStrings(claims, o.cfg.ClinicsClaim) {
		if _, err := uuid.Parse(id); (err == nil || id == auth.AllClinics) && !slices.Contains(clinics, id) {
			clinics = append(clinics, id)
		}
	}
	switch {
	case len(roles) == 0:
		h.authFail(w, http.StatusForbidden, fmt.Sprintf("You are signed in at your organization, but your account has no dashboard role "+
			"(one of %s in its %q claim). Ask your administrator for access.", strings.Join(Roles, ", "), o.cfg.RolesClaim))
		return
	case len(clinics) == 0:
		h.authFail(w, http.StatusForbidden, fmt.Sprintf("You are signed in at your organization, but your account has no clinics "+
			"(clinic ids or * in its %q claim). Ask your administrator for access.", o.cfg.ClinicsClaim))
		return
	}
	session, err := MintSession(o.cfg.SessionKey, idt.Subject, roles, clinics, o.cfg.SessionTTL)
	if err != nil {
		h.authFail(w, http.StatusInternalServerError, "Sign-in failed; try again.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: session, Path: "/", HttpOnly: true, Secure: o.secure(r),
		SameSite: http.SameSiteLaxMode, MaxAge: int(o.cfg.SessionTTL.Seconds())})
	if tok.AccessToken != "" {
		expires := o.now().Add(o.cfg.SessionTTL)
		if !tok.Expiry.IsZero() && tok.Expiry.Before(expires) {
			expires = tok.Expiry
		}
		plain, _ := json.Marshal(upstream{AccessToken: tok.AccessToken, Expires: expires.Unix()})
		http.SetCookie(w, &http.Cookie{Name: UpstreamCookieName, Value: o.sealBytes(plain, UpstreamCookieName), Path: "/",
			HttpOnly: true, Secure: o.secure(r), SameSite: http.SameSiteLaxMode, MaxAge: int(time.Until(expires).Seconds())})
	}
	http.Redirect(w, r, f.Next, http.StatusSeeOther)
}

// claimStrings reads a claim holding strings: a JSON array or one string of values separated
// by spaces or commas. A name absent at the top level is tried as a dotted path
// ("realm_access.roles").
func claimStrings(claims map[string]any, name string) []string {
	v, ok := claims[name]
	if !ok {
		var cur any = claims
		for part := range strings.SplitSeq(name, ".") {
			m, isMap := cur.(map[string]any)
			if !isMap {
				return nil
			}
			cur = m[part]
		}
		v = cur
	}
	var out []string
	switch x := v.(type) {
	case string:
		out = strings.FieldsFunc(x, func(r rune) bool { return r == ',' || r == ' ' })
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}
