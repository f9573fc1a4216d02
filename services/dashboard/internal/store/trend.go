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
// dates; the first and last weeks clipped to r; the program weeks, read by MinimumWeeks, are
// added by MinimumCounts.AddToTrends). Attendance, admissions and the census are summed from the rollups of
// migration 00008.
func (s *Store) Trends(ctx context.Context, sc Scope, r kpi.Range) (map[string]ClinicWeeks, error) {
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
		// of EnrollmentCreated), not ended on or before it: the sum of the rollup census_days's
		// changes up to that day (migration 00008). The changes are read per week from
		// census_weekly (those before the range under the first week), and for a last week
		// clipped by the range (it ends before its Sunday) its days up to the range's end from
		// census_days; they are added up week by week below.
		census := map[string]map[time.Time]int{}
		first, lastMonday := kpi.Monday(r.From), kpi.Monday(r.To)
		wholeTo, daysTo := lastMonday, lastMonday.AddDate(0, 0, -1) // the last week ends on a Sunday: no days
		if d := date(r.To); d.Weekday() != time.Sunday {
			wholeTo, daysTo = lastMonday.AddDate(0, 0, -7), d
		}
		rolled := append([]any{sc.All, sc.ids(), r.From, r.To}, parts(r, time.Time{})...)
		batch := []batchQuery{
			// A row per clinic and week, its statuses and counts as arrays.
			// (The weekly and the daily rows are of different weeks: neither is summed with the other.)
			{`SELECT clinic_id::text, monday, array_agg(status), array_agg(sessions) FROM attendance_weekly
					WHERE ` + weekly + ` AND sessions > 0 AND ` + sc.where("clinic_id") + ` GROUP BY 1, 2
				UNION ALL
				SELECT clinic_id::text, monday, array_agg(status), array_agg(n) FROM (
					SELECT clinic_id, ` + monday("local_date") + ` AS monday, status, sum(sessions)::int AS n FROM attendance_days
					WHERE ` + daily("local_date") + ` AND ` + sc.where("clinic_id") + ` GROUP BY 1, 2, 3 HAVING sum(sessions) > 0) x
				GROUP BY 1, 2`, rolled,
				func(rows pgx.Rows) error {
					var id string
					var d time.Time
					var statuses []string
					var ns []int
					err := rows.Scan(&id, &d, &statuses, &ns)
					in := get(id, d)
					for i, st := range statuses {
						in.Attendance[st] += ns[i]
					}
					return err
				}},
			{`SELECT clinic_id::text, monday, sum(admitted)::int FROM (
					SELECT clinic_id, monday, admitted FROM admission_weekly WHERE ` + weekly + ` AND ` + sc.where("clinic_id") + `
					UNION ALL
					SELECT clinic_id, ` + monday("day") + `, admitted FROM admission_days WHERE ` + daily("day") + ` AND ` + sc.where("clinic_id") + `) x
				GROUP BY 1, 2 HAVING sum(admitted) > 0`, rolled,
				func(rows pgx.Rows) error {
					var id string
					var d time.Time
					var n int
					err := rows.Scan(&id, &d, &n)
					get(id, d).Admissions += n
					return err
				}},
			{`SELECT clinic_id::text, CASE WHEN monday < $3 THEN $3 ELSE monday END, sum(delta)::int FROM census_weekly
					WHERE monday <= $4 AND ` + sc.where("clinic_id") + ` GROUP BY 1, 2
				UNION ALL
				SELECT clinic_id::text, $5, sum(delta)::int FROM census_days
					WHERE day BETWEEN $5 AND $6 AND ` + sc.where("clinic_id") + ` GROUP BY 1`,
				[]any{sc.All, sc.ids(), first, wholeTo, lastMonday, daysTo},
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
		if err := runBatch(ctx, tx, batch); err != nil {
			return nil, err
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
		return out, nil
	})
}

// FlowWeeks is the billing flow (Flow's definitions) per Monday-start week of r (clinic-local
// dates; the first and last weeks clipped to r), keyed by the week's Monday; charges and claims
// from the rollups charge_days and claim_days and their weekly counterparts (migration 00008).
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
		args := append([]any{sc.All, sc.ids(), r.From, r.To}, parts(r, time.Time{})...)
		rows, err := tx.Query(ctx, `SELECT monday, sum(amount_cents)::bigint FROM (
				SELECT monday, amount_cents FROM charge_weekly WHERE `+weekly+` AND `+sc.where("clinic_id")+`
				UNION ALL
				SELECT service_date, amount_cents FROM charge_days WHERE `+daily("service_date")+` AND `+sc.where("clinic_id")+`) x
			GROUP BY 1`, args...)
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
		rows, err = tx.Query(ctx, `SELECT monday, sum(submitted_cents)::bigint, sum(submitted_paid_cents)::bigint, sum(submitted_denied_cents)::bigint
			FROM (SELECT monday, submitted_cents, submitted_paid_cents, submitted_denied_cents FROM claim_weekly
					WHERE `+weekly+` AND `+sc.where("clinic_id")+`
				UNION ALL
				SELECT day, submitted_cents, submitted_paid_cents, submitted_denied_cents FROM claim_days
					WHERE `+daily("day")+` AND `+sc.where("clinic_id")+`) x
			GROUP BY 1 HAVING sum(submitted_cents) <> 0 OR sum(submitted_paid_cents) <> 0 OR sum(submitted_denied_cents) <> 0`, args...)
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
