package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/trellis-health/trellis/pkg/telemetry"
)

func TestHeaderCarrierGetIgnoresCase(t *testing.T) {
	c := telemetry.HeaderCarrier{
		"Traceparent":  {"00-aa-bb-01"},
		"TRACESTATE":   {"k=v"},
		"event-type":   {"x"},
		"Empty-Header": {},
	}
	for key, want := range map[string]string{
		"traceparent": "00-aa-bb-01", "TraceParent": "00-aa-bb-01", "tracestate": "k=v",
		"Event-Type": "x", "empty-header": "", "missing": "",
	} {
		if got := c.Get(key); got != want {
			t.Errorf("Get(%q) = %q, want %q", key, got, want)
		}
	}
	// The exact lowercase key is preferred when several spellings exist.
	c["traceparent"] = []string{"lower"}
	if got := c.Get("TRACEPARENT"); got != "lower" {
		t.Errorf("Get prefers %q, want the lowercase key's value", got)
	}
}

func TestHeaderCarrierSetWritesLowercaseAndReplaces(t *testing.T) {
	c := telemetry.HeaderCarrier{"Traceparent": {"old"}, "TRACEPARENT": {"older"}, "Nats-Msg-Id": {"id"}}
	c.Set("TraceParent", "new")
	if len(c["traceparent"]) != 1 || c["traceparent"][0] != "new" {
		t.Fatalf("Set stored %v", c)
	}
	keys := c.Keys()
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"Nats-Msg-Id", "traceparent"}) {
		t.Fatalf("keys %v: other spellings must be replaced, unrelated headers kept", keys)
	}
}

func TestHeaderCarrierRoundTripsW3CTraceContext(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(context.Background(), "root")
	defer span.End()
	c := telemetry.HeaderCarrier{}
	telemetry.Propagator.Inject(ctx, c)
	if _, ok := c["traceparent"]; !ok {
		t.Fatalf("injected %v, want a lowercase traceparent", c)
	}
	// A peer that capitalised the header (HTTP style) is still understood.
	upper := telemetry.HeaderCarrier{"Traceparent": c["traceparent"]}
	sc := spanContextOf(telemetry.Propagator.Extract(context.Background(), upper))
	if sc != span.SpanContext().TraceID().String() {
		t.Fatalf("extracted trace %q, want %s", sc, span.SpanContext().TraceID())
	}
}

func TestLoggerAddsTraceIDs(t *testing.T) {
	var buf bytes.Buffer
	log := telemetry.NewLogger(&buf, "intake", "debug")
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(context.Background(), "op")
	log.With("k", "v").InfoContext(ctx, "hello")
	log.Debug("no span")
	span.End()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines %q", lines)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["trace_id"] != span.SpanContext().TraceID().String() || rec["span_id"] != span.SpanContext().SpanID().String() ||
		rec["service"] != "intake" || rec["k"] != "v" {
		t.Fatalf("record %v", rec)
	}
	if strings.Contains(lines[1], "trace_id") {
		t.Fatalf("record without span has a trace id: %s", lines[1])
	}
	var quiet bytes.Buffer
	telemetry.NewLogger(&quiet, "x", "warn").Info("dropped")
	if quiet.Len() != 0 {
		t.Fatalf("info logged at warn level: %s", quiet.String())
	}
}

func TestMetricsCarryServiceLabel(t *testing.T) {
	m := telemetry.NewMetrics("billing")
	m.DeadLetters.WithLabelValues("billing--x").Inc()
	m.RPCRequests.WithLabelValues("/p.S/M", "ok").Inc()
	want := `
# HELP trellis_dead_letters_total Messages moved to the dead-letter stream.
# TYPE trellis_dead_letters_total counter
trellis_dead_letters_total{consumer="billing--x",service="billing"} 1
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "trellis_dead_letters_total"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(m.Registry, "trellis_rpc_requests_total", "go_goroutines"); err != nil || n != 2 {
		t.Fatalf("count %d err %v", n, err)
	}
}

func TestSetupTracingWithoutEndpoint(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	shutdown, err := telemetry.SetupTracing(context.Background(), "intake")
	if err != nil {
		t.Fatal(err)
	}
	_, span := telemetry.Tracer("t").Start(context.Background(), "x")
	if !span.SpanContext().IsValid() {
		t.Fatal("spans must be recorded (valid ids) even without an exporter")
	}
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func spanContextOf(ctx context.Context) string {
	return trace.SpanContextFromContext(ctx).TraceID().String()
}
