package bench

import (
	"encoding/json"
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
			{Name: "Light load", Offered: 20, Workers: 16, LoadSeconds: 5, Accepted: 100, DrainSeconds: 5,
				Latency: Summarize([]time.Duration{10 * time.Millisecond, 30 * time.Millisecond})},
			{Name: "Fixed load", Offered: 500, Workers: 50, LoadSeconds: 10, Accepted: 2000, DrainSeconds: 20,
				Hops:    []Hop{{Name: "published to SCHEDULING (relay)", Events: 2000, Seconds: 10}},
				Latency: Summarize([]time.Duration{40 * time.Millisecond, 80 * time.Millisecond})},
			{Name: "Saturation", Workers: 8, LoadSeconds: 10, Accepted: 3000, DrainSeconds: 15,
				CPU:     map[string]float64{"billing": 6, "scheduling": 9},
				Latency: Summarize([]time.Duration{900 * time.Millisecond})},
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
		BillingQueuesP95Ms: 5, ERALinesPerS: 4130.4, MaxRSSMB: 61.3, BaselineJSPublishPerS: 40000, BaselineJSConsumePerS: 20000, ElapsedS: 150}
	if s != want {
		t.Fatalf("summary\n got %+v\nwant %+v", s, want)
	}
	var back map[string]any
	if err := json.Unmarshal([]byte(sample().JSON()), &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"pipeline_events_per_s", "baseline_pg_commits_per_s", "pipeline_to_baseline_ratio",
		"e2e_p99_ms_at_500", "dashboard_p95_ms", "era_lines_per_s", "max_rss_mb"} {
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
		"# Benchmarks", "| `pipeline_to_baseline_ratio` | 0.1 | ≥ 0.5 | 0.05 |", "before batching",
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
