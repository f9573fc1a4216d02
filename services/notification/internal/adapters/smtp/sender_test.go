package smtp_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/trellis-health/trellis/services/notification/internal/adapters/smtp"
	"github.com/trellis-health/trellis/services/notification/internal/app"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
	"github.com/trellis-health/trellis/services/notification/internal/smtptest"
)

func email(to string) app.OutgoingEmail {
	return app.OutgoingEmail{MessageID: "0190a000-0000-7000-8000-000000000123", To: to,
		Email: domain.Email{Subject: "Welcome — your first visit", Body: "Hello Zoë,\n\nSee you on Monday.\n.\nA line with a lone dot above.\n"}}
}

func newSender(t *testing.T, addr, user, pass string, timeout time.Duration) *smtp.Sender {
	t.Helper()
	// smtptest's sink has no TLS: these tests are about everything but TLS (tls_test.go).
	s, err := smtp.New(smtp.Config{Addr: addr, From: "Care Team <care@trellis.local>", Username: user, Password: pass, Timeout: timeout,
		TLS: smtp.TLSOptional})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSendDeliversAWellFormedMessage(t *testing.T) {
	sink := smtptest.Start(t, smtptest.Options{Username: "u", Password: "p"})
	s := newSender(t, sink.Addr, "u", "p", 5*time.Second)
	if err := s.Send(context.Background(), email("zoe@example.org")); err != nil {
		t.Fatal(err)
	}
	msgs := sink.Messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages", len(msgs))
	}
	m := msgs[0]
	checks := map[string][2]string{
		"envelope from":  {m.From, "care@trellis.local"},
		"envelope to":    {strings.Join(m.To, ","), "zoe@example.org"},
		"From":           {m.Header.Get("From"), `"Care Team" <care@trellis.local>`},
		"To":             {m.Header.Get("To"), "<zoe@example.org>"},
		"Message-ID":     {m.Header.Get("Message-ID"), "<0190a000-0000-7000-8000-000000000123@trellis.local>"},
		"Subject":        {m.Subject, "Welcome — your first visit"},
		"Body":           {m.Body, email("").Email.Body},
		"Auto-Submitted": {m.Header.Get("Auto-Submitted"), "auto-generated"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	if strings.Contains(string(m.Raw), "Zoë") {
		t.Error("non-ASCII body was not transfer-encoded")
	}
}

func TestSendClassifiesFailures(t *testing.T) {
	down := func() string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}()
	// A server that accepts connections and never greets.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	reject := smtptest.Start(t, smtptest.Options{RejectRcpt: func(addr string) error {
		switch {
		case strings.HasPrefix(addr, "gone@"):
			return smtptest.MailboxUnavailable
		case strings.HasPrefix(addr, "busy@"):
			return &gosmtp.SMTPError{Code: 452, Message: "try later"}
		}
		return nil
	}})
	authed := smtptest.Start(t, smtptest.Options{Username: "u", Password: "p"})

	cases := []struct {
		name      string
		addr      string
		user      string
		to        string
		code      string
		permanent bool
	}{
		{"nothing listening", down, "", "a@example.org", smtp.CodeUnavailable, false},
		{"no greeting", silent.Addr().String(), "", "a@example.org", smtp.CodeTimeout, false},
		{"mailbox gone", reject.Addr, "", "gone@example.org", smtp.CodeRecipientRejected, true},
		{"temporary refusal", reject.Addr, "", "busy@example.org", smtp.CodeTempFail, false},
		{"wrong credentials", authed.Addr, "u", "a@example.org", smtp.CodeAuth, false},
		{"auth required", authed.Addr, "", "a@example.org", smtp.CodeAuth, false},
		{"bad address", reject.Addr, "", "not an address", app.CodeInvalidAddress, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSender(t, tc.addr, tc.user, "wrong", 300*time.Millisecond)
			err := s.Send(context.Background(), email(tc.to))
			var se *app.SendError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want *app.SendError", err)
			}
			if se.Code != tc.code || se.Permanent != tc.permanent {
				t.Errorf("got %s (permanent %v), want %s (permanent %v); cause %v", se.Code, se.Permanent, tc.code, tc.permanent, se.Err)
			}
			if strings.Contains(se.Error(), "@") {
				t.Errorf("error text quotes an address: %q", se.Error())
			}
		})
	}
	if n := len(reject.Messages()) + len(authed.Messages()); n != 0 {
		t.Errorf("%d messages were accepted", n)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, c := range []smtp.Config{
		{Addr: "no-port", From: "care@trellis.local"},
		{Addr: "127.0.0.1:25", From: "not an address"},
		{Addr: "127.0.0.1:25", From: "care@trellis.local", TLS: "starttls"},
	} {
		if _, err := smtp.New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}
