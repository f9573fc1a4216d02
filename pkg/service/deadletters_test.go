package service_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/pkg/testkit"
)

// An event the consumer refuses is dead-lettered; `deadletters list` shows it (reason, no
// payload); after the fix `deadletters replay -consumer C -all` applies it once and removes it;
// replaying its sequence again says it is gone and applies nothing.
func TestDeadLettersCommand(t *testing.T) {
	n := testkit.StartNATS(t)
	var fixed atomic.Bool
	var cfg demoConfig
	platform := make(chan *service.Platform, 1)
	spec := demoSpec(nil, &cfg)
	setup := spec.Setup
	spec.Setup = func(ctx context.Context, p *service.Platform) error {
		p.Consume(bus.ConsumerConfig{Name: "demo--picky", Stream: "DEMO", Subjects: []string{"trellis.demo.>"}},
			func(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
				if !fixed.Load() {
					return bus.Permanent(errors.New("greeting not configured"))
				}
				_, err := tx.Exec(ctx, "INSERT INTO seen (event_id, greeting) VALUES (gen_random_uuid(), 'picky')")
				return err
			})
		select { // the first Setup is the serving one's; the commands run Setup too
		case platform <- p:
		default:
		}
		return setup(ctx, p)
	}
	// The commands read the environment, as in production.
	env := map[string]string{
		"DATABASE_URL": testkit.Database(t), "NATS_URL": n.URL, "HTTP_ADDR": "127.0.0.1:0",
		"AUTH_DEV_KEY": "dev-key-for-tests-0123", "AUTH_DEV_MODE": "true", "NATS_STREAM_STORAGE": "memory",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	t.Setenv("DB_SCHEMA", "")
	if err := service.LoadConfig(spec, &cfg, env); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() { done <- service.Serve(ctx, spec, &cfg, log, ready) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("not ready")
	}
	p := <-platform
	if err := p.Store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		tx.Emit(bus.Event{Subject: "trellis.demo.thing.happened.v1", Payload: wrapperspb.String("x")})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	seen := func(greeting string) int {
		var n int
		_ = p.Pool.QueryRow(ctx, "SELECT count(*) FROM seen WHERE greeting = $1", greeting).Scan(&n)
		return n
	}
	testkit.Eventually(t, 15*time.Second, "dead letter", func() bool {
		dls, err := bus.ListDeadLetters(ctx, p.JS, "demo--picky", 0, 10)
		return err == nil && len(dls) == 1
	})

	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		var c demoConfig
		code := service.Run(context.Background(), spec, &c, args, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, stderr := run("deadletters", "list")
	if code != 0 || !strings.Contains(out, "demo--picky") || !strings.Contains(out, "greeting not configured") ||
		!strings.Contains(out, "trellis.demo.thing.happened.v1") {
		t.Fatalf("list: exit %d\n%s\n%s", code, out, stderr)
	}
	dl, _ := bus.ListDeadLetters(ctx, p.JS, "demo--picky", 0, 1)
	seq := dl[0].Seq
	if code, out, _ := run("deadletters", "show", strconv.FormatUint(seq, 10)); code != 0 || !strings.Contains(out, "event type:") {
		t.Fatalf("show: exit %d\n%s", code, out)
	}
	// Before the fix the replay fails and keeps it.
	if code, out, _ := run("deadletters", "replay", "-consumer", "demo--picky", "-all"); code != 1 || !strings.Contains(out, "failed, kept") {
		t.Fatalf("replay before the fix: exit %d\n%s", code, out)
	}
	fixed.Store(true)
	if code, out, stderr := run("deadletters", "replay", "-consumer", "demo--picky", "-all"); code != 0 || !strings.Contains(out, "replayed") {
		t.Fatalf("replay: exit %d\n%s\n%s", code, out, stderr)
	}
	if n := seen("picky"); n != 1 {
		t.Fatalf("picky applied %d times, want 1", n)
	}
	if code, out, _ := run("deadletters", "replay", strconv.FormatUint(seq, 10)); code != 0 || !strings.Contains(out, "gone") {
		t.Fatalf("second replay: exit %d\n%s", code, out)
	}
	if code, out, _ := run("deadletters", "list", "-consumer", "demo--picky"); code != 0 || !strings.Contains(out, "(no dead letters)") {
		t.Fatalf("list after replay: exit %d\n%s", code, out)
	}
	if n := seen("picky"); n != 1 {
		t.Fatalf("picky applied %d times after a second replay, want 1", n)
	}
	if code, _, stderr := run("deadletters", "replay"); code != 1 || !strings.Contains(stderr, "-consumer NAME -all") {
		t.Fatalf("replay without arguments: exit %d %s", code, stderr)
	}
}
