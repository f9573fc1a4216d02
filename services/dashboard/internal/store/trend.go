package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/services/dashboard/internal/kpi"
)

// ClinicWeeks are a clinic's trend inputs by week (the week's Monday, clinic-local).
type ClinicWeeks map[time.Time]*kpi.WeekInputs

// Trends reads each in-scope clinic's trend inputs per Monday-start week of r (clinic-local
// dates; the first and last weeks clipped to r); weeks are the clinics' complete program weeks
// in r (MinimumWeeks).
func (s *Store) Trends(ctx context.Context, sc Scope, r kpi.Range, weeks map[string][]kpi.ProgramWeek) (map[string]ClinicWeeks, error) {
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
		queries := []struct {
			sql  string
			scan func(pgx.Rows) error
		}{
			{`SELECT clinic_id::text, local_date, status, count(*) FROM attendance
				WHERE local_date BETWEEN $3 AND $4 AND ` + sc.where("clinic_id") + ` GROUP BY 1, 2, 3`,
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
			// Census at each week's last day in the range: seated on or before it (clinic-local date
			// of EnrollmentCreated), not ended on or before it.
			{`WITH weeks AS (
					SELECT least(w::date + 6, $4::date) AS last FROM generate_series(date_trunc('week', $3::date), $4::date, interval '1 week') w)
				SELECT e.clinic_id::text, weeks.last, count(*) FROM enrollments e LEFT JOIN clinics c ON c.clinic_id = e.clinic_id
					JOIN weeks ON ` + localDate("e.seated_at") + ` <= weeks.last
				WHERE e.seated_at IS NOT NULL
					AND (e.ended_at IS NULL OR ` + localDate("e.ended_at") + ` > weeks.last) AND ` + sc.where("e.clinic_id") + `
				GROUP BY 1, 2`,
				func(rows pgx.Rows) error {
					var id string
					var d time.Time
					var n int
					err := rows.Scan(&id, &d, &n)
					get(id, d).Census = n
					return err
				}},
		}
		for _, q := range queries {
			rows, err := tx.Query(ctx, q.sql, sc.All, sc.ids(), r.From, r.To)
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
		for id, ws := range weeks {
			for _, w := range ws {
				in := get(id, w.Last)
				in.MinimumWeeks++
				if w.Met {
					in.MinimumMet++
				}
			}
		}
		return out, nil
	})
}

// FlowWeeks is the billing flow (Flow's definitions) per Monday-start week of r (clinic-local
// dates; the first and last weeks clipped to r), keyed by the week's Monday.
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
		rows, err := tx.Query(ctx, `SELECT service_date, coalesce(sum(amount_cents), 0)::bigint FROM charges
			WHERE status <> 'void' AND service_date BETWEEN $3 AND $4 AND `+sc.where("clinic_id")+` GROUP BY 1`,
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
		rows, err = tx.Query(ctx, `SELECT `+localDate("k.submitted_at")+`, coalesce(sum(k.total_cents), 0)::bigint,
				coalesce(sum(k.paid_cents), 0)::bigint, coalesce(sum(k.total_cents) FILTER (WHERE k.status = 'denied'), 0)::bigint
			FROM claims k LEFT JOIN clinics c USING (clinic_id)
			WHERE k.submitted_at IS NOT NULL AND `+localDate("k.submitted_at")+` BETWEEN $3 AND $4 AND `+sc.where("k.clinic_id")+` GROUP BY 1`,
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
