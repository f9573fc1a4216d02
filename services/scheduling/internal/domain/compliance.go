package domain

import (
	"slices"
	"time"
)

// Compliance and risk (docs/scheduling.md, "Compliance and risk"): how much of the program's
// weekly minimum a patient attends, and the rules that flag a patient at risk.
//
// Program weeks run 7 days from the enrollment's start date (clinic-local dates). A week's
// attended minutes are the current attendance minutes of the enrollment's appointments whose
// local date falls in it. The last StepDownWeeks weeks of the program are step-down weeks:
// they count as meeting the minimum whatever was attended. A week is complete once its last
// day has passed (clinic-local today is after it).
//
// At-risk rules (a patient is at risk when any holds; the reasons are the ones that hold):
//   - RiskConsecutiveAbsences: the latest ConsecutiveAbsences recorded attendances of the
//     enrollment (by start time) are all absent. Excused attendances are skipped: they neither
//     count as an absence nor break a run of absences.
//   - RiskUnderWeeklyMinimum: the latest WeeksUnderMinimum complete weeks all fell short of
//     the minimum (step-down weeks never do, so they end such a run).

// Risk reasons.
const (
	RiskConsecutiveAbsences = "consecutive_absences"
	RiskUnderWeeklyMinimum  = "under_weekly_minimum"
)

// RiskConfig holds the at-risk rules' thresholds.
type RiskConfig struct {
	ConsecutiveAbsences int // absences running that flag a patient (default 2)
	WeeksUnderMinimum   int // complete weeks running under the minimum that flag a patient (default 2)
	StepDownWeeks       int // last weeks of a program that count as meeting the minimum (default 2)
}

// DefaultRiskConfig is the configuration by default.
func DefaultRiskConfig() RiskConfig {
	return RiskConfig{ConsecutiveAbsences: 2, WeeksUnderMinimum: 2, StepDownWeeks: 2}
}

// WithDefaults returns c with its non-positive thresholds (step-down: negative) replaced by
// the defaults.
func (c RiskConfig) WithDefaults() RiskConfig {
	d := DefaultRiskConfig()
	if c.ConsecutiveAbsences <= 0 {
		c.ConsecutiveAbsences = d.ConsecutiveAbsences
	}
	if c.WeeksUnderMinimum <= 0 {
		c.WeeksUnderMinimum = d.WeeksUnderMinimum
	}
	if c.StepDownWeeks < 0 {
		c.StepDownWeeks = d.StepDownWeeks
	}
	return c
}

// AttendedVisit is one appointment of an enrollment with its current attendance.
type AttendedVisit struct {
	Date     time.Time // clinic-local date, at 00:00 UTC
	StartsAt time.Time
	Status   string // an Attendance* status
	Minutes  int    // attended minutes
}

// ComplianceWeek is one program week of an enrollment.
type ComplianceWeek struct {
	Week            int       // 1-based
	From, To        time.Time // clinic-local dates (00:00 UTC), inclusive
	AttendedMinutes int
	MinimumMinutes  int
	StepDown        bool
	MeetsMinimum    bool
	Complete        bool
}

// ProgramEnd is the last day of a program of lengthWeeks weeks starting on start.
func ProgramEnd(start time.Time, lengthWeeks int) time.Time {
	return start.AddDate(0, 0, lengthWeeks*7-1)
}

// LocalDate is the clinic-local date of t in loc, at 00:00 UTC.
func LocalDate(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// ProgramWeeks returns every week of a program of lengthWeeks weeks starting on start, with
// the minutes attended in visits, as of the clinic-local date today.
func ProgramWeeks(start time.Time, lengthWeeks, minimum, stepDownWeeks int, today time.Time, visits []AttendedVisit) []ComplianceWeek {
	weeks := make([]ComplianceWeek, lengthWeeks)
	for i := range weeks {
		from := start.AddDate(0, 0, 7*i)
		to := from.AddDate(0, 0, 6)
		w := ComplianceWeek{Week: i + 1, From: from, To: to, MinimumMinutes: minimum,
			StepDown: i >= lengthWeeks-stepDownWeeks, Complete: today.After(to)}
		for _, v := range visits {
			if !v.Date.Before(from) && !v.Date.After(to) {
				w.AttendedMinutes += v.Minutes
			}
		}
		w.MeetsMinimum = w.StepDown || w.AttendedMinutes >= minimum
		weeks[i] = w
	}
	return weeks
}

// RiskReasons returns the at-risk rules that hold (in the order of the constants), none when
// the patient is not at risk.
func RiskReasons(c RiskConfig, weeks []ComplianceWeek, visits []AttendedVisit) []string {
	var out []string
	if consecutiveAbsences(c.ConsecutiveAbsences, visits) {
		out = append(out, RiskConsecutiveAbsences)
	}
	if underMinimum(c.WeeksUnderMinimum, weeks) {
		out = append(out, RiskUnderWeeklyMinimum)
	}
	return out
}

func consecutiveAbsences(n int, visits []AttendedVisit) bool {
	if n <= 0 {
		return false
	}
	sorted := slices.Clone(visits)
	slices.SortStableFunc(sorted, func(a, b AttendedVisit) int { return a.StartsAt.Compare(b.StartsAt) })
	run := 0
	for i := len(sorted) - 1; i >= 0 && run < n; i-- {
		switch sorted[i].Status {
		case AttendanceExcused:
			continue
		case AttendanceAbsent:
			run++
		default:
			return false
		}
	}
	return run >= n
}

// AbsenceRunDecided reports whether RiskConsecutiveAbsences (with n absences) is decided by
// the visits that started at or after from: visits is an enrollment's visits of which only
// those that started before from may be missing, and the rule, walking back from the latest
// visit, ends (on a visit that is neither excused nor absent, or on the n-th absence) before
// it reaches a visit that started before from. Then the missing visits, which all started
// before from, cannot change it.
func AbsenceRunDecided(n int, visits []AttendedVisit, from time.Time) bool {
	if n <= 0 {
		return true
	}
	sorted := slices.Clone(visits)
	slices.SortStableFunc(sorted, func(a, b AttendedVisit) int { return a.StartsAt.Compare(b.StartsAt) })
	run := 0
	for i := len(sorted) - 1; i >= 0; i-- {
		v := sorted[i]
		if v.StartsAt.Before(from) {
			return false
		}
		switch v.Status {
		case AttendanceExcused:
			continue
		case AttendanceAbsent:
			if run++; run >= n {
				return true
			}
		default:
			return true
		}
	}
	return false
}

func underMinimum(n int, weeks []ComplianceWeek) bool {
	if n <= 0 {
		return false
	}
	run := 0
	for i := len(weeks) - 1; i >= 0 && run < n; i-- {
		w := weeks[i]
		if !w.Complete {
			continue
		}
		if w.MeetsMinimum {
			return false
		}
		run++
	}
	return run >= n
}

// WeeksMeetingMinimum counts the weeks that meet the minimum.
func WeeksMeetingMinimum(weeks []ComplianceWeek) int {
	n := 0
	for _, w := range weeks {
		if w.MeetsMinimum {
			n++
		}
	}
	return n
}
