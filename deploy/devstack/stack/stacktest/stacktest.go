// Package stacktest brings the whole network (deploy/devstack/stack) up for a test: free ports,
// a fresh database, a temporary run directory, the children's logs shown when the test fails,
// and everything stopped and the database dropped when the test ends.
package stacktest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trellis-health/trellis/deploy/devstack/stack"
	"github.com/trellis-health/trellis/pkg/testkit"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
)

// Options tune Start. Zero values: database prefix "stack", log level "info", logs kept in a
// buffer printed when the test fails.
type Options struct {
	Prefix   string // of the test database's name
	LogLevel string
	// Logs receives the children's logs instead of the buffer; it is printed when the test
	// fails if it is a fmt.Stringer.
	Logs io.Writer
}

// Start brings the network up and returns it; the test fails if it cannot.
func Start(ctx context.Context, t testing.TB, o Options) *stack.Stack {
	t.Helper()
	root, err := stack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "bin", "mailpit")); err != nil {
		t.Fatal("bin/mailpit is missing: run `make mailpit` (make test does)")
	}
	if o.Prefix == "" {
		o.Prefix = "stack"
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	if o.Logs == nil {
		// Printed only when the test fails: children may still write after the test ends,
		// when t.Log would panic.
		o.Logs = &servicetest.LogBuffer{}
	}
	ports := map[string]int{}
	for name := range stack.DefaultPorts {
		ports[name] = 0
	}
	db := fmt.Sprintf("%s_%d", o.Prefix, time.Now().UnixNano())
	s, err := stack.Up(ctx, stack.Options{
		RepoRoot: root, RunDir: t.TempDir(), AdminURL: testkit.AdminURL(), Database: db,
		Ports: ports, DevKey: o.Prefix + "-dev-signing-key-0123", Logs: o.Logs, LogLevel: o.LogLevel,
	})
	if err != nil {
		printLogs(t, o.Logs)
		t.Fatalf("stack up: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			printLogs(t, o.Logs)
		}
		s.Close()
		_ = stack.DropDatabase(context.Background(), testkit.AdminURL(), db)
	})
	return s
}

func printLogs(t testing.TB, logs io.Writer) {
	if s, ok := logs.(fmt.Stringer); ok {
		t.Logf("service logs:\n%s", s)
	}
}
