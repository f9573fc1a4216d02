package store

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/services/dashboard/internal/kpi"
)

// ClinicWeeks are a clinic's trend inputs by week (the week's Monday, clinic-local).
type ClinicWeeks map[time.Time]*kpi.WeekInputs

// Trends reads each in-scope clinic's trend inputs per Monday-start week of r (clinic-local
// dates; the first and last weeks clipped to r); weeks are the clinics' complete program weeks
// in r (MinimumWeeks). Attendance is summed from the rollup attendance_days (migration 00008).
func (s *Store) Trends(ctx context.Context, sc Scope, r kpi.Range, weeks MinimumCounts) (map[string]ClinicWeeks, error) {
	return read(ctx, s, func(tx pgx.Tx) (map[string]ClinicWeeks, error) {
		out := map[string]ClinicWeeks{}
		get := func(id string, monday time.Time) *kpi.WeekInputs {
			cw := out[id]
			if cw == nil {
				cw = ClinicWeeks{}
				out[id] = cw
			}
			monday = kpi.Monday(monday)
			in := cw[monday]
			if in == nil {
				in = &kpi.WeekInputs{Attendance: map[string]int{}}
				cw[monday] = in
			}
			return in
		}
		// Census at each week's last day in the range: seated on or before it (clinic-local date
		// of EnrollmentCreated), not ended on or before it. Each enrollment adds 1 from the day it
		// was seated and takes it back from the day it ended (or was seated, when that is later);
		// the changes are summed per week, each under the first week whose last day is on or
		// after it (all those before the range under the first week), then added up week by week.
		census := map[string]map[time.Time]int{}
		first := kpi.Monday(r.From)
		firstLast := first.AddDate(0, 0, 6)
		if firstLast.After(r.To) {
			firstLast = r.To
		}
		queries := []struct {
			sql  string
			scan func(pgx.Rows) error
		}{
			{`SELECT clinic_id::text, ` + monday("local_date") + `, status, sum(sessions)::int FROM attendance_days
				WHERE local_date BETWEEN $3 AND $4 AND ` + sc.where("clinic_id") + ` GROUP BY 1, 2, 3 HAVING sum(sessions) > 0`,
				func(rows pgx.Rows) error {
					var id, status string
					var d time.Time
					var n int
					err := rows.Scan(&id, &d, &status, &n)
					get(id, d).Attendance[status] += n
					return err
				}},
			{`SELECT a.clinic_id::text, ` + localDate("a.admitted_at") + `, count(*) FROM admissions a LEFT JOIN clinics c USING (clinic_id)
				WHERE ` + localDate("a.admitted_at") + ` BETWEEN $3 AND $4 AND ` + sc.where("a.clinic_id") + ` GROUP BY 1, 2`,
				func(rows pgx.Rows) error {
					var id string
					var d time.Time
					var n int
					err := rows.Scan(&id, &d, &n)
					get(id, d).Admissions += n
					return err
				}},
			{`WITH ch AS (
					SELECT e.clinic_id, ` + localDate("e.seated_at") + ` AS d, 1 AS n
					FROM enrollments e LEFT JOIN clinics c ON c.clinic_id = e.clinic_id
					WHERE e.seated_at IS NOT NULL AND ` + sc.where("e.clinic_id") + `
					UNION ALL
					SELECT e.clinic_id, greatest(` + localDate("e.seated_at") + `, ` + localDate("e.ended_at") + `), -1
					FROM enrollments e LEFT JOIN clinics c ON c.clinic_id = e.clinic_id
					WHERE e.seated_at IS NOT NULL AND e.ended_at IS NOT NULL AND ` + sc.where("e.clinic_id") + `)
				SELECT clinic_id::text, CASE WHEN d <= $4::date THEN $5::date ELSE ` + monday("d") + ` END, sum(n)::int
				FROM ch WHERE d <= $3::date GROUP BY 1, 2`,
				func(rows pgx.Rows) error {
					var id string
					var m time.Time
					var n int
					err := rows.Scan(&id, &m, &n)
					if census[id] == nil {
						census[id] = map[time.Time]int{}
					}
					census[id][m] += n
					return err
				}},
		}
		for _, q := range queries {
			args := []any{sc.All, sc.ids(), r.From, r.To}
			if strings.Contains(q.sql, "$5") { // the census: the range's end, the first week's last day and Monday
				args = []any{sc.All, sc.ids(), r.To, firstLast, first}
			}
			rows, err := tx.Query(ctx, q.sql, args...)
			if err != nil {
				return nil, err
			}
			for rows.Next() {
				if err := q.scan(rows); err != nil {
					rows.Close()
					return nil, err
				}
			}
			if err := rows.Err(); err != nil {
				return nil, err
			}
		}
		for id, changes := range census {
			n := 0
			for _, w := range kpi.Weeks(r) {
				n += changes[w.Monday]
				if n != 0 {
					get(id, w.Monday).Census = n
				}
			}
		}
		for id, byWeek := range weeks {
			for m, c := range byWeek {
				in := get(id, m)
				in.MinimumWeeks += c.Weeks
				in.MinimumMet += c.Met
			}
		}
		return out, nil
	})
}

// FlowWeeks is the billing flow (Flow's definitions) per Monday-start week of r (clinic-local
// dates; the first and last weeks clipped to r), keyed by the week's Monday; charges and claims
// from the rollups charge_days and claim_days (migration 00008).
func (s *Store) FlowWeeks(ctx context.Context, sc Scope, r kpi.Range) (map[time.Time]*Flow, error) {
	return read(ctx, s, func(tx pgx.Tx) (map[time.Time]*Flow, error) {
		out := map[time.Time]*Flow{}
		get := func(d time.Time) *Flow {
			m := kpi.Monday(d)
			f := out[m]
			if f == nil {
				f = &Flow{}
				out[m] = f
			}
			return f
		}
		rows, err := tx.Query(ctx, `SELECT service_date, sum(amount_cents)::bigint FROM charge_days
			WHERE service_date BETWEEN $3 AND $4 AND `+sc.where("clinic_id")+` GROUP BY 1`,
			sc.All, sc.ids(), r.From, r.To)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var d time.Time
			var c int64
			if err := rows.Scan(&d, &c); err != nil {
				rows.Close()
				return nil, err
			}
			get(d).Charges += c
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		rows, err = tx.Query(ctx, `SELECT day, sum(submitted_cents)::bigint, sum(submitted_paid_cents)::bigint, sum(submitted_denied_cents)::bigint
			FROM claim_days WHERE day BETWEEN $3 AND $4 AND `+sc.where("clinic_id")+`
			GROUP BY 1 HAVING sum(submitted_cents) <> 0 OR sum(submitted_paid_cents) <> 0 OR sum(submitted_denied_cents) <> 0`,
			sc.All, sc.ids(), r.From, r.To)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var d time.Time
			var sub, paid, denied int64
			if err := rows.Scan(&d, &sub, &paid, &denied); err != nil {
				rows.Close()
				return nil, err
			}
			f := get(d)
			f.ClaimsSubmitted += sub
			f.Paid += paid
			f.Denied += denied
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		rows, err = tx.Query(ctx, `SELECT `+localDate("w.written_off_at")+`, sum(w.amount_cents)::bigint
			FROM write_offs w LEFT JOIN clinics c USING (clinic_id)
			WHERE `+localDate("w.written_off_at")+` BETWEEN $3 AND $4 AND `+sc.where("w.clinic_id")+` GROUP BY 1`,
			sc.All, sc.ids(), r.From, r.To)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var d time.Time
			var c int64
			if err := rows.Scan(&d, &c); err != nil {
				rows.Close()
				return nil, err
			}
			get(d).WrittenOff += c
		}
		return out, rows.Err()
	})
}
