package sms_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/trellis-health/trellis/services/notification/internal/adapters/sms"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/sms/smsfake"
	"github.com/trellis-health/trellis/services/notification/internal/app"
)

func client(t *testing.T, base, token string) *sms.Client {
	t.Helper()
	c, err := sms.New(sms.Config{BaseURL: base, AccountSID: "ACtest", AuthToken: token, From: "+15555550100",
		StatusCallback: "https://notify.example.test/webhooks/sms/status", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSendAndClassify(t *testing.T) {
	fake := smsfake.Start(t, "ACtest", "token")
	c := client(t, fake.URL, "token")
	ctx := context.Background()
	sid, err := c.SendSMS(ctx, app.OutgoingSMS{MessageID: "m1", To: "+13125550100", Body: "Hello"})
	if err != nil || sid == "" {
		t.Fatalf("send = %q, %v", sid, err)
	}
	got := fake.Messages()
	if len(got) != 1 || got[0].To != "+13125550100" || got[0].From != "+15555550100" || got[0].Body != "Hello" ||
		got[0].SID != sid || got[0].StatusCallback != "https://notify.example.test/webhooks/sms/status" {
		t.Fatalf("recorded = %+v", got)
	}
	for _, c2 := range []struct {
		name      string
		fail      func()
		c         *sms.Client
		code      string
		permanent bool
	}{
		{"outage", func() { fake.FailNext(1, smsfake.Unavailable) }, c, sms.CodeUnavailable, false},
		{"invalid number", func() { fake.FailNext(1, smsfake.InvalidNumber) }, c, app.CodeInvalidAddress, true},
		{"wrong token", func() {}, client(t, fake.URL, "wrong"), sms.CodeAuth, false},
		{"provider down", func() {}, client(t, "http://127.0.0.1:1", "token"), sms.CodeUnavailable, false},
	} {
		t.Run(c2.name, func(t *testing.T) {
			c2.fail()
			_, err := c2.c.SendSMS(ctx, app.OutgoingSMS{MessageID: "m2", To: "+13125550100", Body: "Hello"})
			var se *app.SendError
			if !errors.As(err, &se) || se.Code != c2.code || se.Permanent != c2.permanent {
				t.Errorf("err = %v (%+v), want %s permanent=%v", err, se, c2.code, c2.permanent)
			}
		})
	}
	if len(fake.Messages()) != 1 {
		t.Errorf("failed sends were recorded: %d", len(fake.Messages()))
	}
}

func TestTimeoutIsTransient(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	c, err := sms.New(sms.Config{BaseURL: srv.URL, AccountSID: "AC", AuthToken: "t", From: "+15555550100", Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.SendSMS(context.Background(), app.OutgoingSMS{To: "+13125550100", Body: "x"})
	var se *app.SendError
	if !errors.As(err, &se) || se.Permanent || (se.Code != sms.CodeTimeout && se.Code != sms.CodeUnavailable) {
		t.Errorf("err = %v", err)
	}
}

func TestSignature(t *testing.T) {
	form := url.Values{"From": {"+13125550100"}, "Body": {"STOP"}, "To": {"+15555550100"}}
	u := "https://notify.example.test/webhooks/sms/inbound"
	sig := sms.Signature("token", u, form)
	if !sms.ValidSignature("token", u, form, sig) {
		t.Fatal("own signature refused")
	}
	tampered := url.Values{"From": {"+13125550199"}, "Body": {"STOP"}, "To": {"+15555550100"}}
	for name, ok := range map[string]bool{
		"other token":  sms.ValidSignature("other", u, form, sig),
		"other url":    sms.ValidSignature("token", u+"?x=1", form, sig),
		"other params": sms.ValidSignature("token", u, tampered, sig),
		"no signature": sms.ValidSignature("token", u, form, ""),
	} {
		if ok {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestOutcome(t *testing.T) {
	for _, c := range []struct{ status, code, final, reason string }{
		{"queued", "", "", ""}, {"sent", "", "", ""}, {"delivered", "", "delivered", ""},
		{"undelivered", "30003", "failed", "undelivered"}, {"undelivered", "30005", "failed", "invalid_address"},
		{"failed", "21610", "failed", "sms_opted_out"}, {"failed", "30001", "failed", "sms_failed"},
	} {
		if f, r := sms.Outcome(c.status, c.code); f != c.final || r != c.reason {
			t.Errorf("Outcome(%s, %s) = %s %s, want %s %s", c.status, c.code, f, r, c.final, c.reason)
		}
	}
}
