package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trellis-health/trellis/services/dashboard/internal/kpi"
	"github.com/trellis-health/trellis/services/dashboard/internal/web"
)

// Weekly trends on the overview (network and one clinic) and the billing page: every Monday-start
// week of the range, figures that add up to the range's, the same numbers in the tables.
func TestWeeklyTrends(t *testing.T) {
	e := start(t)
	now := time.Now().UTC()
	e.feed(now)
	cookie := e.signIn("admin", "*")
	today := now.Truncate(24 * time.Hour)
	from := today.AddDate(0, 0, -27)
	rng := "?from=" + day(from) + "&to=" + day(today)

	var o web.Overview
	e.json("/api/overview.json"+rng, cookie, &o)
	weeks := kpi.Weeks(kpi.Range{From: from, To: today})
	if len(o.Trends.Weeks) != len(weeks) || o.Trends.ClinicID != "" {
		t.Fatalf("trends: %+v, want %d weeks for the network", o.Trends, len(weeks))
	}
	byWeek := map[string]web.TrendRow{}
	admissions := 0
	for i, w := range o.Trends.Weeks {
		if w.Week != day(weeks[i].Monday) || w.From != day(weeks[i].From) || w.To != day(weeks[i].To) {
			t.Errorf("week %d: %+v, want %v", i, w, weeks[i])
		}
		if time.Time(weeks[i].Monday).Weekday() != time.Monday {
			t.Errorf("week %s does not start on a Monday", w.Week)
		}
		byWeek[w.Week] = w
		admissions += int(*w.Values["admissions"])
	}
	if admissions != 1 {
		t.Errorf("admissions over the weeks: %d, want 1", admissions)
	}
	// Attendance of clinic A: present (d5), absent, excused and late (d4).
	d := func(n int) time.Time { return today.AddDate(0, 0, -n) }
	w4, w5 := day(kpi.Monday(d(4))), day(kpi.Monday(d(5)))
	if w4 == w5 {
		if got := byWeek[w4].KPIs["attendance_rate"]; got != "66.7%" {
			t.Errorf("attendance in the week of %s: %s, want 66.7%%", w4, got)
		}
	} else if byWeek[w5].KPIs["attendance_rate"] != "100.0%" || byWeek[w4].KPIs["attendance_rate"] != "50.0%" {
		t.Errorf("attendance: week %s %s (want 100.0%%), week %s %s (want 50.0%%)", w5, byWeek[w5].KPIs["attendance_rate"], w4, byWeek[w4].KPIs["attendance_rate"])
	}
	// Census: nobody before the enrollments started (d9); at the end, A's two and B's one.
	if got := o.Trends.Weeks[0].KPIs["census"]; got != "0" {
		t.Errorf("census in the first week: %s", got)
	}
	if got := o.Trends.Weeks[len(weeks)-1].KPIs["census"]; got != "3" || got != o.Total.KPIs["census"] {
		t.Errorf("census at the end: %s, want 3 (today's census %s)", got, o.Total.KPIs["census"])
	}
	// Between the seats (d9) and the two ends (d1), A's four and B's one were seated.
	for _, w := range o.Trends.Weeks {
		if w.To >= day(d(8)) && w.To <= day(d(3)) && w.KPIs["census"] != "5" {
			t.Errorf("census at %s: %s, want 5 (e3 and e4 not ended yet)", w.To, w.KPIs["census"])
		}
	}
	page := e.page("/overview"+rng, cookie)
	for _, w := range o.Trends.Weeks {
		got := cells(t, page, "trends", "data-week", w.Week, "data-kpi")
		for k, v := range w.KPIs {
			if got[k] != v {
				t.Errorf("trends %s %s shows %q, JSON %q", w.Week, k, got[k], v)
			}
		}
	}
	for _, want := range []string{`<svg id="trend-chart" role="img"`, `<title id="trend-chart-title">`, `<desc id="trend-chart-desc">`, `<caption id="trends-caption">`} {
		if !strings.Contains(page, want) {
			t.Errorf("overview lacks %s", want)
		}
	}

	// One clinic.
	e.json("/api/overview.json"+rng+"&clinic="+clinicB, cookie, &o)
	if o.Trends.ClinicID != clinicB || o.Trends.Name != "Riverside" || o.Trends.Weeks[len(weeks)-1].KPIs["census"] != "1" {
		t.Errorf("clinic B's trends: %s %s %v", o.Trends.ClinicID, o.Trends.Name, o.Trends.Weeks[len(weeks)-1].KPIs)
	}
	if !strings.Contains(e.page("/overview"+rng+"&clinic="+clinicB, cookie), `<option value="`+clinicB+`" selected>`) {
		t.Error("the chosen clinic is not selected")
	}
	for _, bad := range []string{"nope", "0190a000-0000-7000-8000-0000000000ff"} {
		if code, _, body := e.get("/overview"+rng+"&clinic="+bad, cookie); code != http.StatusBadRequest || !strings.Contains(body, "clinic: not one of your clinics") {
			t.Errorf("clinic=%s: %d", bad, code)
		}
	}
	// An operator of A cannot ask for B's trends.
	opA := e.signIn("operator", clinicA)
	if code, _, _ := e.get("/api/overview.json?clinic="+clinicB, opA); code != http.StatusBadRequest {
		t.Errorf("operator of A asking for B: %d", code)
	}

	// Billing per week: the weeks add up to the flow.
	var b web.Billing
	e.json("/api/billing.json"+rng, cookie, &b)
	var sum int64
	for _, w := range b.Trends {
		sum += w.Cents.Charges
	}
	if len(b.Trends) != len(weeks) || sum != b.FlowCents.Charges || b.FlowCents.Charges == 0 {
		t.Errorf("billing trends: %d weeks, charges %d, flow %d", len(b.Trends), sum, b.FlowCents.Charges)
	}
	page = e.page("/billing"+rng, cookie)
	for _, w := range b.Trends {
		got := cells(t, page, "billing-trends", "data-week", w.Week, "data-kpi")
		for k, v := range w.Amounts {
			if got[k] != v {
				t.Errorf("billing trends %s %s shows %q, JSON %q", w.Week, k, got[k], v)
			}
		}
	}
}
