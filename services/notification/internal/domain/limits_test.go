package domain

import (
	"testing"
	"time"
)

func TestTextLimitsAllow(t *testing.T) {
	chi := mustLoc(t, "America/Chicago")
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, chi)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	l := TextLimits{PerDay: 1, PerWeek: 3}
	for _, c := range []struct {
		name string
		now  time.Time
		sent []string
		want bool
	}{
		{"none sent", at("2026-06-10 09:00"), nil, true},
		{"one earlier today", at("2026-06-10 18:00"), []string{"2026-06-10 08:00"}, false},
		{"one yesterday evening (same UTC day)", at("2026-06-10 08:00"), []string{"2026-06-09 20:00"}, true},
		// 23:30 local on June 9 is 04:30 UTC on June 10: it still counts for June 9 locally.
		{"late last night local", at("2026-06-10 09:00"), []string{"2026-06-09 23:30"}, true},
		{"three this week", at("2026-06-10 09:00"), []string{"2026-06-04 09:00", "2026-06-06 09:00", "2026-06-08 09:00"}, false},
		{"three, the oldest seven days back", at("2026-06-10 09:00"), []string{"2026-06-03 09:00", "2026-06-06 09:00", "2026-06-08 09:00"}, true},
		{"two this week", at("2026-06-10 09:00"), []string{"2026-06-06 09:00", "2026-06-08 09:00"}, true},
		// Across the fall-back change: 2026-11-01 is 25 hours long and still one day.
		{"fall back day", at("2026-11-01 23:30"), []string{"2026-11-01 00:30"}, false},
		{"spring forward next day", at("2026-03-09 00:10"), []string{"2026-03-08 23:50"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var sent []time.Time
			for _, s := range c.sent {
				sent = append(sent, at(s).UTC())
			}
			if got := l.Allow(c.now.UTC(), chi, sent); got != c.want {
				t.Errorf("Allow = %v, want %v", got, c.want)
			}
		})
	}
	if !(TextLimits{PerDay: 2, PerWeek: 0}).Allow(at("2026-06-10 18:00"), chi, []time.Time{at("2026-06-10 08:00")}) {
		t.Error("a second text under a cap of 2 a day was refused")
	}
}
