package postgres

import (
	"slices"
	"testing"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
)

// ClaimFilePatients names the patients whose claims a file holds (a download discloses them:
// the audit trail records them, issue 10 finding 5), within the caller's clinics.
func TestClaimFilePatients(t *testing.T) {
	_, store := ownerPool(t)
	a := seedClinic(t, store, rlsClinicA, 1)
	b := seedClinic(t, store, rlsClinicB, 2)
	claims := NewClaims(store, fieldcrypt.Dev())
	for _, c := range []struct {
		name       string
		clinics    []string
		file, want string
	}{
		{"clinic A's file in A's scope", []string{rlsClinicA}, a.file, a.patient},
		{"clinic B's file in every clinic's scope", []string{auth.AllClinics}, b.file, b.patient},
		{"clinic B's file in A's scope", []string{rlsClinicA}, b.file, ""},
	} {
		got, err := claims.ClaimFilePatients(principalCtx(c.clinics...), c.file)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{c.want}; c.want == "" && len(got) != 0 || c.want != "" && !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %q", c.name, got, c.want)
		}
	}
}
