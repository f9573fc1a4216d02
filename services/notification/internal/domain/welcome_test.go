package domain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trellis-health/trellis/services/notification/internal/domain"
)

// forbidden is the test's own list, kept separate from domain.SensitiveTerms so that trimming
// that list cannot silently weaken this test.
var forbidden = []string{
	"addiction", "addict", "substance", "iop", "intensive outpatient", "outpatient", "recovery",
	"rehab", "detox", "withdrawal", "sober", "alcohol", "drug", "opioid", "methadone", "relapse",
	"treatment", "therapy", "counseling", "psychiatr", "behavioral", "mental health", "program",
	"sud", "asam", "track", "dependency", "abuse",
}

func TestRenderWelcome(t *testing.T) {
	cases := []struct {
		name      string
		preferred string
		date      string
		zone      string
		wantDate  string
		wantHello string
	}{
		{"chicago", "Sam", "2026-03-02", "America/Chicago", "Monday, March 2, 2026", "Hello Sam,"},
		{"honolulu far west", "Ana María", "2026-01-01", "Pacific/Honolulu", "Thursday, January 1, 2026", "Hello Ana María,"},
		{"auckland far east", "Wiremu", "2026-12-31", "Pacific/Auckland", "Thursday, December 31, 2026", "Hello Wiremu,"},
		{"dst change day", "Lee", "2026-03-08", "America/New_York", "Sunday, March 8, 2026", "Hello Lee,"},
		{"no name", "  ", "2026-06-15", "Europe/Berlin", "Monday, June 15, 2026", "Hello,"},
		{"name with controls", "Jo\r\nBcc: x@y\t", "2026-06-15", "UTC", "Monday, June 15, 2026", "Hello Jo Bcc: x@y,"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := time.Parse(domain.DateLayout, tc.date)
			if err != nil {
				t.Fatal(err)
			}
			e, err := domain.RenderWelcome(domain.Recipient{PatientID: "0190a000-0000-7000-8000-000000000001",
				ClinicID: "0190a000-0000-7000-8000-0000000000c1", PreferredName: tc.preferred,
				Email: "pat@example.org", TimeZone: tc.zone, StartDate: d})
			if err != nil {
				t.Fatal(err)
			}
			text := e.Subject + "\n" + e.Body
			lower := strings.ToLower(text)
			for _, w := range forbidden {
				if strings.Contains(lower, w) {
					t.Errorf("rendered welcome contains forbidden %q:\n%s", w, text)
				}
			}
			if found := domain.SensitiveTermsIn(text); len(found) > 0 {
				t.Errorf("rendered welcome contains sensitive terms %v", found)
			}
			if !strings.Contains(e.Body, tc.wantDate) {
				t.Errorf("body lacks the visit date %q:\n%s", tc.wantDate, e.Body)
			}
			if !strings.HasPrefix(e.Body, tc.wantHello+"\n") {
				t.Errorf("body does not start with %q:\n%s", tc.wantHello, e.Body)
			}
			if strings.ContainsAny(e.Subject, "\r\n") {
				t.Errorf("subject has a line break: %q", e.Subject)
			}
		})
	}
}

func TestSensitiveTermsInCatchesLeaks(t *testing.T) {
	// The guard must be able to fail: each of these would reveal the kind of care.
	for _, s := range []string{
		"Welcome to your IOP", "Your Recovery journey", "Substance use services",
		"Addiction care team", "evening program track", "Intensive Outpatient at Elm St",
	} {
		if len(domain.SensitiveTermsIn(s)) == 0 {
			t.Errorf("SensitiveTermsIn(%q) found nothing", s)
		}
	}
	for _, w := range forbidden {
		if len(domain.SensitiveTermsIn(strings.ToUpper(w))) == 0 && w != "track" {
			t.Errorf("domain.SensitiveTerms misses %q", w)
		}
	}
}

func TestFormatVisitDateKeepsCalendarDay(t *testing.T) {
	// A date scanned from Postgres arrives as midnight UTC; converting it to a western zone
	// would show the previous day.
	d := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	for _, zone := range []string{"America/Los_Angeles", "Pacific/Pago_Pago", "Asia/Tokyo", "Pacific/Kiritimati"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		if got := domain.FormatVisitDate(d, loc); got != "Monday, March 2, 2026" {
			t.Errorf("%s: got %q", zone, got)
		}
	}
}

func TestNewAdmission(t *testing.T) {
	const pid, cid = "0190a000-0000-7000-8000-000000000001", "0190a000-0000-7000-8000-0000000000c1"
	cases := []struct {
		name                  string
		patient, clinic, zone string
		date                  string
		wantErr               bool
	}{
		{"ok", pid, cid, "America/Chicago", "2026-03-02", false},
		{"bad patient id", "p-1", cid, "UTC", "2026-03-02", true},
		{"bad clinic id", pid, "", "UTC", "2026-03-02", true},
		{"bad date", pid, cid, "UTC", "03/02/2026", true},
		{"no date", pid, cid, "UTC", "", true},
		{"empty zone", pid, cid, "", "2026-03-02", true},
		{"unknown zone", pid, cid, "Mars/Olympus", "2026-03-02", true},
	}
	at := time.Date(2026, 2, 1, 9, 0, 0, 0, time.FixedZone("CST", -6*3600))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := domain.NewAdmission(tc.patient, tc.clinic, tc.zone, tc.date, at)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				if !errors.Is(err, domain.ErrInvalidRecipient) {
					t.Errorf("err = %v, want ErrInvalidRecipient", err)
				}
				return
			}
			if a.StartDate.Format(domain.DateLayout) != tc.date || !a.At.Equal(at) || a.At.Location() != time.UTC {
				t.Errorf("admission = %+v", a)
			}
		})
	}
}

func TestNewContact(t *testing.T) {
	const pid, cid = "0190a000-0000-7000-8000-000000000001", "0190a000-0000-7000-8000-0000000000c1"
	cases := []struct {
		name                         string
		patient, clinic, email, zone string
		phone                        string
		wantErr                      bool
		wantEmail                    string
	}{
		{"ok", pid, cid, "Pat@Example.org", "America/Chicago", "+13125550100", false, "Pat@Example.org"},
		{"display name stripped", pid, cid, "Pat <pat@example.org>", "UTC", "", false, "pat@example.org"},
		{"no email: intake has none", pid, cid, "", "UTC", "+13125550100", false, ""},
		{"blank email counts as none", pid, cid, "  ", "UTC", "", false, ""},
		{"unusable email", pid, cid, "not an address", "UTC", "", true, ""},
		{"two addresses", pid, cid, "a@x.org, b@y.org", "UTC", "", true, ""},
		{"phone not E.164", pid, cid, "a@x.org", "UTC", "312-555-0100", true, ""},
		{"bad patient id", "p-1", cid, "a@x.org", "UTC", "", true, ""},
		{"bad clinic id", pid, "", "a@x.org", "UTC", "", true, ""},
		{"empty zone", pid, cid, "a@x.org", "", "", true, ""},
		{"unknown zone", pid, cid, "a@x.org", "Mars/Olympus", "", true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := domain.NewContact(tc.patient, tc.clinic, " Sam\t", tc.email, tc.phone, tc.zone, time.Now())
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				if !errors.Is(err, domain.ErrInvalidRecipient) {
					t.Errorf("err = %v, want ErrInvalidRecipient", err)
				}
				// The reason is logged and dead-lettered: it must not quote the details.
				for _, v := range []string{tc.email, tc.phone} {
					if strings.TrimSpace(v) != "" && strings.Contains(err.Error(), v) {
						t.Errorf("error %q quotes %q", err, v)
					}
				}
				return
			}
			if c.Email != tc.wantEmail || c.PreferredName != "Sam" || c.Phone != tc.phone {
				t.Errorf("contact = %+v, want email %q", c, tc.wantEmail)
			}
		})
	}
}

func TestRetryPolicy(t *testing.T) {
	p := domain.RetryPolicy{MaxAttempts: 5, Base: time.Second, Max: 5 * time.Second}
	cases := []struct {
		attempts  int
		permanent bool
		wantDelay time.Duration
		wantGive  bool
	}{
		{1, false, time.Second, false},
		{2, false, 2 * time.Second, false},
		{3, false, 4 * time.Second, false},
		{4, false, 5 * time.Second, false}, // capped
		{5, false, 0, true},                // out of attempts
		{1, true, 0, true},                 // refused outright
	}
	for _, tc := range cases {
		d, give := p.AfterFailure(tc.attempts, tc.permanent)
		if d != tc.wantDelay || give != tc.wantGive {
			t.Errorf("AfterFailure(%d, %v) = %s, %v; want %s, %v", tc.attempts, tc.permanent, d, give, tc.wantDelay, tc.wantGive)
		}
	}
}
