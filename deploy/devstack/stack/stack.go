// Package stack brings the whole Trellis network up on one machine: Postgres roles and
// schemas, an embedded NATS server with JetStream (unless NATS_URL is given), Mailpit as the
// SMTP sink, a trace sink, and the four services as child processes. `make run` and the
// end-to-end tests both use it.
package stack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/trellis-health/trellis/deploy/devstack/tracesink"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/natsauth"
	"github.com/trellis-health/trellis/pkg/pg"
)

// Services in start order (producers before their consumers is not required, but reads well).
// The dashboard only consumes: it projects every other service's events.
var Services = []string{"intake", "scheduling", "billing", "notification", "dashboard"}

// DefaultPorts are the documented local ports.
var DefaultPorts = map[string]int{
	"intake": 8081, "scheduling": 8082, "billing": 8083, "notification": 8084, "dashboard": 8080,
	"smtp": 1025, "mailui": 8025, "otlp": 4318, "traces": 16686, "nats": 14222,
}

// Options configure a stack. Zero values take the documented defaults.
type Options struct {
	RepoRoot string         // where go.work is
	RunDir   string         // state (NATS storage, Mailpit db, binaries); default <repo>/.run
	AdminURL string         // Postgres URL of a role with CREATEROLE (DATABASE_URL)
	Database string         // create and use this database instead of the admin URL's (tests)
	NATSURL  string         // use this NATS instead of the embedded one
	Ports    map[string]int // overrides of DefaultPorts; 0 picks a free port
	DevKey   string         // HS256 key for dev tokens
	Logs     io.Writer      // where child logs go, prefixed; default os.Stderr
	LogLevel string
	// Pprof gives every service an opt-in profiler (PPROF_ADDR) on a free loopback port,
	// recorded in Ports as "<service>-pprof" (PprofURL): for the benchmark harness.
	Pprof bool
}

// Stack is a running network.
type Stack struct {
	Opts      Options
	Ports     map[string]int
	NATSURL   string // the admin user's URL (embedded NATS): for the stack's tools and tests, never the services
	Traces    *tracesink.Sink
	AdminURL  string // admin URL of the database the services use
	nats      *natsserver.Server
	natsOpts  func() *natsserver.Options // the embedded server's options (RestartNATS starts it again with them)
	natsKeys  string                     // directory of the services' nkey seeds ("": external NATS, no keys)
	svcNATS   string                     // the URL services connect to (no credentials in it)
	procs     []*exec.Cmd
	svcs      map[string]*svcProc // the services' serve processes by name (faults.go)
	servers   []*http.Server
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// PprofURL returns the base URL of a service's profiler ("" unless Options.Pprof).
func (s *Stack) PprofURL(svc string) string {
	p, ok := s.Ports[svc+"-pprof"]
	if !ok {
		return ""
	}
	return fmt.Sprintf("http://127.0.0.1:%d/debug/pprof", p)
}

// URL returns the base URL of a service or UI by name.
func (s *Stack) URL(name string) string { return fmt.Sprintf("http://127.0.0.1:%d", s.Ports[name]) }

// Up starts everything and returns once every service reports ready.
func Up(ctx context.Context, o Options) (_ *Stack, err error) {
	if o.RunDir == "" {
		o.RunDir = filepath.Join(o.RepoRoot, ".run")
	}
	if o.Logs == nil {
		o.Logs = os.Stderr
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	s := &Stack{Opts: o, Ports: map[string]int{}, Traces: tracesink.New(20000)}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	for name, p := range DefaultPorts {
		if v, ok := o.Ports[name]; ok {
			p = v
		}
		if p == 0 {
			if p, err = freePort(); err != nil {
				return nil, err
			}
		}
		s.Ports[name] = p
	}
	if o.Pprof {
		for _, svc := range Services {
			if s.Ports[svc+"-pprof"], err = freePort(); err != nil {
				return nil, err
			}
		}
	}
	if err := os.MkdirAll(o.RunDir, 0o755); err != nil {
		return nil, err
	}
	bins, err := s.build(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.startNATS(); err != nil {
		return nil, err
	}
	if err := s.startTraceSink(); err != nil {
		return nil, err
	}
	if err := s.startMailpit(ctx); err != nil {
		return nil, err
	}
	urls, err := s.provision(ctx)
	if err != nil {
		return nil, err
	}
	for _, svc := range Services {
		env := s.serviceEnv(svc, urls[svc])
		if err := s.runOnce(ctx, svc, bins[svc], env, "migrate"); err != nil {
			return nil, err
		}
	}
	// Reference data of the demo network: clinics (both services keep their own), programs,
	// rooms, clinicians and tracks; billing's payers, contracts and sliding scale.
	for _, svc := range []string{"intake", "scheduling", "billing"} {
		if err := s.runOnce(ctx, svc, bins[svc], s.serviceEnv(svc, urls[svc]), "seed-demo"); err != nil {
			return nil, err
		}
	}
	for _, svc := range Services {
		if err := s.start(svc, bins[svc], s.serviceEnv(svc, urls[svc]), "serve"); err != nil {
			return nil, err
		}
	}
	for _, svc := range Services {
		if err := waitHTTP(ctx, s.URL(svc)+"/readyz", 60*time.Second); err != nil {
			return nil, fmt.Errorf("%s did not become ready: %w", svc, err)
		}
	}
	return s, nil
}

func (s *Stack) build(ctx context.Context) (map[string]string, error) {
	dir := filepath.Join(s.Opts.RunDir, "bin")
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	bins := map[string]string{}
	for _, svc := range Services {
		args = append(args, "./services/"+svc+"/cmd/"+svc)
		bins[svc] = filepath.Join(dir, svc)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = s.Opts.RepoRoot
	cmd.Stdout, cmd.Stderr = s.Opts.Logs, s.Opts.Logs
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("build services: %w", err)
	}
	return bins, nil
}

// startNATS starts the embedded server with the same users and permissions as production
// (pkg/natsauth): each service connects as its own nkey user (a new key per run, seeds in
// <run dir>/nats-keys), and the stack and its tests as the admin user through NATSURL. An
// external NATS (Options.NATSURL) is used as it is, and services connect without keys.
func (s *Stack) startNATS() error {
	if s.Opts.NATSURL != "" {
		s.NATSURL, s.svcNATS = s.Opts.NATSURL, s.Opts.NATSURL
		return nil
	}
	s.natsKeys = filepath.Join(s.Opts.RunDir, "nats-keys")
	pubs, err := natsauth.WriteSeeds(s.natsKeys)
	if err != nil {
		return fmt.Errorf("embedded nats: keys: %w", err)
	}
	_, seed, err := natsauth.NewUserKey() // random enough for a password, URL-safe
	if err != nil {
		return err
	}
	password := string(seed[2:34])
	o := &natsserver.Options{
		Host: "127.0.0.1", Port: s.Ports["nats"], JetStream: true, NoSigs: true, NoLog: true,
		StoreDir: filepath.Join(s.Opts.RunDir, "nats"),
	}
	if err := natsauth.ConfigureServer(o, pubs, password); err != nil {
		return err
	}
	s.natsOpts = func() *natsserver.Options { return o.Clone() }
	ns, err := natsserver.NewServer(s.natsOpts())
	if err != nil {
		return fmt.Errorf("embedded nats: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		return fmt.Errorf("embedded nats did not start on port %d (in use?)", s.Ports["nats"])
	}
	s.nats = ns
	s.svcNATS = ns.ClientURL()
	s.NATSURL = fmt.Sprintf("nats://%s:%s@127.0.0.1:%d", natsauth.AdminUser, password, s.Ports["nats"])
	return nil
}

func (s *Stack) startTraceSink() error {
	for _, name := range []string{"otlp", "traces"} {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", s.Ports[name]))
		if err != nil {
			return fmt.Errorf("trace sink (%s): %w", name, err)
		}
		srv := &http.Server{Handler: s.Traces.Handler(), ReadHeaderTimeout: 5 * time.Second}
		s.servers = append(s.servers, srv)
		go func() { _ = srv.Serve(ln) }()
	}
	return nil
}

func (s *Stack) startMailpit(ctx context.Context) error {
	bin := filepath.Join(s.Opts.RepoRoot, "bin", "mailpit")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("mailpit not built: run scripts/build-mailpit.sh (make mailpit)")
	}
	dir := filepath.Join(s.Opts.RunDir, "mailpit")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		err := s.start("mailpit", bin, nil,
			"--smtp", fmt.Sprintf("127.0.0.1:%d", s.Ports["smtp"]),
			"--listen", fmt.Sprintf("127.0.0.1:%d", s.Ports["mailui"]),
			"--database", filepath.Join(dir, fmt.Sprintf("mailpit-%d.db", s.Ports["mailui"])),
			"--smtp-auth-accept-any", "--smtp-auth-allow-insecure", "--disable-version-check", "--quiet")
		if err != nil {
			return err
		}
		mailpit := s.procs[len(s.procs)-1]
		err = waitHTTP(ctx, s.URL("mailui")+"/api/v1/info", 30*time.Second)
		if err == nil || attempt == 3 || !s.portsWerePicked("smtp", "mailui") {
			return err
		}
		// Another process took a port picked for this stack (parallel tests): pick others.
		_ = mailpit.Process.Kill()
		for _, name := range []string{"smtp", "mailui"} {
			if s.Ports[name], err = freePort(); err != nil {
				return err
			}
		}
	}
}

// portsWerePicked reports whether the named ports were chosen free at start-up (0 in
// Options.Ports) rather than asked for: only those may be changed.
func (s *Stack) portsWerePicked(names ...string) bool {
	for _, n := range names {
		if p, ok := s.Opts.Ports[n]; !ok || p != 0 {
			return false
		}
	}
	return true
}

// provision creates the database (when asked) and each service's role and schema, and returns
// each service's own connection URL.
func (s *Stack) provision(ctx context.Context) (map[string]string, error) {
	admin := s.Opts.AdminURL
	if s.Opts.Database != "" {
		u, err := createDatabase(ctx, admin, s.Opts.Database)
		if err != nil {
			return nil, err
		}
		admin = u
	}
	s.AdminURL = admin
	roles := map[string]string{}
	for _, svc := range Services {
		roles[svc] = svc + "-dev-password"
	}
	if err := pg.Provision(ctx, admin, roles); err != nil {
		return nil, err
	}
	urls := map[string]string{}
	for _, svc := range Services {
		u, err := pg.ServiceURL(admin, svc, roles[svc])
		if err != nil {
			return nil, err
		}
		urls[svc] = u
	}
	return urls, nil
}

func (s *Stack) serviceEnv(svc, dbURL string) []string {
	env := []string{
		"HTTP_ADDR=" + fmt.Sprintf("127.0.0.1:%d", s.Ports[svc]),
		"DATABASE_URL=" + dbURL,
		"DB_SCHEMA=" + svc,
		"NATS_URL=" + s.svcNATS,
		"AUTH_DEV_KEY=" + s.Opts.DevKey,
		"AUTH_DEV_MODE=true",
		"LOG_LEVEL=" + s.Opts.LogLevel,
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + fmt.Sprintf("http://127.0.0.1:%d", s.Ports["otlp"]),
		"OTEL_BSP_SCHEDULE_DELAY=200",
		"FIELD_KEYS=" + fieldcrypt.DevKeys,        // field encryption: fixed dev keys, never for real data
		"FIELD_HASH_KEY=" + fieldcrypt.DevHashKey, // (docs/security.md#field-encryption)
	}
	if p, ok := s.Ports[svc+"-pprof"]; ok {
		env = append(env, fmt.Sprintf("PPROF_ADDR=127.0.0.1:%d", p))
	}
	if s.natsKeys != "" {
		env = append(env, "NATS_NKEY_SEED_FILE="+natsauth.SeedFile(s.natsKeys, svc))
	}
	if svc == "dashboard" {
		// The billing page reads billing's work queues and posts its actions and 835 uploads.
		env = append(env, fmt.Sprintf("BILLING_URL=http://127.0.0.1:%d", s.Ports["billing"]))
	}
	if svc == "notification" {
		// Texts go to the fake provider notification mounts on its own port (dev only): they
		// are recorded, never sent, and listed at /fake-sms/messages.
		env = append(env, fmt.Sprintf("SMTP_ADDR=127.0.0.1:%d", s.Ports["smtp"]),
			"SMS_PROVIDER_URL=fake", "SMS_FROM=+13125550100",
			fmt.Sprintf("PUBLIC_BASE_URL=http://127.0.0.1:%d", s.Ports[svc]))
	}
	return env
}

// runOnce runs a one-shot subcommand (migrate, seed-demo) and waits for it.
func (s *Stack) runOnce(ctx context.Context, name, bin string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	w := prefixWriter(s.Opts.Logs, name)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %v: %w", name, args, err)
	}
	return nil
}

// start launches a long-running child that dies with us (Pdeathsig), so a killed dev stack
// leaves no orphans holding ports and the next `make run` starts cleanly.
func (s *Stack) start(name, bin string, env []string, args ...string) error {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	w := prefixWriter(s.Opts.Logs, name)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	s.procs = append(s.procs, cmd)
	exited := make(chan struct{})
	s.wg.Add(1)
	go func() { defer s.wg.Done(); _ = cmd.Wait(); close(exited) }()
	if len(args) > 0 && args[0] == "serve" {
		if s.svcs == nil {
			s.svcs = map[string]*svcProc{}
		}
		s.svcs[name] = &svcProc{bin: bin, env: env, cmd: cmd, exited: exited}
	}
	return nil
}

// Close stops the children (SIGTERM, then SIGKILL after 15 s), the trace sink and NATS.
func (s *Stack) Close() {
	s.closeOnce.Do(func() {
		for i := len(s.procs) - 1; i >= 0; i-- {
			if p := s.procs[i].Process; p != nil {
				_ = p.Signal(syscall.SIGTERM)
			}
		}
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			for _, c := range s.procs {
				if c.Process != nil {
					_ = c.Process.Kill()
				}
			}
			<-done
		}
		for _, srv := range s.servers {
			_ = srv.Close()
		}
		if s.nats != nil {
			s.nats.Shutdown()
			s.nats.WaitForShutdown()
		}
	})
}

func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return errors.Join(fmt.Errorf("%s not ready after %s", url, timeout), last)
}

// handedOut are the ports freePort has returned in this process: a port is free until its
// user binds it, so without this two picks could fall on the same one.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

func freePort() (int, error) {
	// Below Linux's ephemeral range (32768-60999 by default): the kernel hands those out as the
	// local ports of outgoing connections (to Postgres, NATS, ...), which could take a port
	// between this check and the child's bind. Random, so that stacks started at the same time
	// in other processes rarely try the same one; a port in use, or already handed out by this
	// process, is skipped.
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 500 {
		port := 20000 + rand.IntN(12000)
		if handedOut.ports[port] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		handedOut.ports[port] = true
		return port, nil
	}
	return 0, errors.New("stack: no free port found in 20000-31999")
}

// prefixWriter writes each line as "[name] line".
func prefixWriter(w io.Writer, name string) io.Writer {
	pr, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			fmt.Fprintf(w, "%-13s %s\n", "["+name+"]", sc.Text())
		}
	}()
	return pw
}

// RepoRoot is the nearest directory at or above the working directory that holds go.work:
// the Trellis checkout the dev stack, its tests and the benchmark harness run from.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the Trellis repository (no go.work found)")
		}
		dir = parent
	}
}
