// Package store reads the dashboard's projections: the inputs of the KPIs and the rows of the
// clinic, billing and event-health pages, always for a given set of clinics.
package store

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/services/dashboard/internal/kpi"
)

// Scope is the clinics a reader may see: all of them, or the ids listed.
type Scope struct {
	All     bool
	Clinics []string
}

// Store reads the projections.
type Store struct{ db *bus.Store }

// New returns a store on the service's db (search_path = dashboard), which should have the
// clinic scope on (bus.Store.EnableClinicScope): every read then runs in a read-only
// transaction scoped to ctx, so the tables' row-level security policies (migration 00007) keep
// a signed-in user to the clinics of their token even if a query forgot its Scope condition.
// A ctx without a principal (auth.WithPrincipal) or auth.WithSystemScope sees no clinic's rows.
func New(db *bus.Store) *Store { return &Store{db: db} }

// read runs fn in one read-only transaction of s in ctx's clinic scope (bus.Store.Read) and
// returns what fn returns.
func read[T any](ctx context.Context, s *Store, fn func(tx pgx.Tx) (T, error)) (T, error) {
	var out T
	err := s.db.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		out, err = fn(tx)
		return err
	})
	return out, err
}

// where is the SQL condition on column for the scope sc, whose values the query passes as $1
// (sc.All) and $2 (sc.ids()). The ids are compared as uuid[], so the clinic_id indexes apply
// (a clinic_id::text comparison could use none of them). The two forms are two statement
// texts: for a list of clinics the condition has no OR, so the index also serves a prepared
// statement's generic plan, which a catch-all "$1 OR ..." could not use (perf finding N1).
func (sc Scope) where(column string) string {
	if sc.All {
		return "($1 OR " + column + " = ANY($2::uuid[]))"
	}
	return "(" + column + " = ANY($2::uuid[]) AND NOT $1)"
}

// ids is sc.Clinics in canonical uuid form, leaving out what is no uuid (which names no
// clinic; as uuid[] it would fail the query).
func (sc Scope) ids() []string {
	out := make([]string, 0, len(sc.Clinics))
	for _, c := range sc.Clinics {
		if u, err := uuid.Parse(c); err == nil {
			out = append(out, u.String())
		}
	}
	return out
}

// monday is the Monday on or before the date expression d (kpi.Monday), in date arithmetic.
func monday(d string) string {
	return "((" + d + ") - (extract(isodow FROM " + d + ")::int - 1))"
}

// localDate is the clinic-local date of a timestamp column, in the clinic's time zone.
func localDate(column string) string {
	return "(" + column + " AT TIME ZONE coalesce(nullif(c.time_zone, ''), 'UTC'))::date"
}

// batchQuery is one statement of a batch: its SQL, its arguments and the scan of each row.
type batchQuery struct {
	sql  string
	args []any
	scan func(pgx.Rows) error
}

// runBatch sends qs to the database in one round trip (pgx.Batch, in tx) and scans their rows
// in order.
func runBatch(ctx context.Context, tx pgx.Tx, qs []batchQuery) error {
	b := &pgx.Batch{}
	for _, q := range qs {
		b.Queue(q.sql, q.args...)
	}
	br := tx.SendBatch(ctx, b)
	for _, q := range qs {
		rows, err := br.Query()
		if err != nil {
			_ = br.Close()
			return err
		}
		for rows.Next() {
			if err := q.scan(rows); err != nil {
				rows.Close()
				_ = br.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			_ = br.Close()
			return err
		}
	}
	return br.Close()
}

// Clinic is a clinic the reader may see.
type Clinic struct {
	ID   string `json:"clinic_id"`
	Name string `json:"name"`
	// TimeZone is the IANA zone from ClinicConfigured or the appointment events ("" unknown).
	TimeZone string `json:"-"`
}

// Clinics lists the clinics in scope, by name.
func (s *Store) Clinics(ctx context.Context, sc Scope) ([]Clinic, error) {
	return read(ctx, s, func(tx pgx.Tx) ([]Clinic, error) {
		rows, err := tx.Query(ctx, `SELECT clinic_id::text, name, time_zone FROM clinics c WHERE `+sc.where("c.clinic_id")+
			` ORDER BY name = '', name, clinic_id`, sc.All, sc.ids())
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Clinic, error) {
			var c Clinic
			return c, r.Scan(&c.ID, &c.Name, &c.TimeZone)
		})
	})
}

// Clinic returns one clinic, or false when it is unknown or out of scope.
func (s *Store) Clinic(ctx context.Context, sc Scope, id string) (Clinic, bool, error) {
	cs, err := s.Clinics(ctx, sc)
	if err != nil {
		return Clinic{}, false, err
	}
	for _, c := range cs {
		if c.ID == id {
			return c, true, nil
		}
	}
	return Clinic{}, false, nil
}

// Inputs reads each in-scope clinic's KPI inputs for the range r (the program weeks, read by
// MinimumWeeks, are added by MinimumCounts.AddToInputs). Attendance is summed from the rollups
// attendance_weekly and attendance_days (migration 00008).
func (s *Store) Inputs(ctx context.Context, sc Scope, r kpi.Range) (map[string]*kpi.Inputs, error) {
	return read(ctx, s, func(tx pgx.Tx) (map[string]*kpi.Inputs, error) {
		out := map[string]*kpi.Inputs{}
		get := func(id string) *kpi.Inputs {
			in := out[id]
			if in == nil {
				in = &kpi.Inputs{Attendance: map[string]int{}, Discharges: map[string]int{}}
				out[id] = in
			}
			return in
		}
		// Each query's parameters: the scope ($1, $2), the range ($3, $4), the rollups' parts ($5-$8).
		scope := []any{sc.All, sc.ids()}
		ranged := []any{sc.All, sc.ids(), r.From, r.To}
		rolled := append(ranged[:4:4], parts(r, time.Time{})...)
		batch := []batchQuery{
			{`SELECT clinic_id::text, count(*) FROM enrollments WHERE status = 'active' AND ` + sc.where("clinic_id") + ` GROUP BY 1`, scope,
				func(rows pgx.Rows) error {
					var id string
					var n int
					err := rows.Scan(&id, &n)
					get(id).Census = n
					return err
				}},
			{`SELECT clinic_id::text, sum(capacity) FROM tracks WHERE active AND ` + sc.where("clinic_id") + ` GROUP BY 1`, scope,
				func(rows pgx.Rows) error {
					var id string
					var n int
					err := rows.Scan(&id, &n)
					get(id).Capacity = n
					return err
				}},
			{`SELECT clinic_id::text, status, sum(sessions)::int FROM (
					SELECT clinic_id, status, sessions FROM attendance_weekly WHERE ` + weekly + ` AND ` + sc.where("clinic_id") + `
					UNION ALL
					SELECT clinic_id, status, sessions FROM attendance_days WHERE ` + daily("local_date") + ` AND ` + sc.where("clinic_id") + `) x
				GROUP BY 1, 2 HAVING sum(sessions) > 0`, rolled,
				func(rows pgx.Rows) error {
					var id, status string
					var n int
					err := rows.Scan(&id, &status, &n)
					get(id).Attendance[status] = n
					return err
				}},
			// The samples (for medians) as one array a clinic: a row per clinic, not per admission;
			// the admissions' from the rollup admission_samples (migration 00008).
			{`SELECT clinic_id::text, array_agg(days) FROM admission_samples
				WHERE day BETWEEN $3 AND $4 AND ` + sc.where("clinic_id") + ` GROUP BY 1`, ranged,
				func(rows pgx.Rows) error {
					var id string
					var ds []float64
					err := rows.Scan(&id, &ds)
					in := get(id)
					for _, d := range ds {
						in.DaysToAdmission = append(in.DaysToAdmission, max(d, 0))
					}
					return err
				}},
			{`SELECT clinic_id::text, reason, count(*)::int,
					array_agg((discharge_date - start_date)::float8) FILTER (WHERE start_date IS NOT NULL)
				FROM discharges WHERE discharge_date BETWEEN $3 AND $4 AND ` + sc.where("clinic_id") + ` GROUP BY 1, 2`, ranged,
				func(rows pgx.Rows) error {
					var id, reason string
					var n int
					var los []float64
					err := rows.Scan(&id, &reason, &n, &los)
					in := get(id)
					in.Discharges[reason] += n
					in.LengthsOfStay = append(in.LengthsOfStay, los...)
					return err
				}},
		}
		if err := runBatch(ctx, tx, batch); err != nil {
			return nil, err
		}
		return out, nil
	})
}

// Track is one track's fill.
type Track struct {
	ID         string `json:"track_id"`
	Code       string `json:"track_code"`
	Program    string `json:"program_code"`
	Capacity   int    `json:"capacity"`
	Active     int    `json:"active"`
	Waitlisted int    `json:"waitlisted"`
	Open       bool   `json:"open"`
}

// Tracks lists a clinic's tracks with their active and waitlisted enrollments.
func (s *Store) Tracks(ctx context.Context, clinicID string) ([]Track, error) {
	return read(ctx, s, func(tx pgx.Tx) ([]Track, error) {
		rows, err := tx.Query(ctx, `SELECT t.track_id::text, t.track_code, t.program_code, t.capacity, t.active,
				count(e.*) FILTER (WHERE e.status = 'active'), count(e.*) FILTER (WHERE e.status = 'waitlisted')
			FROM tracks t LEFT JOIN enrollments e ON e.track_id = t.track_id
			WHERE t.clinic_id = $1 GROUP BY t.track_id ORDER BY t.track_code, t.track_id`, clinicID)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Track, error) {
			var t Track
			return t, r.Scan(&t.ID, &t.Code, &t.Program, &t.Capacity, &t.Open, &t.Active, &t.Waitlisted)
		})
	})
}

// Risk is an open episode of risk (ids only).
type Risk struct {
	EnrollmentID string    `json:"enrollment_id"`
	PatientID    string    `json:"patient_id"`
	Reasons      []string  `json:"reasons"`
	Since        time.Time `json:"since"`
}

// ReasonText is the reasons for people.
func (r Risk) ReasonText() string {
	out := make([]string, len(r.Reasons))
	for i, x := range r.Reasons {
		out[i] = strings.ReplaceAll(x, "_", " ")
	}
	return strings.Join(out, ", ")
}

// AtRisk lists a clinic's open episodes of risk of enrollments that have not ended, oldest first.
func (s *Store) AtRisk(ctx context.Context, clinicID string) ([]Risk, error) {
	return read(ctx, s, func(tx pgx.Tx) ([]Risk, error) {
		rows, err := tx.Query(ctx, `SELECT r.enrollment_id::text, r.patient_id::text, r.reasons, r.since FROM risks r
			WHERE r.clinic_id = $1 AND r.cleared_at IS NULL
				AND NOT EXISTS (SELECT 1 FROM enrollments e WHERE e.enrollment_id = r.enrollment_id AND e.status = 'ended')
			ORDER BY r.since, r.enrollment_id`, clinicID)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Risk, error) {
			var k Risk
			return k, r.Scan(&k.EnrollmentID, &k.PatientID, &k.Reasons, &k.Since)
		})
	})
}

// Session is one session of a clinic-local day: a group session (its places), or an
// individual, family or medication visit (keyed by its appointment id), with its attendance.
type Session struct {
	ID          string `json:"session_id"`
	ServiceType string `json:"service_type"`
	StartTime   string `json:"start_time"`
	EndTime     string `json:"end_time"`
	Scheduled   int    `json:"scheduled"`
	Attended    int    `json:"attended"`
	Absent      int    `json:"absent"`
	NotRecorded int    `json:"not_recorded"`
}

// Sessions lists a clinic's sessions on a clinic-local date, by start time: the appointments
// not cancelled, joined with their latest attendance (attended: present, late or left early;
// absent: absent or excused; the rest not yet recorded).
func (s *Store) Sessions(ctx context.Context, clinicID string, day time.Time) ([]Session, error) {
	return read(ctx, s, func(tx pgx.Tx) ([]Session, error) {
		rows, err := tx.Query(ctx, `SELECT coalesce(p.session_id, p.appointment_id)::text, p.service_type,
				min(p.start_time), max(p.end_time), count(*),
				count(*) FILTER (WHERE a.status IN ('present', 'late', 'left_early')),
				count(*) FILTER (WHERE a.status IN ('absent', 'excused')),
				count(*) FILTER (WHERE a.status IS NULL OR a.status NOT IN ('present', 'late', 'left_early', 'absent', 'excused'))
			FROM appointments p LEFT JOIN attendance a USING (appointment_id)
			WHERE p.clinic_id = $1 AND p.local_date = $2 AND p.status <> 'cancelled'
			GROUP BY 1, 2 ORDER BY 3, 4, 2, 1`, clinicID, day.Format(time.DateOnly))
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Session, error) {
			var x Session
			return x, r.Scan(&x.ID, &x.ServiceType, &x.StartTime, &x.EndTime, &x.Scheduled, &x.Attended, &x.Absent, &x.NotRecorded)
		})
	})
}

// ReferralStatuses in funnel order.
var ReferralStatuses = []string{"new", "contacted", "screened", "assessed", "admitted", "referred_out", "closed"}

// StatusCount is a referral status with how many referrals are in it.
type StatusCount struct {
	Status string `json:"status"`
	Count  int    `json:"count"`
}

// Funnel counts a clinic's referrals by current status, of those first contacted in the range
// (or, when the first contact is not known yet, last changed in it).
func (s *Store) Funnel(ctx context.Context, clinicID string, r kpi.Range) ([]StatusCount, error) {
	return read(ctx, s, func(tx pgx.Tx) ([]StatusCount, error) {
		rows, err := tx.Query(ctx, `SELECT f.status, count(*) FROM referrals f LEFT JOIN clinics c USING (clinic_id)
			WHERE f.clinic_id = $1 AND `+localDate("coalesce(f.first_contact_at, f.status_at)")+` BETWEEN $2 AND $3
			GROUP BY 1`, clinicID, r.From, r.To)
		if err != nil {
			return nil, err
		}
		counts := map[string]int{}
		for rows.Next() {
			var st string
			var n int
			if err := rows.Scan(&st, &n); err != nil {
				rows.Close()
				return nil, err
			}
			counts[st] = n
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		out := make([]StatusCount, 0, len(ReferralStatuses))
		for _, st := range ReferralStatuses {
			out = append(out, StatusCount{Status: st, Count: counts[st]})
		}
		return out, nil
	})
}

// Flow is the billing flow of a period, in cents.
type Flow struct {
	Charges         int64 `json:"charges_cents"`
	ClaimsSubmitted int64 `json:"claims_submitted_cents"`
	Paid            int64 `json:"paid_cents"`
	Denied          int64 `json:"denied_cents"`
	WrittenOff      int64 `json:"written_off_cents"`
}

// Flow sums, for the range: charges by date of service (voided ones left out), and the claims
// submitted in it, what was paid on them and what was denied; charges and claims from the
// rollups charge_days and claim_days and their weekly
// counterparts (migration 00008).
func (s *Store) Flow(ctx context.Context, sc Scope, r kpi.Range) (Flow, error) {
	return read(ctx, s, func(tx pgx.Tx) (Flow, error) {
		var f Flow
		args := append([]any{sc.All, sc.ids(), r.From, r.To}, parts(r, time.Time{})...)
		err := tx.QueryRow(ctx, `SELECT coalesce(sum(amount_cents), 0)::bigint FROM (
				SELECT amount_cents FROM charge_weekly WHERE `+weekly+` AND `+sc.where("clinic_id")+`
				UNION ALL
				SELECT amount_cents FROM charge_days WHERE `+daily("service_date")+` AND `+sc.where("clinic_id")+`) x`,
			args...).Scan(&f.Charges)
		if err != nil {
			return f, err
		}
		err = tx.QueryRow(ctx, `SELECT coalesce(sum(submitted_cents), 0)::bigint, coalesce(sum(submitted_paid_cents), 0)::bigint,
				coalesce(sum(submitted_denied_cents), 0)::bigint FROM (
				SELECT * FROM claim_weekly WHERE `+weekly+` AND `+sc.where("clinic_id")+`
				UNION ALL
				SELECT * FROM claim_days WHERE `+daily("day")+` AND `+sc.where("clinic_id")+`) x`,
			args...).Scan(&f.ClaimsSubmitted, &f.Paid, &f.Denied)
		if err != nil {
			return f, err
		}
		err = tx.QueryRow(ctx, `SELECT coalesce(sum(w.amount_cents), 0)::bigint FROM write_offs w LEFT JOIN clinics c USING (clinic_id)
			WHERE `+localDate("w.written_off_at")+` BETWEEN $3 AND $4 AND `+sc.where("w.clinic_id"),
			sc.All, sc.ids(), r.From, r.To).Scan(&f.WrittenOff)
		return f, err
	})
}

// WrittenOff sums the write-offs projected so far per work item, of the items ids.
func (s *Store) WrittenOff(ctx context.Context, ids []string) (map[string]int64, error) {
	out := map[string]int64{}
	if len(ids) == 0 {
		return out, nil // no transaction for nothing
	}
	return read(ctx, s, func(tx pgx.Tx) (map[string]int64, error) {
		rows, err := tx.Query(ctx, `SELECT work_item_id::text, sum(amount_cents)::bigint FROM write_offs
			WHERE work_item_id::text = ANY($1::text[]) GROUP BY 1`, ids)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			var c int64
			if err := rows.Scan(&id, &c); err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = c
		}
		return out, rows.Err()
	})
}

// WriteOffReason is a write-off reason with the write-offs made for it.
type WriteOffReason struct {
	Reason      string `json:"reason"`
	Count       int    `json:"count"`
	AmountCents int64  `json:"amount_cents"`
}

// WriteOffs counts the write-offs made on a clinic-local date in the range, by reason, the
// largest amount first.
func (s *Store) WriteOffs(ctx context.Context, sc Scope, r kpi.Range) ([]WriteOffReason, error) {
	return read(ctx, s, func(tx pgx.Tx) ([]WriteOffReason, error) {
		rows, err := tx.Query(ctx, `SELECT w.reason, count(*), sum(w.amount_cents)::bigint FROM write_offs w LEFT JOIN clinics c USING (clinic_id)
			WHERE `+localDate("w.written_off_at")+` BETWEEN $3 AND $4 AND `+sc.where("w.clinic_id")+` GROUP BY 1 ORDER BY 3 DESC, 1`,
			sc.All, sc.ids(), r.From, r.To)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (WriteOffReason, error) {
			var w WriteOffReason
			return w, r.Scan(&w.Reason, &w.Count, &w.AmountCents)
		})
	})
}

// ClaimRates reads the inputs of the claim rates (kpi.ClaimInputs) for the range: the claims
// whose newest adjudication falls on a clinic-local date in it and that stand paid, partially
// paid or denied (reversed claims are left out), from the rollups claim_days and claim_weekly
// (migration 00008).
func (s *Store) ClaimRates(ctx context.Context, sc Scope, r kpi.Range) (kpi.ClaimInputs, error) {
	return read(ctx, s, func(tx pgx.Tx) (kpi.ClaimInputs, error) {
		var in kpi.ClaimInputs
		err := tx.QueryRow(ctx, `SELECT coalesce(sum(adjudicated), 0)::int, coalesce(sum(adjudicated_denied), 0)::int,
				coalesce(sum(adjudicated_clean), 0)::int, coalesce(sum(adjudicated_cents), 0)::bigint,
				coalesce(sum(contractual_cents), 0)::bigint, coalesce(sum(adjudicated_paid_cents), 0)::bigint
			FROM (
				SELECT * FROM claim_weekly WHERE `+weekly+` AND `+sc.where("clinic_id")+`
				UNION ALL
				SELECT * FROM claim_days WHERE `+daily("day")+` AND `+sc.where("clinic_id")+`) x`,
			append([]any{sc.All, sc.ids(), r.From, r.To}, parts(r, time.Time{})...)...).Scan(&in.Adjudicated, &in.Denied, &in.Clean, &in.ChargedCents, &in.ContractualCents, &in.PaidCents)
		return in, err
	})
}

// Aging is one payer's outstanding claims by age bucket, in cents.
type Aging struct {
	PayerID string           `json:"payer_id"`
	Buckets map[string]int64 `json:"buckets_cents"`
	Total   int64            `json:"total_cents"`
}

// Aging lists, per payer, the claims submitted and not yet decided, by days since submission.
func (s *Store) Aging(ctx context.Context, sc Scope, now time.Time) ([]Aging, error) {
	return read(ctx, s, func(tx pgx.Tx) ([]Aging, error) {
		rows, err := tx.Query(ctx, `SELECT payer_id, (($3::date) - (submitted_at::date))::int, total_cents FROM claims
			WHERE status = 'submitted' AND submitted_at IS NOT NULL AND NOT corrected AND `+sc.where("clinic_id")+` ORDER BY payer_id`,
			sc.All, sc.ids(), now)
		if err != nil {
			return nil, err
		}
		var out []Aging
		for rows.Next() {
			var payer string
			var days int
			var cents int64
			if err := rows.Scan(&payer, &days, &cents); err != nil {
				rows.Close()
				return nil, err
			}
			if len(out) == 0 || out[len(out)-1].PayerID != payer {
				out = append(out, Aging{PayerID: payer, Buckets: map[string]int64{}})
			}
			a := &out[len(out)-1]
			a.Buckets[kpi.AgingBucket(days)] += cents
			a.Total += cents
		}
		return out, rows.Err()
	})
}

// Hold is a hold reason with how many charges wait on it.
type Hold struct {
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}

// Holds counts held charges by reason (the part before any ":" detail), most first, from the
// rollup hold_counts (migration 00008).
func (s *Store) Holds(ctx context.Context, sc Scope) ([]Hold, error) {
	return read(ctx, s, func(tx pgx.Tx) ([]Hold, error) {
		rows, err := tx.Query(ctx, `SELECT reason, sum(charges)::int FROM hold_counts WHERE `+sc.where("clinic_id")+`
			GROUP BY 1 HAVING sum(charges) > 0 ORDER BY 2 DESC, 1`, sc.All, sc.ids())
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Hold, error) {
			var h Hold
			return h, r.Scan(&h.Reason, &h.Count)
		})
	})
}

// StreamHealth is how much of a stream the dashboard has projected.
type StreamHealth struct {
	Stream      string     `json:"stream"`
	Consumer    string     `json:"consumer"`
	Events      int        `json:"events"`
	LastEventAt *time.Time `json:"last_event_at"`
	Pending     *uint64    `json:"pending"`
}

// Health reads, per stream, the events applied (the consumer's inbox rows) and the newest one's time.
func (s *Store) Health(ctx context.Context, streams []string, consumer func(string) string) ([]StreamHealth, error) {
	return read(ctx, s, func(tx pgx.Tx) ([]StreamHealth, error) {
		out := make([]StreamHealth, 0, len(streams))
		for _, st := range streams {
			h := StreamHealth{Stream: st, Consumer: consumer(st)}
			err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM inbox WHERE consumer = $1),
				(SELECT last_event_at FROM stream_positions WHERE stream = $2)`, h.Consumer, st).Scan(&h.Events, &h.LastEventAt)
			if err != nil {
				return nil, err
			}
			out = append(out, h)
		}
		return out, nil
	})
}

// Projections are the tables `dashboard rebuild` empties (with the consumers' inbox rows), the
// rollups of migration 00008 with them: the replay's writes fill them again.
var Projections = []string{"clinics", "programs", "tracks", "enrollments", "referrals", "admissions", "attendance", "risks",
	"completions", "discharges", "charges", "claims", "appointments", "write_offs", "stream_positions",
	"attendance_days", "charge_days", "claim_days", "program_weeks", "minimum_days",
	"attendance_weekly", "charge_weekly", "claim_weekly", "minimum_weekly", "census_days", "census_weekly",
	"admission_days", "hold_counts", "admission_samples", "admission_weekly"}

// Truncate empties the projections and forgets which events were applied, in one transaction
// in system scope (every clinic): it is maintenance (`dashboard rebuild`), not a user's request.
// (TRUNCATE is not subject to row-level security; the scope keeps the transaction like every
// other of the service, so a statement added here cannot silently see no rows.)
func (s *Store) Truncate(ctx context.Context, consumers []string) error {
	return s.db.InTx(auth.WithSystemScope(ctx), func(ctx context.Context, tx *bus.Tx) error {
		if _, err := tx.Exec(ctx, "TRUNCATE "+strings.Join(Projections, ", ")); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM inbox WHERE consumer = ANY($1)`, consumers)
		return err
	})
}
