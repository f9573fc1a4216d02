package kpi

import (
	"testing"
	"time"
)

func d(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestMinimumWeeks(t *testing.T) {
	// Start Wednesday 2026-03-04: weeks end on Tuesdays 03-10, 03-17, 03-24, 03-31, ...
	minutes := map[time.Time]int{
		d("2026-03-04"): 180, d("2026-03-06"): 180, d("2026-03-09"): 180, // week 0: 540, met
		d("2026-03-11"): 180, d("2026-03-13"): 179, d("2026-03-17"): 180, // week 1: 539, short by one
		d("2026-03-18"): 600,                     // week 2: met
		d("2026-03-10"): 0, d("2026-03-03"): 500, // before the start: not counted
	}
	base := MinimumEnrollment{Start: d("2026-03-04"), MinimumMinutes: 540, LengthWeeks: 12, Minutes: minutes}
	end := d("2026-03-23")
	cases := []struct {
		name  string
		e     MinimumEnrollment
		r     Range
		today string
		want  []ProgramWeek
	}{
		{"complete weeks ending in the range", base, Range{d("2026-03-01"), d("2026-03-31")}, "2026-04-15",
			[]ProgramWeek{{d("2026-03-10"), true}, {d("2026-03-17"), false}, {d("2026-03-24"), true}, {d("2026-03-31"), false}}},
		{"a week ending after to is left out", base, Range{d("2026-03-01"), d("2026-03-23")}, "2026-04-15",
			[]ProgramWeek{{d("2026-03-10"), true}, {d("2026-03-17"), false}}},
		{"a week ending before from is left out", base, Range{d("2026-03-11"), d("2026-03-20")}, "2026-04-15",
			[]ProgramWeek{{d("2026-03-17"), false}}},
		{"a week ending today is not complete", base, Range{d("2026-03-01"), d("2026-03-31")}, "2026-03-17",
			[]ProgramWeek{{d("2026-03-10"), true}}},
		{"a week ending yesterday is complete", base, Range{d("2026-03-01"), d("2026-03-31")}, "2026-03-18",
			[]ProgramWeek{{d("2026-03-10"), true}, {d("2026-03-17"), false}}},
		{"weeks after the enrollment ended are left out", func() MinimumEnrollment { e := base; e.End = &end; return e }(),
			Range{d("2026-03-01"), d("2026-03-31")}, "2026-04-15",
			[]ProgramWeek{{d("2026-03-10"), true}, {d("2026-03-17"), false}}},
		{"weeks past the program's length are left out", func() MinimumEnrollment { e := base; e.LengthWeeks = 1; return e }(),
			Range{d("2026-03-01"), d("2026-03-31")}, "2026-04-15", []ProgramWeek{{d("2026-03-10"), true}}},
		{"a zero minimum is always met", func() MinimumEnrollment { e := base; e.MinimumMinutes = 0; e.Minutes = nil; return e }(),
			Range{d("2026-03-01"), d("2026-03-12")}, "2026-04-15", []ProgramWeek{{d("2026-03-10"), true}}},
		{"started after the range", base, Range{d("2026-02-01"), d("2026-03-05")}, "2026-04-15", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := MinimumWeeks(c.e, c.r, d(c.today))
			if len(got) != len(c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			for i := range got {
				if !got[i].Last.Equal(c.want[i].Last) || got[i].Met != c.want[i].Met {
					t.Errorf("week %d: %v, want %v", i, got[i], c.want[i])
				}
			}
		})
	}
	weeks, met := CountWeeks(MinimumWeeks(base, Range{d("2026-03-01"), d("2026-03-31")}, d("2026-04-15")))
	if weeks != 4 || met != 2 || Percent(Ratio(met, weeks)) != "50.0%" {
		t.Errorf("count: %d of %d", met, weeks)
	}
}

func TestMeetingMinimumPoolsWeeks(t *testing.T) {
	a := Inputs{MinimumWeeks: 4, MinimumMet: 1}
	b := Inputs{MinimumWeeks: 1, MinimumMet: 1}
	a.Add(b)
	if got := Percent(Compute(a).MeetingMinimum); got != "40.0%" {
		t.Errorf("pooled share = %s, want 40.0%% (2 of 5 weeks, not the average of 25%% and 100%%)", got)
	}
	if got := Percent(Compute(Inputs{}).MeetingMinimum); got != Unknown {
		t.Errorf("no week: %s", got)
	}
}
