package store

import (
	"time"

	"github.com/trellis-health/trellis/services/dashboard/internal/kpi"
)

// parts splits r for reading a daily rollup together with its weekly one (migration 00008) and
// returns the query parameters $5 to $8 that the conditions daily and weekly below use (with
// r.From and r.To as $3 and $4): the whole Monday-start weeks inside r, Mondays $7 to $8 (none
// when $7 is after $8), come from the weekly rollup; the days of r before the first of them
// ($3 to $5) and after the last ($6 to $4) from the daily one. A week is whole only if its
// Sunday is also before limit (the zero time: no limit).
func parts(r kpi.Range, limit time.Time) []any {
	from, to := date(r.From), date(r.To)
	first := kpi.Monday(from)
	if first.Before(from) {
		first = first.AddDate(0, 0, 7)
	}
	last := kpi.Monday(to.AddDate(0, 0, -6))
	if !limit.IsZero() {
		if l := kpi.Monday(date(limit).AddDate(0, 0, -7)); l.Before(last) {
			last = l
		}
	}
	if first.After(last) { // no whole week: every day from the daily rollup
		return []any{to, to.AddDate(0, 0, 1), first, last}
	}
	return []any{first.AddDate(0, 0, -1), last.AddDate(0, 0, 7), first, last}
}

// daily is the condition on a daily rollup's date column for the days parts leaves to it.
func daily(column string) string {
	return "(" + column + " BETWEEN $3 AND $5 OR " + column + " BETWEEN $6 AND $4)"
}

// weekly is the condition on a weekly rollup's monday column for the weeks parts gives it.
const weekly = "monday BETWEEN $7 AND $8"

// date is t's calendar date at 00:00 UTC.
func date(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
