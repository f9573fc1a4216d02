// Package service runs a Trellis service the same way everywhere: configuration from the
// environment (`--help` lists it), subcommands (serve, migrate), Postgres, NATS JetStream, the
// outbox relay, consumers, the HTTP server with health, readiness and metrics, structured logs,
// tracing, and graceful shutdown on SIGINT/SIGTERM.
package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/trellis-health/trellis/pkg/audit"
	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/config"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/rpc"
	"github.com/trellis-health/trellis/pkg/telemetry"
)

// Base is the configuration every service shares. Services embed it in their own Config.
type Base struct {
	HTTPAddr        string        `env:"HTTP_ADDR" help:"listen address for the API, /healthz, /readyz and /metrics"`
	DatabaseURL     string        `env:"DATABASE_URL" required:"true" secret:"true" help:"Postgres URL of this service's own login role"`
	DBSchema        string        `env:"DB_SCHEMA" help:"Postgres schema this service owns (default: the service name)"`
	DBMaxConns      int           `env:"DB_MAX_CONNS" default:"10" help:"maximum pooled Postgres connections"`
	NATSURL         string        `env:"NATS_URL" default:"nats://127.0.0.1:4222" secret:"true" help:"NATS server URL(s), comma separated (credentials in it are masked when printed)"`
	NATSCreds       string        `env:"NATS_CREDS" help:"path to a NATS credentials file (JWT and seed; empty: none)"`
	NATSNkeySeed    string        `env:"NATS_NKEY_SEED_FILE" help:"path to this service's NATS nkey seed file (its own user; empty: none)"`
	NATSTLSCAFile   string        `env:"NATS_TLS_CA_FILE" help:"CA bundle to verify the NATS servers (set: TLS is required)"`
	NATSTLSCertFile string        `env:"NATS_TLS_CERT_FILE" help:"client certificate for NATS (mutual TLS; with NATS_TLS_KEY_FILE)"`
	NATSTLSKeyFile  string        `env:"NATS_TLS_KEY_FILE" help:"private key of NATS_TLS_CERT_FILE"`
	TLSCertFile     string        `env:"TLS_CERT_FILE" help:"serve HTTPS with this certificate (PEM, with its chain; with TLS_KEY_FILE)"`
	TLSKeyFile      string        `env:"TLS_KEY_FILE" help:"private key of TLS_CERT_FILE"`
	StreamReplicas  int           `env:"NATS_STREAM_REPLICAS" default:"1" help:"JetStream stream replicas (3 in production)"`
	StreamStorage   string        `env:"NATS_STREAM_STORAGE" default:"file" help:"JetStream storage: file or memory"`
	AuthDevMode     bool          `env:"AUTH_DEV_MODE" default:"false" help:"accept locally minted HS256 tokens signed with AUTH_DEV_KEY (dev stacks and tests only)"`
	AuthDevKey      string        `env:"AUTH_DEV_KEY" secret:"true" help:"dev mode: HS256 key for locally minted tokens (needs AUTH_DEV_MODE=true)"`
	AuthJWKSURL     string        `env:"AUTH_JWKS_URL" help:"OpenID Connect JWKS URL used to verify tokens"`
	AuthIssuer      string        `env:"AUTH_ISSUER" default:"trellis-dev" help:"expected token issuer"`
	AuthAudience    string        `env:"AUTH_AUDIENCE" default:"trellis" help:"expected token audience"`
	LogLevel        string        `env:"LOG_LEVEL" default:"info" help:"debug, info, warn or error"`
	OTLPEndpoint    string        `env:"OTEL_EXPORTER_OTLP_ENDPOINT" help:"OTLP/HTTP endpoint for traces (empty: not exported)"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" default:"15s" help:"grace period for in-flight work on shutdown"`
	PprofAddr       string        `env:"PPROF_ADDR" help:"opt-in Go profiler (net/http/pprof at /debug/pprof/) on this address, never the API's port; a bare port binds 127.0.0.1 (empty: off; for diagnosis, never expose it)"`
}

// Config is implemented by a service's config struct through its embedded Base.
type Config interface{ base() *Base }

func (b *Base) base() *Base { return b }

// Spec describes a service.
type Spec struct {
	Name        string // "intake": also the default schema, stream context and log field
	Summary     string
	DefaultAddr string // e.g. ":8081"
	// DefaultDBMaxConns overrides DB_MAX_CONNS's default (10) for a service whose consumers
	// apply partitions concurrently, each holding a connection (0: the common default).
	DefaultDBMaxConns int
	Migrations        fs.FS // the service's own goose migrations (SQL at the root)
	Consumes          []string
	Policy            rpc.Policy
	// Setup registers the service's handlers and consumers on the platform.
	Setup func(ctx context.Context, p *Platform) error
	// Commands are extra subcommands (e.g. "seed-demo"), run after migrations are applied.
	Commands map[string]func(ctx context.Context, p *Platform, args []string) error
}

// Platform is what a service's Setup receives.
type Platform struct {
	Name      string
	Log       *slog.Logger
	Metrics   *telemetry.Metrics
	Pool      *pgxpool.Pool
	NC        *nats.Conn
	JS        jetstream.JetStream
	Store     *bus.Store
	Server    *rpc.Server
	Streams   bus.StreamOptions
	consumers []*bus.Consumer
	workers   []func(context.Context) error
}

// Go registers a background worker to run with the service. It gets the service's run context,
// and Serve waits for it to return before closing Postgres and NATS.
func (p *Platform) Go(fn func(ctx context.Context) error) { p.workers = append(p.workers, fn) }

// Consume registers a consumer to run with the service.
func (p *Platform) Consume(cfg bus.ConsumerConfig, h bus.Handler) {
	p.consumers = append(p.consumers, bus.NewConsumer(cfg, p.Store, p.JS, h, p.Log, p.Metrics))
}

// Main parses os.Args and runs the service; it exits the process.
func Main(spec Spec, cfg Config) {
	os.Exit(Run(context.Background(), spec, cfg, os.Args[1:], os.Stdout, os.Stderr))
}

// Run is Main without the exit, for tests: it returns the process exit code.
func Run(ctx context.Context, spec Spec, cfg Config, args []string, stdout, stderr io.Writer) int {
	defaults := specDefaults(spec)
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	if cmd == "-h" || cmd == "--help" || cmd == "help" {
		usage(stdout, spec, cfg, defaults)
		return 0
	}
	if err := config.LoadFrom(cfg, config.WithDefaults(os.LookupEnv, defaults)); err != nil {
		fmt.Fprintf(stderr, "%s: configuration error:\n%v\n\nRun `%s --help` for the variables.\n", spec.Name, err, spec.Name)
		return 2
	}
	b := cfg.base()
	log := telemetry.NewLogger(stderr, spec.Name, b.LogLevel)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd {
	case "serve":
		log.Info("configuration", "settings", config.Describe(cfg)) // secrets masked
		var shutdownTracing func(context.Context) error
		if shutdownTracing, err = telemetry.SetupTracing(ctx, spec.Name); err != nil {
			break
		}
		err = Serve(ctx, spec, cfg, log, nil)
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = shutdownTracing(sctx)
		cancel()
	case "migrate":
		err = withPlatform(ctx, spec, b, log, false, func(context.Context, *Platform) error { return nil })
	case "outbox-republish":
		err = republish(ctx, spec, b, log, args, stdout)
	case "deadletters":
		err = deadLetters(ctx, spec, cfg, log, args, stdout)
	default:
		run, ok := spec.Commands[cmd]
		if !ok {
			fmt.Fprintf(stderr, "%s: unknown command %q\n\n", spec.Name, cmd)
			usage(stderr, spec, cfg, defaults)
			return 2
		}
		err = withPlatform(ctx, spec, b, log, false, func(ctx context.Context, p *Platform) error { return run(ctx, p, args) })
	}
	if err != nil {
		log.Error("exiting on error", "command", cmd, "error", err)
		return 1
	}
	return 0
}

func republish(ctx context.Context, spec Spec, b *Base, log *slog.Logger, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("outbox-republish", flag.ContinueOnError)
	since := fs.String("since", "", "start of the window, RFC 3339 (required)")
	until := fs.String("until", "", "end of the window, RFC 3339 (default: now)")
	subject := fs.String("subject", "", "only this subject (default: all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	from, err := time.Parse(time.RFC3339, *since)
	if err != nil {
		return fmt.Errorf("-since: want an RFC 3339 time such as 2026-11-29T00:00:00Z, got %q", *since)
	}
	to := time.Now()
	if *until != "" {
		if to, err = time.Parse(time.RFC3339, *until); err != nil {
			return fmt.Errorf("-until: want an RFC 3339 time, got %q", *until)
		}
	}
	return withPlatform(ctx, spec, b, log, false, func(ctx context.Context, p *Platform) error {
		n, err := bus.Republish(ctx, p.Pool, from, to, *subject)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d events marked for re-publishing; the running service's relay sends them\n", n)
		return nil
	})
}

func usage(w io.Writer, spec Spec, cfg Config, defaults map[string]string) {
	fmt.Fprintf(w, "Usage: %s [serve|migrate", spec.Name)
	names := make([]string, 0, len(spec.Commands))
	for n := range spec.Commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "|%s", n)
	}
	fmt.Fprintf(w, `]
  serve             run the service (default)
  migrate           apply database migrations and exit
  outbox-republish  -since T [-until T] [-subject S]: publish again the events written in [since, until)
                    (RFC 3339 times); consumers' inboxes make the repeat harmless
  deadletters       list [-consumer C] [-from SEQ] [-limit N] | show SEQ... | replay SEQ... | replay -consumer C -all:
                    the DEADLETTER stream (metadata and reasons, never payloads); replay hands dead letters
                    back to this service's consumers through their inbox (at most once), then removes them

`)
	config.Usage(w, spec.Name, spec.Summary, cfg, defaults)
}

// withPlatform connects to Postgres (and NATS when withBus), applies migrations, and runs fn.
func withPlatform(ctx context.Context, spec Spec, b *Base, log *slog.Logger, withBus bool, fn func(context.Context, *Platform) error) error {
	pool, err := pg.Open(ctx, b.DatabaseURL, b.DBSchema, int32(b.DBMaxConns))
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := bus.Migrate(ctx, pool, b.DBSchema, log); err != nil {
		return err
	}
	if err := audit.Migrate(ctx, pool, b.DBSchema, log); err != nil {
		return err
	}
	if spec.Migrations != nil {
		if err := pg.Migrate(ctx, pool, b.DBSchema, "goose_db_version", spec.Migrations, log); err != nil {
			return err
		}
	}
	p := &Platform{Name: spec.Name, Log: log, Metrics: telemetry.NewMetrics(spec.Name), Pool: pool,
		Store:   bus.NewStore(pool, spec.Name),
		Streams: bus.StreamOptions{Replicas: b.StreamReplicas, Storage: b.StreamStorage}}
	if withBus {
		opts, err := NATSOptions(spec.Name, b)
		if err != nil {
			return err
		}
		opts = append(opts, nats.MaxReconnects(-1), nats.ReconnectWait(time.Second),
			// Asynchronous errors, above all permission violations: a refused publish or
			// subscription names the subject (ids and consumer names only), and a consumer
			// missing from pkg/natsauth's declaration shows up here.
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				if errors.Is(err, nats.ErrPermissionViolation) {
					log.Error("NATS refused an operation this service's user is not allowed (see pkg/natsauth)", "error", err)
					return
				}
				log.Warn("NATS error", "error", err)
			}))
		nc, err := nats.Connect(b.NATSURL, opts...)
		if err != nil {
			return fmt.Errorf("nats: connect: %w", err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		p.NC, p.JS = nc, js
	}
	return fn(ctx, p)
}

// specDefaults are the spec's defaults for the common settings, over the Base tags' defaults.
func specDefaults(spec Spec) map[string]string {
	d := map[string]string{"HTTP_ADDR": spec.DefaultAddr, "DB_SCHEMA": spec.Name}
	if spec.DefaultDBMaxConns > 0 {
		d["DB_MAX_CONNS"] = strconv.Itoa(spec.DefaultDBMaxConns)
	}
	return d
}

// LoadConfig fills cfg from env (a map, for tests and tools) with the same defaults Run applies.
func LoadConfig(spec Spec, cfg Config, env map[string]string) error {
	defaults := specDefaults(spec)
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	return config.LoadFrom(cfg, config.WithDefaults(lookup, defaults))
}

// Serve runs the service until ctx ends: migrations, streams, consumers, relay and HTTP server.
// Once listening it sends the bound address on ready, if not nil (tests listen on port 0).
// Tracing uses the global OpenTelemetry provider (Run installs it; tests install their own).
func Serve(ctx context.Context, spec Spec, cfg Config, log *slog.Logger, ready chan<- string) error {
	b := cfg.base()
	verifier, err := newVerifier(b, log)
	if err != nil {
		return err
	}
	return withPlatform(ctx, spec, b, log, true, func(ctx context.Context, p *Platform) error {
		// A service owns (creates and updates) only its own stream. The streams it consumes
		// and the platform's are created if missing, never changed: their owners' settings win.
		if err := bus.EnsureStreams(ctx, p.JS, bus.ContextStream(spec.Name, p.Streams)); err != nil {
			return err
		}
		others := bus.PlatformStreams(p.Streams)
		for _, c := range spec.Consumes {
			others = append(others, bus.ContextStream(c, p.Streams))
		}
		if err := bus.CreateMissingStreams(ctx, p.JS, others...); err != nil {
			return err
		}
		checks := []rpc.Check{
			{Name: "postgres", Fn: func(ctx context.Context) error { return p.Pool.Ping(ctx) }},
			{Name: "nats", Fn: func(ctx context.Context) error {
				if !p.NC.IsConnected() {
					return errors.New("not connected")
				}
				_, err := p.JS.AccountInfo(ctx)
				return err
			}},
			{Name: "consumers", Fn: func(context.Context) error {
				for _, c := range p.consumers {
					if !c.Ready() {
						return fmt.Errorf("consumer %s not running", c.Name())
					}
				}
				return nil
			}},
		}
		srv, err := rpc.NewServer(log, p.Metrics, verifier, spec.Policy, checks...)
		if err != nil {
			return err
		}
		srv.UseAudit(audit.New(p.Pool, spec.Name)) // the PHI audit trail, GET /audit
		p.Server = srv
		if spec.Setup != nil {
			if err := spec.Setup(ctx, p); err != nil {
				return err
			}
		}
		for _, c := range p.consumers {
			if _, err := c.Ensure(ctx); err != nil {
				return err
			}
		}
		registerOpsMetrics(p, spec.Name, checks, log)
		relay := bus.NewRelay(p.Store, p.JS, b.DBSchema, bus.RelayConfig{}, log, p.Metrics)
		if err := srv.UseTLS(b.TLSCertFile, b.TLSKeyFile); err != nil {
			return err
		}
		ln, err := net.Listen("tcp", b.HTTPAddr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", b.HTTPAddr, err)
		}
		pln, err := pprofListen(b.PprofAddr, ln.Addr().String())
		if err != nil {
			_ = ln.Close()
			return err
		}
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() error { return srv.ServeListener(gctx, ln, b.ShutdownTimeout) })
		if pln != nil {
			g.Go(func() error { return servePprof(gctx, pln, log) })
		}
		g.Go(func() error { return relay.Run(gctx) })
		for _, c := range p.consumers {
			g.Go(func() error { return c.Run(gctx) })
		}
		for _, w := range p.workers {
			g.Go(func() error { return w(gctx) })
		}
		log.InfoContext(ctx, "service started", "addr", ln.Addr().String(), "consumers", len(p.consumers), "https", srv.TLS())
		if ready != nil {
			ready <- ln.Addr().String()
		}
		err = g.Wait()
		// Publish what the drain committed, so a service scaled down for good leaves nothing behind.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.ShutdownTimeout)
		if _, ferr := relay.RunOnce(fctx); ferr != nil {
			log.Warn("final outbox flush failed; the next start publishes the rest", "error", ferr)
		}
		cancel()
		log.Info("service stopped")
		return err
	})
}

func newVerifier(b *Base, log *slog.Logger) (*auth.Verifier, error) {
	switch {
	case b.AuthJWKSURL != "" && b.AuthDevMode:
		// Dev mode also turns on dev defaults elsewhere (the public field-encryption dev keys when
		// FIELD_KEYS is empty): with real tokens verified nothing would say so.
		return nil, errors.New("AUTH_DEV_MODE=true with AUTH_JWKS_URL: dev mode is for local stacks only; unset AUTH_DEV_MODE in production")
	case b.AuthJWKSURL != "" && (b.AuthIssuer == "" || b.AuthAudience == ""):
		// An empty value would turn the check off: any token of the same identity provider,
		// issued for another application, would be accepted.
		return nil, errors.New("AUTH_JWKS_URL needs AUTH_ISSUER and AUTH_AUDIENCE: tokens are checked against both")
	case b.AuthJWKSURL != "":
		return auth.NewJWKSVerifier(b.AuthJWKSURL, b.AuthIssuer, b.AuthAudience, nil), nil
	case b.AuthDevKey != "" && !b.AuthDevMode:
		return nil, errors.New("AUTH_DEV_KEY is set but AUTH_DEV_MODE is not true: dev tokens are for local stacks only; set AUTH_JWKS_URL in production")
	case b.AuthDevMode && len(b.AuthDevKey) < 16:
		return nil, errors.New("AUTH_DEV_MODE needs an AUTH_DEV_KEY of at least 16 bytes")
	case b.AuthDevMode:
		log.Warn("DEV MODE: accepting locally minted tokens signed with AUTH_DEV_KEY; never run this in production")
		return auth.NewDevVerifier([]byte(b.AuthDevKey), b.AuthIssuer, b.AuthAudience), nil
	default:
		return nil, errors.New("set AUTH_JWKS_URL (production), or AUTH_DEV_MODE=true with AUTH_DEV_KEY (dev stacks and tests)")
	}
}

// registerOpsMetrics adds what the alert rules in deploy/observability need beyond the
// platform's counters: each consumer's lag as the JetStream server counts it, and
// trellis_ready (1 when the platform's readiness checks pass, as /readyz would answer).
// Both are computed at scrape time; labels are the service and the durable name only.
func registerOpsMetrics(p *Platform, name string, checks []rpc.Check, log *slog.Logger) {
	reg := prometheus.WrapRegistererWith(prometheus.Labels{"service": name}, p.Metrics.Registry)
	ready := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "trellis_ready",
		Help: "1 when the service's readiness checks (Postgres, NATS, consumers) pass, else 0.",
	}, func() float64 { return readiness(checks) })
	for _, c := range []prometheus.Collector{bus.NewLagCollector(p.JS, p.consumers...), ready} {
		if err := reg.Register(c); err != nil {
			log.Warn("operations metric not registered", "error", err)
		}
	}
}

func readiness(checks []rpc.Check) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, c := range checks {
		if c.Fn(ctx) != nil {
			return 0
		}
	}
	return 1
}
