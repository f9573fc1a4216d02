// Package money is integer cents: amounts are never floats.
package money

import (
	"strconv"
)

// Cents is an amount of money in US cents.
type Cents int64

// String formats c as dollars with thousands separators: "$1,234.56", "-$12.00".
func (c Cents) String() string {
	neg := c < 0
	u := uint64(c)
	if neg {
		u = uint64(-(c + 1)) + 1 // also right for the most negative value
	}
	dollars, cents := u/100, u%100
	d := strconv.FormatUint(dollars, 10)
	var b []byte
	if neg {
		b = append(b, '-')
	}
	b = append(b, '$')
	for i := range len(d) {
		if i > 0 && (len(d)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, d[i])
	}
	b = append(b, '.', byte('0'+cents/10), byte('0'+cents%10))
	return string(b)
}

// Percent returns pct percent of c, rounded to the cent half away from zero
// (Percent(5, 50) is 3 cents, Percent(-5, 50) is -3).
func Percent(c Cents, pct int) Cents {
	p := int64(c) * int64(pct)
	q, r := p/100, p%100
	switch {
	case r >= 50:
		q++
	case r <= -50:
		q--
	}
	return Cents(q)
}
