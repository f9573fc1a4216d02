package kpi

import "testing"

func TestParseDollars(t *testing.T) {
	good := map[string]int64{"12": 1200, "12.5": 1250, "12.50": 1250, "0.07": 7, ".5": 50, "$40": 4000, " 1,234.56 ": 123456,
		"999,999,999.99": 99999999999, "0.1": 10, "19.99": 1999, "0": 0}
	for in, want := range good {
		got, err := ParseDollars(in)
		if err != nil || got != want {
			t.Errorf("ParseDollars(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "$", "-5", "1.234", "12.", "1e3", "12,34", "1,2345", "abc", "1000000000", "1.2.3", "+4", "NaN", "½"} {
		if got, err := ParseDollars(in); err == nil {
			t.Errorf("ParseDollars(%q) = %d, want an error", in, got)
		}
	}
}
