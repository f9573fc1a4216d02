// Package telemetry sets up tracing (OpenTelemetry), metrics (Prometheus) and logging (slog)
// the same way in every service.
package telemetry

import (
	"context"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// Propagator is the W3C trace-context propagator used on every hop (HTTP, outbox, NATS).
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// SetupTracing installs the global tracer provider for service. Spans are exported over
// OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set;
// otherwise they are recorded (so trace ids exist for logs and propagation) but not exported.
// The returned function flushes and stops the provider.
func SetupTracing(ctx context.Context, service string) (shutdown func(context.Context) error, err error) {
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(resource.NewSchemaless(
			semconv.ServiceName(service),
			semconv.ServiceNamespace("trellis"),
		)),
	}
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(Propagator)
	return tp.Shutdown, nil
}

// Tracer returns the named tracer from the global provider.
func Tracer(name string) trace.Tracer { return otel.Tracer(name) }

// HeaderCarrier adapts a map of header values (NATS headers, the outbox's stored headers) to
// the propagation API: keys are written lowercase and read case-insensitively, because
// NATS headers are case-sensitive while HTTP-born peers may capitalise them.
type HeaderCarrier map[string][]string

// Get returns the first value for key, ignoring case.
func (c HeaderCarrier) Get(key string) string {
	if v, ok := c[strings.ToLower(key)]; ok && len(v) > 0 {
		return v[0]
	}
	for k, v := range c {
		if strings.EqualFold(k, key) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// Set stores value under the lowercase key, replacing any spelling of it.
func (c HeaderCarrier) Set(key, value string) {
	for k := range c {
		if strings.EqualFold(k, key) {
			delete(c, k)
		}
	}
	c[strings.ToLower(key)] = []string{value}
}

// Keys lists the header names.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
