package bus

import (
	"context"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// The trace of the unit of work that emitted an event continues through the outbox, the
// relay's PRODUCER span and the consumer's CONSUMER span, carried in lowercase traceparent.
// Not parallel: it installs the global tracer provider.
func TestTraceContextSurvivesOutboxRelayConsumer(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })

	f := newFixture(t, fixtureOpts{})
	ctx, root := tp.Tracer("test").Start(context.Background(), "POST /admit")
	must(t, f.store.InTx(ctx, func(ctx context.Context, tx *Tx) error {
		tx.Emit(event("traced"))
		return nil
	}))
	root.End()
	rootSC := root.SpanContext()

	if n := f.drain(f.relay(RelayConfig{})); n != 1 {
		t.Fatalf("published %d", n)
	}
	msgs := f.streamMsgs(testStream)
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	wire := msgs[0].Header
	if _, ok := wire["traceparent"]; !ok {
		t.Fatalf("no lowercase traceparent header on the wire: %v", wire)
	}
	for k := range wire {
		if k != HeaderMsgID && k != strings.ToLower(k) {
			t.Errorf("header %q is not lowercase", k)
		}
	}
	if tpHdr := wire.Get("traceparent"); !strings.Contains(tpHdr, rootSC.TraceID().String()) {
		t.Fatalf("traceparent %q does not carry the root trace %s", tpHdr, rootSC.TraceID())
	}

	const name = "test--traced"
	var mu sync.Mutex
	var handlerSC trace.SpanContext
	f.startConsumer(ConsumerConfig{Name: name}, effectHandler(name, func(d *Delivery, _ string) error { return nil }))
	// A second consumer that records the span context its handler ran under.
	f.startConsumer(ConsumerConfig{Name: name + "-ctx"}, func(ctx context.Context, tx *Tx, d *Delivery) error {
		mu.Lock()
		handlerSC = trace.SpanContextFromContext(ctx)
		mu.Unlock()
		return nil
	})
	eventually(t, "consumed", func() bool {
		return f.processed(name, "ok") == 1 && f.processed(name+"-ctx", "ok") == 1
	})

	var producer sdktrace.ReadOnlySpan
	consumers := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		switch s.SpanKind() {
		case trace.SpanKindProducer:
			producer = s
		case trace.SpanKindConsumer:
			consumers[attr(s, "messaging.consumer.group.name")] = s
		}
	}
	if producer == nil || len(consumers) != 2 {
		t.Fatalf("want 1 producer and 2 consumer spans; got producer=%v consumers=%d", producer != nil, len(consumers))
	}
	if producer.SpanContext().TraceID() != rootSC.TraceID() || producer.Parent().SpanID() != rootSC.SpanID() {
		t.Fatalf("producer span trace %s parent %s, want trace %s parent %s",
			producer.SpanContext().TraceID(), producer.Parent().SpanID(), rootSC.TraceID(), rootSC.SpanID())
	}
	if producer.Name() != "publish "+testSubject || attr(producer, "messaging.system") != "nats" {
		t.Fatalf("producer span %q attrs %v", producer.Name(), producer.Attributes())
	}
	c := consumers[name]
	if c.SpanContext().TraceID() != rootSC.TraceID() {
		t.Fatalf("consumer span trace %s, want %s", c.SpanContext().TraceID(), rootSC.TraceID())
	}
	if c.Parent().SpanID() != producer.SpanContext().SpanID() {
		t.Fatalf("consumer span parent %s, want the producer span %s", c.Parent().SpanID(), producer.SpanContext().SpanID())
	}
	d := decode(t, msgs[0].Data)
	for k, want := range map[string]string{
		"messaging.system":              "nats",
		"messaging.destination.name":    testSubject,
		"messaging.consumer.group.name": name,
		"messaging.message.id":          d.env.GetEventId(),
		"trellis.outcome":               "ok",
	} {
		if got := attr(c, k); got != want {
			t.Errorf("consumer span %s = %q, want %q", k, got, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if ctxSpan := consumers[name+"-ctx"].SpanContext(); handlerSC.TraceID() != rootSC.TraceID() || handlerSC.SpanID() != ctxSpan.SpanID() {
		t.Fatalf("handler ran under span %s/%s, want the consumer span %s/%s",
			handlerSC.TraceID(), handlerSC.SpanID(), ctxSpan.TraceID(), ctxSpan.SpanID())
	}
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if kv.Key == attribute.Key(key) {
			return kv.Value.String()
		}
	}
	return ""
}
