// Package testscope gives scheduling's tests connections that see every clinic. The service's
// row-level security policies (migration 00009) bind the tables' owner, which is the role the
// tests connect as; the tests' own queries check what the service stored in every clinic, so
// their sessions set the clinic scope "*", while the service is given the plain URL and
// scopes each transaction from its context. The helpers are pkg/testkit/rlstest's, in schema
// scheduling.
package testscope

import (
	"testing"

	"github.com/trellis-health/trellis/pkg/testkit/rlstest"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
)

// SystemURL is dbURL with the clinic scope "*" (every clinic) set for the whole session.
var SystemURL = rlstest.SystemURL

// SystemScoped replaces s.Pool (the test's pool, which s.Count uses) with one in system scope,
// search_path scheduling.
func SystemScoped(t testing.TB, s *servicetest.Service) {
	t.Helper()
	rlstest.SystemScoped(t, s, "scheduling")
}
