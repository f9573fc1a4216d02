package domain

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// AbsenceRunDecided: whenever it says the visits from a time on decide the consecutive
// absences rule, the rule over those visits equals the rule over all of them, for histories
// of every mix (runs of excused visits included) and every cut; and it decides the plain
// cases.
func TestAbsenceRunDecided(t *testing.T) {
	statuses := []string{AttendancePresent, AttendanceLate, AttendanceLeftEarly, AttendanceAbsent, AttendanceAbsent,
		AttendanceExcused, AttendanceExcused}
	rng := rand.New(rand.NewPCG(1, 2))
	start := day("2026-01-05")
	decided := 0
	for range 20000 {
		visits := make([]AttendedVisit, rng.IntN(12))
		for i := range visits {
			d := start.AddDate(0, 0, rng.IntN(30))
			visits[i] = AttendedVisit{Date: d, StartsAt: d.Add(time.Duration(rng.IntN(3)) * 6 * time.Hour),
				Status: statuses[rng.IntN(len(statuses))]}
		}
		// As read: by start, ties in a fixed order (the appointment's id), the same in both reads.
		slices.SortStableFunc(visits, func(a, b AttendedVisit) int { return a.StartsAt.Compare(b.StartsAt) })
		from := start.AddDate(0, 0, rng.IntN(32)).Add(time.Duration(rng.IntN(4)) * 6 * time.Hour)
		var recent []AttendedVisit
		for _, v := range visits {
			// The recent ones, and some older ones (a query may return more than asked).
			if !v.StartsAt.Before(from) || rng.IntN(3) == 0 {
				recent = append(recent, v)
			}
		}
		for n := 1; n <= 3; n++ {
			if !AbsenceRunDecided(n, recent, from) {
				continue
			}
			decided++
			if got, want := consecutiveAbsences(n, recent), consecutiveAbsences(n, visits); got != want {
				t.Fatalf("n %d, from %v: decided %v on %v, all visits %v: %v", n, from, got, recent, want, visits)
			}
		}
	}
	if decided < 10000 {
		t.Errorf("decided only %d of 60,000 cases", decided)
	}

	v := func(d, status string) AttendedVisit { return visit(d, status, 0) }
	from := day("2026-03-10")
	for _, tt := range []struct {
		name   string
		visits []AttendedVisit
		want   bool
	}{
		{"latest present", []AttendedVisit{v("2026-03-11", AttendanceAbsent), v("2026-03-12", AttendancePresent)}, true},
		{"two absences", []AttendedVisit{v("2026-03-11", AttendanceAbsent), v("2026-03-12", AttendanceExcused), v("2026-03-13", AttendanceAbsent)}, true},
		{"one absence, then the cut", []AttendedVisit{v("2026-03-09", AttendanceAbsent), v("2026-03-13", AttendanceAbsent)}, false},
		{"only excused", []AttendedVisit{v("2026-03-11", AttendanceExcused)}, false},
		{"none", nil, false},
	} {
		if got := AbsenceRunDecided(2, tt.visits, from); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	if !AbsenceRunDecided(0, nil, from) {
		t.Error("n 0 (rule off) is not decided")
	}
}
