package auth

import (
	"context"
	"testing"
)

func TestClinicScope(t *testing.T) {
	const a, b = "0190a000-0000-7000-8000-00000000000A", "0190a000-0000-7000-8000-00000000000b"
	with := func(clinics ...string) context.Context {
		return WithPrincipal(context.Background(), &Principal{Subject: "s", Clinics: clinics})
	}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"no principal, no system scope: no clinic", context.Background(), ""},
		{"system scope", WithSystemScope(context.Background()), "*"},
		{"system scope is not narrowed by a principal", WithSystemScope(with(a)), "*"},
		{"a principal's clinics, lower case", with(a, b), "0190a000-0000-7000-8000-00000000000a,0190a000-0000-7000-8000-00000000000b"},
		{"every clinic", with(a, AllClinics), "*"},
		{"no clinics", with(), ""},
		{"what is not a UUID is dropped", with("x', true); DROP TABLE patients; --", "0190a000000070008000000000000000", b),
			"0190a000-0000-7000-8000-00000000000b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ClinicScope(tc.ctx); got != tc.want {
				t.Errorf("ClinicScope = %q, want %q", got, tc.want)
			}
		})
	}
	if IsSystemScope(with(AllClinics)) {
		t.Error("a principal of every clinic is not system scope")
	}
}
