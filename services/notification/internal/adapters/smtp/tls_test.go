package smtp_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/trellis-health/trellis/services/notification/internal/adapters/smtp"
	"github.com/trellis-health/trellis/services/notification/internal/app"
	"github.com/trellis-health/trellis/services/notification/internal/smtptest"
)

// tlsServer is an SMTP server that offers STARTTLS (or speaks TLS from the first byte, when
// implicit) with a certificate for 127.0.0.1; it counts the messages it accepts.
type tlsServer struct {
	addr     string
	roots    *x509.CertPool
	accepted atomic.Int32
	clear    atomic.Int32 // accepted without TLS
}

func startTLSServer(t *testing.T, implicit bool) *tlsServer {
	t.Helper()
	// httptest's certificate is valid for 127.0.0.1.
	hs := httptest.NewTLSServer(nil)
	cert, roots := hs.TLS.Certificates[0], x509.NewCertPool()
	roots.AddCert(hs.Certificate())
	hs.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &tlsServer{addr: ln.Addr().String(), roots: roots}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return &countSession{ts: ts, conn: c}, nil
	}))
	srv.Domain, srv.ErrorLog = "tls.test", log.New(io.Discard, "", 0)
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	if implicit {
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ts
}

type countSession struct {
	ts   *tlsServer
	conn *gosmtp.Conn
}

func (s *countSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (s *countSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (s *countSession) Reset()                                 {}
func (s *countSession) Logout() error                          { return nil }
func (s *countSession) Data(r io.Reader) error {
	if _, err := io.ReadAll(r); err != nil {
		return err
	}
	if _, ok := s.conn.TLSConnectionState(); !ok {
		s.ts.clear.Add(1)
	}
	s.ts.accepted.Add(1)
	return nil
}

func sender(t *testing.T, addr string, mode smtp.TLSMode, roots *x509.CertPool) *smtp.Sender {
	t.Helper()
	s, err := smtp.New(smtp.Config{Addr: addr, From: "Care Team <care@trellis.local>", Timeout: 5 * time.Second, TLS: mode, RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var se *app.SendError
	if !errors.As(err, &se) || se.Code != code || se.Permanent {
		t.Errorf("err = %v, want a retryable %s", err, code)
	}
}

// A server without STARTTLS gets nothing when TLS is required (the service's default outside
// dev mode: SMTP_TLS, issue 10 finding 4); with starttls-optional (dev stacks: Mailpit) the
// message goes in clear text.
func TestSendRequiresTLSWhenAsked(t *testing.T) {
	sink := smtptest.Start(t, smtptest.Options{})
	wantCode(t, sender(t, sink.Addr, smtp.TLSRequire, nil).Send(context.Background(), email("zoe@example.org")), smtp.CodeTLS)
	if n := len(sink.Messages()); n != 0 {
		t.Fatalf("a server without STARTTLS got %d messages with TLS required", n)
	}
	if err := sender(t, sink.Addr, smtp.TLSOptional, nil).Send(context.Background(), email("zoe@example.org")); err != nil {
		t.Fatal(err)
	}
	if n := len(sink.Messages()); n != 1 {
		t.Errorf("starttls-optional: %d messages, want 1", n)
	}
	// Implicit TLS to a server that speaks SMTP in clear: the handshake fails, nothing is sent.
	wantCode(t, sender(t, sink.Addr, smtp.TLSImplicit, nil).Send(context.Background(), email("zoe@example.org")), smtp.CodeTLS)
	if n := len(sink.Messages()); n != 1 {
		t.Errorf("implicit TLS to a clear-text server: %d messages, want 1", n)
	}
}

// With TLS (STARTTLS or implicit) the message is sent encrypted to a server whose certificate
// checks out, and not to one whose certificate does not.
func TestSendOverTLS(t *testing.T) {
	for _, c := range []struct {
		name     string
		implicit bool
		mode     smtp.TLSMode
	}{{"starttls required", false, smtp.TLSRequire}, {"starttls optional", false, smtp.TLSOptional}, {"implicit", true, smtp.TLSImplicit}} {
		t.Run(c.name, func(t *testing.T) {
			ts := startTLSServer(t, c.implicit)
			if err := sender(t, ts.addr, c.mode, ts.roots).Send(context.Background(), email("zoe@example.org")); err != nil {
				t.Fatal(err)
			}
			if ts.accepted.Load() != 1 || ts.clear.Load() != 0 {
				t.Errorf("accepted %d, %d of them in clear text; want 1 over TLS", ts.accepted.Load(), ts.clear.Load())
			}
			// An unknown certificate (the system's CAs do not know the test's) is refused.
			wantCode(t, sender(t, ts.addr, c.mode, nil).Send(context.Background(), email("zoe@example.org")), smtp.CodeTLS)
			if ts.accepted.Load() != 1 {
				t.Errorf("a server with an untrusted certificate got a message")
			}
		})
	}
}
