package domain

import (
	"errors"
	"fmt"
	"time"
)

// QuietHours are local times ("HH:MM", in the patient's zone) between which no patient message
// goes out. Start after End spans midnight (21:00-08:00); equal or empty times mean none.
type QuietHours struct {
	Start, End string
}

// NewQuietHours validates quiet hours: both "HH:MM" (00:00-23:59) or both empty.
func NewQuietHours(start, end string) (QuietHours, error) {
	if start == "" && end == "" {
		return QuietHours{}, nil
	}
	if _, err := clockMinutes(start); err != nil {
		return QuietHours{}, fmt.Errorf("quiet_hours.start: %w", err)
	}
	if _, err := clockMinutes(end); err != nil {
		return QuietHours{}, fmt.Errorf("quiet_hours.end: %w", err)
	}
	return QuietHours{Start: start, End: end}, nil
}

// clockMinutes parses "HH:MM" into minutes after midnight.
func clockMinutes(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, errors.New(`must be "HH:MM" between 00:00 and 23:59`)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// Set reports whether there are quiet hours.
func (q QuietHours) Set() bool {
	s, err1 := clockMinutes(q.Start)
	e, err2 := clockMinutes(q.End)
	return err1 == nil && err2 == nil && s != e
}

// Until reports whether t falls inside the quiet hours in loc and, if so, when they end: the
// next wall-clock End in loc after t. Local wall-clock times are compared, so the rule holds
// across daylight-saving changes (an End that does not exist that day, inside a spring-forward
// gap, is normalised by time.Date to the instant just after the gap).
func (q QuietHours) Until(t time.Time, loc *time.Location) (end time.Time, inside bool) {
	if !q.Set() {
		return time.Time{}, false
	}
	s, _ := clockMinutes(q.Start)
	e, _ := clockMinutes(q.End)
	lt := t.In(loc)
	m := wallMinutes(t, loc)
	if s < e {
		inside = m >= s && m < e
	} else {
		inside = m >= s || m < e
	}
	if !inside {
		return time.Time{}, false
	}
	y, mo, d := lt.Date()
	if m >= e { // before midnight (spanning quiet hours): they end tomorrow
		d++
	}
	end = time.Date(y, mo, d, e/60, e%60, 0, 0, loc)
	// An End inside a spring-forward gap (02:30 on a day that skips from 02:00 to 03:00) does
	// not exist: time.Date may resolve it before the gap, still inside quiet hours. Quiet
	// hours end at the first instant whose wall clock reaches End: the end of the gap.
	day := end.In(loc).Day()
	for i := 0; i < 24*60 && wallMinutes(end, loc) < e && end.In(loc).Day() == day; i++ {
		end = end.Add(time.Minute)
	}
	return end, true
}

func wallMinutes(t time.Time, loc *time.Location) int {
	lt := t.In(loc)
	return lt.Hour()*60 + lt.Minute()
}
