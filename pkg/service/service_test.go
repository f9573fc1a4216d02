package service_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/pkg/testkit"
)

type demoConfig struct {
	service.Base
	Greeting string `env:"DEMO_GREETING" default:"hello" help:"a service-specific setting"`
}

var demoMigrations = fstest.MapFS{"00001_init.sql": {Data: []byte(`-- +goose Up
CREATE TABLE seen (event_id uuid PRIMARY KEY, greeting text NOT NULL);
-- +goose Down
DROP TABLE seen;
`)}}

// demoSpec is a service that consumes its own events; platform receives the Platform.
func demoSpec(platform chan<- *service.Platform, cfg *demoConfig) service.Spec {
	return service.Spec{
		Name: "demo", Summary: "platform smoke test", DefaultAddr: ":8099", Migrations: demoMigrations,
		Setup: func(ctx context.Context, p *service.Platform) error {
			p.Consume(bus.ConsumerConfig{Name: "demo--self", Stream: "DEMO", Subjects: []string{"trellis.demo.>"}},
				func(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
					_, err := tx.Exec(ctx, "INSERT INTO seen (event_id, greeting) VALUES ($1, $2)", d.Envelope.GetEventId(), cfg.Greeting)
					return err
				})
			if platform != nil {
				platform <- p
			}
			return nil
		},
		Commands: map[string]func(context.Context, *service.Platform, []string) error{
			"count-seen": func(ctx context.Context, p *service.Platform, args []string) error {
				var n int
				return p.Pool.QueryRow(ctx, "SELECT count(*) FROM seen").Scan(&n)
			},
		},
	}
}

func TestServeRunsTheWholePlatform(t *testing.T) {
	n := testkit.StartNATS(t)
	var cfg demoConfig
	platform := make(chan *service.Platform, 1)
	spec := demoSpec(platform, &cfg)
	err := service.LoadConfig(spec, &cfg, map[string]string{
		"DATABASE_URL": testkit.Database(t), "NATS_URL": n.URL, "HTTP_ADDR": "127.0.0.1:0",
		"AUTH_DEV_KEY": "dev-key-for-tests-0123", "AUTH_DEV_MODE": "true", "NATS_STREAM_STORAGE": "memory", "DEMO_GREETING": "hi",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DBSchema != "demo" || cfg.Greeting != "hi" || cfg.DBMaxConns != 10 {
		t.Fatalf("config %+v", cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() { done <- service.Serve(ctx, spec, &cfg, log, ready) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Serve did not stop")
		}
	}
	t.Cleanup(stop)
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("not ready")
	}
	p := <-platform
	base := "http://" + addr
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "postgres: ok\nnats: ok"} {
		if code, body := httpGet(t, base+path); code != 200 || !strings.Contains(body, want) {
			t.Fatalf("GET %s: %d %q", path, code, body)
		}
	}

	// An event emitted through the Store goes out through the relay and comes back through the
	// consumer, without waiting for the relay's idle poll.
	start := time.Now()
	err = p.Store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		tx.Emit(bus.Event{Subject: "trellis.demo.thing.happened.v1", Payload: wrapperspb.String("x")})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 15*time.Second, "event consumed", func() bool {
		var n int
		_ = p.Pool.QueryRow(ctx, "SELECT count(*) FROM seen WHERE greeting = 'hi'").Scan(&n)
		return n == 1
	})
	t.Logf("outbox to consumer effect in %s", time.Since(start))
	_, metrics := httpGet(t, base+"/metrics")
	for _, want := range []string{
		`trellis_events_published_total{outcome="ok",service="demo",subject="trellis.demo.thing.happened.v1"} 1`,
		`trellis_events_processed_total{consumer="demo--self",outcome="ok",service="demo",subject="trellis.demo.thing.happened.v1"} 1`,
		`trellis_ready{service="demo"} 1`, // the readiness gauge the alert rules use
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// The consumer's lag as the server counts it: once the ack has reached the server (it is
	// sent after the commit), nothing is pending or awaiting an ack.
	testkit.Eventually(t, 10*time.Second, "consumer lag reported as zero", func() bool {
		_, metrics := httpGet(t, base+"/metrics")
		return strings.Contains(metrics, `trellis_consumer_pending_messages{consumer="demo--self",service="demo"} 0`) &&
			strings.Contains(metrics, `trellis_consumer_ack_pending_messages{consumer="demo--self",service="demo"} 0`)
	})
	stop()
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeNeedsAnAuthMode(t *testing.T) {
	var cfg demoConfig
	spec := demoSpec(nil, &cfg)
	if err := service.LoadConfig(spec, &cfg, map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1:1/x"}); err != nil {
		t.Fatal(err)
	}
	err := service.Serve(context.Background(), spec, &cfg, slog.New(slog.DiscardHandler), nil)
	if err == nil || !strings.Contains(err.Error(), "AUTH_DEV_KEY") {
		t.Fatalf("err %v", err)
	}
	// A dev key alone (say, copied from a dev stack into production) is refused.
	if err := service.LoadConfig(spec, &cfg, map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1:1/x",
		"AUTH_DEV_KEY": "dev-key-for-tests-0123"}); err != nil {
		t.Fatal(err)
	}
	err = service.Serve(context.Background(), spec, &cfg, slog.New(slog.DiscardHandler), nil)
	if err == nil || !strings.Contains(err.Error(), "AUTH_DEV_MODE") {
		t.Fatalf("dev key without dev mode: err %v", err)
	}
	// Real tokens (JWKS) with dev mode left on, or with the issuer or audience check emptied
	// (the environment cannot empty them, an empty value takes the default; a config built in
	// code can), are refused before anything starts.
	for _, tc := range []struct {
		name   string
		env    map[string]string
		mutate func(*service.Base)
		want   string
	}{
		{"dev mode left on", map[string]string{"AUTH_DEV_MODE": "true", "AUTH_DEV_KEY": "dev-key-for-tests-0123"}, nil, "AUTH_DEV_MODE=true with AUTH_JWKS_URL"},
		{"no issuer", nil, func(b *service.Base) { b.AuthIssuer = "" }, "AUTH_ISSUER and AUTH_AUDIENCE"},
		{"no audience", nil, func(b *service.Base) { b.AuthAudience = "" }, "AUTH_ISSUER and AUTH_AUDIENCE"},
	} {
		env := map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1:1/x", "AUTH_JWKS_URL": "https://idp.example/jwks"}
		for k, v := range tc.env {
			env[k] = v
		}
		cfg = demoConfig{}
		if err := service.LoadConfig(spec, &cfg, env); err != nil {
			t.Fatal(err)
		}
		if tc.mutate != nil {
			tc.mutate(&cfg.Base)
		}
		err = service.Serve(context.Background(), spec, &cfg, slog.New(slog.DiscardHandler), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestRunHelpAndConfigErrors(t *testing.T) {
	var cfg demoConfig
	spec := demoSpec(nil, &cfg)
	var out, errOut bytes.Buffer
	if code := service.Run(context.Background(), spec, &cfg, []string{"--help"}, &out, &errOut); code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, want := range []string{"Usage: demo [serve|migrate|count-seen]", "DATABASE_URL", "(required)", `default: ":8099"`, "DEMO_GREETING", `default: "demo"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}

	t.Setenv("DATABASE_URL", "")
	out.Reset()
	errOut.Reset()
	if code := service.Run(context.Background(), spec, &cfg, []string{"migrate"}, &out, &errOut); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(errOut.String(), "DATABASE_URL: required but not set") {
		t.Fatalf("stderr %q", errOut.String())
	}
}

func TestRunMigrateAndCommands(t *testing.T) {
	var cfg demoConfig
	spec := demoSpec(nil, &cfg)
	url := testkit.Database(t)
	t.Setenv("DATABASE_URL", url)
	t.Setenv("DB_SCHEMA", "")
	var out, errOut bytes.Buffer
	if code := service.Run(context.Background(), spec, &cfg, []string{"migrate"}, &out, &errOut); code != 0 {
		t.Fatalf("migrate exit %d: %s", code, errOut.String())
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var tables int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_tables WHERE schemaname = 'demo'
		AND tablename IN ('seen', 'outbox', 'inbox', 'goose_db_version', 'bus_db_version')`).Scan(&tables); err != nil || tables != 5 {
		t.Fatalf("tables %d err %v", tables, err)
	}
	if code := service.Run(context.Background(), spec, &cfg, []string{"count-seen"}, &out, &errOut); code != 0 {
		t.Fatalf("count-seen exit %d: %s", code, errOut.String())
	}
	// outbox-republish marks published rows in the window as unpublished again.
	if _, err := conn.Exec(context.Background(), `INSERT INTO demo.outbox (event_id, subject, payload, published_at)
		VALUES (gen_random_uuid(), 'trellis.demo.thing.done.v1', '\x00', now())`); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := service.Run(context.Background(), spec, &cfg, []string{"outbox-republish", "-since", "2000-01-01T00:00:00Z"}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "1 events marked") {
		t.Fatalf("outbox-republish: exit %d stdout %q stderr %q", code, out.String(), errOut.String())
	}
	var unpublished int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM demo.outbox WHERE published_at IS NULL`).Scan(&unpublished); err != nil || unpublished != 1 {
		t.Fatalf("unpublished rows %d err %v, want 1", unpublished, err)
	}
	errOut.Reset()
	if code := service.Run(context.Background(), spec, &cfg, []string{"outbox-republish", "-since", "yesterday"}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "-since") {
		t.Fatalf("bad -since: exit %d stderr %q", code, errOut.String())
	}
	errOut.Reset()
	if code := service.Run(context.Background(), spec, &cfg, []string{"frobnicate"}, &out, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: exit %d stderr %q", code, errOut.String())
	}
}

// A spec's DB_MAX_CONNS default replaces the common one; the environment still wins.
func TestSpecDefaultDBMaxConns(t *testing.T) {
	var cfg demoConfig
	spec := demoSpec(nil, &cfg)
	env := map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1:1/x"}
	if err := service.LoadConfig(spec, &cfg, env); err != nil || cfg.DBMaxConns != 10 {
		t.Fatalf("common default: %d (%v), want 10", cfg.DBMaxConns, err)
	}
	spec.DefaultDBMaxConns = 20
	if err := service.LoadConfig(spec, &cfg, env); err != nil || cfg.DBMaxConns != 20 {
		t.Fatalf("spec default: %d (%v), want 20", cfg.DBMaxConns, err)
	}
	env["DB_MAX_CONNS"] = "7"
	if err := service.LoadConfig(spec, &cfg, env); err != nil || cfg.DBMaxConns != 7 {
		t.Fatalf("environment: %d (%v), want 7", cfg.DBMaxConns, err)
	}
}
