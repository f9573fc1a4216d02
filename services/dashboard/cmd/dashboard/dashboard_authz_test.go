package main

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
	"github.com/trellis-health/trellis/services/dashboard/internal/web"
)

// TestAuthzEveryRoleEveryPage: the dashboard has no Connect API, so its part of the matrix is
// its pages and JSON: every one is open to the dashboard's roles (operator, billing, admin) and
// to no other role of auth.Roles (a page sends them to /signin, JSON answers 401), and a clinic
// the token does not list is not found (404), like a clinic that does not exist.
func TestAuthzEveryRoleEveryPage(t *testing.T) {
	e := start(t)
	e.publish("trellis.scheduling.clinic.configured.v1", clinicB, time.Now().AddDate(0, 0, -1), &schedulingv1.ClinicConfigured{
		Clinic: &schedulingv1.Clinic{ClinicId: clinicB, Name: "Clinic B", TimeZone: "America/Chicago"}})
	e.settle()
	paths := []string{"/overview", "/clinics/" + clinicB, "/billing", "/health",
		"/api/overview.json", "/api/clinics/" + clinicB + ".json", "/api/billing.json", "/api/health.json"}
	get := func(path, token string) (int, http.Header) {
		req, _ := http.NewRequest(http.MethodGet, e.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		code, h, _ := e.do(req)
		return code, h
	}
	calls := 0
	for _, role := range auth.Roles {
		tok := e.Token(t, "authz-"+role, []string{role}, []string{"*"})
		for _, p := range paths {
			code, h := get(p, tok)
			calls++
			allowed := slices.Contains(web.Roles, role)
			switch {
			case allowed && code != http.StatusOK:
				t.Errorf("%s as %s (a dashboard role): %d, want 200", p, role, code)
			case !allowed && strings.HasPrefix(p, "/api/") && code != http.StatusUnauthorized:
				t.Errorf("%s as %s: %d, want 401", p, role, code)
			case !allowed && !strings.HasPrefix(p, "/api/") && (code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/signin")):
				t.Errorf("%s as %s: %d to %q, want a redirect to /signin", p, role, code, h.Get("Location"))
			}
		}
	}
	for _, role := range web.Roles {
		other := e.Token(t, "authz-"+role, []string{role}, []string{clinicA})
		for _, p := range []string{"/clinics/" + clinicB, "/api/clinics/" + clinicB + ".json"} {
			if code, _ := get(p, other); code != http.StatusNotFound {
				t.Errorf("%s as %s of clinic A only: %d, want 404", p, role, code)
			}
			calls++
		}
	}
	t.Logf("%d calls", calls)
}

// TestSignInIsRateLimited: sign-in attempts from one client IP are limited
// (DASHBOARD_SIGNIN_RATE_PER_MINUTE, DASHBOARD_SIGNIN_BURST): past the burst the answer is 429
// with Retry-After and no session; the pages of a signed-in user are not limited.
func TestSignInIsRateLimited(t *testing.T) {
	var cfg Config
	e := &env{Service: servicetest.Start(t, newSpec(&cfg), &cfg, map[string]string{
		"DASHBOARD_SIGNIN_RATE_PER_MINUTE": "1", "DASHBOARD_SIGNIN_BURST": "2"}), t: t}
	systemScoped(t, e.Service)
	cookie := e.signIn("operator", "*")
	e.signIn("billing", clinicA)

	form := url.Values{"role": {"admin"}, "clinics": {"*"}, "next": {"/billing"}}
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/signin", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	code, h, _ := e.do(req)
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || h.Get("Set-Cookie") != "" {
		t.Fatalf("third sign-in in a minute: %d, Retry-After %q, Set-Cookie %q; want 429 with Retry-After and no cookie",
			code, h.Get("Retry-After"), h.Get("Set-Cookie"))
	}
	for range 5 {
		if code, _, _ := e.get("/overview", cookie); code != http.StatusOK {
			t.Fatalf("a signed-in page: %d, want 200 (pages are not limited)", code)
		}
	}
}
