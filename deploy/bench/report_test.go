package bench

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // unsorted: Summarize sorts
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	l := Summarize(ds)
	if l.N != 100 || l.P50 != 50*time.Millisecond || l.P95 != 95*time.Millisecond || l.P99 != 99*time.Millisecond || l.Max != 100*time.Millisecond {
		t.Fatalf("%+v", l)
	}
	if ds[0] != 100*time.Millisecond {
		t.Fatal("Summarize sorted its argument")
	}
	if got := Summarize(nil); got.N != 0 || got.P99 != 0 {
		t.Fatalf("empty: %+v", got)
	}
	one := Summarize([]time.Duration{7})
	if one.P50 != 7 || one.P99 != 7 {
		t.Fatalf("one: %+v", one)
	}
	if Percentile([]time.Duration{1, 2, 3}, 0) != 1 {
		t.Fatal("p0 is the smallest")
	}
}

const goBenchOut = `goos: linux
pkg: github.com/trellis-health/trellis/pkg/bus
BenchmarkRawInsertCommit-2       	    2000	    331652 ns/op	      3015 tx/s	    1156 B/op	      14 allocs/op
BenchmarkParseERA/parse+balance-2             	      20	  22321049 ns/op	  40.80 MB/s	    242327 lines/s	17427266 B/op	  111087 allocs/op
BenchmarkPostRemittance/post-2                    	      20	  95194427 ns/op	      4202 lines/s	12321378 B/op	   78735 allocs/op
BenchmarkPostRemittance/baseline=insert-2         	      20	   3377610 ns/op	    118427 lines/s	  484027 B/op	    6841 allocs/op
PASS
ok  	github.com/trellis-health/trellis/pkg/bus	6.309s
`

func TestParseGoBench(t *testing.T) {
	gb := ParseGoBench(goBenchOut)
	if len(gb) != 4 {
		t.Fatalf("%v", gb)
	}
	if gb["BenchmarkRawInsertCommit"]["tx/s"] != 3015 || gb["BenchmarkParseERA/parse+balance"]["lines/s"] != 242327 ||
		gb["BenchmarkPostRemittance/post"]["allocs/op"] != 78735 {
		t.Fatalf("%v", gb)
	}
}

func sample() Report {
	gb := ParseGoBench(goBenchOut)
	return Report{Scale: "small", Started: time.Date(2026, 11, 29, 21, 0, 0, 0, time.UTC), Elapsed: 150 * time.Second,
		Commit: "abc1234", Host: "2 cores.", Network: "a network.", Appointments: 300, Concurrency: 8,
		PGCommitsPerS: 2000, JSPublishPerS: 40000, JSConsumePerS: 20000,
		Phases: []Phase{
			{Name: "Light load", Offered: 20, Workers: 16, LoadSeconds: 5, Calls: 100, Accepted: 100, DrainSeconds: 5,
				Latency: Summarize([]time.Duration{10 * time.Millisecond, 30 * time.Millisecond})},
			{Name: "Fixed load", Offered: 500, Workers: 50, LoadSeconds: 10, Calls: 2000, Accepted: 2000, DrainSeconds: 20,
				Hops:    []Hop{{Name: "published to SCHEDULING (relay)", Events: 2000, Seconds: 10}},
				Latency: Summarize([]time.Duration{40 * time.Millisecond, 80 * time.Millisecond})},
			// The same rate offered as sessions of 10 places: 50 calls a second.
			{Name: "Fixed load", Mode: PerSession, Offered: 500, Workers: 16, LoadSeconds: 10, Calls: 500, Accepted: 5000, DrainSeconds: 12,
				Latency: Summarize([]time.Duration{20 * time.Millisecond, 60 * time.Millisecond})},
			{Name: "Saturation", Workers: 8, LoadSeconds: 10, Calls: 3000, Accepted: 3000, DrainSeconds: 15,
				CPU:     map[string]float64{"billing": 6, "scheduling": 9},
				Latency: Summarize([]time.Duration{900 * time.Millisecond})},
			{Name: "Saturation", Mode: PerSession, Workers: 8, LoadSeconds: 10, Calls: 600, Accepted: 6000, DrainSeconds: 12, Skipped: 7,
				Latency: Summarize([]time.Duration{300 * time.Millisecond})},
		},
		ReadSide: []Endpoint{
			{Group: "dashboard", Name: "GET /overview", Latency: Summarize([]time.Duration{30 * time.Millisecond, 60 * time.Millisecond})},
			{Group: "dashboard", Name: "GET /billing", Latency: Summarize([]time.Duration{70 * time.Millisecond})},
			{Group: "billing", Name: "ListWorkItems denial", Latency: Summarize([]time.Duration{5 * time.Millisecond})},
		},
		ERAParsePerS: gb["BenchmarkParseERA/parse+balance"]["lines/s"], ERAPostPerS: gb["BenchmarkPostRemittance/post"]["lines/s"],
		ERAInsertBaselinePerS: 118427, ERABytesPerLine: 168, UploadLimitBytes: 1 << 20,
		RSSMB:   map[string]float64{"billing": 61.25, "dashboard": 40},
		GoBench: gb,
	}
}

func TestSummary(t *testing.T) {
	s := sample().Summary()
	want := Summary{Scale: "small", PipelineEventsPerS: 200, BaselinePGCommitsPerS: 2000, PipelineToBaselineRatio: 0.1,
		E2EP50MsAt500: 40, E2EP99MsAt500: 80, AcceptedPerSAt500: 200, LightOfferedPerS: 20, E2EP50MsLight: 10, E2EP99MsLight: 30, E2EP99MsAtSaturation: 900, DashboardP95Ms: 70,
		DashboardP95Over: "bench network", DashboardP95MsBenchNetwork: 70,
		BillingQueuesP95Ms: 5, ERALinesPerS: 4130.4, MaxRSSMB: 61.3, BaselineJSPublishPerS: 40000, BaselineJSConsumePerS: 20000, ElapsedS: 150,
		// A session per call: its own phases, not the per-appointment ones.
		PipelineEventsPerSSessions: 500, PipelineToBaselineRatioSessions: 0.25, E2EP50MsAt500Sessions: 20, E2EP99MsAt500Sessions: 60,
		AcceptedPerSAt500Sessions: 500, E2EP99MsAtSaturationSessions: 300, EventsPerCallSessions: 10}
	if s != want {
		t.Fatalf("summary\n got %+v\nwant %+v", s, want)
	}
	var back map[string]any
	if err := json.Unmarshal([]byte(sample().JSON()), &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"pipeline_events_per_s", "baseline_pg_commits_per_s", "pipeline_to_baseline_ratio",
		"e2e_p99_ms_at_500", "dashboard_p95_ms", "era_lines_per_s", "max_rss_mb",
		"pipeline_events_per_s_sessions", "pipeline_to_baseline_ratio_sessions", "e2e_p99_ms_at_500_sessions",
		"e2e_p50_ms_at_500_sessions", "accepted_per_s_at_500_sessions"} {
		if _, ok := back[k]; !ok {
			t.Errorf("JSON lacks %s: %s", k, sample().JSON())
		}
	}
	if strings.Contains(sample().JSON(), "\n") {
		t.Error("the JSON is not one line")
	}
}

func TestMarkdown(t *testing.T) {
	r := sample()
	before := Summary{PipelineEventsPerS: 100, PipelineToBaselineRatio: 0.05}
	md := r.Markdown(&before, "before batching")
	for _, want := range []string{
		"# Benchmarks", "| `pipeline_to_baseline_ratio` (one correction per call) | 0.1 | ≥ 0.5 | 0.05 |", "before batching",
		// The session mode beside it; the earlier run did not measure it: a dash, not a 0.
		"| pipeline events/s (saturation, end to end), a session per call (10 events a call) | 500 |  | — |",
		"| `pipeline_to_baseline_ratio_sessions` | 0.25 | ≥ 0.5 | — |",
		"| `accepted_per_s_at_500_sessions` (events/s at an offered 500/s, a session per call) | 500 | 500 | — |",
		"| `e2e_p50_ms_at_500_sessions` | 20 |  | — |", "| `e2e_p99_ms_at_500_sessions` | 60 | < 100 | — |",
		// Both modes side by side, then each phase.
		"| Fixed load | one correction per call | 200 | 1.0 | 200 | 100 | 0.050 | 40.0 | 80.0 |",
		"| Fixed load | a session per call | 50.0 | 10.0 | 500 | 417 | 0.208 | 20.0 | 60.0 |",
		"| Saturation | a session per call | 60.0 | 10.0 | 600 | 500 | 0.250 | 300.0 | 300.0 |",
		"### Saturation (a session per call, saturation, 8 workers, 10 s of load)",
		"Accepted 6000 attendance events in 600 calls (600 events/s over the load, 7 calls skipped",
		"**500 events/s end to end** (ratio 0.250)",
		"| JetStream: publish with ack (async, file storage, message ids) | 40000 |",
		"**200 events/s end to end** (ratio 0.100)",
		"| published to SCHEDULING (relay) | 2000 | 10.0 | 200 | 0.100 |",
		"p50 40.0 ms, p95 80.0 ms, p99 80.0 ms",
		"| dashboard `GET /overview` | 2 | 30.0 | 60.0 | 60.0 |",
		"| **parse + balance + post** | **4130** |", "one of 100,000 lines is about 16.8 MB", "about 6242 lines a file",
		"cannot be uploaded in one file today",
		"| billing | 61.2 |", "| scheduling | 9.0 | 3.00 |\n| billing | 6.0 | 2.00 |", "| e2e p50 / p99 ms at a light 20 events/s | 10 / 30 |  | — |", "| BenchmarkRawInsertCommit |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(r.Markdown(nil, ""), "before batching") {
		t.Error("no before column without a before run")
	}
	before.PipelineToBaselineRatioSessions, before.EventsPerCallSessions = 0.125, 9
	if md := r.Markdown(&before, "before"); !strings.Contains(md, "| `pipeline_to_baseline_ratio_sessions` | 0.25 | ≥ 0.5 | 0.125 |") {
		t.Errorf("an earlier run with the session mode shows its figures:\n%s", md)
	}
	// A report without session phases (an older run) has no session rows.
	r.Phases = slices.DeleteFunc(r.Phases, func(p Phase) bool { return p.Mode == PerSession })
	if md := r.Markdown(nil, ""); strings.Contains(md, "_sessions`") {
		t.Errorf("session rows without session phases:\n%s", md)
	}
}

func TestSessions(t *testing.T) {
	var appts []*Appointment
	for i := range 105 {
		appts = append(appts, &Appointment{ID: fmt.Sprint("a", i), Session: "big"})
		if i%50 == 0 {
			appts = append(appts, &Appointment{ID: fmt.Sprint("s", i), Session: "small"})
		}
	}
	ss := Sessions(appts)
	var got []string
	for _, s := range ss {
		got = append(got, fmt.Sprintf("%s:%d:%s", s.ID, len(s.Appts), s.Appts[0].ID))
	}
	// In order of first appearance; a session of more than 100 places is split.
	want := []string{"big:100:a0", "small:3:s0", "big:5:a100"}
	if !slices.Equal(got, want) {
		t.Fatalf("sessions %v, want %v", got, want)
	}
	d := &Driver{Appts: appts, Sessions: ss}
	if d.EventsPerCall(PerSession) != 36 || d.EventsPerCall(PerAppointment) != 1 {
		t.Fatalf("events a call: %v, %v", d.EventsPerCall(PerSession), d.EventsPerCall(PerAppointment))
	}
}

func TestWherePostgresTimeGoes(t *testing.T) {
	r := Report{PGTime: &PGTime{Phase: "Saturation", Events: 100, Missing: "pg_stat_statements is not available: must be loaded via shared_preload_libraries"}}
	md := r.Markdown(nil, "")
	if !strings.Contains(md, "## Where Postgres time goes") || !strings.Contains(md, "No figures: pg_stat_statements is not available") {
		t.Fatalf("without the extension the section must say why:\n%s", md)
	}
	r.PGTime = &PGTime{Phase: "Saturation", Events: 100,
		Top:    []Statement{{Role: "scheduling", Query: "SELECT a | b FROM " + strings.Repeat("x", 300), Calls: 250, TotalMS: 1234, MeanMS: 4.936, Rows: 250, BlksHit: 10, BlksRead: 2}},
		ByRole: []Statement{{Role: "scheduling", Query: "300", Calls: 1000, TotalMS: 900, BlksHit: 500}}}
	md = r.Markdown(nil, "")
	for _, want := range []string{
		"| scheduling | 10.00 | 3.00 | 9.00 | 5.00 / 0.00 |", // per event: statements, commits, ms, blocks
		"| 250 | 2.50 | 1234 | 4.936 | 250 | 10 / 2 |",
		`SELECT a \| b FROM xxx`, // pipes escaped in a table cell
		"…`",                     // long text truncated
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, strings.Repeat("x", 200)) {
		t.Error("statement text not truncated")
	}
}

func TestScaleLinesAndDashboardP95(t *testing.T) {
	logged := []string{
		"filled in 2.1s: 100 clinics",
		`scale_test.go:90: SCALE_FILL {"clinics":100,"attendance_rows":950000}`,
		`SCALE_RESULT {"name":"overview, last 28 days","requests":20,"p50_ms":12.5,"p95_ms":30.25,"max_ms":41}`,
		`SCALE_RESULT {"name":"overview, a year","requests":20,"p50_ms":40,"p95_ms":88.04,"max_ms":95}`,
		"overview, a year  median 40ms",
	}
	results, rows, rest, err := ParseScaleLines(logged)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 || results[1] != (ScaleResult{Name: "overview, a year", Requests: 20, P50Ms: 40, P95Ms: 88.04, MaxMs: 95}) {
		t.Fatalf("results %+v", results)
	}
	if rows["attendance_rows"] != 950000 || rows["clinics"] != 100 {
		t.Fatalf("rows %v", rows)
	}
	if !slices.Equal(rest, []string{logged[0], logged[4]}) {
		t.Fatalf("rest %q", rest)
	}
	if _, _, _, err := ParseScaleLines([]string{"SCALE_RESULT {oops"}); err == nil || !strings.Contains(err.Error(), "SCALE_RESULT") {
		t.Fatalf("a broken line: %v", err)
	}

	// With the scale figures, dashboard_p95_ms is their largest p95; the bench network's stays beside it.
	r := sample()
	r.ScaleResults, r.ScaleRows = results, rows
	s := r.Summary()
	if s.DashboardP95Ms != 88 || s.DashboardP95Over != "100 clinics, a year" || s.DashboardP95MsBenchNetwork != 70 {
		t.Fatalf("summary %+v", s)
	}
	md := r.Markdown(nil, "")
	for _, want := range []string{"| `dashboard_p95_ms` (100 clinics, a year) | 88 | < 100 |",
		"| overview, a year | 20 | 40 | 88.04 | 95 |", "attendance rows 950000, clinics 100"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
}

func TestEraPostPrefersTheBiggestFile(t *testing.T) {
	gb := ParseGoBench(goBenchOut + `BenchmarkPostRemittance/post-lines=20000-2   1  900000000 ns/op  22222 lines/s
BenchmarkPostRemittance/post-lines=100000-2  1  4000000000 ns/op  25000 lines/s
`)
	if perS, lines, small := EraPost(gb); perS != 25000 || lines != 100000 || small != 4202 {
		t.Fatalf("got %v %v %v", perS, lines, small)
	}
	if perS, lines, small := EraPost(ParseGoBench(goBenchOut)); perS != 4202 || lines != 400 || small != 0 {
		t.Fatalf("without a big file: %v %v %v", perS, lines, small)
	}
}
