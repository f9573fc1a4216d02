package app_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/testkit"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/smtp"
	"github.com/trellis-health/trellis/services/notification/internal/app"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
	"github.com/trellis-health/trellis/services/notification/internal/notifytest"
	"github.com/trellis-health/trellis/services/notification/internal/smtptest"
)

const clinic = "0190a000-0000-7000-8000-00000000000a"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type fixture struct {
	pool  *pgxpool.Pool
	repo  *postgres.Repository
	store *bus.Store
	app   *app.App
}

// setup migrates a fresh database. The store scopes every transaction to its context's
// clinics, as the service's does, over a pool without a session scope; f.pool, for the test's
// own checks, reads every clinic. The tests run the dispatcher in system scope (sys), as the
// service does.
func setup(t *testing.T) fixture {
	t.Helper()
	pool, system := notifytest.Pools(t)
	notifytest.Migrate(t, pool)
	store := notifytest.Store(pool)
	repo := postgres.New(store, fieldcrypt.Dev())
	return fixture{pool: system, repo: repo, store: store, app: app.New(repo, quiet)}
}

// sys is a context in system scope (every clinic).
func sys() context.Context { return auth.WithSystemScope(context.Background()) }

// welcome records a patient's admission and contact details and queues their welcome, as the
// consumers would; until both facts are in, the welcome is refused as not ready.
func (f fixture) welcome(t *testing.T, email string) string {
	t.Helper()
	ctx := sys()
	pid := bus.NewID()
	adm, err := domain.NewAdmission(pid, clinic, "America/Chicago", "2026-03-02", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	con, err := domain.NewContact(pid, clinic, "Sam", email, "", "America/Chicago", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, record := range []func(context.Context, *bus.Tx) error{
		func(context.Context, *bus.Tx) error { return nil },
		func(ctx context.Context, tx *bus.Tx) error { return f.app.RecordContact(ctx, tx, con) },
	} {
		err = f.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
			if err := record(ctx, tx); err != nil {
				return err
			}
			if err := f.app.QueueWelcome(ctx, tx, pid, clinic); !errors.Is(err, app.ErrRecipientNotReady) {
				t.Errorf("welcome before the admission: err = %v, want ErrRecipientNotReady", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err = f.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		if err := f.app.RecordAdmission(ctx, tx, adm); err != nil {
			return err
		}
		return f.app.QueueWelcome(ctx, tx, pid, clinic)
	})
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// The welcome waits for the contact details as well as the admission.
func TestQueueWelcomeWaitsForBothFacts(t *testing.T) {
	f := setup(t)
	ctx := sys()
	pid := bus.NewID()
	adm, err := domain.NewAdmission(pid, clinic, "America/Chicago", "2026-03-02", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	queue := func() error {
		return f.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error { return f.app.QueueWelcome(ctx, tx, pid, clinic) })
	}
	if err := f.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error { return f.app.RecordAdmission(ctx, tx, adm) }); err != nil {
		t.Fatal(err)
	}
	if err := queue(); !errors.Is(err, app.ErrRecipientNotReady) {
		t.Fatalf("welcome with the admission only: err = %v, want ErrRecipientNotReady", err)
	}
	if n := f.count(t, `SELECT count(*) FROM messages`); n != 0 {
		t.Fatalf("%d messages queued without contact details", n)
	}
	con, err := domain.NewContact(pid, clinic, "Sam", "sam@example.org", "", "America/Chicago", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error { return f.app.RecordContact(ctx, tx, con) }); err != nil {
		t.Fatal(err)
	}
	if err := queue(); err != nil {
		t.Fatalf("welcome with both facts: %v", err)
	}
	if n := f.count(t, `SELECT count(*) FROM messages`); n != 1 {
		t.Fatalf("%d messages queued, want 1", n)
	}
}

func (f fixture) count(t *testing.T, q string) int {
	t.Helper()
	var n int
	if err := f.pool.QueryRow(sys(), q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func sender(t *testing.T, addr string) *smtp.Sender {
	t.Helper()
	s, err := smtp.New(smtp.Config{Addr: addr, From: "Care Team <care@trellis.local>", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Two dispatchers (two replicas) share the work: every message is sent exactly once and
// recorded with one MessageSent in the outbox.
func TestDispatchersOnTwoReplicasSendEachMessageOnce(t *testing.T) {
	f := setup(t)
	sink := smtptest.Start(t, smtptest.Options{})
	const n = 30
	for range n {
		f.welcome(t, "someone@example.org")
	}
	ctx, cancel := context.WithCancel(sys())
	var wg sync.WaitGroup
	for range 2 {
		d := app.NewDispatcher(f.store, f.repo, sender(t, sink.Addr),
			app.DispatcherConfig{PollInterval: 20 * time.Millisecond, Batch: 4}, quiet)
		wg.Go(func() { _ = d.Run(ctx) })
	}
	testkit.Eventually(t, 20*time.Second, "all sent", func() bool {
		return f.count(t, `SELECT count(*) FROM messages WHERE status = 'sent'`) == n
	})
	cancel()
	wg.Wait()
	ids := map[string]int{}
	for _, m := range sink.Messages() {
		ids[m.Header.Get("Message-ID")]++
	}
	if len(sink.Messages()) != n || len(ids) != n {
		t.Errorf("%d emails with %d distinct Message-IDs, want %d each", len(sink.Messages()), len(ids), n)
	}
	if got := f.count(t, `SELECT count(*) FROM outbox WHERE subject = 'trellis.notification.message.sent.v1'`); got != n {
		t.Errorf("%d MessageSent in the outbox, want %d", got, n)
	}
	if got := f.count(t, `SELECT max(attempts) FROM messages`); got != 1 {
		t.Errorf("max attempts = %d, want 1", got)
	}
}

// acceptedButLost delivers the email, then reports a failure: what the dispatcher sees when the
// process dies after the SMTP server accepted a message and before 'sent' commits.
type acceptedButLost struct {
	app.Sender
	once sync.Once
}

func (a *acceptedButLost) Send(ctx context.Context, m app.OutgoingEmail) error {
	err := a.Sender.Send(ctx, m)
	lost := false
	a.once.Do(func() { lost = true })
	if err == nil && lost {
		return &app.SendError{Code: smtp.CodeUnavailable}
	}
	return err
}

// The at-least-once window: a resend carries the same Message-ID, so a sink can drop it.
func TestResendKeepsTheMessageID(t *testing.T) {
	f := setup(t)
	sink := smtptest.Start(t, smtptest.Options{})
	pid := f.welcome(t, "someone@example.org")
	d := app.NewDispatcher(f.store, f.repo, &acceptedButLost{Sender: sender(t, sink.Addr)},
		app.DispatcherConfig{Retry: domain.RetryPolicy{MaxAttempts: 3, Base: time.Millisecond, Max: time.Millisecond}}, quiet)
	ctx := sys()
	for i := 0; i < 2; i++ {
		time.Sleep(5 * time.Millisecond)
		if _, err := d.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	msgs := sink.Messages()
	if len(msgs) != 2 || msgs[0].Header.Get("Message-ID") != msgs[1].Header.Get("Message-ID") {
		t.Fatalf("want the email twice with one Message-ID, got %d", len(msgs))
	}
	list, err := f.repo.ListMessages(ctx, pid)
	if err != nil || len(list) != 1 || list[0].Status != domain.StatusSent || list[0].Attempts != 2 {
		t.Fatalf("messages = %+v, %v", list, err)
	}
}
