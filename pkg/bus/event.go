// Package bus moves domain events between services: a transactional outbox and its relay on
// the producing side; an inbox, a consumer runner and a dead-letter path on the consuming side;
// and the provisioning of JetStream streams and consumers.
package bus

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
)

// Header names written on every message. Lowercase on write; read case-insensitively.
const (
	HeaderMsgID         = "Nats-Msg-Id" // JetStream's own header, spelled as the server expects
	HeaderEventType     = "event-type"
	HeaderCorrelationID = "correlation-id"
	HeaderCausationID   = "causation-id"
	HeaderOccurredAt    = "occurred-at"
	HeaderClinicID      = "clinic-id"
	HeaderContentType   = "content-type"
	ContentTypeProto    = "application/protobuf"

	// Dead-letter headers, added to the copy of a message that could not be processed.
	HeaderDLReason         = "dead-letter-reason"
	HeaderDLConsumer       = "dead-letter-consumer"
	HeaderDLSubject        = "dead-letter-original-subject"
	HeaderDLStream         = "dead-letter-original-stream"
	HeaderDLStreamSequence = "dead-letter-original-sequence"
	HeaderDLDeliveries     = "dead-letter-deliveries"
)

// Event is a domain event to publish. Subject follows trellis.<context>.<aggregate>.<event>.v<N>
// and must never contain PHI; ids and facts go in Payload.
type Event struct {
	Subject  string
	ClinicID string
	Payload  proto.Message
}

// Validate checks the subject shape and payload presence.
func (e Event) Validate() error {
	parts := strings.Split(e.Subject, ".")
	if len(parts) != 5 || parts[0] != "trellis" || !strings.HasPrefix(parts[4], "v") {
		return fmt.Errorf("bus: subject %q is not trellis.<context>.<aggregate>.<event>.v<N>", e.Subject)
	}
	if e.Payload == nil {
		return fmt.Errorf("bus: event %s has no payload", e.Subject)
	}
	return nil
}

type causeKey struct{}

type cause struct{ correlationID, causationID string }

// WithCause records, for events emitted under ctx, the correlation id shared by the whole flow
// and the id of what directly caused them (a request id or the event being handled).
func WithCause(ctx context.Context, correlationID, causationID string) context.Context {
	return context.WithValue(ctx, causeKey{}, cause{correlationID, causationID})
}

// CauseFrom returns the correlation and causation ids recorded in ctx, if any.
func CauseFrom(ctx context.Context) (correlationID, causationID string) {
	c, _ := ctx.Value(causeKey{}).(cause)
	return c.correlationID, c.causationID
}

// NewID returns a new UUIDv7 string (time-ordered, so indexes stay compact).
func NewID() string { return uuid.Must(uuid.NewV7()).String() }
