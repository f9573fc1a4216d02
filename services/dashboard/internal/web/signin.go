package web

import (
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/trellis-health/trellis/pkg/auth"
)

// safeNext keeps a post-sign-in redirect on this site: a path of this site (with its query),
// else /overview. Browsers read a backslash as "/" and drop tabs and line breaks, and http.Redirect
// cleans the path, so "/./\evil.example" or "/%09/evil.example" would leave the site: such bytes
// are refused outright, and the path is judged and sent cleaned (docs/security.md, issue 10).
func safeNext(next string) string {
	const home = "/overview"
	if !strings.HasPrefix(next, "/") || strings.ContainsFunc(next, unsafeInURL) {
		return home
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return home
	}
	// The decoded path: "%5C" or "%09" in it would come back out of Redirect's cleaning.
	if strings.ContainsFunc(u.Path, unsafeInURL) {
		return home
	}
	clean := path.Clean(u.Path)
	if strings.HasSuffix(u.Path, "/") && clean != "/" {
		clean += "/" // as http.Redirect keeps it
	}
	if !strings.HasPrefix(clean, "/") || strings.HasPrefix(clean, "//") ||
		strings.HasPrefix(clean, "/signin") || strings.HasPrefix(clean, "/signout") {
		return home
	}
	u.Path, u.RawPath, u.Fragment, u.RawFragment = clean, "", "", ""
	return u.RequestURI()
}

// unsafeInURL: a backslash, which browsers read as "/", or a control byte, which they drop.
func unsafeInURL(r rune) bool { return r == '\\' || r < 0x20 || r == 0x7f }

// signinChoices is the sign-in page's Data: the ways to sign in besides the dev form.
type signinChoices struct {
	OIDC       bool   // "Sign in with your organization"
	LoginURL   string // /auth/login?next=...
	SignedOut  bool   // just signed out
	EndSession string // the issuer's end-session link (OpenID Connect), when known
}

func (h *Handler) choices(next string, signedOut bool) signinChoices {
	c := signinChoices{SignedOut: signedOut}
	if h.oidc != nil {
		c.OIDC, c.LoginURL = true, "/auth/login?"+url.Values{"next": {next}}.Encode()
		if signedOut {
			c.EndSession = h.oidc.endSession()
		}
	}
	return c
}

func (h *Handler) signinForm(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	v := view{Title: "Sign in", Page: "signin", Next: next, Roles: Roles, DevMode: h.cfg.DevMode}
	v.Data = h.choices(next, r.URL.Query().Has("signed_out"))
	status := http.StatusOK
	if !h.cfg.DevMode && h.oidc == nil {
		status = http.StatusServiceUnavailable
	}
	h.render(w, "signin", status, v)
}

// signin mints a dev token for the chosen role and clinics and keeps it in the session cookie.
func (h *Handler) signin(w http.ResponseWriter, r *http.Request) {
	if !h.cfg.DevMode {
		h.signinForm(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	v := view{Title: "Sign in", Page: "signin", Next: safeNext(r.PostFormValue("next")), Roles: Roles, DevMode: true}
	v.Data = h.choices(v.Next, false)
	role := r.PostFormValue("role")
	var clinics []string
	for _, c := range strings.FieldsFunc(r.PostFormValue("clinics"), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
		if _, err := uuid.Parse(c); err != nil && c != auth.AllClinics {
			v.Error = "Clinics: give clinic ids separated by commas, or * for every clinic."
			break
		}
		clinics = append(clinics, c)
	}
	switch {
	case v.Error != "":
	case !slices.Contains(Roles, role):
		v.Error = "Choose a role."
	case len(clinics) == 0:
		v.Error = "Clinics: give at least one clinic id, or * for every clinic."
	}
	if v.Error != "" {
		h.render(w, "signin", http.StatusBadRequest, v)
		return
	}
	tok, err := auth.MintDev([]byte(h.cfg.DevKey), h.cfg.Issuer, h.cfg.Audience, "dev-"+role, []string{role}, clinics, SessionTTL)
	if err != nil {
		h.cfg.Log.ErrorContext(r.Context(), "dev sign-in: mint token", "error", err)
		http.Error(w, "sign-in failed", http.StatusInternalServerError)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: tok, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteLaxMode, MaxAge: int(SessionTTL.Seconds())})
	http.Redirect(w, r, v.Next, http.StatusSeeOther)
}

// signout is POST /signout with the session's CSRF token: it clears the session cookies. A
// request without the token (a link or form on another site) changes nothing (issue 10,
// finding 11). The token itself stays valid until it expires: sessions are stateless.
func (h *Handler) signout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	if raw := rawToken(r); raw != "" && !validCSRF(raw, r.PostFormValue("csrf")) {
		http.Error(w, "This sign-out did not come from this dashboard: you are still signed in.", http.StatusForbidden)
		return
	}
	for _, name := range []string{CookieName, UpstreamCookieName} {
		http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", HttpOnly: true, Secure: r.TLS != nil,
			SameSite: http.SameSiteLaxMode, MaxAge: -1})
	}
	to := "/signin"
	if h.oidc != nil {
		to = "/signin?signed_out=1" // offers to sign out at the issuer too
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}
