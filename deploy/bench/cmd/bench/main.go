// Command bench is Trellis's benchmark harness (issue 9, `make bench`): it brings the whole
// network up on this machine (deploy/devstack/stack, services as in production), measures the
// raw baselines, generates a demo network (deploy/devstack/demonet), drives attendance
// through scheduling's API at a fixed 500 events/s and at saturation, each both one correction
// per call (RecordAttendance) and a session per call (RecordGroupAttendance), times the read side,
// reads the 835 figures of billing's Go benchmarks and every service's peak memory, then
// writes docs/benchmarks.md and prints one JSON object as its last line.
//
// BENCH_SCALE=small is the quick check (under 4 minutes with make bench); the default is a
// bigger network and longer phases. BENCH_CLINICS, BENCH_PATIENTS, BENCH_WEEKS, BENCH_WORKERS
// and BENCH_SECONDS override the size (docs/benchmarks.md, "Going bigger"); DATABASE_URL and
// NATS_URL point it at another Postgres or NATS (a cluster) instead of the local ones.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	stdnet "net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/trellis-health/trellis/deploy/bench"
	"github.com/trellis-health/trellis/deploy/devstack/demonet"
	"github.com/trellis-health/trellis/deploy/devstack/stack"
	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/rpc"
)

const (
	defaultAdminURL = "postgres://trellis:trellis@127.0.0.1:5432/trellis?sslmode=disable"
	devKey          = "trellis-bench-signing-key-not-for-production"
	database        = "trellis_bench"
	dashboardCookie = "trellis_dashboard_session"
)

type config struct {
	scale                   string
	spec                    demonet.Spec
	workers                 int
	baseline, fixed, satDur time.Duration
	drainCap                time.Duration
	reads                   int
	scaleFill               bool    // run services/dashboard's TestOverviewAtScale too
	light                   float64 // events/s of the light phase (the latency floor)
}

func configure() config {
	c := config{scale: cmp.Or(os.Getenv("BENCH_SCALE"), "default"), workers: 16, light: 20}
	switch c.scale {
	case "small":
		c.spec = demonet.Small()
		c.spec.PatientsPerClinic = 20 // the generator's small network, a little wider: more appointments to correct
		c.spec.Prefix = "bench-small"
		// 7 s phases: five of them (two modes) and their drains fit the quick check's few minutes.
		c.baseline, c.fixed, c.satDur, c.drainCap, c.reads = 3*time.Second, 7*time.Second, 7*time.Second, 45*time.Second, 15
	default:
		c.scale = "default"
		c.spec = demonet.Default()
		c.spec.Prefix = "bench"
		c.baseline, c.fixed, c.satDur, c.drainCap, c.reads = 5*time.Second, 30*time.Second, 30*time.Second, 3*time.Minute, 40
		c.scaleFill = true
	}
	if v := os.Getenv("BENCH_DASHBOARD_SCALE"); v != "" {
		c.scaleFill = v == "1"
	}
	c.spec.Parallel = 8
	if v := envInt("BENCH_CLINICS"); v > 0 {
		c.spec.Clinics = v
	}
	if v := envInt("BENCH_PATIENTS"); v > 0 {
		c.spec.PatientsPerClinic = v
	}
	if v := envInt("BENCH_WEEKS"); v > 0 {
		c.spec.Weeks = v
	}
	if v := envInt("BENCH_WORKERS"); v > 0 {
		c.workers = v
	}
	if v := envInt("BENCH_SECONDS"); v > 0 {
		c.fixed, c.satDur = time.Duration(v)*time.Second, time.Duration(v)*time.Second
	}
	return c
}

func envInt(k string) int {
	v, _ := strconv.Atoi(os.Getenv(k))
	return v
}

func main() {
	out := flag.String("out", "", "Markdown report to write (default <repo>/docs/benchmarks.md; - for none)")
	goBench := flag.String("gobench", "", "output of the Go benchmarks make bench ran first (read for the 835 and bus figures); empty: run billing's 835 benchmarks here")
	before := flag.String("before", "", "a summary JSON of an earlier run to show beside this one")
	beforeLabel := flag.String("before-label", "before", "column heading of -before")
	flag.Func("note", "a line to add under Notes (repeatable)", func(v string) error { notes = append(notes, v); return nil })
	flag.Parse()
	if err := run(*out, *goBench, *before, *beforeLabel); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

var (
	began = time.Now()
	notes []string // -note
)

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench %6.1fs: "+format+"\n", append([]any{time.Since(began).Seconds()}, a...)...)
}

func run(outPath, goBenchPath, beforePath, beforeLabel string) error {
	cfg := configure()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := stack.RepoRoot()
	if err != nil {
		return err
	}
	runDir := filepath.Join(root, ".run", "bench")
	if err := os.RemoveAll(filepath.Join(runDir, "nats")); err != nil {
		return err
	}
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(runDir, "stack.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	adminURL := cmp.Or(os.Getenv("DATABASE_URL"), defaultAdminURL)
	if err := stack.DropDatabase(ctx, adminURL, database); err != nil {
		return fmt.Errorf("drop the previous run's database: %w", err)
	}
	rep := bench.Report{Scale: cfg.scale, Started: began, Concurrency: cfg.workers, Cores: runtime.NumCPU(), Commit: cmp.Or(os.Getenv("BENCH_COMMIT"), gitCommit(root))}

	logf("bringing the network up (logs: %s)", logFile.Name())
	s, err := up(ctx, root, runDir, adminURL, logFile)
	if err != nil {
		return err
	}
	defer s.Close()
	pcfg, err := pgxpool.ParseConfig(s.AdminURL)
	if err != nil {
		return err
	}
	pcfg.MaxConns = int32(cfg.workers + 4)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	settings, autovacuum, err := bench.PGSettings(ctx, pool)
	if err != nil {
		return err
	}
	if !autovacuum {
		rep.Notes = append(rep.Notes, "This Postgres runs with autovacuum off (a CI setting): the harness runs `VACUUM (ANALYZE)` on its database before each phase instead, as autovacuum would between them in production.")
	}
	broker := "JetStream file storage (embedded server)"
	if os.Getenv("NATS_URL") != "" {
		broker = "JetStream at NATS_URL"
	}
	rep.Host = fmt.Sprintf("%d cores (shared), Postgres %s, %s.", runtime.NumCPU(), settings, broker)

	// 1. Baselines.
	logf("baseline: durable single-row commits, %d workers, %s", cfg.workers, cfg.baseline)
	if rep.PGCommitsPerS, err = bench.PGCommits(ctx, pool, cfg.workers, cfg.baseline); err != nil {
		return err
	}
	logf("baseline: JetStream publish and consume, %d workers", cfg.workers)
	if rep.JSPublishPerS, rep.JSConsumePerS, err = bench.JetStreamRates(ctx, s.NATSURL, cfg.workers, cfg.baseline); err != nil {
		return err
	}
	logf("baselines: %.0f commits/s, %.0f publishes/s, %.0f consumes/s", rep.PGCommitsPerS, rep.JSPublishPerS, rep.JSConsumePerS)

	// 2. The network.
	tok, err := s.Token("bench", []string{"admin"}, []string{auth.AllClinics}, 6*time.Hour)
	if err != nil {
		return err
	}
	logf("generating the network: %d clinics, %d people a clinic, %d weeks", cfg.spec.Clinics, cfg.spec.PatientsPerClinic, cfg.spec.Weeks)
	t0 := time.Now()
	net, err := demonet.Generate(ctx, demonet.Target{IntakeURL: s.URL("intake"), SchedulingURL: s.URL("scheduling"),
		BillingURL: s.URL("billing"), Token: tok, Logf: func(f string, a ...any) { logf(f, a...) }}, cfg.spec)
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	genTime := time.Since(t0)
	charges := 0
	for _, n := range net.Charges {
		charges += n
	}
	people := 0
	for _, n := range net.Planned {
		people += n
	}
	rep.Network = fmt.Sprintf("the demo generator's network of %d clinics, %d people, %d weeks of history (%d group sessions and %d individual visits recorded, %d charges), made through the APIs in %s.",
		net.Clinics, people, cfg.spec.Weeks, net.GroupSessions, net.IndividualSessions, charges, genTime.Round(time.Second))

	nc, err := nats.Connect(s.NATSURL, nats.Name("trellis-bench-observer"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if _, err := settle(ctx, js, pool, nil, cfg.drainCap); err != nil {
		return err
	}
	appts, err := bench.LoadAppointments(ctx, pool)
	if err != nil {
		return err
	}
	if len(appts) < 2*cfg.workers {
		return fmt.Errorf("the network has only %d appointments that have started: too few to drive", len(appts))
	}
	rep.Appointments = len(appts)
	sessions := bench.Sessions(appts)
	rep.Sessions = len(sessions)

	// Where Postgres time goes (saturation): pg_stat_statements, when the server preloads it.
	stats, closeStats := pgStats(ctx, adminURL, pool)
	defer closeStats()

	// 3. Pipeline.
	tracker := bench.NewTracker(pool, 5*time.Millisecond)
	tctx, tcancel := context.WithCancel(ctx)
	defer tcancel()
	go tracker.Run(tctx)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 60 * time.Second}
	drv := &bench.Driver{Client: bench.NewSchedulingClient(hc, s.URL("scheduling"), tok), Appts: appts, Sessions: sessions,
		Tracker: tracker, RunID: strconv.FormatInt(began.UnixNano(), 36)}
	one, sess := bench.PerAppointment, bench.PerSession
	for _, ph := range []struct {
		name    string
		mode    bench.Mode
		offered float64
		dur     time.Duration
	}{
		{"Light load", one, cfg.light, cfg.fixed / 2},
		{"Fixed load", one, bench.HeadlineRate, cfg.fixed},
		{"Fixed load", sess, bench.HeadlineRate, cfg.fixed},
		{"Saturation", one, 0, cfg.satDur},
		{"Saturation", sess, 0, cfg.satDur},
	} {
		if !autovacuum {
			vpool := pool
			if stats != nil {
				vpool = stats.Pool() // a role that owns, or may vacuum, every service's tables
			}
			took, err := bench.Vacuum(ctx, vpool)
			if err != nil {
				return fmt.Errorf("vacuum before %s: %w", ph.name, err)
			}
			logf("vacuum (analyze) before the phase: %s", took.Round(time.Millisecond))
		}
		start, err := bench.Snap(ctx, js)
		if err != nil {
			return err
		}
		prog := bench.NewProgress(start)
		p := bench.Phase{Name: ph.name, Mode: ph.mode, Offered: ph.offered, Workers: cfg.workers}
		saturation := ph.offered == 0
		// Where Postgres time goes and the profiles: over the saturation one correction per
		// call, the worst case.
		profiled := saturation && ph.mode == one
		var profiles <-chan map[string]string
		if profiled {
			if stats != nil {
				if err := stats.Reset(ctx); err != nil {
					logf("pg_stat_statements_reset: %v", err)
				}
			}
			profiles = cpuProfiles(ctx, s, filepath.Join(runDir, "pprof"), ph.dur)
		}
		cpu0 := bench.CPUSeconds(filepath.Join(runDir, "bin"))
		label := ph.name + " (" + ph.mode.Label() + ")"
		logf("%s: %s of attendance", label, ph.dur)
		t0 := time.Now()
		var l bench.Load
		if ph.offered > 0 {
			// Enough workers in flight for the rate at up to 100 ms a call.
			p.Workers = max(cfg.workers, int(ph.offered/drv.EventsPerCall(ph.mode)/10))
			if ph.offered < bench.HeadlineRate {
				p.Workers = cfg.workers
			}
			l = drv.Fixed(ctx, ph.mode, ph.offered, p.Workers, ph.dur)
			p.Skipped = l.Skipped
		} else {
			if ph.mode == sess {
				// Callers beyond half the sessions would mostly find theirs busy.
				p.Workers = max(1, min(cfg.workers, len(sessions)/2))
			}
			l = drv.Saturate(ctx, ph.mode, p.Workers, ph.dur)
		}
		p.Calls, p.Accepted, p.Errors = l.Calls, l.Accepted, l.Errors
		p.LoadSeconds = time.Since(t0).Seconds()
		if p.Errors > 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: %d attendance calls failed; the last: %s", label, p.Errors, drv.LastError()))
		}
		logf("%s: %d accepted in %d calls (%.0f events/s), waiting for every hop", label, p.Accepted, p.Calls, p.AcceptedPerSecond())
		drained, err := settle(ctx, js, pool, prog, cfg.drainCap)
		if err != nil {
			return err
		}
		if !drained {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: the pipeline had not caught up %s after the load; its figures count what was done by then.", label, cfg.drainCap))
		}
		// Let the tracker see billing's last commits.
		for i := 0; i < 100 && tracker.Pending() > 0; i++ {
			time.Sleep(20 * time.Millisecond)
		}
		p.Hops = append([]bench.Hop{{Name: "attendance accepted by scheduling's API", Events: p.Accepted, Seconds: p.LoadSeconds}}, prog.Hops()...)
		p.DrainSeconds = prog.LastMoved().Sub(start.At).Seconds()
		p.CPU = map[string]float64{}
		for name, v := range bench.CPUSeconds(filepath.Join(runDir, "bin")) {
			if v0, ok := cpu0[name]; ok {
				p.CPU[name] = v - v0
			}
		}
		if profiled {
			rep.PGTime = &bench.PGTime{Phase: label, Events: p.Accepted, Missing: statsMissing}
			if stats != nil {
				if rep.PGTime.Top, rep.PGTime.ByRole, err = stats.Top(ctx, 25); err != nil {
					rep.PGTime.Missing = "pg_stat_statements could not be read: " + err.Error()
				}
			}
			rep.Profiles = <-profiles
		}
		lat, unobserved := tracker.Take()
		p.Latency, p.Unobserved = bench.Summarize(lat), unobserved
		logf("%s: end to end %.0f events/s, p50 %s p99 %s", label, p.EndToEndPerSecond(), p.Latency.P50, p.Latency.P99)
		rep.Phases = append(rep.Phases, p)
	}
	tcancel()

	// 4. Read side.
	logf("read side")
	rep.ReadSide = append(bench.TimeDashboard(ctx, hc, s.URL("dashboard"), dashboardCookie, tok, cfg.reads),
		bench.TimeWorkQueues(ctx, hc, s.URL("billing"), tok, cfg.reads)...)

	if cfg.scaleFill {
		logf("read side at 100 clinics and a year (services/dashboard TestOverviewAtScale)")
		lines, err := scaleFill(ctx, root)
		if err == nil {
			rep.ScaleResults, rep.ScaleRows, rep.ScaleFill, err = bench.ParseScaleLines(lines)
		}
		if err != nil {
			rep.Notes = append(rep.Notes, "TestOverviewAtScale: "+err.Error())
		}
	}

	// 5. Memory, before the stack stops.
	rep.RSSMB = bench.PeakRSS(filepath.Join(runDir, "bin"))

	// 6. Remittance (and the bus figures) from the Go benchmarks.
	if err := goBenchmarks(ctx, root, goBenchPath, &rep); err != nil {
		rep.Notes = append(rep.Notes, "835 benchmarks: "+err.Error())
	}
	rep.Notes = append(append(rep.Notes, scaleNote(cfg)), notes...)
	rep.Elapsed = time.Since(began)

	var prev *bench.Summary
	if beforePath != "" {
		b, err := os.ReadFile(beforePath)
		if err != nil {
			return err
		}
		prev = &bench.Summary{}
		if err := json.Unmarshal(b, prev); err != nil {
			return fmt.Errorf("%s: %w", beforePath, err)
		}
	}
	md := rep.Markdown(prev, beforeLabel) + bench.Method
	if outPath == "" {
		outPath = filepath.Join(root, "docs", "benchmarks.md")
	}
	if outPath != "-" {
		if err := os.WriteFile(outPath, []byte(md), 0o644); err != nil {
			return err
		}
		logf("wrote %s", outPath)
	}
	if err := os.WriteFile(filepath.Join(runDir, "report.md"), []byte(md), 0o644); err != nil {
		return err
	}
	line := rep.JSON()
	if err := os.WriteFile(filepath.Join(runDir, "summary.json"), []byte(line+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Println(line)
	return nil
}

// statsMissing is why pg_stat_statements is not measured ("" when it is).
var statsMissing string

// pgStats opens pg_stat_statements in the harness's database: through BENCH_PG_STATS_URL when
// set (a role that may create the extension, read every role's statements and reset them,
// e.g. a superuser over the local socket; its database is replaced by the harness's), else
// through the harness's own pool. Nil (and statsMissing says why) when it is not available.
func pgStats(ctx context.Context, adminURL string, pool *pgxpool.Pool) (*bench.PGStats, func()) {
	p := pool
	closeFn := func() {}
	if u := os.Getenv("BENCH_PG_STATS_URL"); u != "" {
		pc, err := pgxpool.ParseConfig(u)
		if err == nil {
			pc.ConnConfig.Database, pc.MaxConns = database, 2
			p, err = pgxpool.NewWithConfig(ctx, pc)
		}
		if err != nil {
			statsMissing = "BENCH_PG_STATS_URL: " + err.Error()
			logf("where Postgres time goes: %s", statsMissing)
			return nil, closeFn
		}
		closeFn = p.Close
	}
	stats, why := bench.OpenPGStats(ctx, p)
	if stats == nil {
		statsMissing = why
		logf("where Postgres time goes: not measured (%s)", why)
	}
	return stats, closeFn
}

// cpuProfiles takes a CPU profile of every service over d (their PPROF_ADDR listeners) into
// dir, and sends the files written by service when done.
func cpuProfiles(ctx context.Context, s *stack.Stack, dir string, d time.Duration) <-chan map[string]string {
	done := make(chan map[string]string, 1)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		logf("profiles: %v", err)
		done <- nil
		return done
	}
	go func() {
		var mu sync.Mutex
		files := map[string]string{}
		var wg sync.WaitGroup
		for _, svc := range stack.Services {
			base := s.PprofURL(svc)
			if base == "" {
				continue
			}
			wg.Go(func() {
				path := filepath.Join(dir, svc+".cpu.pb.gz")
				if err := fetchProfile(ctx, fmt.Sprintf("%s/profile?seconds=%d", base, int(max(d.Seconds(), 1))), path, d); err != nil {
					logf("profile of %s: %v", svc, err)
					return
				}
				mu.Lock()
				files[svc] = path
				mu.Unlock()
			})
		}
		wg.Wait()
		done <- files
	}()
	return done
}

func fetchProfile(ctx context.Context, url, path string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// up starts the stack on free ports and checks that every service is its own (a port picked
// free can be taken by another process before the service binds it: then the service exits and
// someone else answers its readiness check), trying again on other ports.
func up(ctx context.Context, root, runDir, adminURL string, logs *os.File) (*stack.Stack, error) {
	var last error
	for attempt := range 3 {
		ports := map[string]int{}
		used := map[int]bool{}
		for name := range stack.DefaultPorts {
			ports[name] = freePort(used) // never in the way of make run or another run
		}
		s, err := stack.Up(ctx, stack.Options{RepoRoot: root, RunDir: runDir, AdminURL: adminURL, Database: database,
			Ports: ports, DevKey: devKey, Logs: logs, LogLevel: "warn", NATSURL: os.Getenv("NATS_URL"), Pprof: true})
		if err != nil {
			last = err
			logf("stack did not come up (attempt %d): %v", attempt+1, err)
			continue
		}
		time.Sleep(time.Second)
		running := bench.Services(filepath.Join(runDir, "bin"))
		var missing []string
		for _, svc := range stack.Services {
			if running[svc] == 0 {
				missing = append(missing, svc)
			}
		}
		if len(missing) == 0 {
			return s, nil
		}
		s.Close()
		last = fmt.Errorf("%s exited after starting (see %s)", strings.Join(missing, ", "), logs.Name())
		logf("%v; trying other ports", last)
	}
	return nil, fmt.Errorf("stack: %w", last)
}

// freePort picks a port in 20000-29999 that nothing listens on now (outside the ephemeral
// range other processes' own free ports come from).
func freePort(used map[int]bool) int {
	for {
		p := 20000 + rand.IntN(10000)
		if used[p] {
			continue
		}
		ln, err := stdnet.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		_ = ln.Close()
		used[p] = true
		return p
	}
}

// settle follows the pipeline until every consumer is drained, the outboxes are empty and
// nothing has moved for a moment (or until limit), feeding prog when given.
func settle(ctx context.Context, js jetstream.JetStream, pool *pgxpool.Pool, prog *bench.Progress, limit time.Duration) (bool, error) {
	deadline := time.Now().Add(limit)
	quiet := 0
	var prev bench.Snapshot
	lastMove := time.Now()
	for time.Now().Before(deadline) {
		snap, err := bench.Snap(ctx, js)
		if err != nil {
			return false, err
		}
		if prog != nil {
			prog.Observe(snap)
		}
		backlog, err := bench.OutboxBacklog(ctx, pool, "scheduling", "billing", "notification")
		if err != nil {
			return false, err
		}
		if moved(prev, snap) || backlog > 0 {
			lastMove = time.Now()
		}
		prev = snap
		if time.Since(lastMove) > 10*time.Second {
			logf("nothing moved for 10 s; still pending: %s", strings.Join(snap.Stuck(), ", "))
			return false, nil
		}
		if snap.Drained() && backlog == 0 {
			quiet++
			if quiet >= 5 { // 0.5 s with nothing pending anywhere
				return true, nil
			}
		} else {
			quiet = 0
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return false, nil
}

func moved(a, b bench.Snapshot) bool {
	for k, v := range b.StreamSeq {
		if a.StreamSeq[k] != v {
			return true
		}
	}
	for k, c := range b.Consumers {
		if a.Consumers[k].Acked != c.Acked {
			return true
		}
	}
	return false
}

// goBenchmarks reads the Go benchmarks' output (running billing's 835 benchmarks when none
// was given) into the report.
func goBenchmarks(ctx context.Context, root, path string, rep *bench.Report) error {
	var out []byte
	var err error
	if path != "" {
		out, err = os.ReadFile(path)
		if err != nil {
			return err
		}
	} else {
		logf("running billing's 835 benchmarks")
		cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "BenchmarkParseERA|BenchmarkPostRemittance",
			"-benchtime=20x", "./services/billing/internal/x12/", "./services/billing/cmd/billing/")
		cmd.Dir = root
		cmd.Env = withoutGOWORK(os.Environ())
		out, err = cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("go test -bench: %w: %s", err, lastLines(string(out), 5))
		}
	}
	gb := bench.ParseGoBench(string(out))
	rep.GoBench = gb
	rep.ERAParsePerS = gb["BenchmarkParseERA/parse+balance"]["lines/s"]
	rep.ERAPostPerS, rep.ERAPostFileLines, rep.ERASmallFilePostPerS = bench.EraPost(gb)
	rep.ERAInsertBaselinePerS = gb["BenchmarkPostRemittance/baseline=insert"]["lines/s"]
	if mbps, lps := gb["BenchmarkParseERA/parse+balance"]["MB/s"], rep.ERAParsePerS; mbps > 0 && lps > 0 {
		rep.ERABytesPerLine = mbps * 1e6 / lps
	}
	rep.UploadLimitBytes = rpc.MaxUploadBytes
	rep.ERASource = fmt.Sprintf("From billing's Go benchmarks of this run: `BenchmarkParseERA` (about 5,000 lines per file) and `BenchmarkPostRemittance` (a file of %d lines posted through the API into a real database); the two stages run one after the other on an upload, so the combined rate is 1 / (1/parse + 1/post).", rep.ERAPostFileLines)
	if rep.ERAParsePerS == 0 || rep.ERAPostPerS == 0 {
		return fmt.Errorf("no ParseERA/PostRemittance figures in the Go benchmarks' output")
	}
	return nil
}

// scaleFill runs services/dashboard's TestOverviewAtScale and keeps the lines it logs.
func scaleFill(ctx context.Context, root string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-run", "^TestOverviewAtScale$", "-v", "./services/dashboard/cmd/dashboard/")
	cmd.Dir = root
	cmd.Env = append(withoutGOWORK(os.Environ()), "DASHBOARD_SCALE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, lastLines(string(out), 5))
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "scale_test.go:") {
			lines = append(lines, l[strings.Index(l, " ")+1:])
		}
	}
	return lines, nil
}

func withoutGOWORK(env []string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, "GOWORK=") {
			out = append(out, e)
		}
	}
	return out
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

func scaleNote(cfg config) string {
	return fmt.Sprintf("Scale `%s`: %d clinics, %d people a clinic, %d weeks of history; %s at %.0f/s, %s at 500/s and %s at saturation (the last two in each mode). "+
		"The issue's 100 clinics and a year cannot be made through the APIs today: the generator makes up to %d clinics (BENCH_CLINICS), but intake back-dates an admission at most 90 days, so at most 12 weeks of history; see \"Going bigger\".",
		cfg.scale, cfg.spec.Clinics, cfg.spec.PatientsPerClinic, cfg.spec.Weeks, cfg.fixed/2, cfg.light, cfg.fixed, cfg.satDur, demonet.MaxClinics)
}

func gitCommit(root string) string {
	cmd := exec.Command("git", "rev-parse", "--short", "HEAD")
	cmd.Dir = root
	b, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
