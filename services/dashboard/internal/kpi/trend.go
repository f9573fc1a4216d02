package kpi

import (
	"strconv"
	"time"
)

// Monday is the Monday on or before the date d (weeks start on Monday, clinic-local).
func Monday(d time.Time) time.Time {
	d = dateOf(d)
	return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
}

// Week is one week of a trend, clipped to the range: its Monday (the key, also before the range
// for the first week) and the days of it inside the range.
type Week struct {
	Monday   time.Time
	From, To time.Time // inside the range
}

// Weeks lists the Monday-start weeks that overlap r, each clipped to r.
func Weeks(r Range) []Week {
	var out []Week
	for m := Monday(r.From); !m.After(r.To); m = m.AddDate(0, 0, 7) {
		w := Week{Monday: m, From: m, To: m.AddDate(0, 0, 6)}
		if w.From.Before(r.From) {
			w.From = dateOf(r.From)
		}
		if w.To.After(r.To) {
			w.To = dateOf(r.To)
		}
		out = append(out, w)
	}
	return out
}

// TrendNames are the overview's trend figures, in column order (data-kpi names).
var TrendNames = []string{"attendance_rate", "no_show_rate", "admissions", "census", "meeting_minimum"}

// WeekInputs are what one week's trend figures are computed from (a clinic's, or pooled).
type WeekInputs struct {
	// Attendance on the week's days in the range, latest version per appointment, by status.
	Attendance map[string]int
	// Admissions on a clinic-local date of the week in the range.
	Admissions int
	// Census at the end of the week (its last day in the range): enrollments seated on or
	// before it and not ended on or before it.
	Census int
	// Complete program weeks whose last day is in the week, and those meeting the minimum.
	MinimumWeeks, MinimumMet int
}

// Add merges o into in (counts add up).
func (in *WeekInputs) Add(o WeekInputs) {
	if in.Attendance == nil {
		in.Attendance = map[string]int{}
	}
	for k, v := range o.Attendance {
		in.Attendance[k] += v
	}
	in.Admissions += o.Admissions
	in.Census += o.Census
	in.MinimumWeeks += o.MinimumWeeks
	in.MinimumMet += o.MinimumMet
}

// WeekFigures are one week's trend figures; nil means unknown.
type WeekFigures struct {
	AttendanceRate *float64
	NoShowRate     *float64
	Admissions     int
	Census         int
	MeetingMinimum *float64
}

// ComputeWeek derives a week's figures.
func ComputeWeek(in WeekInputs) WeekFigures {
	return WeekFigures{AttendanceRate: AttendanceRate(in.Attendance), NoShowRate: NoShowRate(in.Attendance),
		Admissions: in.Admissions, Census: in.Census, MeetingMinimum: Ratio(in.MinimumMet, in.MinimumWeeks)}
}

// Map is the figures as display strings keyed by TrendNames.
func (f WeekFigures) Map() map[string]string {
	return map[string]string{"attendance_rate": Percent(f.AttendanceRate), "no_show_rate": Percent(f.NoShowRate),
		"admissions": strconv.Itoa(f.Admissions), "census": strconv.Itoa(f.Census), "meeting_minimum": Percent(f.MeetingMinimum)}
}

// Values is the figures as numbers keyed by TrendNames (rates 0..1, nil unknown).
func (f WeekFigures) Values() map[string]*float64 {
	a, c := float64(f.Admissions), float64(f.Census)
	return map[string]*float64{"attendance_rate": f.AttendanceRate, "no_show_rate": f.NoShowRate,
		"admissions": &a, "census": &c, "meeting_minimum": f.MeetingMinimum}
}
