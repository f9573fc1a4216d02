// Package bench is Trellis's benchmark harness (issue 9): it measures what this machine can do
// at all (raw durable single-row commits through pgx, raw JetStream publish-with-ack and
// consume-and-ack) and, in the same run, what the whole network does with the same hardware
// (attendance through scheduling's API, billing's charges, the dashboard's projections and
// notification), the read side, 835 remittance throughput and each service's peak memory.
// The figures that matter are ratios to the baselines of the same run, because the machines
// this runs on are shared and noisy.
//
// This file holds the pure parts (percentiles, Go benchmark output, the report and its
// rendering); the command in cmd/bench drives a stack brought up with deploy/devstack/stack.
package bench

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Latency is a summary of a set of durations.
type Latency struct {
	N             int
	P50, P95, P99 time.Duration
	Max           time.Duration
}

// Percentile is the nearest-rank percentile p (0 < p <= 100) of sorted durations (0 when
// there are none).
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Summarize sorts a copy of ds and summarizes it.
func Summarize(ds []time.Duration) Latency {
	s := slices.Clone(ds)
	slices.Sort(s)
	l := Latency{N: len(s), P50: Percentile(s, 50), P95: Percentile(s, 95), P99: Percentile(s, 99)}
	if len(s) > 0 {
		l.Max = s[len(s)-1]
	}
	return l
}

// GoBench is the custom and standard metrics of `go test -bench` output by benchmark name
// (without the -GOMAXPROCS suffix), e.g. ["BenchmarkRawInsertCommit"]["tx/s"].
type GoBench map[string]map[string]float64

// ParseGoBench reads `go test -bench` output; lines that are not results are skipped.
func ParseGoBench(out string) GoBench {
	res := GoBench{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := f[0]
		if i := strings.LastIndex(name, "-"); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			m[f[i+1]] = v
		}
		res[name] = m
	}
	return res
}

// Hop is one stage of the pipeline in a phase: how many messages it handled and over how
// long (from the start of the phase to its last progress).
type Hop struct {
	Name    string
	Events  int64
	Seconds float64
}

// PerSecond is Events / Seconds (0 when nothing was measured).
func (h Hop) PerSecond() float64 {
	if h.Seconds <= 0 {
		return 0
	}
	return float64(h.Events) / h.Seconds
}

// Phase is one load of attendance: a fixed offered rate, or saturation (Offered 0), in one
// of the driver's modes.
type Phase struct {
	Name        string
	Mode        Mode    // one correction per call (the zero value) or a session per call
	Offered     float64 // events/s offered; 0 for saturation
	Workers     int     // API calls in flight at most
	LoadSeconds float64 // how long attendance was sent
	Calls       int64   // API calls accepted
	Accepted    int64   // attendance events the API accepted (the calls' entries)
	Errors      int64   // failed calls
	Skipped     int64   // calls of the fixed rate not made: every worker, appointment or session busy
	// DrainSeconds: from the start of the phase until every hop had caught up.
	DrainSeconds float64
	Hops         []Hop
	// Latency from the API's answer (attendance accepted) to billing's commit of the charge
	// work for that attendance version (observed by polling billing's copy).
	Latency    Latency
	Unobserved int // accepted versions billing had not committed when the harness stopped waiting
	// CPU seconds each process used from the start of the phase until it drained.
	CPU map[string]float64
}

// AcceptedPerSecond is the API's accepted rate over the load.
func (p Phase) AcceptedPerSecond() float64 {
	if p.LoadSeconds <= 0 {
		return 0
	}
	return float64(p.Accepted) / p.LoadSeconds
}

// EventsPerCall is the mean number of events an accepted call carried.
func (p Phase) EventsPerCall() float64 {
	if p.Calls <= 0 {
		return 0
	}
	return float64(p.Accepted) / float64(p.Calls)
}

// EndToEndPerSecond is the attendance events that went through every hop per second, from
// the start of the phase until the last hop caught up.
func (p Phase) EndToEndPerSecond() float64 {
	if p.DrainSeconds <= 0 {
		return 0
	}
	return float64(p.Accepted) / p.DrainSeconds
}

// Endpoint is a read-side timing.
type Endpoint struct {
	Group   string // "dashboard" or "billing"
	Name    string
	Latency Latency
	Errors  int
}

// Report is one run of the harness.
type Report struct {
	Scale        string
	Started      time.Time
	Elapsed      time.Duration
	Commit       string
	Host         string // cores and Postgres durability settings
	Network      string // what the generator made
	Appointments int    // appointments attendance was recorded on
	Sessions     int    // the sessions they belong to (calls of a session per call)
	Concurrency  int
	Cores        int

	PGCommitsPerS float64
	JSPublishPerS float64
	JSConsumePerS float64

	Phases   []Phase
	ReadSide []Endpoint
	// PGTime is pg_stat_statements over the saturation phase (nil: not measured).
	PGTime *PGTime
	// Profiles are the services' CPU profiles taken during the saturation load, by service.
	Profiles map[string]string

	// 835: parse and balance, and posting, in lines per second (billing's Go benchmarks),
	// with the raw batched-insert baseline of the posting benchmark.
	ERAParsePerS, ERAPostPerS, ERAInsertBaselinePerS float64
	ERASource                                        string
	// ERAPostFileLines is the size of the file ERAPostPerS was measured on (the largest
	// BenchmarkPostRemittance/post-lines=N; 400 for the small files of .../post), and
	// ERASmallFilePostPerS the small files' rate when the big one was measured too.
	ERAPostFileLines     int
	ERASmallFilePostPerS float64
	// ERABytesPerLine is the size of an 835 per service line in the parse benchmark, and
	// UploadLimitBytes the largest request billing's API takes.
	ERABytesPerLine  float64
	UploadLimitBytes int

	// ScaleFill is what services/dashboard's TestOverviewAtScale logged (100 clinics and a
	// year of read model filled with SQL; medians of 5 requests), when it was run.
	ScaleFill []string
	// ScaleResults are the endpoints TestOverviewAtScale timed (its SCALE_RESULT lines), and
	// ScaleRows the read model it filled (its SCALE_FILL line).
	ScaleResults []ScaleResult
	ScaleRows    map[string]float64

	RSSMB   map[string]float64 // peak resident set (VmHWM) by process
	GoBench GoBench            // the Go benchmarks make bench ran before the harness
	Notes   []string
}

// ScaleResult is one endpoint of the dashboard timed at 100 clinics and a year.
type ScaleResult struct {
	Name     string  `json:"name"`
	Requests int     `json:"requests"`
	P50Ms    float64 `json:"p50_ms"`
	P95Ms    float64 `json:"p95_ms"`
	MaxMs    float64 `json:"max_ms"`
}

// Markers of the machine-readable lines services/dashboard's TestOverviewAtScale logs.
const (
	ScaleResultMarker = "SCALE_RESULT "
	ScaleFillMarker   = "SCALE_FILL "
)

// ParseScaleLines splits what TestOverviewAtScale logged into its timed endpoints, the
// rows it filled, and the other (human-readable) lines.
func ParseScaleLines(lines []string) (results []ScaleResult, rows map[string]float64, rest []string, err error) {
	for _, l := range lines {
		switch {
		case strings.Contains(l, ScaleResultMarker):
			var r ScaleResult
			if err := json.Unmarshal([]byte(l[strings.Index(l, ScaleResultMarker)+len(ScaleResultMarker):]), &r); err != nil {
				return nil, nil, nil, fmt.Errorf("%s line %q: %w", strings.TrimSpace(ScaleResultMarker), l, err)
			}
			results = append(results, r)
		case strings.Contains(l, ScaleFillMarker):
			if err := json.Unmarshal([]byte(l[strings.Index(l, ScaleFillMarker)+len(ScaleFillMarker):]), &rows); err != nil {
				return nil, nil, nil, fmt.Errorf("%s line %q: %w", strings.TrimSpace(ScaleFillMarker), l, err)
			}
		default:
			rest = append(rest, l)
		}
	}
	return results, rows, rest, nil
}

// smallERAFileLines is the size of BenchmarkPostRemittance/post's files (100 claims of 4 lines).
const smallERAFileLines = 400

// EraPost picks the posting figure of the Go benchmarks: the largest file of
// BenchmarkPostRemittance/post-lines=N when there is one (the figure is one big 835),
// else the 400-line files of BenchmarkPostRemittance/post. lines is the file size.
func EraPost(gb GoBench) (perS float64, lines int, smallPerS float64) {
	smallPerS = gb["BenchmarkPostRemittance/post"]["lines/s"]
	for name, m := range gb {
		n, ok := strings.CutPrefix(name, "BenchmarkPostRemittance/post-lines=")
		if !ok {
			continue
		}
		if v, err := strconv.Atoi(n); err == nil && v > lines && m["lines/s"] > 0 {
			perS, lines = m["lines/s"], v
		}
	}
	if lines == 0 {
		return smallPerS, smallERAFileLines, 0
	}
	return perS, lines, smallPerS
}

// ERALinesPerS is the rate of parse + balance + post of one 835 (the two stages in series).
func (r Report) ERALinesPerS() float64 {
	if r.ERAParsePerS <= 0 || r.ERAPostPerS <= 0 {
		return 0
	}
	return 1 / (1/r.ERAParsePerS + 1/r.ERAPostPerS)
}

// PhaseAt is the phase of mode m with that offered rate (0: saturation), or nil.
func (r Report) PhaseAt(offered float64, m Mode) *Phase {
	for i := range r.Phases {
		if r.Phases[i].Offered == offered && r.Phases[i].Mode == m {
			return &r.Phases[i]
		}
	}
	return nil
}

// HeadlineRate is the fixed offered load of the latency target.
const HeadlineRate = 500

// Summary is the JSON object printed as the harness's last line. The keys without a suffix
// are the pipeline driven one correction per call (PerAppointment); those ending in _sessions
// the same phases driven a session per call (PerSession).
type Summary struct {
	Scale                   string  `json:"scale"`
	PipelineEventsPerS      float64 `json:"pipeline_events_per_s"`
	BaselinePGCommitsPerS   float64 `json:"baseline_pg_commits_per_s"`
	PipelineToBaselineRatio float64 `json:"pipeline_to_baseline_ratio"`
	E2EP50MsAt500           float64 `json:"e2e_p50_ms_at_500"`
	E2EP99MsAt500           float64 `json:"e2e_p99_ms_at_500"`
	AcceptedPerSAt500       float64 `json:"accepted_per_s_at_500"`
	LightOfferedPerS        float64 `json:"light_offered_per_s,omitempty"`
	E2EP50MsLight           float64 `json:"e2e_p50_ms_light,omitempty"`
	E2EP99MsLight           float64 `json:"e2e_p99_ms_light,omitempty"`
	E2EP99MsAtSaturation    float64 `json:"e2e_p99_ms_at_saturation"`

	PipelineEventsPerSSessions      float64 `json:"pipeline_events_per_s_sessions"`
	PipelineToBaselineRatioSessions float64 `json:"pipeline_to_baseline_ratio_sessions"`
	E2EP50MsAt500Sessions           float64 `json:"e2e_p50_ms_at_500_sessions"`
	E2EP99MsAt500Sessions           float64 `json:"e2e_p99_ms_at_500_sessions"`
	AcceptedPerSAt500Sessions       float64 `json:"accepted_per_s_at_500_sessions"`
	E2EP99MsAtSaturationSessions    float64 `json:"e2e_p99_ms_at_saturation_sessions"`
	EventsPerCallSessions           float64 `json:"events_per_call_sessions"`

	// DashboardP95Ms is over a year of 100 clinics (TestOverviewAtScale) when that ran, else
	// over the bench network; DashboardP95Over says which. DashboardP95MsBenchNetwork is the
	// bench network's pages either way.
	DashboardP95Ms             float64 `json:"dashboard_p95_ms"`
	DashboardP95Over           string  `json:"dashboard_p95_over"`
	DashboardP95MsBenchNetwork float64 `json:"dashboard_p95_ms_bench_network"`
	BillingQueuesP95Ms         float64 `json:"billing_queues_p95_ms"`
	ERALinesPerS               float64 `json:"era_lines_per_s"`
	MaxRSSMB                   float64 `json:"max_rss_mb"`
	BaselineJSPublishPerS      float64 `json:"baseline_js_publish_per_s"`
	BaselineJSConsumePerS      float64 `json:"baseline_js_consume_per_s"`
	ElapsedS                   float64 `json:"elapsed_s"`
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 1) }

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}

// Summary computes the headline figures.
func (r Report) Summary() Summary {
	s := Summary{Scale: r.Scale, BaselinePGCommitsPerS: round(r.PGCommitsPerS, 1),
		BaselineJSPublishPerS: round(r.JSPublishPerS, 1), BaselineJSConsumePerS: round(r.JSConsumePerS, 1),
		ERALinesPerS: round(r.ERALinesPerS(), 1), ElapsedS: round(r.Elapsed.Seconds(), 1)}
	if p := r.PhaseAt(0, PerAppointment); p != nil {
		s.PipelineEventsPerS = round(p.EndToEndPerSecond(), 1)
		s.E2EP99MsAtSaturation = ms(p.Latency.P99)
	}
	if p := r.PhaseAt(0, PerSession); p != nil {
		s.PipelineEventsPerSSessions = round(p.EndToEndPerSecond(), 1)
		s.E2EP99MsAtSaturationSessions = ms(p.Latency.P99)
		s.EventsPerCallSessions = round(p.EventsPerCall(), 1)
	}
	if r.PGCommitsPerS > 0 {
		s.PipelineToBaselineRatio = round(s.PipelineEventsPerS/r.PGCommitsPerS, 3)
		s.PipelineToBaselineRatioSessions = round(s.PipelineEventsPerSSessions/r.PGCommitsPerS, 3)
	}
	if p := r.PhaseAt(HeadlineRate, PerAppointment); p != nil {
		s.E2EP50MsAt500, s.E2EP99MsAt500 = ms(p.Latency.P50), ms(p.Latency.P99)
		s.AcceptedPerSAt500 = round(p.AcceptedPerSecond(), 1)
	}
	if p := r.PhaseAt(HeadlineRate, PerSession); p != nil {
		s.E2EP50MsAt500Sessions, s.E2EP99MsAt500Sessions = ms(p.Latency.P50), ms(p.Latency.P99)
		s.AcceptedPerSAt500Sessions = round(p.AcceptedPerSecond(), 1)
		if s.EventsPerCallSessions == 0 {
			s.EventsPerCallSessions = round(p.EventsPerCall(), 1)
		}
	}
	for _, p := range r.Phases {
		if p.Offered > 0 && p.Offered < HeadlineRate && p.Mode == PerAppointment {
			s.LightOfferedPerS, s.E2EP50MsLight, s.E2EP99MsLight = p.Offered, ms(p.Latency.P50), ms(p.Latency.P99)
		}
	}
	for _, e := range r.ReadSide {
		switch e.Group {
		case "dashboard":
			s.DashboardP95MsBenchNetwork = max(s.DashboardP95MsBenchNetwork, ms(e.Latency.P95))
		case "billing":
			s.BillingQueuesP95Ms = max(s.BillingQueuesP95Ms, ms(e.Latency.P95))
		}
	}
	s.DashboardP95Ms, s.DashboardP95Over = s.DashboardP95MsBenchNetwork, "bench network"
	if len(r.ScaleResults) > 0 {
		s.DashboardP95Ms, s.DashboardP95Over = 0, "100 clinics, a year"
		for _, e := range r.ScaleResults {
			s.DashboardP95Ms = max(s.DashboardP95Ms, round(e.P95Ms, 1))
		}
	}
	for name, v := range r.RSSMB {
		if name != HarnessProcess {
			s.MaxRSSMB = max(s.MaxRSSMB, round(v, 1))
		}
	}
	return s
}

// JSON is the summary as one line.
func (r Report) JSON() string {
	b, _ := json.Marshal(r.Summary())
	return string(b)
}

func ratio(v, base float64) string {
	if base <= 0 || v <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.3f", v/base)
}

func rate(v float64) string {
	if v <= 0 {
		return "—"
	}
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func msText(d time.Duration) string { return strconv.FormatFloat(ms(d), 'f', 1, 64) }

// Markdown renders the report; before, when not nil, is an earlier run's summary shown beside
// this one (e.g. before a change to pkg/bus).
func (r Report) Markdown(before *Summary, beforeLabel string) string {
	var b strings.Builder
	s := r.Summary()
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# Benchmarks\n\n")
	w("Written by the benchmark harness (`make bench`, `deploy/bench`; how it works and how to run it\n")
	w("bigger: the end of this page). Every figure comes from one run on one machine; compare them as\n")
	w("ratios to the baselines measured in the same run, not across machines.\n\n")
	w("Run: %s, scale `%s`, %s, commit %s. %s\n\n", r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Scale,
		r.Elapsed.Round(time.Second), cmp.Or(r.Commit, "unknown"), r.Host)
	w("Network: %s Attendance was recorded and corrected on %d appointments of %d sessions, at most %d API calls\n", r.Network, r.Appointments, r.Sessions, r.Concurrency)
	w("in flight (the baselines use the same number of workers).\n\n")

	w("## Headline\n\n")
	w("| figure | this run | target |")
	if before != nil {
		w(" %s |", beforeLabel)
	}
	w("\n| --- | --- | --- |")
	if before != nil {
		w(" --- |")
	}
	w("\n")
	row := func(name, now, target string, prev string) {
		w("| %s | %s | %s |", name, now, target)
		if before != nil {
			w(" %s |", prev)
		}
		w("\n")
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	var bs Summary
	if before != nil {
		bs = *before
	}
	// An earlier run without the session mode has no figure for it (not a 0).
	fs := func(v float64) string {
		if v == 0 && bs.EventsPerCallSessions == 0 {
			return "—"
		}
		return f(v)
	}
	one, sess := PerAppointment.Label(), PerSession.Label()
	row("baseline durable single-row commits/s", f(s.BaselinePGCommitsPerS), "", f(bs.BaselinePGCommitsPerS))
	row("pipeline events/s (saturation, end to end), "+one, f(s.PipelineEventsPerS), "", f(bs.PipelineEventsPerS))
	row("`pipeline_to_baseline_ratio` ("+one+")", f(s.PipelineToBaselineRatio), "≥ 0.5", f(bs.PipelineToBaselineRatio))
	row("accepted events/s at an offered 500/s, "+one, f(s.AcceptedPerSAt500), "500", f(bs.AcceptedPerSAt500))
	row("`e2e_p50_ms_at_500` ("+one+")", f(s.E2EP50MsAt500), "", f(bs.E2EP50MsAt500))
	row("`e2e_p99_ms_at_500` ("+one+")", f(s.E2EP99MsAt500), "< 100", f(bs.E2EP99MsAt500))
	if s.EventsPerCallSessions > 0 || bs.EventsPerCallSessions > 0 {
		row(fmt.Sprintf("pipeline events/s (saturation, end to end), %s (%s events a call)", sess, f(s.EventsPerCallSessions)),
			f(s.PipelineEventsPerSSessions), "", fs(bs.PipelineEventsPerSSessions))
		row("`pipeline_to_baseline_ratio_sessions`", f(s.PipelineToBaselineRatioSessions), "≥ 0.5", fs(bs.PipelineToBaselineRatioSessions))
		row("`accepted_per_s_at_500_sessions` (events/s at an offered 500/s, "+sess+")", f(s.AcceptedPerSAt500Sessions), "500", fs(bs.AcceptedPerSAt500Sessions))
		row("`e2e_p50_ms_at_500_sessions`", f(s.E2EP50MsAt500Sessions), "", fs(bs.E2EP50MsAt500Sessions))
		row("`e2e_p99_ms_at_500_sessions`", f(s.E2EP99MsAt500Sessions), "< 100", fs(bs.E2EP99MsAt500Sessions))
	}
	if s.LightOfferedPerS > 0 {
		prev := "—"
		if bs.LightOfferedPerS > 0 {
			prev = f(bs.E2EP50MsLight) + " / " + f(bs.E2EP99MsLight)
		}
		row(fmt.Sprintf("e2e p50 / p99 ms at a light %s events/s", f(s.LightOfferedPerS)), f(s.E2EP50MsLight)+" / "+f(s.E2EP99MsLight), "", prev)
	}
	row(fmt.Sprintf("`dashboard_p95_ms` (%s)", s.DashboardP95Over), f(s.DashboardP95Ms), "< 100", f(bs.DashboardP95Ms))
	if len(r.ScaleResults) > 0 {
		row("dashboard p95 ms over this run's network", f(s.DashboardP95MsBenchNetwork), "", fs(bs.DashboardP95MsBenchNetwork))
	}
	row("billing work queues p95 ms", f(s.BillingQueuesP95Ms), "", f(bs.BillingQueuesP95Ms))
	row("`era_lines_per_s` (parse + balance + post)", f(s.ERALinesPerS), "> 50,000", f(bs.ERALinesPerS))
	row("`max_rss_mb` (any service)", f(s.MaxRSSMB), "< 150", f(bs.MaxRSSMB))
	w("\n")

	w("## Baselines (same run, %d workers)\n\n", r.Concurrency)
	w("| baseline | per second |\n| --- | --- |\n")
	w("| Postgres: `BEGIN; INSERT` one outbox-shaped row`; COMMIT` through pgx (durable) | %s |\n", rate(r.PGCommitsPerS))
	w("| JetStream: publish with ack (async, file storage, message ids) | %s |\n", rate(r.JSPublishPerS))
	w("| JetStream: fetch and ack (durable pull consumer, batches of 32) | %s |\n\n", rate(r.JSConsumePerS))

	w("## Pipeline\n\n")
	w("Attendance through scheduling's API, then every consumer in the network, in two modes:\n")
	w("**%s** (`RecordAttendance`: each call a first record or a correction of one\n", one)
	w("appointment, one `AttendanceRecorded` event per call and per scheduling transaction: the worst\n")
	w("case) and **%s** (`RecordGroupAttendance`: every place of a session in one call and one\n", sess)
	w("transaction, one event per place: how staff record a group session). Per hop: the messages each\n")
	w("stage handled in the phase over the time from the start of the phase to its last progress; a\n")
	w("JetStream consumer's count is its acknowledged deliveries. Ratios are to the Postgres baseline.\n\n")
	w("| phase | mode | calls/s | events a call | accepted events/s | end to end events/s | ratio to baseline | p50 ms | p99 ms |\n")
	w("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, p := range r.Phases {
		callsPerS := 0.0
		if p.LoadSeconds > 0 {
			callsPerS = float64(p.Calls) / p.LoadSeconds
		}
		w("| %s | %s | %s | %.1f | %s | %s | %s | %s | %s |\n", p.Name, p.Mode.Label(), rate(callsPerS), p.EventsPerCall(),
			rate(p.AcceptedPerSecond()), rate(p.EndToEndPerSecond()), ratio(p.EndToEndPerSecond(), r.PGCommitsPerS),
			msText(p.Latency.P50), msText(p.Latency.P99))
	}
	w("\n")
	for _, p := range r.Phases {
		offered := "saturation"
		if p.Offered > 0 {
			offered = fmt.Sprintf("offered %.0f events/s", p.Offered)
		}
		w("### %s (%s, %s, %d workers, %.0f s of load)\n\n", p.Name, p.Mode.Label(), offered, p.Workers, p.LoadSeconds)
		w("Accepted %d attendance events in %d calls (%s events/s over the load", p.Accepted, p.Calls, rate(p.AcceptedPerSecond()))
		if p.Errors > 0 {
			w(", %d calls failed", p.Errors)
		}
		if p.Skipped > 0 {
			w(", %d calls skipped because every worker, appointment or session was busy", p.Skipped)
		}
		w("); every hop caught up %.1f s after the phase began: **%s events/s end to end** (ratio %s).\n\n",
			p.DrainSeconds, rate(p.EndToEndPerSecond()), ratio(p.EndToEndPerSecond(), r.PGCommitsPerS))
		w("| hop | messages | seconds | per second | ratio to baseline |\n| --- | --- | --- | --- | --- |\n")
		for _, h := range p.Hops {
			w("| %s | %d | %.1f | %s | %s |\n", h.Name, h.Events, h.Seconds, rate(h.PerSecond()), ratio(h.PerSecond(), r.PGCommitsPerS))
		}
		if len(p.CPU) > 0 && p.Accepted > 0 {
			w("\nCPU used from the start of the phase until it drained (%.0f s, %d cores); Postgres and the whole\n", p.DrainSeconds, r.Cores)
			w("machine include whatever else ran on the machine meanwhile:\n\n")
			w("| process | CPU seconds | CPU ms per attendance event |\n| --- | --- | --- |\n")
			names := make([]string, 0, len(p.CPU))
			for n := range p.CPU {
				names = append(names, n)
			}
			slices.SortFunc(names, func(a, b string) int { return cmp.Compare(p.CPU[b], p.CPU[a]) })
			for _, n := range names {
				w("| %s | %.1f | %.2f |\n", n, p.CPU[n], p.CPU[n]*1000/float64(p.Accepted))
			}
		}
		w("\nLatency from attendance accepted by the API to billing's charge work committed: ")
		if p.Latency.N == 0 {
			w("not observed.\n\n")
		} else {
			w("p50 %s ms, p95 %s ms, p99 %s ms, max %s ms over %d events", msText(p.Latency.P50), msText(p.Latency.P95),
				msText(p.Latency.P99), msText(p.Latency.Max), p.Latency.N)
			if p.Unobserved > 0 {
				w(" (%d more not committed when the harness stopped waiting)", p.Unobserved)
			}
			w(".\n\n")
		}
	}

	if r.PGTime != nil {
		r.PGTime.markdown(w)
	}
	if len(r.Profiles) > 0 {
		w("CPU profiles of the services during the saturation load (`go tool pprof -top <file>`):\n\n")
		names := make([]string, 0, len(r.Profiles))
		for n := range r.Profiles {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			w("- %s: `%s`\n", n, r.Profiles[n])
		}
		w("\n")
	}

	w("## Read side\n\n")
	w("Sequential requests over the data of this run (the dashboard with an admin session for every\n")
	w("clinic, billing's work queues through its Connect API).\n\n")
	w("| endpoint | requests | p50 ms | p95 ms | max ms |\n| --- | --- | --- | --- | --- |\n")
	for _, e := range r.ReadSide {
		errs := ""
		if e.Errors > 0 {
			errs = fmt.Sprintf(" (%d errors)", e.Errors)
		}
		w("| %s `%s`%s | %d | %s | %s | %s |\n", e.Group, e.Name, errs, e.Latency.N, msText(e.Latency.P50), msText(e.Latency.P95), msText(e.Latency.Max))
	}
	w("\n")

	if len(r.ScaleResults) > 0 {
		w("### At 100 clinics and a year\n\n")
		w("`services/dashboard` `TestOverviewAtScale` (DASHBOARD_SCALE=1): the dashboard's read model filled\n")
		w("with SQL")
		if len(r.ScaleRows) > 0 {
			keys := slices.Sorted(maps.Keys(r.ScaleRows))
			var parts []string
			for _, k := range keys {
				parts = append(parts, fmt.Sprintf("%s %s", strings.ReplaceAll(k, "_", " "), f(r.ScaleRows[k])))
			}
			w(" (%s)", strings.Join(parts, ", "))
		}
		w(", then each endpoint requested\nin turn by a user of every clinic. `dashboard_p95_ms` is the largest p95 here.\n\n")
		w("| endpoint | requests | p50 ms | p95 ms | max ms |\n| --- | --- | --- | --- | --- |\n")
		for _, e := range r.ScaleResults {
			w("| %s | %d | %s | %s | %s |\n", e.Name, e.Requests, f(e.P50Ms), f(e.P95Ms), f(e.MaxMs))
		}
		w("\n")
	}
	if len(r.ScaleFill) > 0 {
		w("What `TestOverviewAtScale` logged:\n\n")
		w("```\n%s\n```\n\n", strings.Join(r.ScaleFill, "\n"))
	}

	w("## Remittance (835)\n\n")
	w("| stage | lines per second | ratio to raw insert |\n| --- | --- | --- |\n")
	w("| parse + balance | %s | %s |\n", rate(r.ERAParsePerS), ratio(r.ERAParsePerS, r.ERAInsertBaselinePerS))
	w("| post (match, ledger, work items, events), files of %d lines | %s | %s |\n", cmp.Or(r.ERAPostFileLines, smallERAFileLines), rate(r.ERAPostPerS), ratio(r.ERAPostPerS, r.ERAInsertBaselinePerS))
	if r.ERASmallFilePostPerS > 0 {
		w("| post, files of %d lines | %s | %s |\n", smallERAFileLines, rate(r.ERASmallFilePostPerS), ratio(r.ERASmallFilePostPerS, r.ERAInsertBaselinePerS))
	}
	w("| raw batched insert of the lines (baseline) | %s | 1 |\n", rate(r.ERAInsertBaselinePerS))
	w("| **parse + balance + post** | **%s** | %s |\n\n", rate(r.ERALinesPerS()), ratio(r.ERALinesPerS(), r.ERAInsertBaselinePerS))
	if v := r.ERALinesPerS(); v > 0 {
		w("An 835 of 100,000 service lines: about %.0f s at these rates. %s\n\n", 100000/v, r.ERASource)
	}
	if r.ERABytesPerLine > 0 && r.UploadLimitBytes > 0 {
		w("**Upload size.** An 835 takes about %.0f bytes per service line, so one of 100,000 lines is about %.1f MB;\n",
			r.ERABytesPerLine, r.ERABytesPerLine*100000/1e6)
		w("billing's UploadRemittance takes requests of at most %d bytes (`pkg/rpc` `MaxUploadBytes`), about %.0f lines a file.\n",
			r.UploadLimitBytes, float64(r.UploadLimitBytes)/r.ERABytesPerLine)
		if r.ERABytesPerLine*100000 > float64(r.UploadLimitBytes) {
			w("A 100,000-line remittance cannot be uploaded in one file today: it has to be split by the payer\n")
			w("or taken by another route (a streamed upload, or a file drop billing reads).\n")
		}
		w("\n")
	}

	w("## Memory\n\n")
	w("`max_rss_mb` is the largest of the services; the harness process (which embeds the NATS server)\n")
	w("is shown for completeness.\n\n")
	w("| process | peak RSS (VmHWM) MB |\n| --- | --- |\n")
	names := make([]string, 0, len(r.RSSMB))
	for n := range r.RSSMB {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		w("| %s | %.1f |\n", n, r.RSSMB[n])
	}
	w("\n")

	if len(r.GoBench) > 0 {
		w("## Go benchmarks of the same run\n\n")
		w("| benchmark | figures |\n| --- | --- |\n")
		names := make([]string, 0, len(r.GoBench))
		for n := range r.GoBench {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			units := make([]string, 0, len(r.GoBench[n]))
			for u := range r.GoBench[n] {
				units = append(units, u)
			}
			slices.Sort(units)
			var parts []string
			for _, u := range units {
				parts = append(parts, fmt.Sprintf("%s %s", strconv.FormatFloat(r.GoBench[n][u], 'f', -1, 64), u))
			}
			w("| %s | %s |\n", n, strings.Join(parts, ", "))
		}
		w("\n")
	}
	if len(r.Notes) > 0 {
		w("## Notes\n\n")
		for _, n := range r.Notes {
			w("- %s\n", n)
		}
		w("\n")
	}
	return b.String()
}
