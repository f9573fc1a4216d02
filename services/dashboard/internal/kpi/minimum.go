package kpi

import "time"

// MinimumEnrollment is what the weekly-minimum figure needs of one enrollment: its clinic-local
// start date, the clinic-local date it ended (nil while it holds its seat), its program's weekly
// minimum and length, and the minutes attended per clinic-local date (latest attendance version).
type MinimumEnrollment struct {
	Start          time.Time  // clinic-local date, 00:00 UTC
	End            *time.Time // clinic-local date the enrollment ended; nil: not ended
	MinimumMinutes int        // the program's weekly minimum (ProgramConfigured)
	LengthWeeks    int        // the program's length in weeks; 0: unknown (no limit)
	Minutes        map[time.Time]int
}

// ProgramWeek is one complete program week of an enrollment: its last day and whether the
// minutes attended in it reached the program's weekly minimum.
type ProgramWeek struct {
	Last time.Time // clinic-local date, 00:00 UTC
	Met  bool
}

// MinimumWeeks lists the program weeks of e that count for the range r as of the clinic-local
// date today. Week k of an enrollment is the days [start+7k, start+7k+7). A week counts when its
// last day falls in r (on or after r.From, on or before r.To) and before today (it is complete),
// when it is within the program's length (when known), and when the enrollment was active
// through it (not ended before its last day). It is met when the minutes attended on its days
// reach the minimum.
func MinimumWeeks(e MinimumEnrollment, r Range, today time.Time) []ProgramWeek {
	today = dateOf(today)
	start := dateOf(e.Start)
	var out []ProgramWeek
	for k := 0; e.LengthWeeks <= 0 || k < e.LengthWeeks; k++ {
		from := start.AddDate(0, 0, 7*k)
		last := from.AddDate(0, 0, 6)
		if last.After(r.To) || !last.Before(today) {
			break
		}
		if last.Before(r.From) {
			continue
		}
		if e.End != nil && dateOf(*e.End).Before(last) {
			break
		}
		minutes := 0
		for d := from; !d.After(last); d = d.AddDate(0, 0, 1) {
			minutes += e.Minutes[d]
		}
		out = append(out, ProgramWeek{Last: last, Met: minutes >= e.MinimumMinutes})
	}
	return out
}

// dateOf is t's calendar date at 00:00 UTC (t is already a clinic-local date or time).
func dateOf(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// CountWeeks counts the weeks and those met.
func CountWeeks(ws []ProgramWeek) (weeks, met int) {
	for _, w := range ws {
		weeks++
		if w.Met {
			met++
		}
	}
	return weeks, met
}
