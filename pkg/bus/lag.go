package bus

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// LagCollector exports, at each scrape, how far every consumer of a service is behind its
// stream, as the JetStream server counts it: trellis_consumer_pending_messages (matching
// messages not yet delivered) and trellis_consumer_ack_pending_messages (delivered, not yet
// acknowledged: in a handler or waiting for a retry). The only label is the durable name, so
// no PHI and a fixed cardinality. A consumer whose info cannot be read (NATS down, consumer
// not created yet) is left out of that scrape; the readiness gauge and alert cover that case.
type LagCollector struct {
	js        jetstream.JetStream
	consumers []ConsumerConfig
	timeout   time.Duration
	pending   *prometheus.Desc
	ackPend   *prometheus.Desc
}

// NewLagCollector reports on the given consumers (their Stream and Name are used).
func NewLagCollector(js jetstream.JetStream, consumers ...*Consumer) *LagCollector {
	cfgs := make([]ConsumerConfig, 0, len(consumers))
	for _, c := range consumers {
		cfgs = append(cfgs, c.cfg)
	}
	return &LagCollector{
		js: js, consumers: cfgs, timeout: 2 * time.Second,
		pending: prometheus.NewDesc("trellis_consumer_pending_messages",
			"Messages on the consumer's subjects not yet delivered to it (consumer lag).", []string{"consumer"}, nil),
		ackPend: prometheus.NewDesc("trellis_consumer_ack_pending_messages",
			"Messages delivered to the consumer and not yet acknowledged (being handled or waiting for a retry).", []string{"consumer"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (l *LagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- l.pending
	ch <- l.ackPend
}

// Collect implements prometheus.Collector: one consumer-info request per consumer.
func (l *LagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	for _, c := range l.consumers {
		cons, err := l.js.Consumer(ctx, c.Stream, c.Name)
		if err != nil {
			continue
		}
		info, err := cons.Info(ctx)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(l.pending, prometheus.GaugeValue, float64(info.NumPending), c.Name)
		ch <- prometheus.MustNewConstMetric(l.ackPend, prometheus.GaugeValue, float64(info.NumAckPending), c.Name)
	}
}
