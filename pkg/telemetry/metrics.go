package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the platform's Prometheus collectors. Labels are low-cardinality by design:
// subjects, consumer names, procedures and outcomes, never ids or PHI.
type Metrics struct {
	Registry *prometheus.Registry

	EventsPublished    *prometheus.CounterVec   // subject, outcome (ok|error)
	EventsProcessed    *prometheus.CounterVec   // consumer, subject, outcome (ok|duplicate|retry|dead_letter)
	ProcessingSeconds  *prometheus.HistogramVec // consumer, subject
	OutboxBacklog      prometheus.Gauge
	OutboxOldestAge    prometheus.Gauge
	DeadLetters        *prometheus.CounterVec   // consumer
	RPCRequests        *prometheus.CounterVec   // procedure, code
	RPCDurationSeconds *prometheus.HistogramVec // procedure
}

// NewMetrics creates a registry (with Go and process collectors) and registers the platform
// collectors on it, each carrying a constant service label.
func NewMetrics(service string) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := prometheus.WrapRegistererWith(prometheus.Labels{"service": service}, reg)
	m := &Metrics{
		Registry: reg,
		EventsPublished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_events_published_total", Help: "Events published from the outbox to JetStream.",
		}, []string{"subject", "outcome"}),
		EventsProcessed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_events_processed_total", Help: "Events handled by consumers, by outcome.",
		}, []string{"consumer", "subject", "outcome"}),
		ProcessingSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "trellis_event_processing_seconds", Help: "Time to handle one event, including its transaction.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"consumer", "subject"}),
		OutboxBacklog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trellis_outbox_backlog", Help: "Outbox rows not yet published.",
		}),
		OutboxOldestAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trellis_outbox_oldest_age_seconds", Help: "Age of the oldest unpublished outbox row.",
		}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_dead_letters_total", Help: "Messages moved to the dead-letter stream.",
		}, []string{"consumer"}),
		RPCRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_rpc_requests_total", Help: "RPC requests by procedure and result code.",
		}, []string{"procedure", "code"}),
		RPCDurationSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "trellis_rpc_duration_seconds", Help: "RPC latency.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"procedure"}),
	}
	f.MustRegister(m.EventsPublished, m.EventsProcessed, m.ProcessingSeconds, m.OutboxBacklog,
		m.OutboxOldestAge, m.DeadLetters, m.RPCRequests, m.RPCDurationSeconds)
	return m
}
