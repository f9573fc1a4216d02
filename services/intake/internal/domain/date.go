package domain

import (
	"errors"
	"time"
)

// Date is a calendar date without a time of day or zone (a date of birth, a clinic-local start
// date). It is stored as midnight UTC so that comparisons and arithmetic are exact.
type Date struct{ t time.Time }

// ErrNotADate is returned for strings that are not a real "YYYY-MM-DD" calendar date.
var ErrNotADate = errors.New("not a calendar date")

// ParseDate parses "YYYY-MM-DD" and rejects dates that do not exist (2026-02-30, 2025-13-01).
func ParseDate(s string) (Date, error) {
	// time.Parse checks the day against the month's length, leap years included.
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, ErrNotADate
	}
	return Date{t}, nil
}

// DateIn is the calendar date at instant t in loc.
func DateIn(t time.Time, loc *time.Location) Date {
	y, m, d := t.In(loc).Date()
	return Date{time.Date(y, m, d, 0, 0, 0, 0, time.UTC)}
}

// NewDate builds a date; out-of-range values normalize as time.Date does.
func NewDate(y int, m time.Month, d int) Date { return Date{time.Date(y, m, d, 0, 0, 0, 0, time.UTC)} }

// AddDays returns d shifted by n days.
func (d Date) AddDays(n int) Date { return Date{d.t.AddDate(0, 0, n)} }

// AddYears returns d shifted by n years (29 February normalizes to 1 March).
func (d Date) AddYears(n int) Date { return Date{d.t.AddDate(n, 0, 0)} }

// Before reports whether d is earlier than o.
func (d Date) Before(o Date) bool { return d.t.Before(o.t) }

// After reports whether d is later than o.
func (d Date) After(o Date) bool { return d.t.After(o.t) }

// IsZero reports whether d is the zero Date.
func (d Date) IsZero() bool { return d.t.IsZero() }

// Time is midnight UTC of d (for storage in a Postgres date column).
func (d Date) Time() time.Time { return d.t }

// String formats d as "YYYY-MM-DD".
func (d Date) String() string { return d.t.Format(time.DateOnly) }
