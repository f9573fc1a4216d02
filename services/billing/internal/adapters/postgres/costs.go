package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/bus"

	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// Costs holds clinician rates, fixed costs, the delivered sessions and patient-days derived
// from attendance, completed episodes and estimates (migration 00006).
type Costs struct{ store *bus.Store }

// NewCosts returns the repository on store's pool.
func NewCosts(store *bus.Store) *Costs { return &Costs{store: store} }

// ApplyAttendance keeps f if it is a newer version of its appointment than the one kept, and
// recomputes the delivered session and patient-day it touches (before and after). It reports
// whether f was newer. A replayed or older version changes nothing.
//
// The common case is one round trip: the locks, the upsert (which returns where the
// appointment was before) and the two projections are sent as one pipelined batch, executed
// in order. The projections are recomputed even when the version was not newer: they are
// derived from cost_attendance only and write nothing when their values do not change.
func (r *Costs) ApplyAttendance(ctx context.Context, tx *bus.Tx, f domain.AttendanceFact) (bool, error) {
	batch := &pgx.Batch{}
	// Serialize the recomputation of one patient-day and one session across appointments
	// (billing--costs declares the same keys, so a group of messages holds them already).
	lockCosts(batch, domain.CostsDayLockKey(f.PatientID, f.LocalDate), domain.CostsSessionLockKey(f.SessionKey))
	var applied bool
	var oldSession, oldPatient, oldClinic, oldDate *string
	batch.Queue(`
		WITH prev AS (
			SELECT session_key, patient_id::text, clinic_id::text, local_date::text FROM cost_attendance
			WHERE appointment_id = $1 FOR UPDATE),
		up AS (
			INSERT INTO cost_attendance (appointment_id, patient_id, clinic_id, program_code, clinician_id, session_key,
				local_date, attended_minutes, scheduled_minutes, version, source_event_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (appointment_id) DO UPDATE SET patient_id = excluded.patient_id, clinic_id = excluded.clinic_id,
				program_code = excluded.program_code, clinician_id = excluded.clinician_id, session_key = excluded.session_key,
				local_date = excluded.local_date, attended_minutes = excluded.attended_minutes,
				scheduled_minutes = excluded.scheduled_minutes, version = excluded.version,
				source_event_id = excluded.source_event_id
			WHERE cost_attendance.version < excluded.version
			RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM up), prev.* FROM (SELECT 1) one LEFT JOIN prev ON true`,
		f.AppointmentID, f.PatientID, f.ClinicID, f.ProgramCode, f.ClinicianID, f.SessionKey, f.LocalDate,
		f.AttendedMinutes, f.ScheduledMinutes, f.Version, f.SourceEventID).QueryRow(func(row pgx.Row) error {
		if err := row.Scan(&applied, &oldSession, &oldPatient, &oldClinic, &oldDate); err != nil {
			return fmt.Errorf("upsert cost attendance: %w", err)
		}
		return nil
	})
	queueSession(batch, f.SessionKey)
	queueDay(batch, f.PatientID, f.ClinicID, f.LocalDate)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return false, err
	}
	if !applied || oldSession == nil {
		return applied, nil
	}
	// A correction moved the appointment to another session or day (rare): recompute the
	// ones it left, under their locks too.
	moved := &pgx.Batch{}
	var keys []string
	if *oldSession != f.SessionKey {
		keys = append(keys, domain.CostsSessionLockKey(*oldSession))
	}
	if *oldPatient != f.PatientID || *oldClinic != f.ClinicID || *oldDate != f.LocalDate {
		keys = append(keys, domain.CostsDayLockKey(*oldPatient, *oldDate))
	}
	if len(keys) == 0 {
		return true, nil
	}
	lockCosts(moved, keys...)
	if *oldSession != f.SessionKey {
		queueSession(moved, *oldSession)
	}
	if *oldPatient != f.PatientID || *oldClinic != f.ClinicID || *oldDate != f.LocalDate {
		queueDay(moved, *oldPatient, *oldClinic, *oldDate)
	}
	return true, tx.SendBatch(ctx, moved).Close()
}

// lockCosts queues the advisory locks of keys, taken in the order given (as pkg/bus takes a
// group's declared keys: one row per key, in array order).
func lockCosts(b *pgx.Batch, keys ...string) {
	b.Queue(`SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest($1::text[]) AS k`,
		keys)
}

// queueSession queues the recomputation of a delivered session from the attendance of its
// appointments (the longest scheduled length, the clinic, clinician and program of its
// appointments), in one statement: upserted when it has attendance, deleted when none is
// left; a row whose values stay the same is not rewritten.
func queueSession(b *pgx.Batch, key string) {
	b.Queue(`
		WITH agg AS (
			SELECT session_key, (array_agg(clinic_id ORDER BY appointment_id))[1] AS clinic_id, max(clinician_id) AS clinician_id,
				max(program_code) AS program_code, min(local_date) AS local_date, max(scheduled_minutes) AS scheduled_minutes
			FROM cost_attendance WHERE session_key = $1 GROUP BY session_key),
		del AS (DELETE FROM delivered_sessions WHERE session_key = $1 AND NOT EXISTS (SELECT 1 FROM agg))
		INSERT INTO delivered_sessions (session_key, clinic_id, clinician_id, program_code, local_date, scheduled_minutes)
		SELECT session_key, clinic_id, clinician_id, program_code, local_date, scheduled_minutes FROM agg
		ON CONFLICT (session_key) DO UPDATE SET clinic_id = excluded.clinic_id, clinician_id = excluded.clinician_id,
			program_code = excluded.program_code, local_date = excluded.local_date, scheduled_minutes = excluded.scheduled_minutes
		WHERE (delivered_sessions.clinic_id, delivered_sessions.clinician_id, delivered_sessions.program_code,
			delivered_sessions.local_date, delivered_sessions.scheduled_minutes) IS DISTINCT FROM
			(excluded.clinic_id, excluded.clinician_id, excluded.program_code, excluded.local_date, excluded.scheduled_minutes)`,
		key)
}

// queueDay queues the recomputation of a patient-day from the attendance of the patient's
// appointments that day (the attended minutes summed, the program of the longest attended
// session; no row when nothing was attended), in one statement like queueSession.
func queueDay(b *pgx.Batch, patientID, clinicID, date string) {
	b.Queue(`
		WITH agg AS (
			SELECT patient_id, clinic_id, local_date,
				(array_agg(program_code ORDER BY attended_minutes DESC, program_code) FILTER (WHERE attended_minutes > 0))[1] AS program_code,
				sum(attended_minutes) AS attended_minutes
			FROM cost_attendance WHERE patient_id = $1 AND clinic_id = $2 AND local_date = $3
			GROUP BY patient_id, clinic_id, local_date
			HAVING sum(attended_minutes) > 0),
		del AS (DELETE FROM patient_days WHERE patient_id = $1 AND clinic_id = $2 AND local_date = $3
			AND NOT EXISTS (SELECT 1 FROM agg))
		INSERT INTO patient_days (patient_id, clinic_id, local_date, program_code, attended_minutes)
		SELECT patient_id, clinic_id, local_date, program_code, attended_minutes FROM agg
		ON CONFLICT (patient_id, clinic_id, local_date) DO UPDATE SET program_code = excluded.program_code,
			attended_minutes = excluded.attended_minutes
		WHERE (patient_days.program_code, patient_days.attended_minutes) IS DISTINCT FROM
			(excluded.program_code, excluded.attended_minutes)`,
		patientID, clinicID, date)
}

// RecordEpisode stores a completed episode once per enrollment; it reports whether it is new.
func (r *Costs) RecordEpisode(ctx context.Context, tx *bus.Tx, e domain.Episode) (bool, error) {
	tag, err := tx.Exec(ctx, `
		INSERT INTO completed_episodes (enrollment_id, patient_id, clinic_id, program_code, completed_on, source_event_id)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (enrollment_id) DO NOTHING`,
		e.EnrollmentID, e.PatientID, e.ClinicID, e.ProgramCode, e.CompletedOn, e.SourceEventID)
	if err != nil {
		return false, fmt.Errorf("record episode: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// SetCostRate inserts or replaces a clinician's (or the clinic default) hourly cost.
func (r *Costs) SetCostRate(ctx context.Context, tx *bus.Tx, c domain.CostRate) error {
	if _, err := tx.Exec(ctx, `
		INSERT INTO cost_rates (clinic_id, clinician_id, hourly_cost_cents) VALUES ($1, $2, $3)
		ON CONFLICT (clinic_id, clinician_id) DO UPDATE SET hourly_cost_cents = excluded.hourly_cost_cents, updated_at = now()`,
		c.ClinicID, c.ClinicianID, c.HourlyCostCents); err != nil {
		return fmt.Errorf("set cost rate: %w", err)
	}
	return nil
}

// SetFixedCost inserts or replaces a fixed monthly cost; 0 cents removes it.
func (r *Costs) SetFixedCost(ctx context.Context, tx *bus.Tx, c domain.FixedCost) error {
	var err error
	if c.AmountCents == 0 {
		_, err = tx.Exec(ctx, `DELETE FROM fixed_costs WHERE clinic_id = $1 AND month = $2 AND label = $3`, c.ClinicID, c.Month, c.Label)
	} else {
		_, err = tx.Exec(ctx, `
			INSERT INTO fixed_costs (clinic_id, month, label, amount_cents) VALUES ($1, $2, $3, $4)
			ON CONFLICT (clinic_id, month, label) DO UPDATE SET amount_cents = excluded.amount_cents, updated_at = now()`,
			c.ClinicID, c.Month, c.Label, c.AmountCents)
	}
	if err != nil {
		return fmt.Errorf("set fixed cost: %w", err)
	}
	return nil
}

// ReportData reads the sums a cost report is built from, for service dates from..to and the
// clinics (nil: every clinic). It also counts the sessions costed at 0 for want of a rate.
func (r *Costs) ReportData(ctx context.Context, from, to string, clinics []string) (in domain.ReportInput, withoutRate int64, err error) {
	return read2(ctx, r.store, func(q querier) (domain.ReportInput, int64, error) {
		const clinicFilter = `($3::uuid[] IS NULL OR %s.clinic_id = ANY($3::uuid[]))`
		f := func(alias string) string { return fmt.Sprintf(clinicFilter, alias) }

		// Clinician time: the clinician's rate, else the clinic default, else 0 (counted).
		rows, err := q.Query(ctx, `
			SELECT s.clinic_id::text, s.program_code, sum(s.scheduled_minutes)::bigint,
				sum(s.scheduled_minutes::bigint * coalesce(own.hourly_cost_cents, dflt.hourly_cost_cents, 0))::bigint,
				count(*) FILTER (WHERE own.hourly_cost_cents IS NULL AND dflt.hourly_cost_cents IS NULL)
			FROM delivered_sessions s
			LEFT JOIN cost_rates own ON own.clinic_id = s.clinic_id AND own.clinician_id = s.clinician_id AND s.clinician_id <> ''
			LEFT JOIN cost_rates dflt ON dflt.clinic_id = s.clinic_id AND dflt.clinician_id = ''
			WHERE s.local_date BETWEEN $1 AND $2 AND `+f("s")+`
			GROUP BY 1, 2`, from, to, clinics)
		if err != nil {
			return in, 0, fmt.Errorf("query sessions: %w", err)
		}
		in.Sessions, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.SessionMinutes, error) {
			var s domain.SessionMinutes
			var n int64
			err := row.Scan(&s.ClinicID, &s.ProgramCode, &s.Minutes, &s.MinuteCents, &n)
			withoutRate += n
			return s, err
		})
		if err != nil {
			return in, 0, fmt.Errorf("read sessions: %w", err)
		}

		rows, err = q.Query(ctx, `
			SELECT fc.clinic_id::text, fc.month::text, fc.label, fc.amount_cents FROM fixed_costs fc
			WHERE fc.month BETWEEN date_trunc('month', $1::date)::date AND $2 AND `+f("fc")+`
			ORDER BY 1, 2, 3`, from, to, clinics)
		if err != nil {
			return in, 0, fmt.Errorf("query fixed costs: %w", err)
		}
		in.FixedCosts, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.FixedCost, error) {
			var c domain.FixedCost
			return c, row.Scan(&c.ClinicID, &c.Month, &c.Label, &c.AmountCents)
		})
		if err != nil {
			return in, 0, fmt.Errorf("read fixed costs: %w", err)
		}

		// Attended patient-days, each with the payer of that day's charges (the first by payer id
		// when several; "" without a charge).
		in.Days, err = r.counts(ctx, q, `
			SELECT d.clinic_id::text, d.program_code, coalesce(c.payer_id, ''), count(*)
			FROM patient_days d
			LEFT JOIN LATERAL (SELECT payer_id FROM charges ch WHERE ch.patient_id = d.patient_id AND ch.clinic_id = d.clinic_id
				AND ch.service_date = d.local_date AND ch.status <> 'void' ORDER BY payer_id LIMIT 1) c ON true
			WHERE d.local_date BETWEEN $1 AND $2 AND `+f("d")+`
			GROUP BY 1, 2, 3`, from, to, clinics)
		if err != nil {
			return in, 0, fmt.Errorf("patient-days: %w", err)
		}
		// Completed episodes, each with the payer of the patient's last charge up to completion.
		in.Episodes, err = r.counts(ctx, q, `
			SELECT e.clinic_id::text, e.program_code, coalesce(c.payer_id, ''), count(*)
			FROM completed_episodes e
			LEFT JOIN LATERAL (SELECT payer_id FROM charges ch WHERE ch.patient_id = e.patient_id AND ch.clinic_id = e.clinic_id
				AND ch.service_date <= e.completed_on AND ch.status <> 'void' ORDER BY service_date DESC, payer_id LIMIT 1) c ON true
			WHERE e.completed_on BETWEEN $1 AND $2 AND `+f("e")+`
			GROUP BY 1, 2, 3`, from, to, clinics)
		if err != nil {
			return in, 0, fmt.Errorf("episodes: %w", err)
		}

		// Charges: non-void, by service date; the program is the patient-day's, else the
		// program of the charge's first appointment.
		rows, err = q.Query(ctx, `
			SELECT ch.clinic_id::text,
				coalesce(d.program_code, (SELECT program_code FROM cost_attendance a WHERE a.appointment_id = ch.appointment_ids[1]), ''),
				ch.payer_id, sum(ch.amount_cents)::bigint
			FROM charges ch
			LEFT JOIN patient_days d ON d.patient_id = ch.patient_id AND d.clinic_id = ch.clinic_id AND d.local_date = ch.service_date
			WHERE ch.status <> 'void' AND ch.service_date BETWEEN $1 AND $2 AND `+f("ch")+`
			GROUP BY 1, 2, 3`, from, to, clinics)
		if err != nil {
			return in, 0, fmt.Errorf("query charges: %w", err)
		}
		in.Revenue, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Revenue, error) {
			var rv domain.Revenue
			return rv, row.Scan(&rv.ClinicID, &rv.ProgramCode, &rv.PayerID, &rv.ChargedCents)
		})
		if err != nil {
			return in, 0, fmt.Errorf("read charges: %w", err)
		}

		paid, err := r.paid(ctx, q, from, to, clinics)
		if err != nil {
			return in, 0, err
		}
		in.Revenue = append(in.Revenue, paid...)
		return in, withoutRate, nil
	})
}

// paid spreads each claim's payer payment over its lines in proportion to their charges
// (domain.AllocateByWeight: the parts sum to the payment) and keeps the lines with service dates in
// the range. Reversed claims count nothing.
func (r *Costs) paid(ctx context.Context, q querier, from, to string, clinics []string) ([]domain.Revenue, error) {
	rows, err := q.Query(ctx, `
		SELECT c.id::text, c.paid_cents, cl.charge_cents, cl.service_date BETWEEN $1 AND $2,
			c.clinic_id::text, c.payer_id,
			coalesce(d.program_code, (SELECT program_code FROM cost_attendance a WHERE a.appointment_id = ch.appointment_ids[1]), '')
		FROM claims c
		JOIN claim_lines cl ON cl.claim_id = c.id
		JOIN charges ch ON ch.id = cl.charge_id
		LEFT JOIN patient_days d ON d.patient_id = ch.patient_id AND d.clinic_id = ch.clinic_id AND d.local_date = ch.service_date
		WHERE c.status <> 'reversed' AND c.paid_cents <> 0 AND ($3::uuid[] IS NULL OR c.clinic_id = ANY($3::uuid[]))
			AND c.id IN (SELECT claim_id FROM claim_lines WHERE service_date BETWEEN $1 AND $2)
		ORDER BY c.id, cl.line_number`, from, to, clinics)
	if err != nil {
		return nil, fmt.Errorf("query claim payments: %w", err)
	}
	type line struct {
		claim        string
		paid, charge int64
		inRange      bool
		rev          domain.Revenue
	}
	lines, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (line, error) {
		var l line
		err := row.Scan(&l.claim, &l.paid, &l.charge, &l.inRange, &l.rev.ClinicID, &l.rev.PayerID, &l.rev.ProgramCode)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("read claim payments: %w", err)
	}
	var out []domain.Revenue
	for i := 0; i < len(lines); {
		j := i
		var weights []int64
		for j < len(lines) && lines[j].claim == lines[i].claim {
			weights = append(weights, lines[j].charge)
			j++
		}
		parts := domain.AllocateByWeight(lines[i].paid, weights)
		for k := i; k < j; k++ {
			if lines[k].inRange && parts != nil {
				rv := lines[k].rev
				rv.PaidCents = parts[k-i]
				out = append(out, rv)
			}
		}
		i = j
	}
	return out, nil
}

func (r *Costs) counts(ctx context.Context, q querier, sql string, args ...any) ([]domain.DayCount, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.DayCount, error) {
		var d domain.DayCount
		return d, row.Scan(&d.ClinicID, &d.ProgramCode, &d.PayerID, &d.Count)
	})
}

// SaveEstimate stores an estimate with what it was asked.
func (r *Costs) SaveEstimate(ctx context.Context, tx *bus.Tx, e domain.Estimate, in domain.EstimateInput, createdBy string) error {
	inputs, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode estimate inputs: %w", err)
	}
	result, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode estimate: %w", err)
	}
	var patient *string
	if e.PatientID != "" {
		patient = &e.PatientID
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO estimates (id, clinic_id, payer_id, patient_id, start_date, good_faith, total_charges_cents,
			payer_cents, patient_cents, inputs, result, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		e.ID, e.ClinicID, e.PayerID, patient, e.StartDate, e.GoodFaith, e.TotalChargesCents, e.PayerCents,
		e.PatientCents, inputs, result, createdBy); err != nil {
		return fmt.Errorf("save estimate: %w", err)
	}
	return nil
}

// Estimate returns a stored estimate; ok is false if there is none.
func (r *Costs) Estimate(ctx context.Context, id string) (e domain.Estimate, ok bool, err error) {
	return read2(ctx, r.store, func(q querier) (domain.Estimate, bool, error) {
		var result []byte
		err = q.QueryRow(ctx, `SELECT result FROM estimates WHERE id = $1`, id).Scan(&result)
		if errors.Is(err, pgx.ErrNoRows) {
			return e, false, nil
		}
		if err != nil {
			return e, false, fmt.Errorf("read estimate: %w", err)
		}
		if err := json.Unmarshal(result, &e); err != nil {
			return e, false, fmt.Errorf("decode estimate: %w", err)
		}
		return e, true, nil
	})
}

// Actuals returns a patient's non-void charges at a clinic from since, and the patient
// responsibility so far: charges billed to the patient plus the patient responsibility of the
// patient's claims (not reversed) from since.
func (r *Costs) Actuals(ctx context.Context, patientID, clinicID, since string) (charged, patientResp int64, err error) {
	return read2(ctx, r.store, func(q querier) (int64, int64, error) {
		var billed, claimResp int64
		if err := q.QueryRow(ctx, `
			SELECT coalesce(sum(amount_cents), 0)::bigint,
				coalesce(sum(amount_cents) FILTER (WHERE status = 'patient_billed'), 0)::bigint
			FROM charges WHERE patient_id = $1 AND clinic_id = $2 AND status <> 'void' AND service_date >= $3`,
			patientID, clinicID, since).Scan(&charged, &billed); err != nil {
			return 0, 0, fmt.Errorf("actual charges: %w", err)
		}
		if err := q.QueryRow(ctx, `
			SELECT coalesce(sum(patient_resp_cents), 0)::bigint FROM claims
			WHERE patient_id = $1 AND clinic_id = $2 AND status <> 'reversed' AND first_service_date >= $3`,
			patientID, clinicID, since).Scan(&claimResp); err != nil {
			return 0, 0, fmt.Errorf("claims patient responsibility: %w", err)
		}
		return charged, billed + claimResp, nil
	})
}
