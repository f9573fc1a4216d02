package kpi

import (
	"errors"
	"strings"
)

// ParseDollars reads an amount of dollars typed by a person ("12", "12.5", "1,234.56", "$40")
// into integer cents, exactly (no floating point): at most two decimals, commas only between
// groups of three digits, no sign, at most $999,999,999.99.
func ParseDollars(s string) (int64, error) {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "$"))
	if s == "" {
		return 0, errors.New("want an amount in dollars, such as 12.50")
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	if strings.Contains(whole, ",") {
		groups := strings.Split(whole, ",")
		for i, g := range groups {
			if (i == 0 && (len(g) < 1 || len(g) > 3)) || (i > 0 && len(g) != 3) {
				return 0, errors.New("commas only between groups of three digits")
			}
		}
		whole = strings.Join(groups, "")
	}
	if whole == "" {
		whole = "0"
	}
	if hasFrac && (len(frac) < 1 || len(frac) > 2) {
		return 0, errors.New("at most two digits after the decimal point")
	}
	if len(whole) > 9 {
		return 0, errors.New("at most $999,999,999.99")
	}
	var cents int64
	for _, r := range whole + (frac + "00")[:2] {
		if r < '0' || r > '9' {
			return 0, errors.New("want an amount in dollars, such as 12.50 (digits, one decimal point)")
		}
		cents = cents*10 + int64(r-'0')
	}
	return cents, nil
}
