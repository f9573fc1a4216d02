// Package smtptest runs a real SMTP server in-process for tests (github.com/emersion/go-smtp):
// it records every message it accepts, decoded, and can refuse recipients or require AUTH.
package smtptest

import (
	"bytes"
	"errors"
	"io"
	"log"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one accepted message.
type Message struct {
	From    string   // envelope sender (MAIL FROM)
	To      []string // envelope recipients (RCPT TO)
	Raw     []byte
	Header  mail.Header
	Subject string // decoded
	Body    string // decoded, with \n line ends
}

// MailboxUnavailable is a permanent refusal of a recipient (550), for Options.RejectRcpt.
var MailboxUnavailable = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "mailbox unavailable"}

// authRequired is RFC 4954's reply to MAIL without AUTH (go-smtp's own ErrAuthRequired is 502).
var authRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}

// Options tune a Sink.
type Options struct {
	// RejectRcpt, when set, is asked for every RCPT TO; a non-nil error refuses it (an
	// *smtp.SMTPError such as MailboxUnavailable gives its code, other errors give 451).
	RejectRcpt func(addr string) error
	// Username and Password, when set, are required through AUTH PLAIN.
	Username, Password string
}

// Sink is a running SMTP server.
type Sink struct {
	Addr string
	opts Options
	srv  *smtp.Server
	mu   sync.Mutex
	msgs []Message
}

// Start listens on 127.0.0.1:0; the server stops when t ends.
func Start(t testing.TB, opts Options) *Sink { return StartAt(t, "127.0.0.1:0", opts) }

// StartAt listens on addr (retrying for a few seconds while the port is still being
// released), for tests that bring a sink "back up" where the service expects it.
func StartAt(t testing.TB, addr string, opts Options) *Sink {
	t.Helper()
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; {
		if ln, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("smtptest: listen %s: %v", addr, err)
	}
	s := &Sink{Addr: ln.Addr().String(), opts: opts}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{sink: s}, nil }))
	s.srv.Domain = "sink.test"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout, s.srv.WriteTimeout = 10*time.Second, 10*time.Second
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(s.Stop)
	return s
}

// Stop closes the server and its connections (idempotent).
func (s *Sink) Stop() { _ = s.srv.Close() }

// Messages returns a copy of the accepted messages, in order.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

type session struct {
	sink   *Sink
	authed bool
	from   string
	to     []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.sink.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != ss.sink.opts.Username || pass != ss.sink.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.sink.opts.Username != "" && !ss.authed {
		return authRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if f := ss.sink.opts.RejectRcpt; f != nil {
		if err := f(to); err != nil {
			return err
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Message{From: ss.from, To: append([]string(nil), ss.to...), Raw: raw}
	pm, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "unparseable message"}
	}
	m.Header = pm.Header
	if m.Subject, err = new(mime.WordDecoder).DecodeHeader(pm.Header.Get("Subject")); err != nil {
		return err
	}
	var body io.Reader = pm.Body
	if strings.EqualFold(pm.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return errors.New("body: " + err.Error())
	}
	m.Body = strings.ReplaceAll(string(b), "\r\n", "\n")
	ss.sink.mu.Lock()
	ss.sink.msgs = append(ss.sink.msgs, m)
	ss.sink.mu.Unlock()
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }
