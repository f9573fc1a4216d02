package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trellis-health/trellis/services/dashboard/internal/web"
)

// Sorting and filtering the overview: ?sort=&dir= (unknown figures last), ?q= (name contains,
// any case), ?tz=; the total is over the clinics shown; a bad parameter is a 400 naming it.
func TestOverviewSortAndFilter(t *testing.T) {
	e := start(t)
	e.feed(time.Now().UTC())
	cookie := e.signIn("admin", "*")
	order := func(query string) ([]string, web.Overview) {
		t.Helper()
		var o web.Overview
		e.json("/api/overview.json?"+query, cookie, &o)
		var ids []string
		for _, c := range o.Clinics {
			ids = append(ids, c.ClinicID)
		}
		page := e.page("/overview?"+query, cookie)
		var shown []string
		for _, m := range regexp.MustCompile(`<tr data-clinic-id="([^"]+)">`).FindAllStringSubmatch(page, -1) {
			if m[1] != web.TotalID {
				shown = append(shown, m[1])
			}
		}
		if strings.Join(shown, ",") != strings.Join(ids, ",") {
			t.Errorf("%s: page rows %v, JSON %v", query, shown, ids)
		}
		return ids, o
	}
	cases := []struct {
		query string
		want  []string
	}{
		{"", []string{clinicA, clinicB}}, // by name: Lakeview, Riverside
		{"sort=clinic&dir=desc", []string{clinicB, clinicA}},
		{"sort=census&dir=desc", []string{clinicA, clinicB}},
		{"sort=census&dir=asc", []string{clinicB, clinicA}},
		// B has no attendance: unknown goes last whichever the direction.
		{"sort=attendance_rate&dir=asc", []string{clinicA, clinicB}},
		{"sort=attendance_rate&dir=desc", []string{clinicA, clinicB}},
		{"q=RIVER", []string{clinicB}},
		{"tz=America/Chicago", []string{clinicA}},
		{"q=side&tz=America/Chicago", nil},
	}
	for _, c := range cases {
		got, _ := order(c.query)
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%q: %v, want %v", c.query, got, c.want)
		}
	}
	_, o := order("q=river")
	if o.Total.KPIs["census"] != "1" || o.Total.KPIs["capacity"] != "10" || o.Q != "river" {
		t.Errorf("total over the clinics shown: %v", o.Total.KPIs)
	}
	if len(o.TimeZones) != 2 {
		t.Errorf("time zones offered: %v", o.TimeZones)
	}

	page := e.page("/overview?sort=census&dir=desc&q=a", cookie)
	if !regexp.MustCompile(`<th scope="col" data-sort-key="census" aria-sort="descending"><a href="/overview\?[^"]*dir=asc[^"]*sort=census`).MatchString(page) {
		t.Error("the census heading is not marked descending with a link to ascending")
	}
	if n := strings.Count(page, "aria-sort="); n != 1 {
		t.Errorf("%d headings with aria-sort, want 1", n)
	}
	if !strings.Contains(page, `<input type="hidden" name="sort" value="census">`) || !strings.Contains(page, `id="q" name="q" value="a"`) {
		t.Error("the forms do not keep the sort and the filter")
	}

	// The trends may be of a clinic the filter hides: it stays chosen in the select.
	page = e.page("/overview?q=river&clinic="+clinicA, cookie)
	if !strings.Contains(page, `<option value="`+clinicA+`" selected>Lakeview</option>`) {
		t.Error("a filtered-out clinic's trends are not offered or not selected")
	}

	for q, name := range map[string]string{"sort=nope": "sort:", "dir=up": "dir:", "tz=Mars/Olympus": "tz:", "sort=census&dir=sideways": "dir:"} {
		code, _, body := e.get("/overview?"+q, cookie)
		if code != http.StatusBadRequest || !strings.Contains(body, name) {
			t.Errorf("%s: %d, want 400 naming %s", q, code, name)
		}
		code, _, body = e.get("/api/overview.json?"+q, cookie)
		if code != http.StatusBadRequest || !strings.Contains(body, name) {
			t.Errorf("API %s: %d %s", q, code, body)
		}
	}
}
