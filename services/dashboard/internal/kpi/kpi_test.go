package kpi

import (
	"testing"
	"time"
)

func TestRates(t *testing.T) {
	cases := []struct {
		name             string
		att              map[string]int
		attended, noShow string
	}{
		{"nothing recorded", nil, Unknown, Unknown},
		{"only excused", map[string]int{"excused": 3}, Unknown, Unknown},
		{"late and left early count as attended", map[string]int{"present": 5, "late": 1, "left_early": 1, "absent": 1}, "87.5%", "12.5%"},
		{"excused excluded from both", map[string]int{"present": 3, "absent": 1, "excused": 4}, "75.0%", "25.0%"},
		{"all absent", map[string]int{"absent": 2}, "0.0%", "100.0%"},
		{"thirds round to one decimal", map[string]int{"present": 2, "absent": 1}, "66.7%", "33.3%"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Percent(AttendanceRate(c.att)); got != c.attended {
				t.Errorf("attendance rate = %s, want %s", got, c.attended)
			}
			if got := Percent(NoShowRate(c.att)); got != c.noShow {
				t.Errorf("no-show rate = %s, want %s", got, c.noShow)
			}
		})
	}
}

func TestCompletionRate(t *testing.T) {
	cases := []struct {
		by   map[string]int
		want string
	}{
		{nil, Unknown},
		{map[string]int{"transferred": 2, "other": 1}, Unknown},
		{map[string]int{"completed": 3, "dropped_out": 4, "terminated": 1, "transferred": 5}, "37.5%"},
		{map[string]int{"completed": 2}, "100.0%"},
	}
	for _, c := range cases {
		if got := Percent(CompletionRate(c.by)); got != c.want {
			t.Errorf("CompletionRate(%v) = %s, want %s", c.by, got, c.want)
		}
	}
}

func TestMedian(t *testing.T) {
	cases := []struct {
		xs   []float64
		want string
	}{
		{nil, Unknown},
		{[]float64{4}, "4.0"},
		{[]float64{9, 1, 5}, "5.0"},
		{[]float64{1, 2, 4, 10}, "3.0"},
		{[]float64{0.5, 1.25}, "0.9"},
	}
	for _, c := range cases {
		if got := Days(Median(c.xs)); got != c.want {
			t.Errorf("Median(%v) = %s, want %s", c.xs, got, c.want)
		}
	}
	xs := []float64{3, 1, 2}
	Median(xs)
	if xs[0] != 3 {
		t.Error("Median sorted its argument")
	}
}

func TestCents(t *testing.T) {
	cases := map[int64]string{0: "$0.00", 5: "$0.05", 123456: "$1,234.56", 100000000: "$1,000,000.00", -250: "-$2.50", 99999: "$999.99"}
	for c, want := range cases {
		if got := Cents(c); got != want {
			t.Errorf("Cents(%d) = %s, want %s", c, got, want)
		}
	}
}

func TestComputeAndTotal(t *testing.T) {
	a := Inputs{Census: 10, Capacity: 24, Attendance: map[string]int{"present": 9, "absent": 1},
		DaysToAdmission: []float64{1, 3}, Discharges: map[string]int{"completed": 1, "dropped_out": 1}, LengthsOfStay: []float64{84}}
	b := Inputs{Census: 2, Capacity: 12, Attendance: map[string]int{"present": 1, "absent": 9},
		DaysToAdmission: []float64{2}, Discharges: map[string]int{"completed": 1}, LengthsOfStay: []float64{30, 40}}
	var total Inputs
	total.Add(a)
	total.Add(b)
	want := map[string]string{"census": "12", "capacity": "36", "attendance_rate": "50.0%", "no_show_rate": "50.0%",
		"meeting_minimum": Unknown, "days_to_admission": "2.0", "completion_rate": "66.7%", "median_length_of_stay": "40.0"}
	got := Compute(total).Map()
	for _, k := range Names {
		if got[k] != want[k] {
			t.Errorf("total %s = %s, want %s", k, got[k], want[k])
		}
	}
	if len(got) != len(Names) {
		t.Errorf("Map has %d figures, want %d", len(got), len(Names))
	}
}

func TestParseRange(t *testing.T) {
	today := time.Date(2026, 11, 29, 15, 4, 0, 0, time.UTC)
	cases := []struct {
		from, to         string
		wantFrom, wantTo string
		err              bool
	}{
		{"", "", "2026-11-02", "2026-11-29", false},
		{"2026-10-01", "2026-10-31", "2026-10-01", "2026-10-31", false},
		{"", "2026-10-31", "2026-10-04", "2026-10-31", false},
		{"2026-11-10", "", "2026-11-10", "2026-11-29", false},
		{"2026-12-10", "", "2026-12-10", "2027-01-06", false},
		{"2026-11-10", "2026-11-01", "", "", true},
		{"yesterday", "", "", "", true},
		{"2024-01-01", "2026-01-01", "", "", true},
	}
	for _, c := range cases {
		r, err := ParseRange(c.from, c.to, today)
		if c.err {
			if err == nil {
				t.Errorf("ParseRange(%q, %q) = %v, want an error", c.from, c.to, r)
			}
			continue
		}
		if err != nil || r.From.Format(time.DateOnly) != c.wantFrom || r.To.Format(time.DateOnly) != c.wantTo {
			t.Errorf("ParseRange(%q, %q) = %v..%v, %v; want %s..%s", c.from, c.to, r.From, r.To, err, c.wantFrom, c.wantTo)
		}
	}
}

func TestAgingBucket(t *testing.T) {
	cases := map[int]string{0: "0-30", 30: "0-30", 31: "31-60", 60: "31-60", 61: "61-90", 90: "61-90", 91: "91+", 400: "91+"}
	for d, want := range cases {
		if got := AgingBucket(d); got != want {
			t.Errorf("AgingBucket(%d) = %s, want %s", d, got, want)
		}
	}
}
