package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/deploy/devstack/stack"
	"github.com/trellis-health/trellis/e2e/browser"
	"github.com/trellis-health/trellis/pkg/testkit"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"
)

const lakeviewID = "0190a000-0000-7000-8000-000000000002" // another demo clinic

// TestDashboardInABrowser opens every page of the dashboard in headless Chromium, as an
// operator of every clinic and as an operator of one, after the demo network and its revenue
// cycle ran: the figures on each page are the read model's (the page's JSON endpoint, fetched
// with the browser's session cookie), a one-clinic operator sees only that clinic, and every
// page passes the accessibility check (our rules and axe-core). The overview is sorted,
// filtered and its trends chosen through the page (keyboard included) and shown 820 px wide; a
// biller uploads a payer's denial through the billing page's form, sees the denial in the work
// queue, marks it appealed and writes it off. Screenshots (laptop and tablet) are test
// artefacts: `go test -artifacts` keeps them (docs/development.md).
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
	demo, err := s.SeedBillingDemo(ctx)
	if err != nil {
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

	t.Run("sort, filter and trends", func(t *testing.T) {
		b := browser.New(t)
		browser.SignIn(t, b, base, "operator", []string{"*"})
		d := dash{t: t, b: b, base: base, cookie: browser.CookieHeader(t, b, base), user: "all"}
		d.sortFilterTrends()
	})

	t.Run("biller acts on the work queues", func(t *testing.T) {
		b := browser.New(t, browser.WithTimeout(90*time.Second))
		browser.SignIn(t, b, base, "billing", []string{"*"})
		d := dash{t: t, b: b, base: base, cookie: browser.CookieHeader(t, b, base), user: "biller"}
		claimID := d.denyAndAppeal(ctx, s, demo)
		// Needs billing's WriteOff (issue 7, billing's part): until it lands billing answers
		// Unimplemented and this subtest fails.
		t.Run("write off", func(t *testing.T) { d.t = t; d.writeOff(claimID) })
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
	}{{"attendance_rate", &half, "81.3%"}, {"median_length_of_stay", &half, "0.8"}, {"census", ptr(12.0), "12"}, {"admissions", ptr(3.0), "3"}, {"no_show_rate", nil, "—"}} {
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
		Trends  struct {
			ClinicID string   `json:"clinic_id"`
			KPIs     []string `json:"kpi_names"`
			Weeks    []struct {
				Week   string              `json:"week"`
				KPIs   map[string]string   `json:"kpis"`
				Values map[string]*float64 `json:"values"`
			} `json:"weeks"`
		} `json:"trends"`
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
			WrittenOff      int64 `json:"written_off_cents"`
		} `json:"flow_cents"`
		Trends []struct {
			Week    string            `json:"week"`
			Amounts map[string]string `json:"amounts"`
		} `json:"trends"`
		WriteOffs []struct {
			Reason      string `json:"reason"`
			Count       int    `json:"count"`
			AmountCents int64  `json:"amount_cents"`
		} `json:"write_offs"`
		DenialReasons []struct {
			Code    string `json:"code"`
			Denials int    `json:"denials"`
		} `json:"denial_reasons"`
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
	d.page("overview", "/overview", []string{"table#network", "table#trends"}, "/api/overview.json", &o, func() []string {
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
		// The default range ends today: the last week's census is today's.
		if n := len(o2.Trends.Weeks); n > 0 && o2.Trends.Weeks[n-1].KPIs["census"] != o2.Total.KPIs["census"] {
			diffs = append(diffs, fmt.Sprintf("census at the last week's end %q, today's census %q", o2.Trends.Weeks[n-1].KPIs["census"], o2.Total.KPIs["census"]))
		}
		return append(append(diffs, compareTables(shown, want)...), d.trendDiffs(o2)...)
	})
	return o
}

// trendDiffs compares table#trends with the JSON's trends (and the JSON's strings with its
// numbers), and checks the trend chart is there with its text alternative.
func (d dash) trendDiffs(o overviewJSON) []string {
	var diffs []string
	want := table{}
	for _, w := range o.Trends.Weeks {
		want[w.Week] = w.KPIs
		for _, k := range o.Trends.KPIs {
			if f := formatKPI(k, w.Values[k]); f != w.KPIs[k] {
				diffs = append(diffs, fmt.Sprintf("JSON trends %s %s: %q, but its value %v formats as %q", w.Week, k, w.KPIs[k], deref(w.Values[k]), f))
			}
		}
		if wd, err := time.Parse(time.DateOnly, w.Week); err != nil || wd.Weekday() != time.Monday {
			diffs = append(diffs, fmt.Sprintf("trend week %q is not a Monday", w.Week))
		}
	}
	if len(o.Trends.Weeks) == 0 {
		diffs = append(diffs, "no trend weeks")
	}
	if !browser.Eval[bool](d.t, d.b, `(() => { const s = document.querySelector('svg#trend-chart[role="img"]');
		return !!s && !!s.querySelector('title') && s.querySelector('title').textContent.trim() !== '' && !!s.querySelector('desc'); })()`) {
		diffs = append(diffs, "no svg#trend-chart with role img, title and desc")
	}
	return append(diffs, prefixed("trends", compareTables(readTable(d.t, d, "trends", "data-week"), want))...)
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
	d.page("billing", "/billing", []string{"table#flow", "table#aging", "table#holds", "table#write-offs", "table#billing-trends"}, "/api/billing.json", &bl, func() []string {
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
		diffs = append(diffs, prefixed("holds", compareTables(readTable(d.t, d, "holds", "data-reason"), holds))...)
		wos := table{}
		for _, w := range bl.WriteOffs {
			wos[w.Reason] = map[string]string{"count": strconv.Itoa(w.Count), "amount": dollars(w.AmountCents)}
		}
		diffs = append(diffs, prefixed("write-offs", compareTables(readTable(d.t, d, "write-offs", "data-reason"), wos))...)
		weeks := table{}
		for _, w := range bl.Trends {
			weeks[w.Week] = w.Amounts
		}
		if len(bl.Trends) == 0 {
			diffs = append(diffs, "no billing trend weeks")
		}
		return append(diffs, prefixed("billing-trends", compareTables(readTable(d.t, d, "billing-trends", "data-week"), weeks))...)
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
	case name == "census" || name == "capacity" || name == "admissions":
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

// shownOrder is the clinics of the overview's rows, in the order shown (the total left out).
func (d dash) shownOrder() []string {
	return browser.Eval[[]string](d.t, d.b, `[...document.querySelectorAll('#network tbody tr[data-clinic-id]')].map(r => r.dataset.clinicId)`)
}

// apiFor is the JSON endpoint with the query of the page the browser shows.
func (d dash) apiFor(loc string) string {
	u, err := url.Parse(loc)
	if err != nil {
		d.t.Fatal(err)
	}
	return "/api/overview.json?" + u.RawQuery
}

// sortFilterTrends sorts the overview by a column (with the keyboard, then the mouse), filters
// it by name, chooses a clinic's trends, and checks each time that the page shows what the
// JSON says for the same query; then the page at 820 px wide.
func (d dash) sortFilterTrends() {
	t, b := d.t, d.b
	browser.Open(t, b, d.base+"/overview", "table#network")
	// Keyboard: the first Tab reaches the skip link; no element jumps the focus order.
	browser.Eval[bool](t, b, `(document.activeElement && document.activeElement.blur(), true)`)
	if got := browser.Tab(t, b); got != "a.skip" {
		t.Errorf("the first Tab focuses %q, want the skip link", got)
	}
	if n := browser.Eval[int](t, b, `document.querySelectorAll('[tabindex]:not([tabindex="0"]):not([tabindex="-1"])').length`); n != 0 {
		t.Errorf("%d elements with a positive tabindex", n)
	}

	check := func(wantSort, aria string) overviewJSON {
		t.Helper()
		loc := browser.Location(t, b)
		var o overviewJSON
		d.json(d.apiFor(loc), &o)
		if got := d.shownOrder(); !slices.Equal(got, o.ids()) {
			t.Errorf("%s: rows %v, JSON %v", loc, got, o.ids())
		}
		if got := browser.Eval[string](t, b, fmt.Sprintf(`(document.querySelector('th[data-sort-key=%q]') || {getAttribute: () => 'none'}).getAttribute('aria-sort') || ''`, wantSort)); got != aria {
			t.Errorf("%s: %s heading aria-sort %q, want %q", loc, wantSort, got, aria)
		}
		if n := browser.Eval[int](t, b, `document.querySelectorAll('th[aria-sort]').length`); n != 1 {
			t.Errorf("%s: %d headings with aria-sort", loc, n)
		}
		return o
	}
	check("clinic", "ascending")
	browser.Press(t, b, `th[data-sort-key="census"] a`)
	browser.WaitLocation(t, b, "sort=census")
	o := check("census", "ascending")
	for i := 1; i < len(o.Clinics); i++ {
		if *o.Clinics[i-1].Values["census"] > *o.Clinics[i].Values["census"] {
			t.Errorf("census ascending: %v", o.ids())
		}
	}
	browser.Click(t, b, `th[data-sort-key="census"] a`)
	browser.WaitLocation(t, b, "dir=desc")
	check("census", "descending")

	// Filter by name: only Riverside, the total over it alone, the sort kept.
	browser.Type(t, b, "#q", "RIVER")
	browser.Click(t, b, "#apply-filter")
	loc := browser.WaitLocation(t, b, "q=RIVER")
	if !strings.Contains(loc, "sort=census") {
		t.Errorf("the filter lost the sort: %s", loc)
	}
	o = check("census", "descending")
	if !slices.Equal(o.ids(), []string{clinicID}) || o.Total.KPIs["census"] != o.Clinics[0].KPIs["census"] {
		t.Errorf("filtered: %v, total %v", o.ids(), o.Total.KPIs)
	}
	if rows := readTable(t, d, "network", "data-clinic-id"); rows["total"]["census"] != o.Total.KPIs["census"] {
		t.Errorf("total row shows %v, JSON %v", rows["total"], o.Total.KPIs)
	}

	// A clinic's trends.
	browser.Eval[bool](t, b, fmt.Sprintf(`(document.querySelector('#trend-clinic').value = %q, true)`, clinicID))
	browser.Click(t, b, "#show-trends")
	loc = browser.WaitLocation(t, b, "clinic="+clinicID)
	d.json(d.apiFor(loc), &o)
	if o.Trends.ClinicID != clinicID {
		t.Errorf("trends for %q, want %s", o.Trends.ClinicID, clinicID)
	}
	if diffs := d.trendDiffs(o); len(diffs) > 0 {
		t.Errorf("%s:\n  %s", loc, strings.Join(diffs, "\n  "))
	}
	browser.Accessibility(t, b)
	browser.Screenshot(t, b, d.user+"-overview-sorted-filtered-laptop")

	// A tablet 820 px wide: nothing wider than the screen (wide tables scroll in their region).
	browser.Open(t, b, d.base+"/overview", "table#network")
	browser.Resize(t, b, browser.TabletNarrow)
	if w := browser.Eval[int](t, b, "window.innerWidth"); w != int(browser.TabletNarrow.Width) {
		t.Errorf("viewport %d px wide, want %d", w, browser.TabletNarrow.Width)
	}
	if over := browser.Eval[int](t, b, "document.documentElement.scrollWidth - document.documentElement.clientWidth"); over > 0 {
		t.Errorf("the overview is %d px wider than an 820 px screen", over)
	}
	browser.Accessibility(t, b)
	browser.Screenshot(t, b, d.user+"-overview-tablet-820")
	browser.Resize(t, b, browser.Laptop)
}

// denyAndAppeal uploads, through the billing page's form, the payer's 835 denying the demo's
// claim (CLP status 4, CO-50), sees the denial in the work queue, marks it appealed with the
// keyboard, and returns the work item's id.
func (d dash) denyAndAppeal(ctx context.Context, s *stack.Stack, demo stack.BillingDemo) string {
	t, b := d.t, d.b
	if len(demo.Files) == 0 {
		t.Fatal("the billing demo wrote no claim file")
	}
	biller := bearer(t, s, []string{"billing"}, []string{"*"})
	claims := billingv1connect.NewClaimsServiceClient(http.DefaultClient, s.URL("billing"))
	file, err := claims.DownloadClaimFile(ctx, withToken(connect.NewRequest(&billingv1.DownloadClaimFileRequest{
		FileId: demo.Files[0].GetFileId()}), biller))
	if err != nil {
		t.Fatal(err)
	}
	list, err := claims.ListClaims(ctx, withToken(connect.NewRequest(&billingv1.ListClaimsRequest{
		ClinicId: demo.ClinicID, PatientId: demo.PatientID}), biller))
	if err != nil || len(list.Msg.GetClaims()) != 1 {
		t.Fatalf("the demo's claims: %v %v", list, err)
	}
	claimID := list.Msg.GetClaims()[0].GetClaimId()
	// The payer denies the whole claim: nothing paid, CO-50 (not medically necessary).
	era := answer835(t, string(file.Msg.GetContent()), 0, 25000)
	era = regexp.MustCompile(`(CLP\*[^*~]+)\*1\*`).ReplaceAllString(era, "${1}*4*")
	era = strings.ReplaceAll(era, "CAS*CO*45*", "CAS*CO*50*")
	path := filepath.Join(t.TempDir(), "denial.835")
	if err := os.WriteFile(path, []byte(era), 0o600); err != nil {
		t.Fatal(err)
	}

	browser.Open(t, b, d.base+"/billing", "form#upload-835")
	browser.UploadFile(t, b, "#era-file", path)
	browser.Click(t, b, "#upload")
	browser.WaitLocation(t, b, "/billing/remittances")
	got := browser.Eval[map[string]string](t, b, `Object.fromEntries([...document.querySelectorAll('#upload-summary td[data-field]')].map(c => [c.dataset.field, c.textContent.trim()]))`)
	if got["matched_claims"] != "1" || got["work_items"] == "0" || got["total_paid"] != "$0.00" {
		t.Fatalf("upload summary %v, want the claim matched and a work item opened", got)
	}
	browser.Accessibility(t, b)
	browser.Screenshot(t, b, d.user+"-billing-uploaded")

	// The denial is in the queue (billing's, read with the biller's token).
	browser.Open(t, b, d.base+"/billing", "table#queue-denial")
	items := browser.Eval[[]string](t, b, fmt.Sprintf(`[...document.querySelectorAll('#queue-denial tr[data-work-item-id]')]
		.filter(tr => tr.querySelector('[data-field="claim_id"]').textContent.trim() === %q).map(tr => tr.dataset.workItemId)`, claimID))
	if len(items) != 1 {
		t.Fatalf("denial queue rows for claim %s: %v", claimID, items)
	}
	item := items[0]
	row := func() map[string]string {
		return readTable(t, d, "queue-denial", "data-work-item-id")[item]
	}
	if r := row(); r["appeal_status"] != "none" || !strings.Contains(r["reason"], "CO-50") {
		t.Errorf("new denial row %v", r)
	}
	// Mark it appealed, with the keyboard.
	browser.Press(t, b, fmt.Sprintf(`tr[data-work-item-id=%q] button[data-action="appealed"]`, item))
	browser.WaitLocation(t, b, "done=appealed")
	if n := browser.Eval[string](t, b, `(document.querySelector('#action-notice') || {textContent: ''}).textContent.trim()`); n != "The denial is marked appealed." {
		t.Errorf("notice after marking appealed: %q", n)
	}
	if r := row(); r["appeal_status"] != "appealed" {
		t.Errorf("after marking appealed the row shows %v", r)
	}
	// The figures: the claim stands denied in the flow, CO-50 among the reasons.
	bl := d.billing()
	if bl.FlowCents.Denied == 0 || !slices.ContainsFunc(bl.DenialReasons, func(r struct {
		Code    string `json:"code"`
		Denials int    `json:"denials"`
	}) bool {
		return r.Code == "CO-50"
	}) {
		t.Errorf("after the denial: flow %+v, reasons %+v", bl.FlowCents, bl.DenialReasons)
	}
	return item
}

// writeOff writes off $10.00 of the denial through its form and waits until the write-off is
// in the billing page's figures (BalanceWrittenOff projected).
func (d dash) writeOff(item string) {
	t, b := d.t, d.b
	row := fmt.Sprintf(`tr[data-work-item-id=%q]`, item)
	browser.Open(t, b, d.base+"/billing", row+` summary[data-action="write-off"]`)
	browser.Click(t, b, row+` summary[data-action="write-off"]`)
	browser.Eval[bool](t, b, fmt.Sprintf(`(document.querySelector('#wo-reason-%s').value = 'small_balance', true)`, item))
	browser.Type(t, b, "#wo-amount-"+item, "10.00")
	from := browser.Location(t, b)
	browser.Click(t, b, row+` button[data-action="write-off-submit"]`)
	loc := browser.WaitNavigated(t, b, from)
	notice := browser.Eval[string](t, b, `(document.querySelector('#action-notice, #action-error') || {textContent: ''}).textContent.replace(/\s+/g, ' ').trim()`)
	if !strings.Contains(loc, "done=written_off") || !strings.HasPrefix(notice, "Wrote off $10.00 (small balance).") {
		t.Fatalf("after writing off: at %s, the page says %q", loc, notice)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var bl billingJSON
		d.json("/api/billing.json", &bl)
		if bl.FlowCents.WrittenOff >= 1000 && slices.ContainsFunc(bl.WriteOffs, func(w struct {
			Reason      string `json:"reason"`
			Count       int    `json:"count"`
			AmountCents int64  `json:"amount_cents"`
		}) bool {
			return w.Reason == "small_balance"
		}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the write-off is not in the billing figures 15 s later: %+v", bl.WriteOffs)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// The item stays open for the rest, and its form says what is left.
	browser.Open(t, b, d.base+"/billing", row)
	if help := browser.Eval[string](t, b, fmt.Sprintf(`(document.querySelector('#wo-help-%s') || {textContent: ''}).textContent`, item)); !strings.Contains(help, "$10.00 already written off") {
		t.Errorf("the write-off form after $10.00 written off says %q", help)
	}
	d.billing()
}
