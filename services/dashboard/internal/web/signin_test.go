package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// safeNext keeps the redirect after sign-in on this site, whatever the next parameter holds
// (issue 10, finding 1): it is judged as browsers read the Location that http.Redirect sends.
func TestSafeNextKeepsRedirectsOnThisSite(t *testing.T) {
	cases := []struct{ next, want string }{
		// Kept (cleaned).
		{"/billing?from=2026-01-01&to=2026-01-31", "/billing?from=2026-01-01&to=2026-01-31"},
		{"/clinics/0190a000-0000-7000-8000-000000000001", "/clinics/0190a000-0000-7000-8000-000000000001"},
		{"/a/../health", "/health"},
		{"/%2F%2Fevil.example", "/evil.example"}, // a path of this site once cleaned
		{"/overview/", "/overview/"},
		// Refused: another site, as written or once a browser reads it.
		{"", "/overview"},
		{"overview", "/overview"},
		{"https://evil.example/", "/overview"},
		{"//evil.example", "/overview"},
		{"///evil.example", "/evil.example"}, // no host: cleaned to a path of this site
		{"/\\evil.example", "/overview"},
		{"/./\\evil.example", "/overview"}, // Redirect cleaned it into /\evil.example
		{"/%5C/evil.example", "/overview"},
		{"/%5c%5cevil.example", "/overview"},
		{"/%09/evil.example", "/overview"}, // sent as "/\t/evil.example"; browsers drop the tab
		{"/\t/evil.example", "/overview"},
		{"/%0a/evil.example", "/overview"},
		{"/%0D%0ASet-Cookie:x=1", "/overview"},
		{"/\x7f/evil.example", "/overview"},
		{"javascript:alert(1)", "/overview"},
		{"/signin?next=//evil.example", "/overview"},
		{"/signout", "/overview"},
		{"/%zz", "/overview"},
	}
	for _, c := range cases {
		got := safeNext(c.next)
		if got != c.want {
			t.Errorf("safeNext(%q) = %q, want %q", c.next, got, c.want)
		}
		// What the browser is sent: a path of this site, no backslash or control byte.
		rec := httptest.NewRecorder()
		http.Redirect(rec, httptest.NewRequest(http.MethodGet, "/signin", nil), got, http.StatusSeeOther)
		loc := rec.Header().Get("Location")
		if !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.ContainsFunc(loc, func(r rune) bool { return r == '\\' || r < 0x20 || r == 0x7f }) {
			t.Errorf("safeNext(%q): Location %q leaves the site", c.next, loc)
		}
	}
}
