package domain

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestDivRoundHalfUp(t *testing.T) {
	for _, c := range []struct{ n, d, want int64 }{
		{0, 60, 0}, {29, 60, 0}, {30, 60, 1}, {59, 60, 1}, {90, 60, 2}, {89, 60, 1},
		{-30, 60, -1}, {-29, 60, 0}, {7, 2, 4}, {5, 3, 2},
	} {
		if got := DivRoundHalfUp(c.n, c.d); got != c.want {
			t.Errorf("DivRoundHalfUp(%d, %d) = %d, want %d", c.n, c.d, got, c.want)
		}
	}
}

func TestClinicianCostCents(t *testing.T) {
	for _, c := range []struct {
		name           string
		minutes, rate  int64
		want           int64
		roundingRemark string
	}{
		{"one hour", 60, 9000, 9000, ""},
		{"ninety minutes", 90, 9000, 13500, ""},
		{"odd minutes round half up", 50, 7001, 5834, "350050/60 = 5834.17"},
		{"exactly half a cent", 1, 30, 1, "30/60 = 0.5 -> 1"},
		{"below half a cent", 1, 29, 0, ""},
		{"no rate", 120, 0, 0, ""},
	} {
		if got := ClinicianCostCents(c.minutes * c.rate); got != c.want {
			t.Errorf("%s: %d, want %d %s", c.name, got, c.want, c.roundingRemark)
		}
	}
}

func TestProrateMonth(t *testing.T) {
	for _, c := range []struct {
		name     string
		amount   int64
		month    string
		from, to string
		want     int64
	}{
		{"whole month", 300000, "2026-04-01", "2026-04-01", "2026-04-30", 300000},
		{"range covers more", 300000, "2026-04-01", "2026-03-15", "2026-05-10", 300000},
		{"first half of April (15/30)", 300000, "2026-04-01", "2026-04-01", "2026-04-15", 150000},
		{"one day of February 2026 (1/28)", 280000, "2026-02-01", "2026-02-10", "2026-02-10", 10000},
		{"leap February (1/29)", 290000, "2028-02-01", "2028-02-29", "2028-02-29", 10000},
		{"10 days of 31, rounded half up", 100000, "2026-03-01", "2026-03-22", "2026-03-31", 32258},
		{"outside", 300000, "2026-04-01", "2026-05-01", "2026-05-31", 0},
		{"ends before", 300000, "2026-04-01", "2026-03-01", "2026-03-31", 0},
	} {
		if got := ProrateMonth(c.amount, day(c.month), day(c.from), day(c.to)); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func TestAllocateByWeight(t *testing.T) {
	for _, c := range []struct {
		name    string
		total   int64
		weights []int64
		want    []int64
	}{
		{"even", 100, []int64{1, 1}, []int64{50, 50}},
		{"thirds: remainder to the earliest", 100, []int64{1, 1, 1}, []int64{34, 33, 33}},
		{"largest remainder", 10, []int64{1, 2, 4}, []int64{1, 3, 6}},
		{"zero weight gets nothing", 7, []int64{0, 3}, []int64{0, 7}},
		{"all zero", 7, []int64{0, 0}, nil},
		{"nothing to share", 0, []int64{2, 5}, []int64{0, 0}},
	} {
		got := AllocateByWeight(c.total, c.weights)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
		var sum int64
		for _, g := range got {
			sum += g
		}
		if got != nil && sum != c.total {
			t.Errorf("%s: parts sum to %d, want %d", c.name, sum, c.total)
		}
	}
}

func TestValidateCostInputs(t *testing.T) {
	const clinic = "0192f0c0-0000-7000-8000-0000000000c1"
	rules := func(err error) []string {
		var ve *ValidationError
		if !errors.As(err, &ve) {
			return nil
		}
		var out []string
		for _, v := range ve.Violations {
			out = append(out, v.Field+" "+v.Rule)
		}
		return out
	}
	if _, err := ValidateCostRate(CostRate{ClinicID: "x", HourlyCostCents: -1}); !slices.Equal(rules(err),
		[]string{"clinic_id clinic_id.uuid", "hourly_cost_cents hourly_cost_cents.range"}) {
		t.Errorf("cost rate: %v", err)
	}
	f, err := ValidateFixedCost(FixedCost{ClinicID: clinic, Month: "2026-04", Label: " rent ", AmountCents: 1})
	if err != nil || f.Month != "2026-04-01" || f.Label != "rent" {
		t.Errorf("fixed cost = %+v, %v", f, err)
	}
	if _, err := ValidateFixedCost(FixedCost{ClinicID: clinic, Month: "2026-13", Label: ""}); !slices.Equal(rules(err),
		[]string{"month month.format", "label label.length"}) {
		t.Errorf("fixed cost: %v", err)
	}
	for _, c := range []struct {
		from, to, group string
		want            []string
	}{
		{"2026-04-01", "2026-04-30", GroupByClinic, nil},
		{"2026-04-31", "2026-04-30", GroupByClinic, []string{"from from.date"}},
		{"2026-04-02", "2026-04-01", GroupByPayer, []string{"to to.after_from"}},
		{"2026-01-01", "2027-01-01", GroupByProgram, nil}, // 366 days
		{"2026-01-01", "2027-01-02", GroupByProgram, []string{"to to.max_range"}},
		{"2026-01-01", "2026-12-31", "", []string{"group_by group_by.known"}},
	} {
		if got := rules(ValidateReportRange(c.from, c.to, c.group)); !slices.Equal(got, c.want) {
			t.Errorf("range %s..%s %q: %v, want %v", c.from, c.to, c.group, got, c.want)
		}
	}
}

func TestNewAttendanceFact(t *testing.T) {
	base := AttendanceFact{AppointmentID: "0192f0c0-0000-7000-8000-000000000001", PatientID: "0192f0c0-0000-7000-8000-000000000002",
		ClinicID: "0192f0c0-0000-7000-8000-000000000003", SourceEventID: "0192f0c0-0000-7000-8000-000000000004",
		LocalDate: "2026-04-06", AttendedMinutes: 170, ScheduledMinutes: 180, Version: 1}
	f, err := NewAttendanceFact(base, AttendanceLate)
	if err != nil || f.SessionKey != base.AppointmentID || f.AttendedMinutes != 170 {
		t.Fatalf("late: %+v, %v", f, err)
	}
	f, err = NewAttendanceFact(base, AttendanceAbsent)
	if err != nil || f.AttendedMinutes != 0 {
		t.Fatalf("absent: %+v, %v", f, err)
	}
	bad := base
	bad.PatientID, bad.LocalDate, bad.Version = "p", "06/04/2026", 0
	if _, err := NewAttendanceFact(bad, "unknown"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad: %v", err)
	}
}

func TestBuildCostReport(t *testing.T) {
	const a, b = "clinic-a", "clinic-b"
	// April 2026 (30 days), first half: the fixed costs count 15/30.
	in := ReportInput{
		From: day("2026-04-01"), To: day("2026-04-15"),
		Sessions: []SessionMinutes{
			// 600 minutes at $90/h = $900.00; 200 minutes at $75/h (100/3 -> $250.00).
			{ClinicID: a, ProgramCode: "sud-iop", Minutes: 600, MinuteCents: 600 * 9000},
			{ClinicID: a, ProgramCode: "mh-iop", Minutes: 200, MinuteCents: 200 * 7500},
			// 37 minutes at $1.01/h: 62.28 cents -> 62.
			{ClinicID: b, ProgramCode: "sud-iop", Minutes: 37, MinuteCents: 37 * 101},
		},
		FixedCosts: []FixedCost{
			{ClinicID: a, Month: "2026-04-01", Label: "rent", AmountCents: 300000}, // 150000 in range
			{ClinicID: b, Month: "2026-04-01", Label: "rent", AmountCents: 60000},  // 30000, b has no days
		},
		Days: []DayCount{
			{ClinicID: a, ProgramCode: "sud-iop", PayerID: "medicaid-il", Count: 2},
			{ClinicID: a, ProgramCode: "sud-iop", PayerID: "", Count: 1},
			{ClinicID: a, ProgramCode: "mh-iop", PayerID: "acme-health", Count: 1},
		},
		Episodes: []DayCount{{ClinicID: a, ProgramCode: "sud-iop", PayerID: "medicaid-il", Count: 1}},
		Revenue: []Revenue{
			{ClinicID: a, ProgramCode: "sud-iop", PayerID: "medicaid-il", ChargedCents: 50000, PaidCents: 40000},
			{ClinicID: a, ProgramCode: "mh-iop", PayerID: "acme-health", ChargedCents: 17000},
		},
	}
	t.Run("clinic", func(t *testing.T) {
		in := in
		in.GroupBy = GroupByClinic
		rows, total := BuildCostReport(in)
		want := []CostRow{
			{Key: a, AttendedPatientDays: 4, CompletedEpisodes: 1, ClinicianMinutes: 800, ClinicianCostCents: 115000,
				FixedCostCents: 150000, TotalCostCents: 265000, CostPerPatientDayCents: 66250, CostPerCompletedEpisodeCents: 265000,
				ChargedCents: 67000, PaidCents: 40000, MarginCents: 67000 - 265000, PaidMarginCents: 40000 - 265000},
			{Key: b, ClinicianMinutes: 37, ClinicianCostCents: 62, FixedCostCents: 30000, TotalCostCents: 30062,
				MarginCents: -30062, PaidMarginCents: -30062},
		}
		if !slices.Equal(rows, want) {
			t.Fatalf("rows\n%+v\nwant\n%+v", rows, want)
		}
		if total.TotalCostCents != 295062 || total.CostPerPatientDayCents != DivRoundHalfUp(295062, 4) {
			t.Errorf("total = %+v", total)
		}
	})
	t.Run("program", func(t *testing.T) {
		in := in
		in.GroupBy = GroupByProgram
		rows, total := BuildCostReport(in)
		// Clinic a's fixed 150000 shared 3:1 between sud-iop and mh-iop; clinic b's 30000 has
		// no days to be shared by.
		want := map[string][2]int64{ // key -> clinician, fixed
			"mh-iop":       {25000, 37500},
			"sud-iop":      {90000 + 62, 112500},
			KeyUnallocated: {0, 30000},
		}
		if len(rows) != len(want) {
			t.Fatalf("rows = %+v", rows)
		}
		for _, r := range rows {
			if w := want[r.Key]; r.ClinicianCostCents != w[0] || r.FixedCostCents != w[1] {
				t.Errorf("%s: clinician %d fixed %d, want %v", r.Key, r.ClinicianCostCents, r.FixedCostCents, w)
			}
		}
		if total.TotalCostCents != 295062 {
			t.Errorf("total cost = %d: every grouping must sum to the same cost", total.TotalCostCents)
		}
	})
	t.Run("payer", func(t *testing.T) {
		in := in
		in.GroupBy = GroupByPayer
		rows, total := BuildCostReport(in)
		// sud-iop clinician cost 90000 at clinic a: medicaid 2 days, unbilled 1 -> 60000 / 30000.
		// mh-iop 25000 -> acme. Fixed 150000 by clinic a's days 1:2:1 (acme, medicaid, unbilled).
		// Clinic b (62 + 30000) has no days: unallocated.
		want := map[string][3]int64{ // clinician, fixed, days
			"acme-health":  {25000, 37500, 1},
			"medicaid-il":  {60000, 75000, 2},
			KeyUnbilled:    {30000, 37500, 1},
			KeyUnallocated: {62, 30000, 0},
		}
		if len(rows) != len(want) {
			t.Fatalf("rows = %+v", rows)
		}
		for _, r := range rows {
			if w := want[r.Key]; r.ClinicianCostCents != w[0] || r.FixedCostCents != w[1] || r.AttendedPatientDays != w[2] {
				t.Errorf("%s: %+v, want %v", r.Key, r, w)
			}
		}
		if total.TotalCostCents != 295062 || total.ChargedCents != 67000 || total.PaidCents != 40000 {
			t.Errorf("total = %+v", total)
		}
	})
}
