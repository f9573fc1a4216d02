package main

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/services/dashboard/internal/store"
	"github.com/trellis-health/trellis/services/dashboard/internal/web"
)

// clinicRows is what the projections hold of clinic, table by table, as the administrative
// test pool (system scope) reads it.
func (e *env) clinicRows(clinic string) map[string]string {
	e.t.Helper()
	out := map[string]string{}
	for _, tb := range store.Projections {
		if tb == "programs" || tb == "stream_positions" {
			continue // no clinic
		}
		var rows string
		if err := e.Pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(x::text, ';' ORDER BY x::text), '')
			FROM `+tb+` x WHERE clinic_id = $1`, clinic).Scan(&rows); err != nil {
			e.t.Fatal(err)
		}
		out[tb] = rows
	}
	return out
}

// Through the pages and JSON endpoints, a user of clinic A gets not found for clinic B's id and
// sees none of B's rows; B's rows are unchanged. A user of A and B sees the network figures
// of both (sums over the clinics the user may see, in the database's scope too), and so does a
// user of every clinic. (The projections' policies are checked without the app's clinic
// checks in internal/store's TestRowLevelSecurityStopsForgottenFilters.)
func TestRowLevelSecurityGuessedClinicID(t *testing.T) {
	e := start(t)
	e.feed(time.Now().UTC())
	before := e.clinicRows(clinicB)
	if before["enrollments"] == "" || before["tracks"] == "" {
		t.Fatalf("the feed left clinic B no rows: %v", before)
	}

	asA := e.signIn("operator", clinicA)
	for _, p := range []string{"/clinics/" + clinicB, "/api/clinics/" + clinicB + ".json"} {
		if code, _, body := e.get(p, asA); code != http.StatusNotFound || strings.Contains(body, clinicB) {
			t.Errorf("GET %s as a user of A: %d, want 404 naming nothing of B", p, code)
		}
	}
	var oA, oB, oAB, oAll web.Overview
	e.json("/api/overview.json", asA, &oA)
	for _, r := range oA.Clinics {
		if r.ClinicID != clinicA {
			t.Errorf("a user of A is shown clinic %s", r.ClinicID)
		}
	}
	var bA web.Billing
	e.json("/api/billing.json", asA, &bA)
	for _, p := range []string{"/overview", "/billing", "/clinics/" + clinicA} {
		if page := e.page(p, asA); strings.Contains(page, clinicB) {
			t.Errorf("%s as a user of A names clinic B", p)
		}
	}
	if after := e.clinicRows(clinicB); !reflect.DeepEqual(before, after) {
		t.Errorf("clinic B's rows changed:\n%v\nwant\n%v", after, before)
	}

	e.json("/api/overview.json", e.signIn("operator", clinicB), &oB)
	e.json("/api/overview.json", e.signIn("operator", clinicA+","+clinicB), &oAB)
	e.json("/api/overview.json", e.signIn("operator", auth.AllClinics), &oAll)
	if len(oA.Clinics) != 1 || len(oB.Clinics) != 1 || len(oAB.Clinics) != 2 {
		t.Fatalf("clinics shown: A %d, B %d, A and B %d", len(oA.Clinics), len(oB.Clinics), len(oAB.Clinics))
	}
	if !reflect.DeepEqual(oAB.Total, oAll.Total) || !reflect.DeepEqual(oAB.Clinics, oAll.Clinics) {
		t.Errorf("a user of A and B: %+v\na user of every clinic: %+v", oAB.Total, oAll.Total)
	}
	// The network's census is the clinics' census added up, each seen in its own user's scope.
	if a, b, ab := oA.Total.Values["census"], oB.Total.Values["census"], oAB.Total.Values["census"]; a == nil || b == nil || ab == nil ||
		*a == 0 || *b == 0 || *ab != *a+*b {
		t.Errorf("census: A %v, B %v, A and B %v", oA.Total.KPIs["census"], oB.Total.KPIs["census"], oAB.Total.KPIs["census"])
	}
	for _, r := range oAB.Clinics {
		want := oA.Clinics[0]
		if r.ClinicID == clinicB {
			want = oB.Clinics[0]
		}
		if !reflect.DeepEqual(r.KPIs, want.KPIs) {
			t.Errorf("clinic %s for a user of A and B: %v; for its own user: %v", r.ClinicID, r.KPIs, want.KPIs)
		}
	}
}
