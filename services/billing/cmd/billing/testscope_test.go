package main

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
)

// systemURL is dbURL with the clinic scope "*" (every clinic) set for the whole session, for
// the tests' own connections, which seed fixtures and check what the service stored in every
// clinic. The service's row-level security policies (migration 00011) bind the tables' owner,
// which is the role the tests connect as; the service itself is given the plain URL. (The
// same helper as intake's testscope_test.go; a shared one would belong in servicetest.)
func systemURL(t testing.TB, dbURL string) string {
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

// systemScoped replaces s.Pool (the test's pool, which s.Count uses) with one in system scope.
func systemScoped(t testing.TB, s *servicetest.Service) *servicetest.Service {
	t.Helper()
	pool, err := pg.Open(context.Background(), systemURL(t, s.DatabaseURL), "billing", 4)
	if err != nil {
		t.Fatal(err)
	}
	old := s.Pool
	s.Pool = pool
	old.Close()
	t.Cleanup(pool.Close)
	return s
}
