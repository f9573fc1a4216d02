package auth

import (
	"context"
	"strings"
)

// The clinic scope is what a service's database transactions may see: the clinics of the
// caller's token, every clinic ("*"), or none. A service that enforces clinic isolation with
// Postgres row-level security (docs/security.md, "Row-level security") sets it in each
// transaction (pkg/bus Store.EnableClinicScope) from the context:
//
//   - in system scope (WithSystemScope): every clinic. Background work (event consumers,
//     workers, startup maintenance, command-line tools) declares it explicitly;
//   - with a principal: its clinics ("*" in its clinics: every clinic);
//   - otherwise: no clinic, so the transaction sees no clinic's rows.

type systemScopeKey struct{}

// WithSystemScope returns ctx marked as background work that acts for every clinic (an event
// consumer, a worker, a migration or maintenance command), not for a caller. A principal in ctx
// does not narrow it.
func WithSystemScope(ctx context.Context) context.Context {
	return context.WithValue(ctx, systemScopeKey{}, true)
}

// IsSystemScope reports whether ctx was marked by WithSystemScope.
func IsSystemScope(ctx context.Context) bool {
	v, _ := ctx.Value(systemScopeKey{}).(bool)
	return v
}

// ClinicScope is the clinic scope of ctx as the setting trellis.clinics holds it: AllClinics
// ("*") in system scope or for a principal with every clinic, the principal's clinic ids
// separated by commas, or "" for none (no principal, or none of its clinics is a clinic id).
// Only canonical UUIDs are kept: a token's clinics claim is not trusted to be SQL-safe, and
// anything else cannot match a clinic_id column anyway.
func ClinicScope(ctx context.Context) string {
	if IsSystemScope(ctx) {
		return AllClinics
	}
	p := PrincipalFrom(ctx)
	if p == nil {
		return ""
	}
	ids := make([]string, 0, len(p.Clinics))
	for _, c := range p.Clinics {
		if c == AllClinics {
			return AllClinics
		}
		if isUUID(c) {
			ids = append(ids, strings.ToLower(c))
		}
	}
	return strings.Join(ids, ",")
}

// isUUID reports whether s is a UUID in its canonical text form (8-4-4-4-12 hex digits).
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
