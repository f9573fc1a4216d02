package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trellis-health/trellis/deploy/devstack/stack"
	"github.com/trellis-health/trellis/e2e/browser"
	"github.com/trellis-health/trellis/pkg/testkit"
)

const lakeviewID = "0190a000-0000-7000-8000-000000000002" // another demo clinic

// TestDashboardInABrowser opens every page of the dashboard in headless Chromium, as an
// operator of every clinic and as an operator of one, after the demo network and its revenue
// cycle ran: the figures on each page are the read model's (the page's JSON endpoint, fetched
// with the browser's session cookie), a one-clinic operator sees only that clinic, and every
// page passes the accessibility check. Screenshots (laptop and tablet) are kept in
// $TRELLIS_ARTIFACTS when it is set.
func TestDashboardInABrowser(t *testing.T) {
	if _, err := browser.Path(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	began := time.Now()
	s := startStack(ctx, t)
	if _, err := s.SeedDemo(ctx); err != nil {
		t.Fatalf("demo: %v", err)
	}
	if _, err := s.SeedBillingDemo(ctx); err != nil {
		t.Fatalf("billing demo: %v", err)
	}
	t.Logf("stack up and demo seeded in %v", time.Since(began).Round(time.Millisecond))
	base := s.URL("dashboard")
	waitSettled(ctx, t, s, base)

	t.Run("operator of every clinic", func(t *testing.T) {
		b := browser.New(t)
		browser.SignIn(t, b, base, "operator", []string{"*"})
		d := dash{t: t, b: b, base: base, cookie: browser.CookieHeader(t, b, base), user: "all"}

		ov := d.overview()
		if !slices.Contains(ov.ids(), clinicID) || !slices.Contains(ov.ids(), lakeviewID) {
			t.Errorf("overview rows %v lack the demo clinics", ov.ids())
		}
		if n, _ := strconv.Atoi(ov.Total.KPIs["census"]); n == 0 {
			t.Errorf("network census is 0 after the demo: %+v", ov.Total)
		}
		for _, id := range ov.ids() {
			d.clinic(id)
		}
		if bl := d.billing(); bl.FlowCents.Charges == 0 || bl.FlowCents.ClaimsSubmitted == 0 || len(bl.Aging) == 0 {
			t.Errorf("billing flow %+v, aging %+v: want the demo's charges and its claim awaiting payment", bl.FlowCents, bl.Aging)
		}
		d.health()
	})

	t.Run("operator of one clinic", func(t *testing.T) {
		b := browser.New(t)
		browser.SignIn(t, b, base, "operator", []string{clinicID})
		d := dash{t: t, b: b, base: base, cookie: browser.CookieHeader(t, b, base), user: "riverside"}

		ov := d.overview()
		if ids := ov.ids(); !slices.Equal(ids, []string{clinicID}) {
			t.Errorf("overview clinics %v, want only %s", ids, clinicID)
		}
		if rows := browser.Eval[[]string](t, b, `[...document.querySelectorAll('#network tr[data-clinic-id]')].map(r => r.dataset.clinicId)`); !slices.Equal(rows, []string{clinicID, "total"}) {
			t.Errorf("overview table rows %v, want %s and total", rows, clinicID)
		}
		if links := browser.Eval[[]string](t, b, `[...document.querySelectorAll('a[href*="/clinics/"]')].map(a => a.getAttribute('href'))`); slices.ContainsFunc(links, func(h string) bool { return strings.Contains(h, lakeviewID) }) {
			t.Errorf("links to another clinic: %v", links)
		}
		d.clinic(clinicID)
		d.billing()
		d.health()

		// Another clinic's page and data, and a clinic that does not exist, are the same 404.
		for _, path := range []string{"/clinics/" + lakeviewID, "/api/clinics/" + lakeviewID + ".json",
			"/clinics/0190a000-0000-7000-8000-0000000000ff", "/api/clinics/0190a000-0000-7000-8000-0000000000ff.json"} {
			if status, _ := d.get(path); status != http.StatusNotFound {
				t.Errorf("GET %s: status %d, want 404", path, status)
			}
		}
		resp := browser.Navigate(t, b, base+"/clinics/"+lakeviewID)
		if resp != http.StatusNotFound {
			t.Errorf("the browser got %d for another clinic's page, want 404", resp)
		}
		if body := browser.Eval[string](t, b, "document.body.innerText"); strings.Contains(body, "Lakeview") {
			t.Errorf("the 404 page names the other clinic: %q", body)
		}
	})

	// Without a session every page sends the browser to the sign-in page.
	t.Run("signed out", func(t *testing.T) {
		b := browser.New(t)
		for _, p := range []string{"/overview", "/clinics/" + clinicID, "/billing", "/health"} {
			browser.Open(t, b, base+p, "#signin")
			if loc := browser.Location(t, b); !strings.Contains(loc, "/signin") {
				t.Errorf("%s signed out: at %s, want /signin", p, loc)
			}
		}
		browser.Accessibility(t, b)
	})
	t.Logf("whole test in %v", time.Since(began).Round(time.Millisecond))
}

// The test's own formatting and table comparison, without a stack.
func TestDashboardTestHelpers(t *testing.T) {
	half := 0.8125
	for _, c := range []struct {
		name string
		v    *float64
		want string
	}{{"attendance_rate", &half, "81.3%"}, {"median_length_of_stay", &half, "0.8"}, {"census", ptr(12.0), "12"}, {"no_show_rate", nil, "—"}} {
		if got := formatKPI(c.name, c.v); got != c.want {
			t.Errorf("formatKPI(%s, %v) = %q, want %q", c.name, deref(c.v), got, c.want)
		}
	}
	for c, want := range map[int64]string{0: "$0.00", 5: "$0.05", 123456: "$1,234.56", 100000000: "$1,000,000.00", -5: "-$0.05"} {
		if got := dollars(c); got != want {
			t.Errorf("dollars(%d) = %q, want %q", c, got, want)
		}
	}
	got := table{"a": {"x": "1", "y": "2"}, "b": {"x": "1"}}
	want := table{"a": {"x": "1", "y": "3"}, "c": {"x": "1"}}
	if diffs := compareTables(got, want); len(diffs) != 3 {
		t.Errorf("compareTables: %q, want 3 differences (a.y, b, c)", diffs)
	}
	if diffs := compareTables(got, got); len(diffs) != 0 {
		t.Errorf("compareTables of a table with itself: %q", diffs)
	}
}

func ptr[T any](v T) *T { return &v }

// waitSettled waits until the dashboard has projected what the demo published: the event
// counts on its health endpoint stop moving and nothing is left waiting.
func waitSettled(ctx context.Context, t *testing.T, s *stack.Stack, base string) {
	t.Helper()
	tok := bearer(t, s, []string{"operator"}, []string{"*"})
	last, stable := "", 0
	testkit.Eventually(t, 40*time.Second, "dashboard projections caught up with the demo", func() bool {
		var h healthJSON
		if err := getWithToken(ctx, base+"/api/health.json", tok, &h); err != nil {
			return false
		}
		var parts []string
		for _, st := range h.Streams {
			if st.Pending != nil && *st.Pending > 0 {
				return false
			}
			parts = append(parts, fmt.Sprintf("%s=%d", st.Stream, st.Events))
		}
		now := strings.Join(parts, " ")
		if now == last && now != "" {
			stable++
		} else {
			last, stable = now, 0
		}
		return stable >= 2
	})
	t.Logf("projected: %s", last)
}

func getWithToken(ctx context.Context, url, tok string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// The JSON endpoints, as far as the test reads them.
type (
	kpiRowJSON struct {
		ClinicID string              `json:"clinic_id"`
		KPIs     map[string]string   `json:"kpis"`
		Values   map[string]*float64 `json:"values"`
	}
	overviewJSON struct {
		KPIs    []string     `json:"kpi_names"`
		Clinics []kpiRowJSON `json:"clinics"`
		Total   kpiRowJSON   `json:"total"`
	}
	clinicJSON struct {
		ClinicID string `json:"clinic_id"`
		Tracks   []struct {
			ID         string `json:"track_id"`
			Capacity   int    `json:"capacity"`
			Active     int    `json:"active"`
			Waitlisted int    `json:"waitlisted"`
		} `json:"tracks"`
		AtRisk []struct {
			EnrollmentID string `json:"enrollment_id"`
			PatientID    string `json:"patient_id"`
		} `json:"at_risk"`
		Funnel []struct {
			Status string `json:"status"`
			Count  int    `json:"count"`
		} `json:"funnel"`
	}
	billingJSON struct {
		Flow      map[string]string `json:"flow"`
		FlowCents struct {
			Charges         int64 `json:"charges_cents"`
			ClaimsSubmitted int64 `json:"claims_submitted_cents"`
			Paid            int64 `json:"paid_cents"`
			Denied          int64 `json:"denied_cents"`
		} `json:"flow_cents"`
		Buckets []string `json:"aging_buckets"`
		Aging   []struct {
			PayerID string            `json:"payer_id"`
			Cents   map[string]int64  `json:"buckets_cents"`
			Total   int64             `json:"total_cents"`
			Shown   map[string]string `json:"buckets"`
		} `json:"aging"`
		Holds []struct {
			Reason string `json:"reason"`
			Count  int    `json:"count"`
		} `json:"holds"`
	}
	healthJSON struct {
		Streams []struct {
			Stream  string  `json:"stream"`
			Events  int     `json:"events"`
			Pending *uint64 `json:"pending"`
		} `json:"streams"`
	}
)

func (o overviewJSON) ids() []string {
	var ids []string
	for _, c := range o.Clinics {
		ids = append(ids, c.ClinicID)
	}
	return ids
}

// table is what the browser shows in a table: per row (keyed by the row's data-* attribute
// that names it), the text of each cell with a data-kpi, data-field or data-bucket.
type table map[string]map[string]string

// readTable reads table#id's rows that carry the attribute rowAttr (e.g. "data-clinic-id").
func readTable(t *testing.T, d dash, id, rowAttr string) table {
	t.Helper()
	expr := fmt.Sprintf(`(() => {
		const out = {};
		document.querySelectorAll('table#%[1]s tr[%[2]s]').forEach(tr => {
			const cells = {};
			tr.querySelectorAll('[data-kpi], [data-field], [data-bucket]').forEach(c => {
				const key = c.getAttribute('data-kpi') || c.getAttribute('data-field') || c.getAttribute('data-bucket');
				cells[key] = c.textContent.replace(/\s+/g, ' ').trim();
			});
			out[tr.getAttribute('%[2]s')] = cells;
		});
		return out;
	})()`, id, rowAttr)
	return browser.Eval[table](t, d.b, expr)
}

// dash is one signed-in user's browser on the dashboard.
type dash struct {
	t      *testing.T
	b      context.Context
	base   string
	cookie string // the browser's session cookie, for the JSON endpoints
	user   string // in screenshot names
}

// get fetches path with the browser's cookie and returns the status and body.
func (d dash) get(path string) (int, []byte) {
	d.t.Helper()
	req, _ := http.NewRequestWithContext(d.b, http.MethodGet, d.base+path, nil)
	req.Header.Set("Cookie", d.cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatal(err)
	}
	return resp.StatusCode, body
}

func (d dash) json(path string, v any) {
	d.t.Helper()
	status, body := d.get(path)
	if status != http.StatusOK {
		d.t.Fatalf("GET %s: status %d: %s", path, status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		d.t.Fatalf("GET %s: %v", path, err)
	}
}

// page opens path, waits for the tables in wait, then compares what it shows with the JSON
// endpoint api (compare returns the differences; both are read again until they agree, since
// an event may land between the two reads); then the accessibility check and screenshots.
func (d dash) page(name, path string, wait []string, api string, into any, compare func() []string) {
	d.t.Helper()
	sel := strings.Join(wait, ", ")
	var diffs []string
	for try := 0; ; try++ {
		browser.Open(d.t, d.b, d.base+path, sel)
		if n := browser.Eval[int](d.t, d.b, fmt.Sprintf("document.querySelectorAll(%q).length", sel)); n != len(wait) {
			d.t.Fatalf("%s: %d of the tables %v", path, n, wait)
		}
		reflect.ValueOf(into).Elem().SetZero() // decoding merges into maps left from a try before
		d.json(api, into)
		if diffs = compare(); len(diffs) == 0 || try == 4 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(diffs) > 0 {
		d.t.Errorf("%s shows other figures than %s:\n  %s", path, api, strings.Join(diffs, "\n  "))
	}
	browser.Accessibility(d.t, d.b)
	browser.Screenshot(d.t, d.b, d.user+"-"+name+"-laptop")
	browser.Resize(d.t, d.b, browser.Tablet)
	browser.Screenshot(d.t, d.b, d.user+"-"+name+"-tablet")
	browser.Resize(d.t, d.b, browser.Laptop)
}

func (d dash) overview() overviewJSON {
	var o overviewJSON
	d.page("overview", "/overview", []string{"table#network"}, "/api/overview.json", &o, func() []string {
		o2 := o
		shown := readTable(d.t, d, "network", "data-clinic-id")
		var diffs []string
		want := table{}
		for _, c := range append(slices.Clone(o2.Clinics), o2.Total) {
			want[c.ClinicID] = c.KPIs
			// The JSON's display strings are its numbers, formatted as the contract says.
			for _, k := range o2.KPIs {
				if f := formatKPI(k, c.Values[k]); f != c.KPIs[k] {
					diffs = append(diffs, fmt.Sprintf("JSON %s %s: %q, but its value %v formats as %q", c.ClinicID, k, c.KPIs[k], deref(c.Values[k]), f))
				}
			}
		}
		if len(o2.KPIs) != 8 {
			diffs = append(diffs, fmt.Sprintf("kpi_names %v, want the 8 of the contract", o2.KPIs))
		}
		return append(diffs, compareTables(shown, want)...)
	})
	return o
}

func (d dash) clinic(id string) clinicJSON {
	var c clinicJSON
	d.page("clinic-"+id[len(id)-4:], "/clinics/"+id, []string{"table#tracks", "table#at-risk", "table#funnel"},
		"/api/clinics/"+id+".json", &c, func() []string {
			var diffs []string
			if c.ClinicID != id {
				diffs = append(diffs, fmt.Sprintf("JSON clinic_id %q", c.ClinicID))
			}
			tracks := table{}
			for _, tr := range c.Tracks {
				tracks[tr.ID] = map[string]string{"capacity": strconv.Itoa(tr.Capacity), "active": strconv.Itoa(tr.Active), "waitlisted": strconv.Itoa(tr.Waitlisted)}
			}
			diffs = append(diffs, prefixed("tracks", compareTables(pick(readTable(d.t, d, "tracks", "data-track-id"), "capacity", "active", "waitlisted"), tracks))...)
			risk := table{}
			for _, r := range c.AtRisk {
				risk[r.EnrollmentID] = map[string]string{"patient_id": r.PatientID}
			}
			diffs = append(diffs, prefixed("at-risk", compareTables(pick(readTable(d.t, d, "at-risk", "data-enrollment-id"), "patient_id"), risk))...)
			funnel := table{}
			for _, f := range c.Funnel {
				funnel[f.Status] = map[string]string{"count": strconv.Itoa(f.Count)}
			}
			return append(diffs, prefixed("funnel", compareTables(readTable(d.t, d, "funnel", "data-status"), funnel))...)
		})
	if len(c.Tracks) == 0 {
		d.t.Errorf("clinic %s has no tracks after the demo", id)
	}
	return c
}

func (d dash) billing() billingJSON {
	var bl billingJSON
	d.page("billing", "/billing", []string{"table#flow", "table#aging", "table#holds"}, "/api/billing.json", &bl, func() []string {
		var diffs []string
		fc := bl.FlowCents
		for k, cents := range map[string]int64{"charges": fc.Charges, "claims_submitted": fc.ClaimsSubmitted, "paid": fc.Paid, "denied": fc.Denied} {
			if bl.Flow[k] != dollars(cents) {
				diffs = append(diffs, fmt.Sprintf("JSON flow %s %q, but %d cents is %q", k, bl.Flow[k], cents, dollars(cents)))
			}
		}
		flow := readTable(d.t, d, "flow", "data-stage")
		shownFlow := table{"flow": {}}
		for _, cells := range flow {
			for k, v := range cells {
				shownFlow["flow"][k] = v
			}
		}
		diffs = append(diffs, prefixed("flow", compareTables(shownFlow, table{"flow": bl.Flow}))...)
		aging := table{}
		for _, a := range bl.Aging {
			row := map[string]string{"total": dollars(a.Total)}
			for _, b := range bl.Buckets {
				row[b] = dollars(a.Cents[b])
			}
			aging[a.PayerID] = row
		}
		diffs = append(diffs, prefixed("aging", compareTables(readTable(d.t, d, "aging", "data-payer-id"), aging))...)
		holds := table{}
		for _, h := range bl.Holds {
			holds[h.Reason] = map[string]string{"count": strconv.Itoa(h.Count)}
		}
		return append(diffs, prefixed("holds", compareTables(readTable(d.t, d, "holds", "data-reason"), holds))...)
	})
	return bl
}

func (d dash) health() {
	var h healthJSON
	d.page("health", "/health", []string{"table#events"}, "/api/health.json", &h, func() []string {
		want := table{}
		for _, s := range h.Streams {
			want[s.Stream] = map[string]string{"events": strconv.Itoa(s.Events)}
		}
		var diffs []string
		if len(h.Streams) == 0 {
			diffs = append(diffs, "no streams")
		}
		return append(diffs, compareTables(pick(readTable(d.t, d, "events", "data-stream"), "events"), want)...)
	})
}

// compareTables lists the rows and cells where got and want differ.
func compareTables(got, want table) []string {
	var diffs []string
	keys := map[string]bool{}
	for k := range got {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		g, inGot := got[k]
		w, inWant := want[k]
		switch {
		case !inGot:
			diffs = append(diffs, fmt.Sprintf("row %s: not shown (read model: %v)", k, w))
		case !inWant:
			diffs = append(diffs, fmt.Sprintf("row %s: shown %v, not in the read model", k, g))
		default:
			for c, wv := range w {
				if gv, ok := g[c]; !ok || gv != wv {
					diffs = append(diffs, fmt.Sprintf("row %s %s: shown %q, read model %q", k, c, gv, wv))
				}
			}
			for c, gv := range g {
				if _, ok := w[c]; !ok {
					diffs = append(diffs, fmt.Sprintf("row %s %s: shown %q, not in the read model", k, c, gv))
				}
			}
		}
	}
	return diffs
}

// pick keeps only the named cells of each row.
func pick(tb table, cells ...string) table {
	out := table{}
	for k, row := range tb {
		out[k] = map[string]string{}
		for _, c := range cells {
			if v, ok := row[c]; ok {
				out[k][c] = v
			}
		}
	}
	return out
}

func prefixed(p string, diffs []string) []string {
	for i := range diffs {
		diffs[i] = p + ": " + diffs[i]
	}
	return diffs
}

// formatKPI formats a figure as the contract says: counts as integers, rates as "87.5%", days
// with one decimal, "—" when unknown; tenths rounded half away from zero.
func formatKPI(name string, v *float64) string {
	if v == nil {
		return "—"
	}
	switch {
	case name == "census" || name == "capacity":
		return strconv.FormatFloat(*v, 'f', 0, 64)
	case strings.HasSuffix(name, "_rate") || name == "meeting_minimum":
		return strconv.FormatFloat(math.Round(*v*1000)/10, 'f', 1, 64) + "%"
	default:
		return strconv.FormatFloat(math.Round(*v*10)/10, 'f', 1, 64)
	}
}

func deref(v *float64) any {
	if v == nil {
		return nil
	}
	return *v
}

// dollars formats integer cents as "$1,234.56" ("-$0.05" below zero).
func dollars(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	s := strconv.FormatInt(c/100, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return fmt.Sprintf("%s$%s.%02d", sign, s, c%100)
}
