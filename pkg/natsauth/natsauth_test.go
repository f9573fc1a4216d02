package natsauth_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/natsauth"
	"github.com/trellis-health/trellis/pkg/service"
)

const adminPassword = "test-admin-password-0123456789"

// authServer is an embedded JetStream server configured by natsauth.ConfigureServer, with a
// seed file per service in keys.
type authServer struct {
	srv  *natsserver.Server
	url  string
	keys string
}

func startAuthServer(t *testing.T, tweak func(*natsserver.Options)) *authServer {
	t.Helper()
	keys := t.TempDir()
	pubs, err := natsauth.WriteSeeds(keys)
	if err != nil {
		t.Fatal(err)
	}
	o := &natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}
	if err := natsauth.ConfigureServer(o, pubs, adminPassword); err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(o)
	}
	s, err := natsserver.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server did not start")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return &authServer{srv: s, url: s.ClientURL(), keys: keys}
}

// violations collects the asynchronous permission errors the server sends a connection.
type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.errs = append(v.errs, err.Error())
}

func (v *violations) reset() { v.mu.Lock(); v.errs = nil; v.mu.Unlock() }

// waitFor waits until a violation mentioning subject arrives (the server answers a forbidden
// publish or subscription asynchronously).
func (v *violations) waitFor(t *testing.T, nc *nats.Conn, subject string) {
	t.Helper()
	for range 100 {
		_ = nc.Flush()
		v.mu.Lock()
		for _, e := range v.errs {
			if strings.Contains(strings.ToLower(e), "permissions violation") && strings.Contains(e, subject) {
				v.mu.Unlock()
				return
			}
		}
		v.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no permissions violation for %s; got %q", subject, v.errs)
}

// connect connects as the service, with the options the service itself uses.
func (a *authServer) connect(t *testing.T, svc string, v *violations) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	b := &service.Base{NATSNkeySeed: natsauth.SeedFile(a.keys, svc)}
	opts, err := service.NATSOptions(svc, b)
	if err != nil {
		t.Fatal(err)
	}
	if v != nil {
		opts = append(opts, nats.ErrorHandler(v.handler))
	}
	nc, err := nats.Connect(a.url, opts...)
	if err != nil {
		t.Fatalf("%s: connect: %v", svc, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func (a *authServer) admin(t *testing.T) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(a.url, nats.UserInfo(natsauth.AdminUser, adminPassword))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func TestDeclarationIsValid(t *testing.T) {
	if err := natsauth.Check(natsauth.Services); err != nil {
		t.Fatal(err)
	}
}

// TestEveryServiceDoesItsPlatformWork: each service, as its own user, does what pkg/service
// and pkg/bus do for it (streams, readiness, consumers, fetch and every kind of ack, publishing
// its events and dead letters, the dead-letter tools, lag), and nothing needs more.
func TestEveryServiceDoesItsPlatformWork(t *testing.T) {
	a := startAuthServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	so := bus.StreamOptions{Replicas: 1, Storage: "memory"}
	for _, s := range natsauth.Services {
		t.Run(s.Name, func(t *testing.T) {
			v := &violations{}
			_, js := a.connect(t, s.Name, v)
			if err := bus.EnsureStreams(ctx, js, bus.ContextStream(s.Name, so)); err != nil {
				t.Fatal(err)
			}
			others := bus.PlatformStreams(so)
			for _, c := range s.Consumers {
				if c.Stream != natsauth.DeadLetterStream {
					others = append(others, bus.ContextStream(strings.ToLower(c.Stream), so))
				}
			}
			if err := bus.CreateMissingStreams(ctx, js, others...); err != nil {
				t.Fatal(err)
			}
			if _, err := js.AccountInfo(ctx); err != nil {
				t.Fatalf("account info (readiness): %v", err)
			}
			// Its own event, through JetStream with a message id as the relay publishes.
			own := "trellis." + s.Name + ".thing.happened.v1"
			if _, err := js.Publish(ctx, own, []byte("x"), jetstream.WithMsgID(s.Name+"-1")); err != nil {
				t.Fatalf("publish own event: %v", err)
			}
			for _, c := range s.Consumers {
				cons, err := js.CreateOrUpdateConsumer(ctx, c.Stream, jetstream.ConsumerConfig{Durable: c.Name,
					AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: -1, FilterSubjects: []string{filterOf(c.Stream)}})
				if err != nil {
					t.Fatalf("create consumer %s: %v", c.Name, err)
				}
				if _, err := js.Consumer(ctx, c.Stream, c.Name); err != nil {
					t.Fatalf("consumer info %s (lag): %v", c.Name, err)
				}
				if _, err := cons.Fetch(1, jetstream.FetchMaxWait(200*time.Millisecond)); err != nil {
					t.Fatalf("fetch %s: %v", c.Name, err)
				}
				if c.Stream != natsauth.DeadLetterStream {
					if _, err := js.Publish(ctx, bus.DeadLetterSubject(c.Name), []byte("dl")); err != nil {
						t.Fatalf("dead letter of %s: %v", c.Name, err)
					}
				}
			}
			if _, err := bus.ListDeadLetters(ctx, js, "", 0, 10); err != nil {
				t.Fatalf("deadletters list: %v", err)
			}
			if _, err := js.Stream(ctx, bus.DeadLetterStream); err != nil {
				t.Fatal(err)
			}
			v.mu.Lock()
			defer v.mu.Unlock()
			if len(v.errs) > 0 {
				t.Fatalf("permission errors: %q", v.errs)
			}
		})
	}
	// Deliveries and acks: scheduling reads discharges and acks it in every way bus does.
	admin := a.admin(t)
	for range 4 {
		if _, err := admin.Publish(ctx, "trellis.intake.patient.discharged.v1", []byte("a")); err != nil {
			t.Fatal(err)
		}
	}
	v := &violations{}
	_, js := a.connect(t, "scheduling", v)
	cons, err := js.CreateOrUpdateConsumer(ctx, "INTAKE", jetstream.ConsumerConfig{Durable: "scheduling--discharges",
		AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: -1, FilterSubjects: []string{"trellis.intake.patient.discharged.v1"}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(4, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range batch.Messages() {
		switch n {
		case 0:
			err = m.DoubleAck(ctx)
		case 1:
			if err = m.InProgress(); err == nil {
				err = m.Ack()
			}
		case 2:
			err = m.NakWithDelay(time.Hour)
		default:
			err = m.TermWithReason("poison")
		}
		if err != nil {
			t.Fatalf("ack %d: %v", n, err)
		}
		n++
	}
	if n != 4 || batch.Error() != nil {
		t.Fatalf("fetched %d of 4 discharges: %v", n, batch.Error())
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.AckFloor.Consumer < 1 { // the double ack at least (the others are not waited for)
		t.Errorf("acks did not reach the server: ack floor %d", info.AckFloor.Consumer)
	}
	if len(v.errs) > 0 {
		t.Fatalf("permission errors: %q", v.errs)
	}
}

// TestForbiddenPublishIsRefused: scheduling cannot publish billing's events; nothing reaches
// the BILLING stream.
func TestForbiddenPublishIsRefused(t *testing.T) {
	a := startAuthServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := a.admin(t)
	so := bus.StreamOptions{Replicas: 1, Storage: "memory"}
	if err := bus.EnsureStreams(ctx, admin, bus.ContextStream("billing", so), bus.ContextStream("intake", so)); err != nil {
		t.Fatal(err)
	}
	v := &violations{}
	nc, js := a.connect(t, "scheduling", v)
	const forged = "trellis.billing.charge.created.v1"
	if err := nc.Publish(forged, []byte("forged")); err != nil {
		t.Fatal(err)
	}
	v.waitFor(t, nc, forged)
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := js.Publish(pctx, forged, []byte("forged"), jetstream.WithMsgID("forged-2"))
	pcancel()
	if err == nil {
		t.Fatal("a JetStream publish on billing's subject was acknowledged")
	}
	// Nor through another service's dead letters, or as intake.
	for _, subject := range []string{"trellis.deadletter.billing--identity", "trellis.intake.patient.admitted.v1"} {
		if err := nc.Publish(subject, []byte("forged")); err != nil {
			t.Fatal(err)
		}
		v.waitFor(t, nc, subject)
	}
	st, err := admin.Stream(ctx, "BILLING")
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != 0 {
		t.Fatalf("BILLING holds %d messages after forged publishes, want 0", n)
	}
	if err := bus.EnsureStreams(ctx, admin, bus.PlatformStreams(so)...); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"INTAKE", bus.DeadLetterStream} {
		st, err := admin.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if n := st.CachedInfo().State.Msgs; n != 0 {
			t.Fatalf("%s holds %d messages after forged publishes, want 0", name, n)
		}
	}
}

// TestBillingIdentityIsReadableByBillingOnly: the subject that carries names and dates of
// birth (ADR 0009) reaches billing--identity; scheduling (and every other service) can neither
// subscribe to it, nor create or take over a consumer of it, nor read INTAKE's messages
// directly, nor listen on billing's inbox where billing's deliveries arrive.
func TestBillingIdentityIsReadableByBillingOnly(t *testing.T) {
	a := startAuthServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const identity = "trellis.intake.patient.billing_identity_recorded.v1"
	admin := a.admin(t)
	so := bus.StreamOptions{Replicas: 1, Storage: "memory"}
	if err := bus.EnsureStreams(ctx, admin, bus.ContextStream("intake", so)); err != nil {
		t.Fatal(err)
	}

	for _, s := range natsauth.Services {
		if s.Name == "billing" {
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			v := &violations{}
			nc, js := a.connect(t, s.Name, v)
			got := make(chan *nats.Msg, 10)
			for _, subject := range []string{identity, "trellis.intake.>", ">", "_INBOX.billing.>", "_INBOX.>"} {
				if _, err := nc.ChanSubscribe(subject, got); err != nil {
					t.Fatal(err)
				}
				v.waitFor(t, nc, subject)
			}
			// Consumers it does not own, new or billing's, with the identity filter; INTAKE's
			// messages by sequence or directly.
			type attempt struct {
				api string // the JetStream API subject the server refuses
				do  func(context.Context) error
			}
			forbidden := []attempt{
				{"$JS.API.CONSUMER.CREATE.INTAKE." + s.Name + "--peek", func(ctx context.Context) error {
					_, err := js.CreateOrUpdateConsumer(ctx, "INTAKE", jetstream.ConsumerConfig{Durable: s.Name + "--peek", FilterSubjects: []string{identity}})
					return err
				}},
				{"$JS.API.CONSUMER.CREATE.INTAKE." + s.Name + "--peek." + identity, func(ctx context.Context) error {
					_, err := js.CreateOrUpdateConsumer(ctx, "INTAKE", jetstream.ConsumerConfig{Durable: s.Name + "--peek", FilterSubject: identity})
					return err
				}},
				{"$JS.API.CONSUMER.CREATE.INTAKE.billing--identity", func(ctx context.Context) error {
					_, err := js.CreateOrUpdateConsumer(ctx, "INTAKE", jetstream.ConsumerConfig{Durable: "billing--identity", FilterSubjects: []string{identity}})
					return err
				}},
				{"$JS.API.CONSUMER.MSG.NEXT.INTAKE.billing--identity", func(ctx context.Context) error {
					_, err := nc.RequestWithContext(ctx, "$JS.API.CONSUMER.MSG.NEXT.INTAKE.billing--identity", []byte(`{"batch":1}`))
					return err
				}},
				{"$JS.API.CONSUMER.CREATE.INTAKE", func(ctx context.Context) error {
					_, err := js.OrderedConsumer(ctx, "INTAKE", jetstream.OrderedConsumerConfig{FilterSubjects: []string{identity}})
					if err == nil {
						_, err = js.Consumer(ctx, "INTAKE", "none") // ordered consumers are created lazily
					}
					return errors.Join(err, errors.New("ordered consumer"))
				}},
				{"$JS.API.STREAM.MSG.GET.INTAKE", func(ctx context.Context) error {
					st, err := js.Stream(ctx, "INTAKE")
					if err != nil {
						return err
					}
					_, err = st.GetLastMsgForSubject(ctx, identity)
					return err
				}},
				{"$JS.API.DIRECT.GET.INTAKE", func(ctx context.Context) error {
					_, err := nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET.INTAKE."+identity, nil)
					return err
				}},
			}
			for _, f := range forbidden {
				v.reset()
				fctx, fcancel := context.WithTimeout(ctx, 500*time.Millisecond)
				err := f.do(fctx)
				fcancel()
				if err == nil {
					t.Errorf("%s was allowed", f.api)
				}
				v.waitFor(t, nc, f.api)
			}
			t.Cleanup(func() {
				select {
				case m := <-got:
					t.Errorf("%s received %s", s.Name, m.Subject)
				default:
				}
			})
		})
	}

	// Billing reads it through its consumer.
	_, js := a.connect(t, "billing", nil)
	cons, err := js.CreateOrUpdateConsumer(ctx, "INTAKE", jetstream.ConsumerConfig{Durable: "billing--identity",
		AckPolicy: jetstream.AckExplicitPolicy, FilterSubjects: []string{identity}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Publish(ctx, identity, []byte("identity")); err != nil {
		t.Fatal(err)
	}
	m, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatalf("billing--identity: %v", err)
	}
	if m.Subject() != identity {
		t.Fatalf("billing got %s", m.Subject())
	}
	if err := m.Ack(); err != nil {
		t.Fatal(err)
	}
}

// TestGeneratedConfigsAreUpToDate: the compose and Helm configurations are what the
// generator makes from the declaration now (run `go run ./pkg/natsauth/cmd/natsauth conf`).
func TestGeneratedConfigsAreUpToDate(t *testing.T) {
	root := filepath.Join("..", "..")
	files, err := natsauth.Generated(root)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range files {
		got, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s is out of date: run `go run ./pkg/natsauth/cmd/natsauth conf`", p)
		}
	}
}

// TestRenderedConfWorks: the generated nats.conf authorization block, loaded by a real server
// with keys in its environment, admits each service with its permissions and refuses the rest.
func TestRenderedConfWorks(t *testing.T) {
	dir := t.TempDir()
	pubs, err := natsauth.WriteSeeds(dir)
	if err != nil {
		t.Fatal(err)
	}
	for svc, pub := range pubs {
		t.Setenv(natsauth.KeyEnv(svc), pub)
	}
	t.Setenv(natsauth.AdminPasswordEnv, adminPassword)
	conf := filepath.Join(dir, "nats.conf")
	body := fmt.Sprintf("listen: 127.0.0.1:-1\njetstream { store_dir: %q }\ninclude ./auth.conf\n", filepath.Join(dir, "js"))
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "auth.conf"), []byte(natsauth.RenderConf()), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := natsserver.ProcessConfigFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	o.NoLog, o.NoSigs = true, true
	if len(o.Nkeys) != len(natsauth.Services) || len(o.Users) != 1 {
		t.Fatalf("the rendered configuration has %d nkey users and %d users", len(o.Nkeys), len(o.Users))
	}
	for i, s := range natsauth.Services {
		u := o.Nkeys[i]
		p := s.Permissions()
		if u.Nkey != pubs[s.Name] || fmt.Sprint(u.Permissions.Publish.Allow) != fmt.Sprint(p.Publish) ||
			fmt.Sprint(u.Permissions.Subscribe.Allow) != fmt.Sprint(p.Subscribe) {
			t.Errorf("%s: the rendered user differs from the declaration", s.Name)
		}
	}
	srv, err := natsserver.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server from the rendered configuration did not start")
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	a := &authServer{srv: srv, url: srv.ClientURL(), keys: dir}
	v := &violations{}
	nc, _ := a.connect(t, "scheduling", v)
	if err := nc.Publish("trellis.billing.charge.created.v1", nil); err != nil {
		t.Fatal(err)
	}
	v.waitFor(t, nc, "trellis.billing.charge.created.v1")
	// A client without a key is refused.
	if nc, err := nats.Connect(a.url); err == nil {
		nc.Close()
		t.Fatal("an anonymous client connected")
	}
}

func TestAllows(t *testing.T) {
	p := []string{"trellis.billing.>", "$JS.API.INFO", "_INBOX.billing.>", "a.*.c"}
	for subject, want := range map[string]bool{
		"trellis.billing.charge.created.v1": true, "trellis.billing": false, "$JS.API.INFO": true,
		"$JS.API.INFO.x": false, "_INBOX.billing.abc.1": true, "_INBOX.scheduling.x": false, "a.b.c": true, "a.b.c.d": false,
	} {
		if got := natsauth.Allows(p, subject); got != want {
			t.Errorf("Allows(%s) = %v, want %v", subject, got, want)
		}
	}
}

// filterOf is a filter subject of the stream that no test publishes on.
func filterOf(stream string) string {
	if stream == natsauth.DeadLetterStream {
		return "trellis.deadletter.nobody"
	}
	return "trellis." + strings.ToLower(stream) + ".nothing.happened.v1"
}
