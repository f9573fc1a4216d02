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

// AddToInputs adds m's weeks to inputs (what Inputs read for the same scope and range without
// them), as Inputs does when given m.
func (m MinimumCounts) AddToInputs(inputs map[string]*kpi.Inputs) {
	for id := range m {
		in := inputs[id]
		if in == nil {
			in = &kpi.Inputs{Attendance: map[string]int{}, Discharges: map[string]int{}}
			inputs[id] = in
		}
		in.MinimumWeeks, in.MinimumMet = m.Total(id)
	}
}

// AddToTrends adds m's weeks to trends (what Trends read for the same scope and range without
// them), as Trends does when given m.
func (m MinimumCounts) AddToTrends(trends map[string]ClinicWeeks) {
	for id, byWeek := range m {
		for monday, c := range byWeek {
			cw := trends[id]
			if cw == nil {
				cw = ClinicWeeks{}
				trends[id] = cw
			}
			monday = kpi.Monday(monday)
			in := cw[monday]
			if in == nil {
				in = &kpi.WeekInputs{Attendance: map[string]int{}}
				cw[monday] = in
			}
			in.MinimumWeeks += c.Weeks
			in.MinimumMet += c.Met
		}
	}
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
// The weeks of enrollments whose weeks end (their program's length is known, or they ended)
// are read from the rollups minimum_weekly (whole weeks of r) and minimum_days (the days at its
// ends), which the projections keep per clinic and week or last day (migration 00008); those of
// an enrollment without an end (a program of unknown length, not ended) from its attendance.
func (s *Store) MinimumWeeks(ctx context.Context, sc Scope, r kpi.Range, now time.Time) (MinimumCounts, error) {
	return read(ctx, s, func(tx pgx.Tx) (MinimumCounts, error) {
		// Each clinic's today, in its time zone (as kpi.MinimumWeeks is given it); UTC for an
		// enrollment of a clinic without a row.
		rows, err := tx.Query(ctx, `SELECT clinic_id::text, time_zone FROM clinics WHERE `+sc.where("clinic_id"), sc.All, sc.ids())
		if err != nil {
			return nil, err
		}
		zones := map[string]string{}
		var ids []string
		var todays []time.Time
		for rows.Next() {
			var id, zone string
			if err := rows.Scan(&id, &zone); err != nil {
				rows.Close()
				return nil, err
			}
			zones[id] = zone
			ids, todays = append(ids, id), append(todays, localToday(now, zone))
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		// The whole weeks read from minimum_weekly end before every clinic's today.
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
		rows, err = tx.Query(ctx, `SELECT clinic_id::text, monday, sum(weeks)::int, sum(met)::int FROM (
				SELECT clinic_id, monday, weeks, met FROM minimum_weekly WHERE `+weekly+` AND `+sc.where("clinic_id")+`
				UNION ALL
				SELECT d.clinic_id, `+monday("d.last_day")+`, d.weeks, d.met
				FROM minimum_days d LEFT JOIN unnest($10::uuid[], $11::date[]) AS t (clinic_id, today) ON t.clinic_id = d.clinic_id
				WHERE `+daily("d.last_day")+` AND d.last_day < coalesce(t.today, $9::date) AND `+sc.where("d.clinic_id")+`) x
			GROUP BY 1, 2 HAVING sum(weeks) <> 0 OR sum(met) <> 0`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			var m time.Time
			var weeks, met int
			if err := rows.Scan(&id, &m, &weeks, &met); err != nil {
				rows.Close()
				return nil, err
			}
			out.add(id, m, m, weeks, met)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		// Enrollments without an end: only a program of unknown length has them.
		var unbounded bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM programs WHERE length_weeks <= 0)`).Scan(&unbounded); err != nil || !unbounded {
			return out, err
		}
		rows, err = tx.Query(ctx, `SELECT e.enrollment_id::text, e.clinic_id::text, e.start_date, p.weekly_minimum_minutes
			FROM enrollments e
			JOIN tracks t ON t.track_id = e.track_id
			JOIN programs p ON p.program_code = t.program_code
			WHERE p.length_weeks <= 0 AND e.ended_at IS NULL AND e.start_date IS NOT NULL AND e.start_date <= $3
				AND `+sc.where("e.clinic_id"), sc.All, sc.ids(), r.To)
		if err != nil {
			return nil, err
		}
		type enr struct {
			clinic string
			e      kpi.MinimumEnrollment
		}
		byID := map[string]*enr{}
		var open []string
		for rows.Next() {
			var id string
			x := &enr{e: kpi.MinimumEnrollment{Minutes: map[time.Time]int{}}}
			if err := rows.Scan(&id, &x.clinic, &x.e.Start, &x.e.MinimumMinutes); err != nil {
				rows.Close()
				return nil, err
			}
			byID[id] = x
			open = append(open, id)
		}
		if err := rows.Err(); err != nil || len(open) == 0 {
			return out, err
		}
		// Minutes per program week, summed in the database: each week's total is put on the
		// week's first day (start + 7k), which gives kpi.MinimumWeeks the same sums as per-day
		// minutes.
		rows, err = tx.Query(ctx, `SELECT a.enrollment_id::text, e.start_date + 7 * ((a.local_date - e.start_date) / 7),
				sum(a.minutes_attended)::int
			FROM attendance a JOIN enrollments e ON e.enrollment_id = a.enrollment_id
			WHERE a.enrollment_id = ANY($1::uuid[]) AND a.local_date >= e.start_date AND a.local_date BETWEEN $2::date - 6 AND $3
			GROUP BY 1, 2`, open, r.From, r.To)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			var day time.Time
			var m int
			if err := rows.Scan(&id, &day, &m); err != nil {
				rows.Close()
				return nil, err
			}
			if x := byID[id]; x != nil {
				x.e.Minutes[day] = m
			}
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		for _, id := range open {
			x := byID[id]
			for _, w := range kpi.MinimumWeeks(x.e, r, localToday(now, zones[x.clinic])) {
				met := 0
				if w.Met {
					met = 1
				}
				m := kpi.Monday(w.Last)
				out.add(x.clinic, m, m, 1, met)
			}
		}
		return out, nil
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
