package main

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
)

// systemURL is dbURL with the clinic scope "*" (every clinic) set for the whole session, for
// the tests' own connections, which seed and check the projections of every clinic. The
// row-level security policies (migration 00007) bind the tables' owner, which is the role the
// tests connect as; the service itself is given the plain URL, so its pages are bound.
// (The same as intake's test helper of that name.)
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
func systemScoped(t testing.TB, s *servicetest.Service) {
	t.Helper()
	pool, err := pg.Open(context.Background(), systemURL(t, s.DatabaseURL), "dashboard", 4)
	if err != nil {
		t.Fatal(err)
	}
	old := s.Pool
	s.Pool = pool
	old.Close()
	t.Cleanup(pool.Close)
}

// serviceStore is a bus.Store like the service's: on a pool without a session scope, with the
// clinic scope on, so what runs through it is scoped by its context only.
func serviceStore(t testing.TB, s *servicetest.Service) *bus.Store {
	t.Helper()
	pool, err := pg.Open(context.Background(), s.DatabaseURL, "dashboard", 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st := bus.NewStore(pool, "dashboard")
	st.EnableClinicScope()
	return st
}
