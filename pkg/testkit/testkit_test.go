package testkit_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/trellis-health/trellis/pkg/testkit"
)

func TestPoolIsAFreshDatabaseWithTheSchema(t *testing.T) {
	ctx := context.Background()
	p1, p2 := testkit.Pool(t, "intake"), testkit.Pool(t, "intake")
	var db1, db2, path, idle string
	if err := p1.QueryRow(ctx, "SELECT current_database(), current_setting('search_path'), current_setting('idle_in_transaction_session_timeout')").Scan(&db1, &path, &idle); err != nil {
		t.Fatal(err)
	}
	if err := p2.QueryRow(ctx, "SELECT current_database()").Scan(&db2); err != nil {
		t.Fatal(err)
	}
	if db1 == db2 || path != "intake" || idle != "15s" {
		t.Fatalf("databases %s %s, search_path %q, idle timeout %q", db1, db2, path, idle)
	}
	if _, err := p1.Exec(ctx, "CREATE TABLE t (id int)"); err != nil {
		t.Fatalf("schema not usable: %v", err)
	}
}

func TestNATSRestartKeepsPortAndStreams(t *testing.T) {
	ctx := context.Background()
	n := testkit.StartNATS(t)
	url := n.URL
	_, js := n.Connect(t)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "s.x", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	n.Restart(t)
	if n.URL != url {
		t.Fatalf("restarted on %s, was %s", n.URL, url)
	}
	// The client from before the restart reconnects by itself.
	testkit.Eventually(t, 10*time.Second, "stream back after restart", func() bool {
		s, err := js.Stream(ctx, "S")
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs == 1
	})
}
