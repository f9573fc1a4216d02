// Package smtp sends notification's email over SMTP (net/smtp): over TLS as Config.TLS says
// (STARTTLS required or optional, or implicit TLS), PLAIN auth when configured
// (net/smtp refuses it without TLS except on localhost).
package smtp

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"strings"
	"time"

	"github.com/trellis-health/trellis/services/notification/internal/app"
)

// TLSMode says how a message is protected on its way to the SMTP server (SMTP_TLS).
type TLSMode string

const (
	// TLSRequire upgrades with STARTTLS and refuses to send (CodeTLS) when the server does not
	// offer it: a relay without TLS, or someone in between who strips the offer, gets nothing.
	TLSRequire TLSMode = "require"
	// TLSOptional upgrades with STARTTLS when the server offers it, else sends in clear text
	// (dev stacks: Mailpit has no TLS).
	TLSOptional TLSMode = "starttls-optional"
	// TLSImplicit speaks TLS from the first byte (submissions port 465).
	TLSImplicit TLSMode = "implicit"
)

// ParseTLSMode reads SMTP_TLS.
func ParseTLSMode(s string) (TLSMode, error) {
	switch m := TLSMode(s); m {
	case TLSRequire, TLSOptional, TLSImplicit:
		return m, nil
	}
	return "", fmt.Errorf("smtp: TLS mode %q: want %s, %s or %s", s, TLSRequire, TLSOptional, TLSImplicit)
}

// Config is the SMTP connection.
type Config struct {
	Addr     string // host:port
	From     string // RFC 5322 address, e.g. "Care Team <care@trellis.local>"
	Username string // empty: no AUTH
	Password string
	Timeout  time.Duration  // whole conversation, default 30s
	TLS      TLSMode        // "" is TLSOptional, as before SMTP_TLS; the service sets it (require unless dev mode)
	RootCAs  *x509.CertPool // CAs the server's certificate is checked against (nil: the system's)
}

// Sender implements app.Sender.
type Sender struct {
	cfg    Config
	host   string
	from   *mail.Address
	domain string
	now    func() time.Time
}

var _ app.Sender = (*Sender)(nil)

// New checks cfg and returns a sender.
func New(cfg Config) (*Sender, error) {
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("smtp: address %q: %w", cfg.Addr, err)
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("smtp: from address: %w", err)
	}
	_, domain, ok := strings.Cut(from.Address, "@")
	if !ok || domain == "" {
		return nil, errors.New("smtp: from address has no domain")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.TLS == "" {
		cfg.TLS = TLSOptional
	}
	if _, err := ParseTLSMode(string(cfg.TLS)); err != nil {
		return nil, err
	}
	return &Sender{cfg: cfg, host: host, from: from, domain: domain, now: time.Now}, nil
}

// Timeout is the longest a Send takes.
func (s *Sender) Timeout() time.Duration { return s.cfg.Timeout }

// Error classes, stored as the message's last_error_code.
const (
	CodeUnavailable       = "smtp_unavailable"        // cannot connect, connection lost
	CodeTimeout           = "smtp_timeout"            // no answer in time
	CodeTLS               = "smtp_tls"                // TLS failed, or required and not offered
	CodeAuth              = "smtp_auth"               // credentials refused (an operator fixes it; retried)
	CodeTempFail          = "smtp_tempfail"           // 4xx reply
	CodeRecipientRejected = "smtp_recipient_rejected" // 5xx to RCPT TO
	CodeRejected          = "smtp_rejected"           // other 5xx reply
)

// Send delivers m. Errors are *app.SendError carrying an error class.
func (s *Sender) Send(ctx context.Context, m app.OutgoingEmail) error {
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return &app.SendError{Code: app.CodeInvalidAddress, Permanent: true, Err: err}
	}
	body, err := s.compose(m, to)
	if err != nil {
		return &app.SendError{Code: app.CodeRender, Permanent: true, Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	// Once ctx ends the connection is closed under the client; report why, not the symptom.
	fail := func(stage string, err error) error {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return classify(stage, err)
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fail("dial", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if s.cfg.TLS == TLSImplicit {
		tc := tls.Client(conn, s.tlsConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			if isNetErr(ctx, err) {
				return fail("tls", err)
			}
			return &app.SendError{Code: CodeTLS, Err: err}
		}
		conn = tc // net/smtp sees a *tls.Conn: no STARTTLS, and PLAIN auth is allowed
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return fail("greeting", err)
	}
	defer c.Close()
	if err := c.Hello(helloName()); err != nil {
		return fail("hello", err)
	}
	offered, _ := c.Extension("STARTTLS")
	switch {
	case s.cfg.TLS == TLSImplicit:
	case offered:
		if err := c.StartTLS(s.tlsConfig()); err != nil {
			if isNetErr(ctx, err) {
				return fail("tls", err)
			}
			return &app.SendError{Code: CodeTLS, Err: err}
		}
	case s.cfg.TLS == TLSRequire:
		// Nothing of the message has been sent yet. Retried: an operator fixes the relay or
		// SMTP_TLS, and sees smtp_tls as the message's error until then.
		return &app.SendError{Code: CodeTLS, Err: errNoSTARTTLS}
	}
	if s.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, s.host)); err != nil {
			if isNetErr(ctx, err) {
				return fail("auth", err)
			}
			return &app.SendError{Code: CodeAuth, Err: err}
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return fail("mail", err)
	}
	if err := c.Rcpt(to.Address); err != nil {
		return fail("rcpt", err)
	}
	w, err := c.Data()
	if err != nil {
		return fail("data", err)
	}
	if _, err := w.Write(body); err != nil {
		return fail("data", err)
	}
	if err := w.Close(); err != nil { // the server's verdict on the message
		return fail("data", err)
	}
	// The message is accepted; a failed QUIT changes nothing.
	_ = c.Quit()
	return nil
}

// errNoSTARTTLS: TLSRequire, and the server does not offer STARTTLS.
var errNoSTARTTLS = errors.New("smtp: the server does not offer STARTTLS and TLS is required (SMTP_TLS=require)")

func (s *Sender) tlsConfig() *tls.Config {
	return &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12, RootCAs: s.cfg.RootCAs}
}

// compose writes the RFC 5322 message: plain text, UTF-8, quoted-printable, with the message
// id as Message-ID so a repeat of the same message can be recognised.
func (s *Sender) compose(m app.OutgoingEmail, to *mail.Address) ([]byte, error) {
	if strings.ContainsAny(m.Email.Subject, "\r\n") {
		return nil, errors.New("subject contains a line break")
	}
	var b bytes.Buffer
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	h("From", s.from.String())
	h("To", (&mail.Address{Address: to.Address}).String())
	h("Subject", mime.QEncoding.Encode("utf-8", m.Email.Subject))
	h("Date", s.now().UTC().Format(time.RFC1123Z))
	h("Message-ID", MessageID(m.MessageID, s.domain))
	h("MIME-Version", "1.0")
	h("Content-Type", `text/plain; charset="utf-8"`)
	h("Content-Transfer-Encoding", "quoted-printable")
	h("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(m.Email.Body)); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// MessageID is the Message-ID header value for a message id: stable across attempts.
func MessageID(id, domain string) string { return "<" + id + "@" + domain + ">" }

// classify turns a failure at one SMTP stage into an error class.
func classify(stage string, err error) error {
	var tp *textproto.Error
	if errors.As(err, &tp) {
		switch {
		case tp.Code >= 400 && tp.Code < 500:
			return &app.SendError{Code: CodeTempFail, Err: err}
		case tp.Code == 530 || tp.Code == 534 || tp.Code == 535 || tp.Code == 538:
			return &app.SendError{Code: CodeAuth, Err: err}
		case stage == "rcpt":
			return &app.SendError{Code: CodeRecipientRejected, Permanent: true, Err: err}
		default:
			return &app.SendError{Code: CodeRejected, Permanent: true, Err: err}
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return &app.SendError{Code: CodeTimeout, Err: err}
	}
	return &app.SendError{Code: CodeUnavailable, Err: err}
}

// isNetErr reports whether err is the connection failing rather than a refusal.
func isNetErr(ctx context.Context, err error) bool {
	var ne net.Error
	return ctx.Err() != nil || errors.As(err, &ne) || errors.Is(err, io.EOF)
}

// helloName is the name given in EHLO: this host's name.
func helloName() string {
	if h, err := os.Hostname(); err == nil && h != "" && !strings.ContainsAny(h, " \r\n") {
		return h
	}
	return "localhost"
}
