// Package testscope gives scheduling's tests connections that see every clinic. The service's
// row-level security policies (migration 00009) bind the tables' owner, which is the role the
// tests connect as; the tests' own queries check what the service stored in every clinic, so
// their sessions set the clinic scope "*", while the service is given the plain URL and
// scopes each transaction from its context. (Intake's tests carry the same two helpers in
// services/intake/testscope_test.go; they belong in pkg/testkit.)
package testscope

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
)

// SystemURL is dbURL with the clinic scope "*" (every clinic) set for the whole session.
func SystemURL(t testing.TB, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("options", strings.TrimSpace(q.Get("options")+" -c trellis.clinics=*"))
	// pgx does not read "+" as a space.
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	return u.String()
}

// SystemScoped replaces s.Pool (the test's pool, which s.Count uses) with one in system scope.
func SystemScoped(t testing.TB, s *servicetest.Service) {
	t.Helper()
	pool, err := pg.Open(context.Background(), SystemURL(t, s.DatabaseURL), "scheduling", 4)
	if err != nil {
		t.Fatal(err)
	}
	old := s.Pool
	s.Pool = pool
	old.Close()
	t.Cleanup(pool.Close)
}
