package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/services/notification/internal/app"
)

// DeadLetterConsumer is the durable name of the dead-letter watcher.
const DeadLetterConsumer = "notification--deadletters"

// DeadLetters watches the platform's dead-letter stream (trellis.deadletter.>, every service)
// and queues an operations alert per dead letter. It reads only the dead-letter headers
// (consumer, original subject, reason, ...), never the payload, which may hold PHI.
//
// It is not a bus.Consumer: those decode the message as an event envelope (a dead letter may
// be a message that never was one) and hand the handler no headers. It never dead-letters
// anything itself (a failure is retried), so it cannot feed its own input; a dead letter
// claiming to come from it is acknowledged and ignored all the same. The alert's dedupe key
// (the dead letter's Nats-Msg-Id) makes a redelivery harmless without an inbox row.
type DeadLetters struct {
	JS     jetstream.JetStream
	Store  *bus.Store
	T      *app.Triggers
	Log    *slog.Logger
	Queued func()
}

// Ensure creates or updates the durable consumer. It starts at new dead letters: when
// notification is first deployed, older ones (up to 30 days) are not alerted again.
func (w *DeadLetters) Ensure(ctx context.Context) (jetstream.Consumer, error) {
	return w.JS.CreateOrUpdateConsumer(ctx, bus.DeadLetterStream, jetstream.ConsumerConfig{
		Durable:        DeadLetterConsumer,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        30 * time.Second,
		MaxDeliver:     -1,
		DeliverPolicy:  jetstream.DeliverNewPolicy,
		FilterSubjects: []string{bus.DeadLetterSubject(">")},
	})
}

// Run fetches and handles dead letters until ctx ends (a platform worker).
func (w *DeadLetters) Run(ctx context.Context) error {
	backoff := bus.ExpBackoff(100*time.Millisecond, 5*time.Second)
	var failures uint64
	var cons jetstream.Consumer
	for ctx.Err() == nil {
		if cons == nil {
			var err error
			if cons, err = w.Ensure(ctx); err != nil {
				failures++
				w.Log.WarnContext(ctx, "dead-letter watcher not ready; retrying", "error", err, "attempt", failures)
				wait(ctx, backoff(failures))
				continue
			}
		}
		batch, err := cons.Fetch(16, jetstream.FetchMaxWait(time.Second))
		if err == nil {
			for msg := range batch.Messages() {
				w.handle(context.WithoutCancel(ctx), msg)
			}
			err = batch.Error()
		}
		if err == nil || errors.Is(err, nats.ErrTimeout) || ctx.Err() != nil {
			failures = 0
			continue
		}
		failures++
		w.Log.WarnContext(ctx, "dead-letter fetch failed; backing off", "error", err, "attempt", failures)
		cons = nil
		wait(ctx, backoff(failures))
	}
	return nil
}

func (w *DeadLetters) handle(ctx context.Context, msg jetstream.Msg) {
	h := msg.Headers()
	dl := app.DeadLetter{
		MsgID: h.Get(bus.HeaderMsgID), Consumer: h.Get(bus.HeaderDLConsumer),
		OriginalSubj: h.Get(bus.HeaderDLSubject), OriginalStream: h.Get(bus.HeaderDLStream),
		OriginalSeq: h.Get(bus.HeaderDLStreamSequence), Deliveries: h.Get(bus.HeaderDLDeliveries),
		Reason: h.Get(bus.HeaderDLReason),
	}
	var delivered uint64 = 1
	if md, err := msg.Metadata(); err == nil {
		dl.Sequence, delivered = md.Sequence.Stream, md.NumDelivered
	}
	if dl.Consumer == "" {
		dl.Consumer = strings.TrimPrefix(msg.Subject(), bus.DeadLetterSubject(""))
	}
	if dl.Consumer == DeadLetterConsumer {
		_ = msg.Ack()
		return
	}
	if c := h.Get(bus.HeaderClinicID); c != "" {
		if _, err := uuid.Parse(c); err == nil {
			dl.ClinicID = c
		}
	}
	err := w.Store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		return w.T.DeadLetterAlert(ctx, tx, dl)
	})
	if err != nil {
		delay := bus.ExpBackoff(time.Second, 5*time.Minute)(delivered)
		w.Log.WarnContext(ctx, "dead-letter alert failed; will retry", "dead_letter_seq", dl.Sequence,
			"retry_in", delay.String(), "error", err)
		_ = msg.NakWithDelay(delay)
		return
	}
	if w.Queued != nil {
		w.Queued()
	}
	if err := msg.Ack(); err != nil {
		w.Log.WarnContext(ctx, "dead-letter ack failed; the alert's dedupe key absorbs the redelivery", "error", fmt.Sprint(err))
	}
	w.Log.InfoContext(ctx, "dead letter alerted", "consumer", dl.Consumer, "original_subject", dl.OriginalSubj,
		"dead_letter_seq", strconv.FormatUint(dl.Sequence, 10))
}

func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
