package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/services/dashboard/internal/kpi"
)

// MinimumWeeks lists, per in-scope clinic, the complete program weeks (kpi.MinimumWeeks) whose
// last day falls in r, as of now in each clinic's time zone: every enrollment with a start date
// whose track's program has a known weekly minimum (ProgramConfigured), with the minutes attended
// per clinic-local date (the latest attendance version). An enrollment whose program's minimum is
// unknown has no weeks here: the figure leaves it out.
func (s *Store) MinimumWeeks(ctx context.Context, sc Scope, r kpi.Range, now time.Time) (map[string][]kpi.ProgramWeek, error) {
	return read(ctx, s, func(tx pgx.Tx) (map[string][]kpi.ProgramWeek, error) {
		rows, err := tx.Query(ctx, `SELECT e.enrollment_id::text, e.clinic_id::text, e.start_date,
				CASE WHEN e.ended_at IS NULL THEN NULL ELSE `+localDate("e.ended_at")+` END,
				p.weekly_minimum_minutes, p.length_weeks, coalesce(c.time_zone, '')
			FROM enrollments e
			JOIN tracks t ON t.track_id = e.track_id
			JOIN programs p ON p.program_code = t.program_code
			LEFT JOIN clinics c ON c.clinic_id = e.clinic_id
			WHERE e.start_date IS NOT NULL AND e.start_date <= $4
				AND (e.ended_at IS NULL OR `+localDate("e.ended_at")+` >= $3::date - 6) AND `+sc.where("e.clinic_id"),
			sc.All, sc.ids(), r.From, r.To)
		if err != nil {
			return nil, err
		}
		type enr struct {
			clinic, zone string
			e            kpi.MinimumEnrollment
		}
		byID := map[string]*enr{}
		var ids []string
		for rows.Next() {
			var id string
			x := &enr{}
			if err := rows.Scan(&id, &x.clinic, &x.e.Start, &x.e.End, &x.e.MinimumMinutes, &x.e.LengthWeeks, &x.zone); err != nil {
				rows.Close()
				return nil, err
			}
			x.e.Minutes = map[time.Time]int{}
			byID[id] = x
			ids = append(ids, id)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		out := map[string][]kpi.ProgramWeek{}
		if len(ids) == 0 {
			return out, nil
		}
		// Minutes per program week, summed in the database: each week's total is put on the week's
		// first day (start + 7k), which gives kpi.MinimumWeeks the same sums as per-day minutes.
		rows, err = tx.Query(ctx, `SELECT a.enrollment_id::text, e.start_date + 7 * ((a.local_date - e.start_date) / 7),
				sum(a.minutes_attended)::int
			FROM attendance a JOIN enrollments e ON e.enrollment_id = a.enrollment_id
			WHERE a.enrollment_id = ANY($1::uuid[]) AND a.local_date >= e.start_date AND a.local_date BETWEEN $2::date - 6 AND $3
			GROUP BY 1, 2`, ids, r.From, r.To)
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
		for _, id := range ids {
			x := byID[id]
			today := localToday(now, x.zone)
			out[x.clinic] = append(out[x.clinic], kpi.MinimumWeeks(x.e, r, today)...)
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
