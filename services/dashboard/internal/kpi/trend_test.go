package kpi

import "testing"

func TestWeeks(t *testing.T) {
	// 2026-03-04 is a Wednesday; 2026-03-17 a Tuesday.
	ws := Weeks(Range{d("2026-03-04"), d("2026-03-17")})
	want := []Week{
		{d("2026-03-02"), d("2026-03-04"), d("2026-03-08")},
		{d("2026-03-09"), d("2026-03-09"), d("2026-03-15")},
		{d("2026-03-16"), d("2026-03-16"), d("2026-03-17")},
	}
	if len(ws) != len(want) {
		t.Fatalf("weeks %v", ws)
	}
	for i := range ws {
		if !ws[i].Monday.Equal(want[i].Monday) || !ws[i].From.Equal(want[i].From) || !ws[i].To.Equal(want[i].To) {
			t.Errorf("week %d = %v, want %v", i, ws[i], want[i])
		}
	}
	if m := Monday(d("2026-03-08")); !m.Equal(d("2026-03-02")) {
		t.Errorf("Monday of a Sunday = %v", m)
	}
	if m := Monday(d("2026-03-09")); !m.Equal(d("2026-03-09")) {
		t.Errorf("Monday of a Monday = %v", m)
	}
	if n := len(Weeks(Range{d("2026-03-09"), d("2026-03-09")})); n != 1 {
		t.Errorf("one day: %d weeks", n)
	}
}

func TestWeekFigures(t *testing.T) {
	var in WeekInputs
	in.Add(WeekInputs{Attendance: map[string]int{"present": 3, "absent": 1}, Admissions: 2, Census: 5, MinimumWeeks: 2, MinimumMet: 1})
	in.Add(WeekInputs{Attendance: map[string]int{"late": 1, "excused": 4}, Admissions: 1, Census: 1, MinimumWeeks: 2, MinimumMet: 2})
	got := ComputeWeek(in).Map()
	want := map[string]string{"attendance_rate": "80.0%", "no_show_rate": "20.0%", "admissions": "3", "census": "6", "meeting_minimum": "75.0%"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %s, want %s", k, got[k], v)
		}
	}
	if got := ComputeWeek(WeekInputs{}).Map(); got["attendance_rate"] != Unknown || got["census"] != "0" {
		t.Errorf("empty week: %v", got)
	}
}
