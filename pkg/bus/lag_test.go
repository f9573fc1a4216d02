package bus

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/trellis-health/trellis/pkg/telemetry"
	"github.com/trellis-health/trellis/pkg/testkit"
)

func TestLagCollectorReportsPendingAndAckPendingPerConsumer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := testkit.StartNATS(t)
	_, js := n.Connect(t)
	opts := StreamOptions{Storage: "memory"}
	if err := EnsureStreams(ctx, js, ContextStream("lag", opts)); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	c := NewConsumer(ConsumerConfig{Name: "lagtest--things", Stream: "LAG", Subjects: []string{"trellis.lag.>"}},
		nil, js, nil, log, telemetry.NewMetrics("lagtest"))
	missing := NewConsumer(ConsumerConfig{Name: "lagtest--never-created", Stream: "LAG", Subjects: []string{"trellis.lag.>"}},
		nil, js, nil, log, telemetry.NewMetrics("lagtest"))
	cons, err := c.Ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := js.Publish(ctx, "trellis.lag.thing.happened.v1", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewLagCollector(js, c, missing))
	want := func(pending, ackPending int) string {
		return fmt.Sprintf(`
# HELP trellis_consumer_ack_pending_messages Messages delivered to the consumer and not yet acknowledged (being handled or waiting for a retry).
# TYPE trellis_consumer_ack_pending_messages gauge
trellis_consumer_ack_pending_messages{consumer="lagtest--things"} %[2]d
# HELP trellis_consumer_pending_messages Messages on the consumer's subjects not yet delivered to it (consumer lag).
# TYPE trellis_consumer_pending_messages gauge
trellis_consumer_pending_messages{consumer="lagtest--things"} %[1]d
`, pending, ackPending)
	}
	// Nothing delivered yet: all three are lag; the consumer that does not exist is left out.
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want(3, 0))); err != nil {
		t.Fatal(err)
	}
	// One delivered and not acknowledged: two pending, one awaiting its ack.
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got int
	for range batch.Messages() {
		got++
	}
	if got != 1 {
		t.Fatalf("fetched %d messages, want 1", got)
	}
	// The server updates the consumer's counts just after the delivery: a loaded machine can
	// answer the first gather in between.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		err := testutil.GatherAndCompare(reg, strings.NewReader(want(2, 1)))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
}
