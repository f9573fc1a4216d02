package money

import (
	"math"
	"testing"
)

func TestString(t *testing.T) {
	tests := []struct {
		c    Cents
		want string
	}{
		{0, "$0.00"},
		{5, "$0.05"},
		{99, "$0.99"},
		{100, "$1.00"},
		{123456, "$1,234.56"},
		{100000, "$1,000.00"},
		{99999, "$999.99"},
		{12345678901, "$123,456,789.01"},
		{-1200, "-$12.00"},
		{-1, "-$0.01"},
		{-123456, "-$1,234.56"},
		{math.MaxInt64, "$92,233,720,368,547,758.07"},
		{math.MinInt64, "-$92,233,720,368,547,758.08"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("Cents(%d).String() = %q, want %q", int64(tt.c), got, tt.want)
		}
	}
}

func TestPercent(t *testing.T) {
	tests := []struct {
		c    Cents
		pct  int
		want Cents
	}{
		{25000, 75, 18750},
		{25000, 0, 0},
		{25000, 100, 25000},
		{5, 50, 3},     // 2.5 -> 3
		{-5, 50, -3},   // -2.5 -> -3
		{3, 50, 2},     // 1.5 -> 2
		{1, 49, 0},     // 0.49 -> 0
		{-1, 49, 0},    // -0.49 -> 0
		{1, 51, 1},     // 0.51 -> 1
		{-1, 51, -1},   // -0.51 -> -1
		{333, 33, 110}, // 109.89 -> 110
		{8500, 25, 2125},
		{101, 150, 152}, // 151.5 -> 152
	}
	for _, tt := range tests {
		if got := Percent(tt.c, tt.pct); got != tt.want {
			t.Errorf("Percent(%d, %d) = %d, want %d", tt.c, tt.pct, got, tt.want)
		}
	}
}
