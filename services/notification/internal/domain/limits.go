package domain

import "time"

// TextLimits caps the texts one patient receives (TCPA healthcare exemption): at most PerDay in
// one local calendar day and PerWeek in the last seven local calendar days (today and the six
// before it), in the patient's zone. Zero or less means no cap of that kind.
type TextLimits struct {
	PerDay  int
	PerWeek int
}

// DefaultTextLimits are the caps when configuration gives none.
var DefaultTextLimits = TextLimits{PerDay: 1, PerWeek: 3}

// Allow reports whether one more text may go at now, given when the patient's earlier texts
// were sent (any order; older ones are ignored). Days are local calendar days in loc, so a day
// that is 23 or 25 hours long across a daylight-saving change is still one day.
func (l TextLimits) Allow(now time.Time, loc *time.Location, sent []time.Time) bool {
	today := localDay(now, loc)
	var day, week int
	for _, s := range sent {
		age := today - localDay(s, loc)
		if age < 0 {
			age = 0 // clock skew: a text sent "later today" still counts today
		}
		if age >= 7 {
			continue
		}
		week++
		if age == 0 {
			day++
		}
	}
	if l.PerDay > 0 && day >= l.PerDay {
		return false
	}
	return l.PerWeek <= 0 || week < l.PerWeek
}

// TextWindow is how far back Allow looks: callers load the texts sent since now - TextWindow.
const TextWindow = 8 * 24 * time.Hour

// localDay numbers t's calendar day in loc (days since 1970-01-01 of that local date).
func localDay(t time.Time, loc *time.Location) int {
	y, m, d := t.In(loc).Date()
	return int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}
