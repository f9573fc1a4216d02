package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
)

// TestSignInIsRateLimited: sign-in attempts from one client IP are limited
// (DASHBOARD_SIGNIN_RATE_PER_MINUTE, DASHBOARD_SIGNIN_BURST): past the burst the answer is 429
// with Retry-After and no session; the pages of a signed-in user are not limited.
func TestSignInIsRateLimited(t *testing.T) {
	var cfg Config
	e := &env{Service: servicetest.Start(t, newSpec(&cfg), &cfg, map[string]string{
		"DASHBOARD_SIGNIN_RATE_PER_MINUTE": "1", "DASHBOARD_SIGNIN_BURST": "2"}), t: t}
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
