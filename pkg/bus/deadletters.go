package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
)

// DeadLetter is one message in the DEADLETTER stream, described without its payload: the
// payload may hold patient data, so tools show only the envelope's metadata and the reason.
type DeadLetter struct {
	Seq        uint64    // sequence in the DEADLETTER stream: the handle to show or replay it
	Consumer   string    // the consumer that gave up on it
	Subject    string    // the original subject
	Stream     string    // the original stream
	StreamSeq  uint64    // sequence in the original stream
	Deliveries int       // attempts before it was dead-lettered
	Reason     string    // why (the handler's error, at most 512 bytes)
	At         time.Time // when it was dead-lettered
	EventID    string    // envelope event id ("" when the envelope could not be read)
	EventType  string
	ClinicID   string
	OccurredAt time.Time
	data       []byte
}

// ErrNoDeadLetter is returned for a sequence that holds no dead letter (never did, or it was
// replayed and removed).
var ErrNoDeadLetter = errors.New("bus: no such dead letter (already replayed?)")

func deadLetterFrom(m *jetstream.RawStreamMsg) DeadLetter {
	d := DeadLetter{Seq: m.Sequence, At: m.Time.UTC(), data: m.Data,
		Consumer: m.Header.Get(HeaderDLConsumer), Subject: m.Header.Get(HeaderDLSubject),
		Stream: m.Header.Get(HeaderDLStream), Reason: m.Header.Get(HeaderDLReason)}
	d.StreamSeq, _ = strconv.ParseUint(m.Header.Get(HeaderDLStreamSequence), 10, 64)
	d.Deliveries, _ = strconv.Atoi(m.Header.Get(HeaderDLDeliveries))
	env := &eventsv1.Envelope{}
	if proto.Unmarshal(m.Data, env) == nil {
		d.EventID, d.EventType, d.ClinicID = env.GetEventId(), env.GetEventType(), env.GetClinicId()
		if env.GetOccurredAt() != nil {
			d.OccurredAt = env.GetOccurredAt().AsTime()
		}
	}
	return d
}

// ListDeadLetters lists up to limit dead letters of consumer ("" for every consumer), oldest
// first, starting at sequence from (0: the beginning).
func ListDeadLetters(ctx context.Context, js jetstream.JetStream, consumer string, from uint64, limit int) ([]DeadLetter, error) {
	st, err := js.Stream(ctx, DeadLetterStream)
	if err != nil {
		return nil, fmt.Errorf("bus: dead-letter stream: %w", err)
	}
	subject := deadLetterPrefix + ">"
	if consumer != "" {
		subject = DeadLetterSubject(consumer)
	}
	var out []DeadLetter
	for seq := max(from, 1); len(out) < limit; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("bus: read dead letters: %w", err)
		}
		out = append(out, deadLetterFrom(m))
		seq = m.Sequence + 1
	}
	return out, nil
}

// GetDeadLetter reads one dead letter by its DEADLETTER sequence.
func GetDeadLetter(ctx context.Context, js jetstream.JetStream, seq uint64) (DeadLetter, error) {
	st, err := js.Stream(ctx, DeadLetterStream)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("bus: dead-letter stream: %w", err)
	}
	m, err := st.GetMsg(ctx, seq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return DeadLetter{}, ErrNoDeadLetter
	case err != nil:
		return DeadLetter{}, fmt.Errorf("bus: read dead letter %d: %w", seq, err)
	}
	return deadLetterFrom(m), nil
}

// ReplayOutcome says what a replay did.
type ReplayOutcome string

const (
	Replayed         ReplayOutcome = "replayed"  // the handler applied it now
	ReplayDuplicate  ReplayOutcome = "duplicate" // the consumer's inbox already had it: nothing applied
	ReplayUnreadable ReplayOutcome = "unreadable"
)

// Replay hands a dead letter to its consumer again (after the fix that makes it succeed), in
// this process: the same transaction as live delivery (inbox row + handler + outbox), so a
// replay applies an event at most once however often it is run. On success (replayed or
// duplicate) the dead letter is removed from the stream. A dead letter of another consumer, or
// one whose envelope cannot be read, is refused and kept; a handler error is returned and the
// dead letter is kept.
func (c *Consumer) Replay(ctx context.Context, js jetstream.JetStream, d DeadLetter) (ReplayOutcome, error) {
	if d.Consumer != c.cfg.Name {
		return "", fmt.Errorf("bus: dead letter %d belongs to consumer %q, not %q", d.Seq, d.Consumer, c.cfg.Name)
	}
	env := &eventsv1.Envelope{}
	if err := proto.Unmarshal(d.data, env); err != nil || env.GetEventId() == "" || env.GetPayload() == nil {
		return ReplayUnreadable, fmt.Errorf("bus: dead letter %d has no readable envelope; it cannot be replayed (delete it once understood)", d.Seq)
	}
	duplicate, err := c.apply(ctx, d.Subject, env, uint64(d.Deliveries)+1)
	if err != nil {
		return "", fmt.Errorf("bus: replay of dead letter %d failed (kept): %w", d.Seq, err)
	}
	if err := deleteDeadLetter(ctx, js, d.Seq); err != nil {
		// Applied (or a duplicate) but still listed: a later replay finds it in the inbox.
		return "", fmt.Errorf("bus: dead letter %d applied but not removed: %w", d.Seq, err)
	}
	c.metrics.EventsProcessed.WithLabelValues(c.cfg.Name, d.Subject, "replayed").Inc()
	if duplicate {
		return ReplayDuplicate, nil
	}
	return Replayed, nil
}

// deleteDeadLetter removes a dead letter; one already gone is not an error.
func deleteDeadLetter(ctx context.Context, js jetstream.JetStream, seq uint64) error {
	st, err := js.Stream(ctx, DeadLetterStream)
	if err != nil {
		return err
	}
	if err = st.DeleteMsg(ctx, seq); err == nil {
		return nil
	}
	// nats.go does not expose "sequence not found" as a typed error: look again.
	if _, gerr := st.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
		return nil
	}
	return err
}
