// Package testkit gives integration tests real infrastructure: a fresh Postgres database per
// test (dropped afterwards) and an embedded NATS server with JetStream on a random port.
package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/trellis-health/trellis/pkg/pg"
)

// DefaultAdminURL is the dev stack's administrative role (scripts/ensure-postgres.sh).
const DefaultAdminURL = "postgres://trellis:trellis@127.0.0.1:5432/trellis?sslmode=disable"

// AdminURL is TEST_DATABASE_URL, or DefaultAdminURL.
func AdminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultAdminURL
}

// Database creates a fresh database for t, dropped when t ends, and returns its URL (connected
// as the admin role). Sessions opened with the URL abort transactions left idle for 15s.
func Database(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := AdminURL()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("testkit: connect to Postgres at %s: %v (run scripts/ensure-postgres.sh)", redact(admin), err)
	}
	name := "test_" + randomHex(6)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		conn.Close(ctx)
		t.Fatalf("testkit: create database: %v", err)
	}
	conn.Close(ctx)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, _ := url.Parse(admin)
	u.Path = "/" + name
	if u.Query().Get("options") == "" {
		// A hung test must not hold a transaction open for long: Postgres' snapshot xmin is
		// cluster-wide, so it would stall the outbox relays of every other test on the server.
		// (Spaces as %20: pgx does not read "+" as a space.)
		opt := "options=" + strings.ReplaceAll(url.QueryEscape("-c idle_in_transaction_session_timeout=15000"), "+", "%20")
		if u.RawQuery != "" {
			opt = u.RawQuery + "&" + opt
		}
		u.RawQuery = opt
	}
	return u.String()
}

// Pool opens a pool on a fresh database with search_path set to schema (created if missing).
func Pool(t testing.TB, schema string) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	pool, err := pg.Open(ctx, Database(t), schema, 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema); err != nil {
		t.Fatal(err)
	}
	return pool
}

// NATS is an embedded NATS server with JetStream.
type NATS struct {
	Server *natsserver.Server
	URL    string
	dir    string
	port   int
}

// StartNATS starts an embedded JetStream server with file storage in a temp dir; it is shut
// down when t ends.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	n := &NATS{dir: t.TempDir(), port: -1}
	n.start(t)
	t.Cleanup(func() { n.Server.Shutdown(); n.Server.WaitForShutdown() })
	return n
}

func (n *NATS) start(t testing.TB) {
	t.Helper()
	opts := &natsserver.Options{Host: "127.0.0.1", Port: n.port, JetStream: true, StoreDir: n.dir, NoLog: true, NoSigs: true}
	s, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatalf("testkit: nats server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("testkit: nats server not ready")
	}
	n.Server, n.URL = s, s.ClientURL()
	if a, ok := s.Addr().(*net.TCPAddr); ok {
		n.port = a.Port // Restart comes back on the same port
	}
}

// Restart stops the server and starts it again on the same port and storage.
func (n *NATS) Restart(t testing.TB) {
	t.Helper()
	n.Server.Shutdown()
	n.Server.WaitForShutdown()
	n.start(t)
}

// Connect returns a client connection and JetStream context, closed when t ends.
func (n *NATS) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(n.URL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// Eventually polls cond every 20 ms until it returns true or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func redact(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparseable url)"
}
