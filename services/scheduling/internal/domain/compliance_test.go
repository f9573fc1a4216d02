package domain

import (
	"slices"
	"testing"
	"time"
)

func day(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d
}

func visit(date, status string, minutes int) AttendedVisit {
	d := day(date)
	return AttendedVisit{Date: d, StartsAt: d.Add(18 * time.Hour), Status: status, Minutes: minutes}
}

func TestProgramWeeks(t *testing.T) {
	start := day("2026-03-02") // a Monday
	visits := []AttendedVisit{
		visit("2026-03-02", AttendancePresent, 180), visit("2026-03-08", AttendanceLate, 100), // week 1, both ends
		visit("2026-03-09", AttendancePresent, 180), // week 2
		visit("2026-03-01", AttendancePresent, 180), // before the program
		visit("2026-03-23", AttendancePresent, 180), // after it (3 weeks)
	}
	tests := []struct {
		name     string
		stepDown int
		today    string
		want     []ComplianceWeek
	}{
		{"first day: nothing complete", 1, "2026-03-02", []ComplianceWeek{
			{Week: 1, From: day("2026-03-02"), To: day("2026-03-08"), AttendedMinutes: 280, MinimumMinutes: 270, MeetsMinimum: true},
			{Week: 2, From: day("2026-03-09"), To: day("2026-03-15"), AttendedMinutes: 180, MinimumMinutes: 270},
			{Week: 3, From: day("2026-03-16"), To: day("2026-03-22"), MinimumMinutes: 270, StepDown: true, MeetsMinimum: true},
		}},
		{"last day of week 1: still running", 1, "2026-03-08", []ComplianceWeek{
			{Week: 1, From: day("2026-03-02"), To: day("2026-03-08"), AttendedMinutes: 280, MinimumMinutes: 270, MeetsMinimum: true},
			{Week: 2, From: day("2026-03-09"), To: day("2026-03-15"), AttendedMinutes: 180, MinimumMinutes: 270},
			{Week: 3, From: day("2026-03-16"), To: day("2026-03-22"), MinimumMinutes: 270, StepDown: true, MeetsMinimum: true},
		}},
		{"two step-down weeks, week 2 complete", 2, "2026-03-16", []ComplianceWeek{
			{Week: 1, From: day("2026-03-02"), To: day("2026-03-08"), AttendedMinutes: 280, MinimumMinutes: 270, MeetsMinimum: true, Complete: true},
			{Week: 2, From: day("2026-03-09"), To: day("2026-03-15"), AttendedMinutes: 180, MinimumMinutes: 270, StepDown: true, MeetsMinimum: true, Complete: true},
			{Week: 3, From: day("2026-03-16"), To: day("2026-03-22"), MinimumMinutes: 270, StepDown: true, MeetsMinimum: true},
		}},
		{"no step-down, all complete", 0, "2026-04-01", []ComplianceWeek{
			{Week: 1, From: day("2026-03-02"), To: day("2026-03-08"), AttendedMinutes: 280, MinimumMinutes: 270, MeetsMinimum: true, Complete: true},
			{Week: 2, From: day("2026-03-09"), To: day("2026-03-15"), AttendedMinutes: 180, MinimumMinutes: 270, Complete: true},
			{Week: 3, From: day("2026-03-16"), To: day("2026-03-22"), MinimumMinutes: 270, Complete: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ProgramWeeks(start, 3, 270, tt.stepDown, day(tt.today), visits)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("weeks =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
	if got := ProgramEnd(start, 3); !got.Equal(day("2026-03-22")) {
		t.Fatalf("ProgramEnd = %v", got)
	}
	if got := WeeksMeetingMinimum(ProgramWeeks(start, 3, 270, 0, day("2026-04-01"), visits)); got != 1 {
		t.Fatalf("WeeksMeetingMinimum = %d, want 1", got)
	}
	// A minimum of 0 is always met.
	if w := ProgramWeeks(start, 1, 0, 0, day("2026-04-01"), nil); !w[0].MeetsMinimum {
		t.Fatalf("minimum 0 = %+v", w)
	}
}

func TestLocalDate(t *testing.T) {
	loc, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	// 03:00 UTC on the 3rd is still the 2nd in Chicago.
	if got := LocalDate(time.Date(2026, 3, 3, 3, 0, 0, 0, time.UTC), loc); !got.Equal(day("2026-03-02")) {
		t.Fatalf("LocalDate = %v", got)
	}
}

func TestRiskReasons(t *testing.T) {
	c := DefaultRiskConfig()
	const (
		p, a, e, l = AttendancePresent, AttendanceAbsent, AttendanceExcused, AttendanceLate
	)
	seq := func(statuses ...string) []AttendedVisit {
		var out []AttendedVisit
		for i, s := range statuses {
			v := visit("2026-03-02", s, 0)
			v.StartsAt = v.StartsAt.Add(time.Duration(i) * time.Hour)
			out = append(out, v)
		}
		// Out of order on purpose: the rule orders by start time.
		slices.Reverse(out)
		return out
	}
	w := func(meets ...bool) []ComplianceWeek { // complete weeks, then one running week that does not meet
		var out []ComplianceWeek
		for i, m := range meets {
			out = append(out, ComplianceWeek{Week: i + 1, MeetsMinimum: m, Complete: true})
		}
		return append(out, ComplianceWeek{Week: len(meets) + 1})
	}
	tests := []struct {
		name   string
		cfg    RiskConfig
		weeks  []ComplianceWeek
		visits []AttendedVisit
		want   []string
	}{
		{"nothing recorded", c, w(), nil, nil},
		{"one absence", c, w(), seq(p, a), nil},
		{"two absences", c, w(), seq(p, a, a), []string{RiskConsecutiveAbsences}},
		{"absences then present", c, w(), seq(a, a, p), nil},
		{"absences then late", c, w(), seq(a, a, l), nil},
		{"excused between absences is skipped", c, w(), seq(p, a, e, a), []string{RiskConsecutiveAbsences}},
		{"excused at the end is skipped", c, w(), seq(a, a, e, e), []string{RiskConsecutiveAbsences}},
		{"excused does not count as absent", c, w(), seq(p, a, e), nil},
		{"only excused", c, w(), seq(e, e, e), nil},
		{"three absences needed", RiskConfig{ConsecutiveAbsences: 3, WeeksUnderMinimum: 2}, w(), seq(p, a, a), nil},
		{"three absences", RiskConfig{ConsecutiveAbsences: 3, WeeksUnderMinimum: 2}, w(), seq(a, a, a), []string{RiskConsecutiveAbsences}},
		{"one complete week under", c, w(true, false), nil, nil},
		{"two complete weeks under", c, w(true, false, false), nil, []string{RiskUnderWeeklyMinimum}},
		{"under, met, under", c, w(false, true, false), nil, nil},
		{"two under then met", c, w(false, false, true), nil, nil},
		{"running week does not count", c, w(false), nil, nil},
		{"step-down week meets", c, []ComplianceWeek{
			{Week: 1, Complete: true}, {Week: 2, Complete: true}, {Week: 3, Complete: true, StepDown: true, MeetsMinimum: true},
		}, nil, nil},
		{"both rules", c, w(false, false), seq(a, a), []string{RiskConsecutiveAbsences, RiskUnderWeeklyMinimum}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RiskReasons(tt.cfg, tt.weeks, tt.visits); !slices.Equal(got, tt.want) {
				t.Fatalf("RiskReasons = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRiskConfigDefaults(t *testing.T) {
	if got := (RiskConfig{StepDownWeeks: 0}).WithDefaults(); got != (RiskConfig{ConsecutiveAbsences: 2, WeeksUnderMinimum: 2, StepDownWeeks: 0}) {
		t.Fatalf("WithDefaults = %+v", got)
	}
	if got := (RiskConfig{ConsecutiveAbsences: 3, WeeksUnderMinimum: 1, StepDownWeeks: -1}).WithDefaults(); got != (RiskConfig{ConsecutiveAbsences: 3, WeeksUnderMinimum: 1, StepDownWeeks: 2}) {
		t.Fatalf("WithDefaults = %+v", got)
	}
}
