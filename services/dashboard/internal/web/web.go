// Package web serves the dashboard: server-rendered pages (html/template, SVG charts, a small
// script that refreshes the tables from the JSON endpoints every 10 s), the JSON endpoints, and
// the dev sign-in. Every figure is for the signed-in user's clinics only.
package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/trellis-health/trellis/pkg/audit"
	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/services/dashboard/internal/kpi"
	"github.com/trellis-health/trellis/services/dashboard/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// CookieName is the session cookie: it holds the user's token (HttpOnly, SameSite=Lax).
const CookieName = "trellis_dashboard_session"

// Roles that may use the dashboard.
var Roles = []string{"operator", "billing", "admin"}

// SessionTTL is how long a dev sign-in lasts.
const SessionTTL = 12 * time.Hour

// Config is what the web layer needs besides the store.
type Config struct {
	Verifier *auth.Verifier
	// Dev sign-in: mint tokens with DevKey (only when DevMode).
	DevMode          bool
	DevKey           string
	Issuer, Audience string
	Streams          []string
	Consumer         func(stream string) string
	// Pending reports how many messages of stream its consumer has not yet acknowledged (nil: unknown).
	Pending func(ctx context.Context, stream string) *uint64
	// DeadLetters counts the DEADLETTER stream's messages per consumer (nil: not shown).
	DeadLetters func(ctx context.Context) (map[string]uint64, error)
	// RecentDeadLetters lists the newest dead letters, newest first: metadata and reasons,
	// never payloads (nil: not shown).
	RecentDeadLetters func(ctx context.Context) ([]DeadLetterItem, error)
	Now               func() time.Time
	Log               *slog.Logger
	// OIDC turns on sign-in with an OpenID Connect issuer (nil: off).
	OIDC *OIDC
	// Billing is billing's RemittanceService (work queues, uploads), called with the user's
	// token; nil: the billing page says billing is not configured.
	Billing BillingClient
	// Audit records the pages that show patient-level rows (audit.go); nil: not recorded.
	Audit *audit.Log
}

// Handler serves the dashboard.
type Handler struct {
	cfg   Config
	store *store.Store
	pages map[string]*template.Template
	// OpenID Connect sign-in and the sessions it ends with (nil: off).
	oidc     *oidcFlow
	sessions *auth.Verifier
}

// New parses the templates.
func New(st *store.Store, cfg Config) (*Handler, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handler{cfg: cfg, store: st, pages: map[string]*template.Template{}}
	funcs := template.FuncMap{"cents": kpi.Cents, "when": when, "buckets": func() []string { return kpi.AgingBuckets }}
	for _, p := range []string{"signin", "overview", "clinic", "billing", "health", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/chart.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", p, err)
		}
		h.pages[p] = t
	}
	if err := h.setupOIDC(); err != nil {
		return nil, err
	}
	return h, nil
}

// Register mounts the routes with handle (rpc.Server.Handle or a ServeMux's Handle).
func (h *Handler) Register(handle func(pattern string, h http.Handler)) {
	static, _ := fs.Sub(staticFS, "static")
	handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	handle("GET /{$}", http.RedirectHandler("/overview", http.StatusSeeOther))
	handle("GET /signin", http.HandlerFunc(h.signinForm))
	handle("POST /signin", http.HandlerFunc(h.signin))
	handle("POST /signout", http.HandlerFunc(h.signout))
	handle("GET /auth/login", http.HandlerFunc(h.oidcLogin))
	handle("GET /auth/callback", http.HandlerFunc(h.oidcCallback))
	handle("GET /overview", h.page(h.overview))
	handle("GET /clinics/{id}", h.page(h.clinic))
	handle("GET /billing", h.page(h.billing))
	handle("GET /health", h.page(h.health))
	handle("GET /api/overview.json", h.api(h.overviewData))
	handle("GET /api/clinics/{file}", h.api(h.clinicData))
	handle("GET /api/billing.json", h.api(h.billingData))
	handle("GET /api/health.json", h.api(h.healthData))
	h.registerWork(handle)
}

// errNotFound is a clinic that does not exist or that the user may not see: both are 404, so
// a page never tells whether another clinic exists.
var errNotFound = errors.New("not found")

type badRequest struct{ msg string }

func (b badRequest) Error() string { return b.msg }

// request is one signed-in request.
type request struct {
	r     *http.Request
	user  *auth.Principal
	scope store.Scope
	rng   kpi.Range
}

// session returns the signed-in user: the session cookie's token, or a bearer token (API):
// a token the configured verifier accepts, or a session an OpenID Connect sign-in made.
func (h *Handler) session(r *http.Request) (*auth.Principal, bool) {
	raw := ""
	if c, err := r.Cookie(CookieName); err == nil {
		raw = c.Value
	}
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && raw == "" {
		raw = strings.TrimSpace(v)
	}
	if raw == "" {
		return nil, false
	}
	for _, v := range []*auth.Verifier{h.cfg.Verifier, h.sessions} {
		if v == nil {
			continue
		}
		if p, err := v.Verify(r.Context(), raw); err == nil && p.HasRole(Roles...) {
			return p, true
		}
	}
	return nil, false
}

// withUser is r with the signed-in user's principal in its context (auth.WithPrincipal), set
// before anything reads the request: the store's transactions take their clinic scope from it
// (auth.ClinicScope), so the database's row-level security keeps every read of the page to the
// user's clinics, whatever a query's own clinic condition says (docs/security.md).
func withUser(r *http.Request, user *auth.Principal) *http.Request {
	return r.WithContext(auth.WithPrincipal(r.Context(), user))
}

func (h *Handler) newRequest(r *http.Request, user *auth.Principal) (*request, error) {
	q := r.URL.Query()
	rng, err := kpi.ParseRange(q.Get("from"), q.Get("to"), h.cfg.Now().UTC())
	if err != nil {
		return nil, badRequest{err.Error()}
	}
	sc := store.Scope{All: slices.Contains(user.Clinics, auth.AllClinics)}
	for _, c := range user.Clinics {
		if _, err := uuid.Parse(c); err == nil {
			sc.Clinics = append(sc.Clinics, c)
		}
	}
	return &request{r: r, user: user, scope: sc, rng: rng}, nil
}

// view is what a page template receives.
type view struct {
	Title    string
	Page     string
	User     *auth.Principal
	Clinics  []store.Clinic
	ClinicID string
	From, To string
	Query    string // "from=...&to=..." of the range shown
	Keep     []KV   // other parameters the range form keeps (the overview's sort, filter, clinic)
	API      string // the JSON endpoint the live refresh polls
	Data     any
	Error    string
	Next     string
	// CSRF is the session's token for the forms every page has (sign out); "" when signed out.
	CSRF    string
	Roles   []string
	DevMode bool
}

type pageFunc func(ctx context.Context, rq *request) (view, error)

func (h *Handler) page(fn pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, ok := h.session(r)
		if !ok {
			http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		r = withUser(r, user)
		rq, err := h.newRequest(r, user)
		var v view
		if err == nil {
			v, err = fn(r.Context(), rq)
		}
		if rq != nil {
			v.User, v.CSRF = user, csrfToken(rawToken(r))
			if v.Clinics == nil {
				v.Clinics, _ = h.store.Clinics(r.Context(), rq.scope)
			}
			v.From, v.To = rq.rng.From.Format(time.DateOnly), rq.rng.To.Format(time.DateOnly)
			v.Query = url.Values{"from": {v.From}, "to": {v.To}}.Encode()
		}
		if err != nil {
			h.fail(w, r, v, err)
			return
		}
		h.render(w, v.Page, http.StatusOK, v)
	})
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, v view, err error) {
	status, msg := http.StatusInternalServerError, "Something went wrong; try again."
	var br badRequest
	switch {
	case errors.Is(err, errNotFound):
		status, msg = http.StatusNotFound, "There is no such page."
	case errors.As(err, &br):
		status, msg = http.StatusBadRequest, br.msg
	default:
		h.cfg.Log.ErrorContext(r.Context(), "dashboard page failed", "path", r.URL.Path, "error", err)
	}
	v.Title, v.Error, v.API = http.StatusText(status), msg, ""
	if v.User != nil {
		v.CSRF = csrfToken(rawToken(r))
	}
	h.render(w, "error", status, v)
}

func (h *Handler) render(w http.ResponseWriter, page string, status int, v view) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	w.Header().Set("Referrer-Policy", "same-origin")
	w.WriteHeader(status)
	if err := h.pages[page].Execute(w, v); err != nil {
		h.cfg.Log.Error("dashboard template failed", "page", page, "error", err)
	}
}

type apiFunc func(ctx context.Context, rq *request) (any, error)

func (h *Handler) api(fn apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		user, ok := h.session(r)
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"sign in at /signin"}` + "\n"))
			return
		}
		r = withUser(r, user)
		rq, err := h.newRequest(r, user)
		var out any
		if err == nil {
			out, err = fn(r.Context(), rq)
		}
		var br badRequest
		switch {
		case err == nil:
			_ = json.NewEncoder(w).Encode(out)
		case errors.Is(err, errNotFound):
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"not found"}` + "\n"))
		case errors.As(err, &br):
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": br.msg})
		default:
			h.cfg.Log.ErrorContext(r.Context(), "dashboard api failed", "path", r.URL.Path, "error", err)
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"error":"internal"}` + "\n"))
		}
	})
}

// when formats a time for people, in UTC; "—" for none.
func when(t any) string {
	switch v := t.(type) {
	case time.Time:
		return v.UTC().Format("2006-01-02 15:04 UTC")
	case *time.Time:
		if v != nil {
			return v.UTC().Format("2006-01-02 15:04 UTC")
		}
	}
	return kpi.Unknown
}
