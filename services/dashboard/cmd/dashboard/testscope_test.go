package main

import (
	"context"
	"testing"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/testkit/rlstest"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
)

// systemScoped replaces s.Pool (the test's pool, which s.Count uses) with one in system scope
// (rlstest.SystemURL), for the tests' own reads, which seed and check the projections of every
// clinic; the service is given the plain URL, so its pages are bound.
func systemScoped(t testing.TB, s *servicetest.Service) { rlstest.SystemScoped(t, s, "dashboard") }

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
