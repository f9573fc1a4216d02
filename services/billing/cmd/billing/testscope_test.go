package main

import (
	"testing"

	"github.com/trellis-health/trellis/pkg/testkit/rlstest"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
)

// systemURL is dbURL in system scope (rlstest.SystemURL), for the tests' own connections,
// which seed fixtures and check what the service stored in every clinic; the service is given
// the plain URL.
func systemURL(t testing.TB, dbURL string) string { return rlstest.SystemURL(t, dbURL) }

// systemScoped replaces s.Pool (the test's pool, which s.Count uses) with one in system scope.
func systemScoped(t testing.TB, s *servicetest.Service) *servicetest.Service {
	return rlstest.SystemScoped(t, s, "billing")
}
