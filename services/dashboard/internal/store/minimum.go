package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/services/dashboard/internal/kpi"
)

// WeekCount is a number of complete program weeks and how many of them met the weekly minimum.
type WeekCount struct{ Weeks, Met int }

// MinimumCounts are, per clinic, the complete program weeks (kpi.MinimumWeeks) counted by the
// Monday of the week holding their last day (clinic-local).
type MinimumCounts map[string]map[time.Time]WeekCount

// Total is a clinic's weeks and weeks met, over every Monday.
func (m MinimumCounts) Total(clinic string) (weeks, met int) {
	for _, c := range m[clinic] {
		weeks += c.Weeks
		met += c.Met
	}
	return weeks, met
}

// add counts n weeks (met of them) on each Monday from first to last.
func (m MinimumCounts) add(clinic string, first, last time.Time, n, met int) {
	byWeek := m[clinic]
	if byWeek == nil {
		byWeek = map[time.Time]WeekCount{}
		m[clinic] = byWeek
	}
	for d := first; !d.After(last); d = d.AddDate(0, 0, 7) {
		c := byWeek[d]
		c.Weeks += n
		c.Met += met
		byWeek[d] = c
	}
}

// MinimumWeeks counts, per in-scope clinic, the complete program weeks (kpi.MinimumWeeks) whose
// last day falls in r, as of now in each clinic's time zone, and those meeting the weekly
// minimum: every enrollment with a start date whose track's program has a known weekly minimum
// (ProgramConfigured), with the minutes attended per program week (the latest attendance
// version). An enrollment whose program's minimum is unknown has no weeks here: the figure
// leaves it out.
//
// The weeks are counted from the enrollments (week k of an enrollment ends on start+7k+6; the
// weeks that count are a run of k, from the range, today, the program's length and the
// enrollment's end), the weeks met from the rollups minimum_met_weekly and minimum_met_days
// (migration 00008), which the projections keep per clinic and week or last day: neither reads
// an attendance row.
func (s *Store) MinimumWeeks(ctx context.Context, sc Scope, r kpi.Range, now time.Time) (MinimumCounts, error) {
	return read(ctx, s, func(tx pgx.Tx) (MinimumCounts, error) {
		// Each clinic's today, in its time zone (as kpi.MinimumWeeks is given it); UTC for an
		// enrollment of a clinic without a row.
		rows, err := tx.Query(ctx, `SELECT clinic_id::text, time_zone FROM clinics WHERE `+sc.where("clinic_id"), sc.All, sc.ids())
		if err != nil {
			return nil, err
		}
		var ids []string
		var todays []time.Time
		for rows.Next() {
			var id, zone string
			if err := rows.Scan(&id, &zone); err != nil {
				rows.Close()
				return nil, err
			}
			ids, todays = append(ids, id), append(todays, localToday(now, zone))
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		// The whole weeks read from minimum_met_weekly end before every clinic's today.
		utcToday := localToday(now, "")
		limit := utcToday
		for _, d := range todays {
			if d.Before(limit) {
				limit = d
			}
		}
		args := append([]any{sc.All, sc.ids(), r.From, r.To}, parts(r, limit)...)
		args = append(args, utcToday, ids, todays)
		out := MinimumCounts{}
		// The weeks: per enrollment the first and last k that count (an empty run when the
		// first is after the last); the enrollment counts one week on each Monday from its first
		// week's (+1 there) to its last week's (-1 the Monday after), the changes summed per
		// clinic and Monday here and added up week by week below. A program whose minimum is 0
		// or less has every week met.
		rows, err = tx.Query(ctx, `WITH e AS (
				SELECT e.clinic_id, e.start_date AS s, p.weekly_minimum_minutes <= 0 AS all_met,
					greatest(0, ceil(($3::date - e.start_date - 6)::float8 / 7))::int AS kmin,
					least(floor(($4::date - e.start_date - 6)::float8 / 7),
						floor((coalesce(t.today, $5::date) - e.start_date - 7)::float8 / 7),
						CASE WHEN p.length_weeks > 0 THEN p.length_weeks - 1 END,
						CASE WHEN e.ended_at IS NOT NULL THEN floor((`+localDate("e.ended_at")+` - e.start_date - 6)::float8 / 7) END)::int AS kmax
				FROM enrollments e
				JOIN tracks tr ON tr.track_id = e.track_id
				JOIN programs p ON p.program_code = tr.program_code
				LEFT JOIN clinics c ON c.clinic_id = e.clinic_id
				LEFT JOIN unnest($6::uuid[], $7::date[]) AS t (clinic_id, today) ON t.clinic_id = e.clinic_id
				WHERE e.start_date IS NOT NULL AND e.start_date <= $4
					AND (e.ended_at IS NULL OR `+localDate("e.ended_at")+` >= $3::date - 6) AND `+sc.where("e.clinic_id")+`)
			SELECT clinic_id::text, m, sum(n)::int, (sum(n) FILTER (WHERE all_met))::int FROM (
				SELECT clinic_id, `+monday("s + 7 * kmin + 6")+` AS m, 1 AS n, all_met FROM e WHERE kmax >= kmin
				UNION ALL
				SELECT clinic_id, `+monday("s + 7 * kmax + 6")+` + 7, -1, all_met FROM e WHERE kmax >= kmin) x
			GROUP BY 1, 2`, sc.All, sc.ids(), r.From, r.To, utcToday, ids, todays)
		if err != nil {
			return nil, err
		}
		changes := map[string]map[time.Time]WeekCount{}
		for rows.Next() {
			var id string
			var m time.Time
			var n int
			var met *int
			if err := rows.Scan(&id, &m, &n, &met); err != nil {
				rows.Close()
				return nil, err
			}
			if changes[id] == nil {
				changes[id] = map[time.Time]WeekCount{}
			}
			c := WeekCount{Weeks: n}
			if met != nil {
				c.Met = *met
			}
			changes[id][m] = c
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		for id, byMonday := range changes {
			var run WeekCount
			for _, w := range kpi.Weeks(r) {
				c := byMonday[w.Monday]
				run.Weeks += c.Weeks
				run.Met += c.Met
				if run != (WeekCount{}) {
					out.add(id, w.Monday, w.Monday, run.Weeks, run.Met)
				}
			}
		}
		// The weeks met (minimum above 0): in the range and before the clinic's today; whole
		// weeks by Monday from minimum_met_weekly, the days at the range's ends by last day.
		rows, err = tx.Query(ctx, `SELECT clinic_id::text, monday, sum(met)::int FROM (
				SELECT clinic_id, monday, met FROM minimum_met_weekly WHERE `+weekly+` AND `+sc.where("clinic_id")+`
				UNION ALL
				SELECT d.clinic_id, `+monday("d.last_day")+`, d.met
				FROM minimum_met_days d LEFT JOIN unnest($10::uuid[], $11::date[]) AS t (clinic_id, today) ON t.clinic_id = d.clinic_id
				WHERE `+daily("d.last_day")+` AND d.last_day < coalesce(t.today, $9::date) AND `+sc.where("d.clinic_id")+`) x
			GROUP BY 1, 2 HAVING sum(met) <> 0`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			var monday time.Time
			var met int
			if err := rows.Scan(&id, &monday, &met); err != nil {
				rows.Close()
				return nil, err
			}
			out.add(id, monday, monday, 0, met)
		}
		return out, rows.Err()
	})
}

// localToday is now's date in zone (UTC when zone is empty or unknown), at 00:00 UTC.
func localToday(now time.Time, zone string) time.Time {
	loc := time.UTC
	if zone != "" {
		if l, err := time.LoadLocation(zone); err == nil {
			loc = l
		}
	}
	y, m, d := now.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
