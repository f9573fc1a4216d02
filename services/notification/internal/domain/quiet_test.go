package domain

import (
	"testing"
	"time"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestQuietHoursUntil(t *testing.T) {
	chi := mustLoc(t, "America/Chicago")
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, chi)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	night := QuietHours{Start: "21:00", End: "08:00"}
	noon := QuietHours{Start: "12:00", End: "13:30"}
	for _, c := range []struct {
		name   string
		q      QuietHours
		now    time.Time
		inside bool
		until  string // local, in Chicago
	}{
		{"before the evening start", night, at("2026-06-10 20:59"), false, ""},
		{"at the start", night, at("2026-06-10 21:00"), true, "2026-06-11 08:00"},
		{"before midnight ends tomorrow", night, at("2026-06-10 23:30"), true, "2026-06-11 08:00"},
		{"after midnight ends today", night, at("2026-06-11 03:00"), true, "2026-06-11 08:00"},
		{"at the end", night, at("2026-06-11 08:00"), false, ""},
		{"daytime window inside", noon, at("2026-06-11 12:45"), true, "2026-06-11 13:30"},
		{"daytime window after", noon, at("2026-06-11 13:30"), false, ""},
		{"none", QuietHours{}, at("2026-06-11 03:00"), false, ""},
		{"equal times: none", QuietHours{Start: "08:00", End: "08:00"}, at("2026-06-11 08:00"), false, ""},
		// DST: spring forward on 2026-03-08 at 02:00 (23-hour night); quiet hours still end
		// at 08:00 local, which is 13:00 UTC (CDT), not 14:00.
		{"spring forward night", night, at("2026-03-07 22:00"), true, "2026-03-08 08:00"},
		// Fall back on 2026-11-01 (25-hour night): 08:00 CST is 14:00 UTC.
		{"fall back night", night, at("2026-10-31 22:00"), true, "2026-11-01 08:00"},
	} {
		t.Run(c.name, func(t *testing.T) {
			until, inside := c.q.Until(c.now, chi)
			if inside != c.inside {
				t.Fatalf("inside = %v, want %v", inside, c.inside)
			}
			if c.inside && !until.Equal(at(c.until)) {
				t.Errorf("until = %v, want %s local", until.In(chi), c.until)
			}
		})
	}
	// The two DST cases in UTC, to show the wall clock rules, not a fixed duration.
	if u, _ := night.Until(at("2026-03-07 22:00"), chi); !u.Equal(time.Date(2026, 3, 8, 13, 0, 0, 0, time.UTC)) {
		t.Errorf("spring forward: until %v UTC", u.UTC())
	}
	if u, _ := night.Until(at("2026-10-31 22:00"), chi); !u.Equal(time.Date(2026, 11, 1, 14, 0, 0, 0, time.UTC)) {
		t.Errorf("fall back: until %v UTC", u.UTC())
	}
	// An end inside the spring-forward gap (02:30 does not exist) resolves just after it.
	gap := QuietHours{Start: "22:00", End: "02:30"}
	if u, inside := gap.Until(at("2026-03-07 23:00"), chi); !inside || u.Before(at("2026-03-08 03:00")) || u.After(at("2026-03-08 03:30")) {
		t.Errorf("gap end: inside %v until %v", inside, u.In(chi))
	}
}

func TestNewQuietHours(t *testing.T) {
	for _, c := range []struct {
		start, end string
		ok         bool
	}{
		{"21:00", "08:00", true}, {"", "", true}, {"21:00", "", false}, {"9:00", "08:00", false},
		{"24:00", "08:00", false}, {"21:60", "08:00", false}, {"aa:bb", "08:00", false},
	} {
		if _, err := NewQuietHours(c.start, c.end); (err == nil) != c.ok {
			t.Errorf("NewQuietHours(%q, %q) = %v, want ok=%v", c.start, c.end, err, c.ok)
		}
	}
}
