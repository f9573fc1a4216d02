package domain

import (
	"errors"
	"testing"
	"time"
)

func TestNewPreferences(t *testing.T) {
	const id = "0190a000-0000-7000-8000-00000000000a"
	p, err := NewPreferences(id, id, id, 2, []string{ChannelSMS, ChannelEmail, ChannelSMS}, " Private <p@example.org> ",
		"+13125550199", "21:00", "08:00", "ES", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Channels) != 2 || !p.Allows(ChannelEmail) || !p.Allows(ChannelSMS) || p.ConfidentialEmail != "p@example.org" ||
		p.Language != "es" || p.Quiet != (QuietHours{"21:00", "08:00"}) {
		t.Errorf("preferences = %+v", p)
	}
	if p, err := NewPreferences(id, id, id, 1, nil, "", "", "", "", "", time.Now()); err != nil || p.Language != "en" || len(p.Channels) != 0 {
		t.Errorf("empty preferences = %+v, %v", p, err)
	}
	for name, f := range map[string]func() error{
		"bad channel": func() error {
			_, err := NewPreferences(id, id, id, 1, []string{"fax"}, "", "", "", "", "", time.Now())
			return err
		},
		"bad email": func() error {
			_, err := NewPreferences(id, id, id, 1, nil, "a@b.org, c@d.org", "", "", "", "", time.Now())
			return err
		},
		"bad phone": func() error {
			_, err := NewPreferences(id, id, id, 1, nil, "", "312-555", "", "", "", time.Now())
			return err
		},
		"bad quiet": func() error {
			_, err := NewPreferences(id, id, id, 1, nil, "", "", "25:00", "08:00", "", time.Now())
			return err
		},
		"bad id": func() error {
			_, err := NewPreferences("x", id, id, 1, nil, "", "", "", "", "", time.Now())
			return err
		},
		"version 0": func() error { _, err := NewPreferences(id, id, id, 0, nil, "", "", "", "", "", time.Now()); return err },
	} {
		if err := f(); !errors.Is(err, ErrInvalidPreferences) {
			t.Errorf("%s: err = %v, want ErrInvalidPreferences", name, err)
		}
	}
}

func TestParseSMSCommand(t *testing.T) {
	for body, want := range map[string]string{
		"STOP": SMSStop, " stop ": SMSStop, "Stop.": SMSStop, "unsubscribe": SMSStop, "StopAll": SMSStop, "cancel": SMSStop,
		"end": SMSStop, "quit": SMSStop, "ALTO": SMSStop, "parar": SMSStop,
		"START": SMSStart, "unstop": SMSStart, "Yes": SMSStart, "comenzar": SMSStart,
		"please stop texting": "", "ok": "", "": "",
	} {
		if got := ParseSMSCommand(body); got != want {
			t.Errorf("ParseSMSCommand(%q) = %q, want %q", body, got, want)
		}
	}
}
