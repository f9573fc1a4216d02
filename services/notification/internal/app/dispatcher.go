package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/telemetry"
	notificationv1 "github.com/trellis-health/trellis/proto/gen/trellis/notification/v1"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
)

// SubjectMessageSent is where MessageSent events go.
const SubjectMessageSent = "trellis.notification.message.sent.v1"

// OutgoingEmail is one email for a Sender. MessageID is the message's id: senders put it in
// the Message-ID header so that a resend after a crash can be recognised downstream.
type OutgoingEmail struct {
	MessageID string
	To        string
	Email     domain.Email
}

// Sender delivers email (adapters/smtp).
type Sender interface {
	Send(ctx context.Context, m OutgoingEmail) error
}

// SendError is a classified send failure. Code is a short error class (e.g.
// "smtp_unavailable"), safe to log and store; the underlying error may quote the address and
// is never logged.
type SendError struct {
	Code      string
	Permanent bool
	Err       error
}

func (e *SendError) Error() string { return "send failed: " + e.Code }
func (e *SendError) Unwrap() error { return e.Err }

// Error classes decided by the dispatcher itself.
const (
	CodeNoRecipient    = "no_recipient"
	CodeInvalidAddress = "invalid_address"
	CodeRender         = "render_error"
	CodeSendError      = "send_error"
)

// DispatcherConfig tunes the dispatcher.
type DispatcherConfig struct {
	PollInterval time.Duration // how often to look for due messages, default 1s
	Batch        int           // messages claimed per round, default 10
	// Lease is how long a claimed message is hidden from other dispatchers; it must exceed
	// the longest send (the sender's timeout). Default 2m.
	Lease time.Duration
	Retry domain.RetryPolicy
}

// Dispatcher sends queued messages. Several may run (one per replica): each claims its own
// messages with FOR UPDATE SKIP LOCKED.
type Dispatcher struct {
	store  *bus.Store
	repo   Repository
	sender Sender
	cfg    DispatcherConfig
	log    *slog.Logger
	tracer trace.Tracer
	wake   chan struct{}
}

// Wake makes a waiting dispatcher look for due messages now instead of at its next poll
// (non-blocking; call it after committing a queued message).
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// NewDispatcher returns a dispatcher; run it with Run.
func NewDispatcher(store *bus.Store, repo Repository, sender Sender, cfg DispatcherConfig, log *slog.Logger) *Dispatcher {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 10
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 2 * time.Minute
	}
	if cfg.Retry.MaxAttempts <= 0 {
		cfg.Retry.MaxAttempts = 8
	}
	if cfg.Retry.Base <= 0 {
		cfg.Retry.Base = 30 * time.Second
	}
	if cfg.Retry.Max < cfg.Retry.Base {
		cfg.Retry.Max = max(time.Hour, cfg.Retry.Base)
	}
	return &Dispatcher{store: store, repo: repo, sender: sender, cfg: cfg, log: log.With("worker", "dispatcher"),
		tracer: telemetry.Tracer("trellis/notification"), wake: make(chan struct{}, 1)}
}

// Run dispatches until ctx ends, then returns nil. The message in hand is finished first.
func (d *Dispatcher) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		n, err := d.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			d.log.WarnContext(ctx, "dispatch round failed", "error", err)
		}
		if n == d.cfg.Batch && err == nil {
			continue // more may be due
		}
		t := time.NewTimer(d.cfg.PollInterval)
		select {
		case <-ctx.Done():
		case <-d.wake:
		case <-t.C:
		}
		t.Stop()
	}
	return nil
}

// RunOnce claims one batch of due messages and attempts each; it returns how many it claimed.
func (d *Dispatcher) RunOnce(ctx context.Context) (int, error) {
	claims, err := d.repo.ClaimDue(ctx, d.cfg.Batch, d.cfg.Lease)
	if err != nil {
		return 0, err
	}
	for _, c := range claims {
		// Finish a claimed message even when shutdown starts: its send is bounded by the
		// sender's timeout, and an unfinished claim would wait out its lease.
		d.deliver(context.WithoutCancel(ctx), c)
	}
	return len(claims), nil
}

// deliver makes one attempt at a claimed message.
//
// Delivery is at least once, not exactly once: if the process dies after the SMTP server
// accepted the message but before the 'sent' status commits, the claim's lease runs out and
// the message is sent again. The window is small (one local commit), and every attempt
// carries the same Message-ID header (the message id), so a mail sink or provider can drop
// the repeat.
func (d *Dispatcher) deliver(ctx context.Context, c Claim) {
	parent := telemetry.Propagator.Extract(ctx, telemetry.HeaderCarrier{"traceparent": {c.Traceparent}})
	ctx, span := d.tracer.Start(parent, "smtp send", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("trellis.message.id", c.ID),
			attribute.String("trellis.message.kind", c.Kind),
			attribute.String("trellis.message.channel", c.Channel),
			attribute.Int("trellis.message.attempt", c.Attempt),
		))
	err := d.send(ctx, c)
	if err != nil {
		var se *SendError
		if !errors.As(err, &se) {
			se = &SendError{Code: CodeSendError, Err: err}
		}
		span.SetAttributes(attribute.String("error.type", se.Code))
		span.SetStatus(codes.Error, se.Code)
		span.End()
		d.recordFailure(ctx, c, se)
		return
	}
	span.End()
	// The status change and MessageSent commit together; the event continues the trace.
	ctx = bus.WithCause(ctx, c.CorrelationID, c.CauseEventID)
	var marked bool
	err = d.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		var err error
		if marked, err = d.repo.MarkSent(ctx, tx, c.ID); err != nil || !marked {
			return err
		}
		tx.Emit(bus.Event{Subject: SubjectMessageSent, ClinicID: c.ClinicID, Payload: &notificationv1.MessageSent{
			MessageId: c.ID, PatientId: c.PatientID, ClinicId: c.ClinicID, Kind: c.Kind, Channel: c.Channel,
		}})
		return nil
	})
	switch {
	case err != nil:
		// The lease runs out and the message is sent again (same Message-ID).
		d.log.ErrorContext(ctx, "message sent but not recorded; it will be resent", "message_id", c.ID, "error", err)
	case !marked:
		d.log.InfoContext(ctx, "message was already recorded as sent", "message_id", c.ID)
	default:
		d.log.InfoContext(ctx, "message sent", "message_id", c.ID, "kind", c.Kind, "attempt", c.Attempt)
	}
}

// send renders the message and hands it to the sender.
func (d *Dispatcher) send(ctx context.Context, c Claim) error {
	if c.Recipient == nil {
		return &SendError{Code: CodeNoRecipient, Permanent: true}
	}
	if c.Recipient.Email == "" {
		return &SendError{Code: CodeInvalidAddress, Permanent: true}
	}
	var email domain.Email
	switch c.Kind {
	case domain.KindWelcome:
		var err error
		if email, err = domain.RenderWelcome(*c.Recipient); err != nil {
			return &SendError{Code: CodeRender, Permanent: true, Err: err}
		}
	default:
		return &SendError{Code: CodeRender, Permanent: true, Err: errors.New("unknown message kind")}
	}
	return d.sender.Send(ctx, OutgoingEmail{MessageID: c.ID, To: c.Recipient.Email, Email: email})
}

func (d *Dispatcher) recordFailure(ctx context.Context, c Claim, se *SendError) {
	delay, giveUp := d.cfg.Retry.AfterFailure(c.Attempt, se.Permanent)
	if err := d.repo.RecordFailure(ctx, c.ID, c.Attempt, se.Code, delay, giveUp); err != nil {
		d.log.ErrorContext(ctx, "could not record failed send; the lease will expire and it is retried",
			"message_id", c.ID, "error", err)
		return
	}
	// The error class only: the underlying error may quote the address.
	if giveUp {
		d.log.ErrorContext(ctx, "message failed; giving up", "message_id", c.ID, "kind", c.Kind,
			"attempt", c.Attempt, "error_code", se.Code, "permanent", se.Permanent)
		return
	}
	d.log.WarnContext(ctx, "message send failed; will retry", "message_id", c.ID, "kind", c.Kind,
		"attempt", c.Attempt, "error_code", se.Code, "retry_in", delay.String())
}
