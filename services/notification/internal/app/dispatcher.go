package app

import (
	"context"
	"errors"
	"log/slog"
	"maps"
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
	CodeNoRecipient    = domain.ReasonNoRecipient
	CodeInvalidAddress = domain.ReasonNoAddress
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

	// Renderer renders every message. nil: only the welcome email can be rendered (with
	// domain.RenderWelcome); other messages fail as render_error.
	Renderer Renderer
	// SMS sends texts; nil: texting is disabled and patients get email.
	SMS SMSSender
	// TextLimits caps texts per patient (zero: domain.DefaultTextLimits).
	TextLimits domain.TextLimits
	// StaffEmail is the network's address for staff alerts of a clinic without a team
	// address, and for operations alerts ("" none: such alerts fail as no_staff_address).
	StaffEmail string
	// Now is the clock (default time.Now); quiet hours and texting days are decided with it.
	Now func() time.Time
}

// Dispatcher sends queued messages. Several may run (one per replica): each claims its own
// messages with FOR UPDATE SKIP LOCKED. For each message it decides (domain.Decide) whether
// to send it now and how, defer it past quiet hours, skip, cancel or fail it; it renders and
// sends, and records the outcome with its event in one transaction.
type Dispatcher struct {
	store  *bus.Store
	repo   DeliveryRepository
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
func NewDispatcher(store *bus.Store, repo DeliveryRepository, sender Sender, cfg DispatcherConfig, log *slog.Logger) *Dispatcher {
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
	if cfg.TextLimits == (domain.TextLimits{}) {
		cfg.TextLimits = domain.DefaultTextLimits
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
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

// deliver decides what to do with a claimed message and does it.
//
// Delivery is at least once, not exactly once: if the process dies after the SMTP server (or
// SMS provider) accepted the message but before the 'sent' status commits, the claim's lease
// runs out and the message is sent again. The window is small (one local commit), and every
// email attempt carries the same Message-ID header (the message id), so a mail sink can drop
// the repeat.
func (d *Dispatcher) deliver(ctx context.Context, c Claim) {
	if c.Audience != domain.AudienceStaff && c.Recipient != nil && d.cfg.SMS != nil {
		// A text may be decided: the patient's texting history must not change under us.
		unlock, err := d.repo.LockPatientTexts(ctx, c.PatientID)
		if err != nil {
			d.recordFailure(ctx, c, "", &SendError{Code: CodeSendError, Err: err})
			return
		}
		defer unlock()
	}
	dec, err := d.decide(ctx, c)
	if err != nil {
		// Reading the texting history failed: retry after the usual backoff.
		d.recordFailure(ctx, c, "", &SendError{Code: CodeSendError, Err: err})
		return
	}
	switch dec.Action {
	case domain.ActionDefer:
		if err := d.repo.Defer(ctx, c.ID, c.Attempt, dec.Until); err != nil {
			d.log.ErrorContext(ctx, "could not defer message; the lease will expire", "message_id", c.ID, "error", err)
			return
		}
		d.log.InfoContext(ctx, "message deferred past quiet hours", "message_id", c.ID, "kind", c.Kind,
			"until", dec.Until.UTC().Format(time.RFC3339))
		return
	case domain.ActionSkip:
		d.settle(ctx, c, domain.StatusSkipped, dec.Reason, "")
		return
	case domain.ActionCancel:
		d.settle(ctx, c, domain.StatusCancelled, dec.Reason, "")
		return
	case domain.ActionFail:
		d.settle(ctx, c, domain.StatusFailed, dec.Reason, c.Channel)
		return
	}

	parent := telemetry.Propagator.Extract(ctx, telemetry.HeaderCarrier{"traceparent": {c.Traceparent}})
	spanName := "smtp send"
	if dec.Channel == domain.ChannelSMS {
		spanName = "sms send"
	}
	ctx, span := d.tracer.Start(parent, spanName, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("trellis.message.id", c.ID),
			attribute.String("trellis.message.kind", c.Kind),
			attribute.String("trellis.message.channel", dec.Channel),
			attribute.Int("trellis.message.attempt", c.Attempt),
		))
	rec, err := d.send(ctx, c, dec)
	if err != nil {
		var se *SendError
		if !errors.As(err, &se) {
			se = &SendError{Code: CodeSendError, Err: err}
		}
		span.SetAttributes(attribute.String("error.type", se.Code))
		span.SetStatus(codes.Error, se.Code)
		span.End()
		d.recordFailure(ctx, c, dec.Channel, se)
		return
	}
	span.End()
	// The status change and MessageSent commit together; the event continues the trace.
	ctx = bus.WithCause(ctx, c.CorrelationID, c.CauseEventID)
	var marked bool
	err = d.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		var err error
		if marked, err = d.repo.MarkSentVia(ctx, tx, c.ID, rec); err != nil || !marked {
			return err
		}
		tx.Emit(bus.Event{Subject: SubjectMessageSent, ClinicID: c.ClinicID, Payload: &notificationv1.MessageSent{
			MessageId: c.ID, PatientId: c.PatientID, ClinicId: c.ClinicID, Kind: c.Kind, Channel: rec.Channel,
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
		d.log.InfoContext(ctx, "message sent", "message_id", c.ID, "kind", c.Kind, "channel", rec.Channel,
			"attempt", c.Attempt, "template_version", rec.TemplateVersion, "locale", rec.Locale)
	}
}

// decide gathers the message's delivery facts and applies domain.Decide. The texting history
// and opt-outs are read now rather than at claim time, so that a text sent earlier in the
// same batch, or a STOP received since, counts.
func (d *Dispatcher) decide(ctx context.Context, c Claim) (domain.Decision, error) {
	dc := c.Delivery
	in := domain.DeliveryInput{
		Audience: c.Audience, Team: c.Team, Hint: c.Channel, ExpiresAt: c.ExpiresAt,
		Recipient: c.Recipient, Preferences: dc.Preferences, SMSEnabled: d.cfg.SMS != nil,
		ClinicPhone: dc.Settings.ContactPhone, Limits: d.cfg.TextLimits,
		CareTeamEmail: dc.Settings.CareTeamEmail, BillingEmail: dc.Settings.BillingEmail, DefaultStaffEmail: d.cfg.StaffEmail,
	}
	if in.Audience == "" {
		in.Audience = domain.AudiencePatient
	}
	if in.Audience == domain.AudiencePatient && c.Recipient != nil && in.SMSEnabled {
		phones := []string{c.Recipient.Phone}
		if dc.Preferences != nil && dc.Preferences.ConfidentialPhone != "" {
			phones = append(phones, dc.Preferences.ConfidentialPhone)
		}
		sent, optedOut, err := d.repo.TextHistory(ctx, c.PatientID, phones, d.cfg.Now().Add(-domain.TextWindow))
		if err != nil {
			return domain.Decision{}, err
		}
		in.TextsSent = sent
		in.OptedOut = func(phone string) bool {
			for _, p := range optedOut {
				if p == phone {
					return true
				}
			}
			return false
		}
	}
	return domain.Decide(in, d.cfg.Now()), nil
}

// send renders the message for the decided channel and hands it to that channel's sender.
func (d *Dispatcher) send(ctx context.Context, c Claim, dec domain.Decision) (SentRecord, error) {
	rec := SentRecord{Channel: dec.Channel, To: dec.To, Locale: domain.DefaultLanguage, At: d.cfg.Now()}
	if p := c.Delivery.Preferences; p != nil && p.Language != "" && c.Audience != domain.AudienceStaff {
		rec.Locale = p.Language
	}
	rendered, version, err := d.render(ctx, c, dec.Channel, rec.Locale)
	if err != nil {
		return rec, err
	}
	rec.TemplateVersion = version
	switch dec.Channel {
	case domain.ChannelSMS:
		text, ok := domain.FinishSMS(rendered.Body, c.Delivery.Settings.ContactPhone)
		if !ok {
			return rec, &SendError{Code: domain.ReasonSMSTooLong, Permanent: true}
		}
		rec.ProviderID, err = d.cfg.SMS.SendSMS(ctx, OutgoingSMS{MessageID: c.ID, To: dec.To, Body: text})
		return rec, err
	default:
		return rec, d.sender.Send(ctx, OutgoingEmail{MessageID: c.ID, To: dec.To,
			Email: domain.Email(rendered)})
	}
}

// render renders the message with the Renderer, or, without one, the welcome email with the
// built-in template. A render error is retried unless it wraps ErrNoTemplate.
func (d *Dispatcher) render(ctx context.Context, c Claim, channel, locale string) (domain.Rendered, int, error) {
	if d.cfg.Renderer == nil {
		if c.Kind != domain.KindWelcome || channel != domain.ChannelEmail || c.Recipient == nil {
			return domain.Rendered{}, 0, &SendError{Code: CodeRender, Permanent: true, Err: ErrNoTemplate}
		}
		email, err := domain.RenderWelcome(*c.Recipient)
		if err != nil {
			return domain.Rendered{}, 0, &SendError{Code: CodeRender, Permanent: true, Err: err}
		}
		return domain.Rendered(email), 0, nil
	}
	in := domain.RenderInput{ClinicID: c.ClinicID, Kind: c.Kind, Channel: channel, Locale: locale,
		ClinicPhone: c.Delivery.Settings.ContactPhone, Payload: maps.Clone(c.Payload)}
	if in.Payload == nil {
		in.Payload = map[string]string{}
	}
	if c.Recipient != nil && c.Audience != domain.AudienceStaff {
		in.Name = domain.CleanName(c.Recipient.PreferredName)
		if _, ok := in.Payload["first_visit_date"]; !ok && c.Kind == domain.KindWelcome && !c.Recipient.StartDate.IsZero() {
			if loc, err := time.LoadLocation(c.Recipient.TimeZone); err == nil {
				in.Payload["first_visit_date"] = domain.FormatVisitDate(c.Recipient.StartDate, loc)
			}
		}
	}
	r, v, err := d.cfg.Renderer.Render(ctx, in)
	if err != nil {
		return r, v, &SendError{Code: CodeRender, Permanent: errors.Is(err, ErrNoTemplate), Err: err}
	}
	return r, v, nil
}

// settle ends a message without sending it; a failure also publishes MessageFailed.
func (d *Dispatcher) settle(ctx context.Context, c Claim, status, reason, channel string) {
	ctx = bus.WithCause(ctx, c.CorrelationID, c.CauseEventID)
	var done bool
	err := d.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		var err error
		if done, err = d.repo.Settle(ctx, tx, c.ID, c.Attempt, status, reason); err != nil || !done {
			return err
		}
		if status == domain.StatusFailed {
			if channel == "" {
				channel = c.Channel
			}
			tx.Emit(bus.Event{Subject: SubjectMessageFailed, ClinicID: c.ClinicID, Payload: &notificationv1.MessageFailed{
				MessageId: c.ID, PatientId: c.PatientID, ClinicId: c.ClinicID, Kind: c.Kind, Channel: channel, Reason: reason,
			}})
		}
		return nil
	})
	switch {
	case err != nil:
		d.log.ErrorContext(ctx, "could not record the message's outcome; the lease will expire and it is retried",
			"message_id", c.ID, "status", status, "error", err)
	case !done:
		d.log.InfoContext(ctx, "message moved on meanwhile; outcome not recorded", "message_id", c.ID, "status", status)
	case status == domain.StatusFailed:
		d.log.ErrorContext(ctx, "message failed; giving up", "message_id", c.ID, "kind", c.Kind,
			"attempt", c.Attempt, "error_code", reason)
	default:
		d.log.InfoContext(ctx, "message "+status, "message_id", c.ID, "kind", c.Kind, "reason", reason)
	}
}

// recordFailure retries a failed attempt after the policy's backoff, or gives up (failed,
// MessageFailed) on a permanent failure or the last attempt.
func (d *Dispatcher) recordFailure(ctx context.Context, c Claim, channel string, se *SendError) {
	delay, giveUp := d.cfg.Retry.AfterFailure(c.Attempt, se.Permanent)
	if giveUp {
		d.settle(ctx, c, domain.StatusFailed, se.Code, channel)
		return
	}
	if err := d.repo.RecordFailure(ctx, c.ID, c.Attempt, se.Code, delay, false); err != nil {
		d.log.ErrorContext(ctx, "could not record failed send; the lease will expire and it is retried",
			"message_id", c.ID, "error", err)
		return
	}
	// The error class only: the underlying error may quote the address.
	d.log.WarnContext(ctx, "message send failed; will retry", "message_id", c.ID, "kind", c.Kind,
		"attempt", c.Attempt, "error_code", se.Code, "retry_in", delay.String())
}
