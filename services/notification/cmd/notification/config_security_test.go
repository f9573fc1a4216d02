package main

import (
	"strings"
	"testing"

	"github.com/trellis-health/trellis/services/notification/internal/adapters/smtp"
)

// The fake SMS provider sends nothing and serves every text it records to anyone: only a dev
// stack (AUTH_DEV_MODE=true) may run it (issue 10, finding 3).
func TestFakeSMSProviderNeedsDevMode(t *testing.T) {
	for _, c := range []struct {
		url string
		dev bool
		ok  bool
	}{
		{"fake", false, false},
		{"fake", true, true},
		{"https://api.twilio.com", false, true},
		{"", false, true},
	} {
		cfg := Config{SMTPFrom: "Care Team <care@trellis.local>"}
		cfg.SMSProviderURL, cfg.AuthDevMode = c.url, c.dev
		err := cfg.check()
		if (err == nil) != c.ok || err != nil && !strings.Contains(err.Error(), "AUTH_DEV_MODE") {
			t.Errorf("SMS_PROVIDER_URL=%q, dev mode %v: %v, want ok=%v", c.url, c.dev, err, c.ok)
		}
	}
}

// SMTP_TLS: TLS is required unless set otherwise, except in dev mode (Mailpit has no TLS);
// an unknown value stops the service at start (issue 10, finding 4).
func TestSMTPTLSDefaultsToRequire(t *testing.T) {
	for _, c := range []struct {
		set  string
		dev  bool
		want smtp.TLSMode
	}{
		{"", false, smtp.TLSRequire},
		{"", true, smtp.TLSOptional},
		{"require", true, smtp.TLSRequire},
		{"starttls-optional", false, smtp.TLSOptional},
		{"implicit", false, smtp.TLSImplicit},
		{"yes", false, ""},
	} {
		cfg := Config{SMTPFrom: "Care Team <care@trellis.local>", SMTPTLS: c.set}
		cfg.AuthDevMode = c.dev
		got, err := cfg.smtpTLS()
		if got != c.want || (err == nil) != (c.want != "") || (cfg.check() == nil) != (c.want != "") {
			t.Errorf("SMTP_TLS=%q, dev mode %v: %q %v, want %q", c.set, c.dev, got, err, c.want)
		}
	}
}
