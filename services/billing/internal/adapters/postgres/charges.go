package postgres

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"

	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// Charges holds billing's copies of attendance, coverages and consents, the authorizations
// and the charges.
type Charges struct {
	store *bus.Store
	cfg   *Config
	crypt sealer
}

// NewCharges returns the repository on store's pool; k seals the coverages' member ids (fields.go).
func NewCharges(store *bus.Store, k *fieldcrypt.Keyring) *Charges {
	return &Charges{store: store, cfg: NewConfig(store), crypt: sealer{k}}
}

// LockPatient serializes, until tx ends, everything that decides a patient's charges at a
// clinic (attendance days, coverage, consent, authorizations): a transaction-scoped advisory
// lock on the patient and clinic. Authorizations span days, so the lock covers the patient's
// days, not one day.
func (r *Charges) LockPatient(ctx context.Context, tx *bus.Tx, patientID, clinicID string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`,
		domain.ChargesLockKey(patientID, clinicID)); err != nil {
		return fmt.Errorf("lock patient charges: %w", err)
	}
	return nil
}

func nullableTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// UpsertAttendance locks the patient's charges at the clinic (as LockPatient) and stores a
// unless a version at least as new is stored, and reads the inputs of a's day as they are
// after the upsert (as DayInputs), in one round trip. It reports whether it changed the row
// and the local date the appointment had before ("" if new or unchanged).
func (r *Charges) UpsertAttendance(ctx context.Context, tx *bus.Tx, a domain.Attendance) (changed bool, oldDate string, in domain.DayInputs, err error) {
	var prev *string
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, domain.ChargesLockKey(a.PatientID, a.ClinicID))
	// prev reads the row as it was before the upsert and locks it. The upsert selects from
	// prev so that prev runs first: run after it (as the outer query's sub-selects would),
	// FOR UPDATE skips the row this statement updated, and a correction that moved the
	// appointment to another day left the old day's charges in place.
	b.Queue(`
		WITH prev AS (SELECT local_date::text AS d FROM attendance WHERE appointment_id = $1 FOR UPDATE),
		up AS (
			INSERT INTO attendance (appointment_id, patient_id, clinic_id, enrollment_id, program_code, service_type,
				clinician_id, session_id, local_date, starts_at, status, minutes_attended, scheduled_minutes, version, source_event_id)
			SELECT $1::uuid, $2::uuid, $3::uuid, $4::uuid, $5::text, $6::text, $7::text, $8::text, $9::date, $10::timestamptz,
				$11::text, $12::integer, $13::integer, $14::integer, $15::uuid
			FROM (SELECT 1) one LEFT JOIN prev ON true
			ON CONFLICT (appointment_id) DO UPDATE SET patient_id = excluded.patient_id, clinic_id = excluded.clinic_id,
				enrollment_id = excluded.enrollment_id, program_code = excluded.program_code, service_type = excluded.service_type,
				clinician_id = excluded.clinician_id, session_id = excluded.session_id, local_date = excluded.local_date,
				starts_at = excluded.starts_at, status = excluded.status, minutes_attended = excluded.minutes_attended,
				scheduled_minutes = excluded.scheduled_minutes, version = excluded.version, source_event_id = excluded.source_event_id
			WHERE attendance.version < excluded.version
			RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM up), (SELECT d FROM prev)`,
		a.AppointmentID, a.PatientID, a.ClinicID, a.EnrollmentID, a.ProgramCode, a.Service, a.ClinicianID, a.SessionID,
		a.LocalDate, a.StartsAt, a.Status, a.MinutesAttended, a.ScheduledMinutes, a.Version, a.SourceEventID).
		QueryRow(func(row pgx.Row) error { return row.Scan(&changed, &prev) })
	// Read whatever the upsert did: a replay (rare) reads for nothing.
	queueDayInputs(b, &in, a.PatientID, a.ClinicID, a.LocalDate)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return false, "", in, fmt.Errorf("lock patient charges, upsert attendance and read the day's inputs: %w", err)
	}
	if !changed {
		return false, "", in, nil
	}
	if prev != nil {
		oldDate = *prev
	}
	return true, oldDate, in, nil
}

// dayAttendanceSQL reads the attendance of a patient's day at a clinic.
const dayAttendanceSQL = `
	SELECT appointment_id::text, patient_id::text, clinic_id::text, enrollment_id::text, program_code, service_type,
		clinician_id, session_id, local_date::text, starts_at, status, minutes_attended, scheduled_minutes, version,
		source_event_id::text
	FROM attendance WHERE patient_id = $1 AND clinic_id = $2 AND local_date = $3`

func scanAttendance(row pgx.CollectableRow) (domain.Attendance, error) {
	var a domain.Attendance
	err := row.Scan(&a.AppointmentID, &a.PatientID, &a.ClinicID, &a.EnrollmentID, &a.ProgramCode, &a.Service,
		&a.ClinicianID, &a.SessionID, &a.LocalDate, &a.StartsAt, &a.Status, &a.MinutesAttended, &a.ScheduledMinutes,
		&a.Version, &a.SourceEventID)
	return a, err
}

// dayReferenceSQL reads in one statement what PrimaryCoverage, PayerKind and ContractOn read
// one after the other: the primary coverage, its payer's kind (NULL: unknown payer) and, for a
// known payer, its contract with the clinic on the day (the earliest effective, as ContractOn)
// with the contract's codes in position order as JSON.
const dayReferenceSQL = `
	SELECT cv.id::text, cv.payer_id, p.kind, ct.id::text, coalesce(ct.billing_mode, ''), coalesce(ct.claim_type, ''),
		coalesce(ct.per_diem_minimum_minutes, 0), coalesce(ct.below_minimum, ''), coalesce(ct.timely_filing_days, 0),
		coalesce(ct.effective_from::text, ''), coalesce(ct.effective_to::text, ''), coalesce(ct.requires_authorization, false),
		coalesce(codes.list, '[]')
	FROM (SELECT id, payer_id FROM coverages
		WHERE patient_id = $1 AND clinic_id = $2 AND priority = 1 AND eligibility <> 'ineligible'
		  AND effective_from <= $3 AND (effective_to IS NULL OR effective_to >= $3)
		ORDER BY effective_from DESC, source_updated_at DESC, id LIMIT 1) cv
	LEFT JOIN payers p ON p.code = cv.payer_id
	LEFT JOIN LATERAL (SELECT * FROM contracts c
		WHERE p.code IS NOT NULL AND c.payer_id = cv.payer_id AND c.clinic_id = $2 AND c.effective_from <= $3
		  AND (c.effective_to IS NULL OR c.effective_to >= $3)
		ORDER BY c.effective_from, c.id LIMIT 1) ct ON true
	LEFT JOIN LATERAL (SELECT json_agg(json_build_object('Service', service, 'ProcedureCode', procedure_code,
			'RevenueCode', revenue_code, 'Modifiers', modifiers, 'RateCents', rate_cents, 'MinMinutes', min_minutes,
			'MaxMinutes', max_minutes) ORDER BY position) AS list
		FROM contract_codes WHERE contract_id = ct.id) codes ON true`

// DayInputs sends the charge writes, then reads what recomputing a patient's day at a clinic
// needs (domain.DayInputs), in one pipelined batch, in this order: the day's attendance, the
// coverage, payer and contract, the day's charges that are not void (locked until tx ends),
// the consents and the authorizations (their used units are kept current by the charges'
// triggers, migration 00014).
func (r *Charges) DayInputs(ctx context.Context, tx *bus.Tx, writes []domain.ChargeWrite, patientID, clinicID, date string) (domain.DayInputs, error) {
	var in domain.DayInputs
	b := &pgx.Batch{}
	queueChargeWrites(b, writes)
	queueDayInputs(b, &in, patientID, clinicID, date)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return in, fmt.Errorf("write charges and read the day's inputs: %w", err)
	}
	return in, nil
}

// queueDayInputs queues the reads of DayInputs into in.
func queueDayInputs(b *pgx.Batch, in *domain.DayInputs, patientID, clinicID, date string) {
	b.Queue(dayAttendanceSQL, patientID, clinicID, date).Query(func(rows pgx.Rows) (err error) {
		in.Sessions, err = pgx.CollectRows(rows, scanAttendance)
		return err
	})
	b.Queue(dayReferenceSQL, patientID, clinicID, date).Query(func(rows pgx.Rows) error {
		var (
			kind, contractID *string
			codes            []byte
			c                = &in.Contract
		)
		found := false
		for rows.Next() {
			found = true
			if err := rows.Scan(&in.Coverage.ID, &in.Coverage.PayerID, &kind, &contractID, &c.Mode, &c.ClaimType,
				&c.PerDiemMinimumMinutes, &c.BelowMinimum, &c.TimelyFilingDays, &c.EffectiveFrom, &c.EffectiveTo,
				&c.RequiresAuthorization, &codes); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil || !found {
			return err
		}
		in.HasCoverage = true
		if kind != nil {
			in.PayerKind, in.PayerKnown = *kind, true
		}
		if contractID == nil {
			in.Contract = domain.Contract{}
			return nil
		}
		c.ID, c.PayerID, c.ClinicID, in.HasContract = *contractID, in.Coverage.PayerID, clinicID, true
		if err := json.Unmarshal(codes, &c.Codes); err != nil {
			return fmt.Errorf("contract codes: %w", err)
		}
		for i := range c.Codes {
			if c.Codes[i].Modifiers == nil {
				c.Codes[i].Modifiers = []string{}
			}
		}
		return nil
	})
	b.Queue(`SELECT `+chargeCols+` FROM charges `+dayChargesWhere, patientID, clinicID, date).Query(func(rows pgx.Rows) (err error) {
		in.Charges, err = pgx.CollectRows(rows, scanCharge)
		return err
	})
	b.Queue(consentsSQL, patientID, clinicID).Query(func(rows pgx.Rows) (err error) {
		in.Consents, err = pgx.CollectRows(rows, scanConsent)
		return err
	})
	b.Queue(`SELECT `+authCols+` FROM authorizations WHERE patient_id = $1 AND clinic_id = $2 ORDER BY ends_on, starts_on, id`,
		patientID, clinicID).Query(func(rows pgx.Rows) (err error) {
		in.Authorizations, err = pgx.CollectRows(rows, scanAuth)
		return err
	})
}

// UpsertCoverage stores c unless a copy updated at the same time or later is stored; it
// reports whether it changed the row.
func (r *Charges) UpsertCoverage(ctx context.Context, tx *bus.Tx, c domain.Coverage) (bool, error) {
	member, err := r.crypt.seal(c.MemberID, "coverages", "member_id", c.ID)
	if err != nil {
		return false, err
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO coverages (id, patient_id, clinic_id, payer_id, plan, member_id_enc, group_number, subscriber_relationship,
			effective_from, effective_to, eligibility, priority, source_updated_at, source_event_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		ON CONFLICT (id) DO UPDATE SET patient_id = excluded.patient_id, clinic_id = excluded.clinic_id,
			payer_id = excluded.payer_id, plan = excluded.plan, member_id = '', member_id_enc = excluded.member_id_enc,
			group_number = excluded.group_number, subscriber_relationship = excluded.subscriber_relationship,
			effective_from = excluded.effective_from, effective_to = excluded.effective_to,
			eligibility = excluded.eligibility, priority = excluded.priority,
			source_updated_at = excluded.source_updated_at, source_event_id = excluded.source_event_id
		WHERE coverages.source_updated_at < excluded.source_updated_at`,
		c.ID, c.PatientID, c.ClinicID, c.PayerID, c.Plan, member, c.GroupNumber, c.SubscriberRelationship,
		c.EffectiveFrom, nullable(c.EffectiveTo), c.Eligibility, c.Priority, c.UpdatedAt, c.SourceEventID)
	if err != nil {
		return false, fmt.Errorf("upsert coverage: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// UpsertConsent stores a granted consent version unless one as new is stored; a revocation
// recorded before keeps applying. It reports whether it changed the row.
func (r *Charges) UpsertConsent(ctx context.Context, tx *bus.Tx, c domain.Consent) (bool, error) {
	tag, err := tx.Exec(ctx, `
		INSERT INTO consents (id, patient_id, clinic_id, version, payment, effective_from, expires_at, supersedes, source_event_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (id) DO UPDATE SET version = excluded.version, payment = excluded.payment,
			effective_from = excluded.effective_from, expires_at = excluded.expires_at,
			supersedes = excluded.supersedes, source_event_id = excluded.source_event_id
		WHERE consents.version < excluded.version`,
		c.ID, c.PatientID, c.ClinicID, c.Version, c.Payment, c.EffectiveFrom, nullableTime(c.ExpiresAt), nullable(c.Supersedes), c.SourceEventID)
	if err != nil {
		return false, fmt.Errorf("upsert consent: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// RevokeConsent records that consent c stops applying at c.RevokedAt (the earliest revocation
// wins). A revocation arriving before its grant is kept as a row of version 0 the grant fills
// in. It reports whether it changed anything.
func (r *Charges) RevokeConsent(ctx context.Context, tx *bus.Tx, c domain.Consent) (bool, error) {
	tag, err := tx.Exec(ctx, `
		INSERT INTO consents (id, patient_id, clinic_id, version, payment, effective_from, revoked_at, source_event_id)
		VALUES ($1, $2, $3, 0, true, $4, $4, $5)
		ON CONFLICT (id) DO UPDATE SET revoked_at = excluded.revoked_at
		WHERE consents.revoked_at IS NULL OR consents.revoked_at > excluded.revoked_at`,
		c.ID, c.PatientID, c.ClinicID, c.RevokedAt, c.SourceEventID)
	if err != nil {
		return false, fmt.Errorf("revoke consent: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Consents returns the patient's consent versions at the clinic.
func (r *Charges) Consents(ctx context.Context, tx *bus.Tx, patientID, clinicID string) ([]domain.Consent, error) {
	rows, err := tx.Query(ctx, consentsSQL, patientID, clinicID)
	if err != nil {
		return nil, fmt.Errorf("query consents: %w", err)
	}
	return pgx.CollectRows(rows, scanConsent)
}

const consentsSQL = `
	SELECT id::text, patient_id::text, clinic_id::text, version, payment, effective_from,
		coalesce(expires_at, 'epoch'), coalesce(revoked_at, 'epoch'), coalesce(supersedes::text, ''), source_event_id::text
	FROM consents WHERE patient_id = $1 AND clinic_id = $2`

func scanConsent(row pgx.CollectableRow) (domain.Consent, error) {
	epoch := time.Unix(0, 0)
	var c domain.Consent
	err := row.Scan(&c.ID, &c.PatientID, &c.ClinicID, &c.Version, &c.Payment, &c.EffectiveFrom, &c.ExpiresAt,
		&c.RevokedAt, &c.Supersedes, &c.SourceEventID)
	if c.ExpiresAt.Equal(epoch) {
		c.ExpiresAt = time.Time{}
	}
	if c.RevokedAt.Equal(epoch) {
		c.RevokedAt = time.Time{}
	}
	return c, err
}

const chargeCols = `id::text, billable_unit, patient_id::text, clinic_id::text, enrollment_id::text, payer_id,
	coalesce(contract_id::text, ''), coalesce(coverage_id::text, ''), service_date::text, service, procedure_code,
	revenue_code, modifiers, units, minutes, rate_cents, amount_cents, status, hold_reason, source_event_ids::text[],
	appointment_ids::text[], coalesce(replaces_charge_id::text, ''), coalesce(authorization_id::text, ''),
	authorized_units, coalesce(claim_id::text, '')`

func (r *Charges) charges(ctx context.Context, q querier, where string, args ...any) ([]domain.Charge, error) {
	rows, err := q.Query(ctx, `SELECT `+chargeCols+` FROM charges `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("query charges: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanCharge)
	if err != nil {
		return nil, fmt.Errorf("read charges: %w", err)
	}
	return out, nil
}

func scanCharge(row pgx.CollectableRow) (domain.Charge, error) {
	var c domain.Charge
	err := row.Scan(&c.ID, &c.BillableUnit, &c.PatientID, &c.ClinicID, &c.EnrollmentID, &c.PayerID, &c.ContractID,
		&c.CoverageID, &c.ServiceDate, &c.Service, &c.ProcedureCode, &c.RevenueCode, &c.Modifiers, &c.Units, &c.Minutes,
		&c.RateCents, &c.AmountCents, &c.Status, &c.HoldReason, &c.SourceEventIDs, &c.AppointmentIDs,
		&c.ReplacesChargeID, &c.AuthorizationID, &c.AuthorizedUnits, &c.ClaimID)
	return c, err
}

// dayChargesWhere selects a patient's day's charges that are not void (charges_patient_day_idx).
const dayChargesWhere = `WHERE patient_id = $1 AND clinic_id = $2 AND service_date = $3 AND status <> 'void'
	ORDER BY billable_unit FOR UPDATE`

// Days returns the service dates of the patient's charges at the clinic in one of statuses
// whose hold reason starts with one of reasons ("" matches any), oldest first.
//
// Held charges only (what recomputeDay and reevaluate ask, per event) get a query of their own
// with the status written in the SQL: pgx prepares statements, and the generic plan Postgres
// switches to after five executions cannot use the partial index charges_held_idx for
// `status = ANY($3)` (it read hundreds of blocks per call, issue 9, B7).
func (r *Charges) Days(ctx context.Context, tx *bus.Tx, patientID, clinicID string, statuses, reasons []string) ([]string, error) {
	sql, args := daysSQL(patientID, clinicID, statuses, reasons)
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("query charge days: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func daysSQL(patientID, clinicID string, statuses, reasons []string) (string, []any) {
	status, args := `status = ANY($4)`, []any{patientID, clinicID, reasons, statuses}
	if len(statuses) == 1 && statuses[0] == domain.ChargeHeld {
		status, args = `status = 'held'`, args[:3]
	}
	return `
		SELECT DISTINCT service_date::text FROM charges
		WHERE patient_id = $1 AND clinic_id = $2 AND ` + status + `
		  AND EXISTS (SELECT 1 FROM unnest($3::text[]) r WHERE starts_with(hold_reason, r))
		ORDER BY 1`, args
}

// DaysAndUsage sends the charge writes, then reads the days as Days and the usage of the
// authorizations ids as Usage (none without ids), in one round trip.
func (r *Charges) DaysAndUsage(ctx context.Context, tx *bus.Tx, writes []domain.ChargeWrite, patientID, clinicID string,
	statuses, reasons, ids []string) (days []string, us []domain.AuthorizationUse, err error) {
	b := &pgx.Batch{}
	queueChargeWrites(b, writes)
	sql, args := daysSQL(patientID, clinicID, statuses, reasons)
	b.Queue(sql, args...).Query(func(rows pgx.Rows) (err error) {
		days, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if len(ids) > 0 {
		queueUsage(b, &us, ids)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, nil, fmt.Errorf("write charges, read charge days and authorization usage: %w", err)
	}
	return days, us, nil
}

// PatientsToReprice returns, sorted, the patients with charges at the clinic that a change of
// payerID's contract may affect: ready or held charges of that payer, or held for "contract".
func (r *Charges) PatientsToReprice(ctx context.Context, tx *bus.Tx, clinicID, payerID string) ([]string, error) {
	rows, err := tx.Query(ctx, `
		SELECT DISTINCT patient_id::text FROM charges
		WHERE clinic_id = $1 AND status IN ('ready', 'held') AND (payer_id = $2 OR hold_reason = $3)
		ORDER BY 1`, clinicID, payerID, domain.HoldContract)
	if err != nil {
		return nil, fmt.Errorf("query patients to reprice: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// ReadyCharges returns the patient's ready charges at the clinic, locked until tx ends.
func (r *Charges) ReadyCharges(ctx context.Context, tx *bus.Tx, patientID, clinicID string) ([]domain.Charge, error) {
	return r.charges(ctx, tx, `WHERE patient_id = $1 AND clinic_id = $2 AND status = 'ready' ORDER BY service_date, id FOR UPDATE`,
		patientID, clinicID)
}

// insertChargeSQL inserts a charge. The unique index on a billable unit's non-void charge
// refuses a second one.
const insertChargeSQL = `
	INSERT INTO charges (id, billable_unit, patient_id, clinic_id, enrollment_id, payer_id, contract_id, coverage_id,
		service_date, service, procedure_code, revenue_code, modifiers, units, minutes, rate_cents, amount_cents,
		status, hold_reason, source_event_ids, appointment_ids, replaces_charge_id, authorization_id, authorized_units)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20::uuid[],
		$21::uuid[], $22, $23, $24)`

func insertChargeArgs(c domain.Charge) []any {
	return []any{c.ID, c.BillableUnit, c.PatientID, c.ClinicID, c.EnrollmentID, c.PayerID, nullable(c.ContractID),
		nullable(c.CoverageID), c.ServiceDate, c.Service, c.ProcedureCode, c.RevenueCode, c.Modifiers, c.Units, c.Minutes,
		c.RateCents, c.AmountCents, c.Status, c.HoldReason, c.SourceEventIDs, c.AppointmentIDs,
		nullable(c.ReplacesChargeID), nullable(c.AuthorizationID), c.AuthorizedUnits}
}

// setChargeStatusSQL changes a charge's status, hold reason and authorization.
const setChargeStatusSQL = `
	UPDATE charges SET status = $2, hold_reason = $3, authorization_id = $4, authorized_units = $5, updated_at = now()
	WHERE id = $1`

// queueChargeWrites queues writes, in order.
func queueChargeWrites(b *pgx.Batch, writes []domain.ChargeWrite) {
	for _, w := range writes {
		c := w.Charge
		if w.Insert {
			b.Queue(insertChargeSQL, insertChargeArgs(c)...)
		} else {
			b.Queue(setChargeStatusSQL, c.ID, c.Status, c.HoldReason, nullable(c.AuthorizationID), c.AuthorizedUnits)
		}
	}
}

// WriteCharges sends writes, in order, in one round trip.
func (r *Charges) WriteCharges(ctx context.Context, tx *bus.Tx, writes []domain.ChargeWrite) error {
	if len(writes) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	queueChargeWrites(b, writes)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("write charges: %w", err)
	}
	return nil
}

const authCols = `id::text, patient_id::text, clinic_id::text, payer_id, service, number, authorized_units, used_units,
	starts_on::text, ends_on::text`

func scanAuth(row pgx.CollectableRow) (domain.Authorization, error) {
	var a domain.Authorization
	err := row.Scan(&a.ID, &a.PatientID, &a.ClinicID, &a.PayerID, &a.Service, &a.Number, &a.AuthorizedUnits,
		&a.UsedUnits, &a.StartsOn, &a.EndsOn)
	return a, err
}

// Authorization returns the authorization with id, locked until tx ends.
func (r *Charges) Authorization(ctx context.Context, tx *bus.Tx, id string) (domain.Authorization, bool, error) {
	rows, err := tx.Query(ctx, `SELECT `+authCols+` FROM authorizations WHERE id = $1 FOR UPDATE`, id)
	if err != nil {
		return domain.Authorization{}, false, fmt.Errorf("query authorization: %w", err)
	}
	as, err := pgx.CollectRows(rows, scanAuth)
	if err != nil || len(as) == 0 {
		return domain.Authorization{}, false, err
	}
	return as[0], true, nil
}

// SaveAuthorization inserts or updates a (not its used units).
func (r *Charges) SaveAuthorization(ctx context.Context, tx *bus.Tx, a domain.Authorization) error {
	if _, err := tx.Exec(ctx, `
		INSERT INTO authorizations (id, patient_id, clinic_id, payer_id, service, number, authorized_units, starts_on, ends_on)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (id) DO UPDATE SET payer_id = excluded.payer_id, service = excluded.service, number = excluded.number,
			authorized_units = excluded.authorized_units, starts_on = excluded.starts_on, ends_on = excluded.ends_on,
			updated_at = now()`,
		a.ID, a.PatientID, a.ClinicID, a.PayerID, a.Service, a.Number, a.AuthorizedUnits, a.StartsOn, a.EndsOn); err != nil {
		return fmt.Errorf("save authorization: %w", err)
	}
	return nil
}

// Usage sends the charge writes, then returns the authorizations with ids, with their used
// units and the notices already sent, in one round trip. The charges' triggers keep the used
// units current (migration 00014): nothing is recounted.
func (r *Charges) Usage(ctx context.Context, tx *bus.Tx, writes []domain.ChargeWrite, ids []string) ([]domain.AuthorizationUse, error) {
	var us []domain.AuthorizationUse
	b := &pgx.Batch{}
	queueChargeWrites(b, writes)
	queueUsage(b, &us, ids)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("write charges and read authorization usage: %w", err)
	}
	return us, nil
}

func queueUsage(b *pgx.Batch, us *[]domain.AuthorizationUse, ids []string) {
	b.Queue(usageSQL, ids).Query(func(rows pgx.Rows) (err error) {
		*us, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.AuthorizationUse, error) { return scanUsage(row) })
		return err
	})
}

const usageSQL = `SELECT ` + authCols + `, nearly_used_notified, exhausted_notified FROM authorizations
	WHERE id = ANY($1::uuid[]) ORDER BY id`

func scanUsage(row pgx.Row) (domain.AuthorizationUse, error) {
	var u domain.AuthorizationUse
	a := &u.Authorization
	err := row.Scan(&a.ID, &a.PatientID, &a.ClinicID, &a.PayerID, &a.Service, &a.Number, &a.AuthorizedUnits, &a.UsedUnits,
		&a.StartsOn, &a.EndsOn, &u.NearlyUsedNotified, &u.ExhaustedNotified)
	return u, err
}

// SetNotified records which usage notices stand for the authorization's current crossing.
func (r *Charges) SetNotified(ctx context.Context, tx *bus.Tx, id string, nearlyUsed, exhausted bool) error {
	if _, err := tx.Exec(ctx, `UPDATE authorizations SET nearly_used_notified = $2, exhausted_notified = $3 WHERE id = $1`,
		id, nearlyUsed, exhausted); err != nil {
		return fmt.Errorf("set authorization notices: %w", err)
	}
	return nil
}

// ListAuthorizations returns a clinic's authorizations (one patient's when patientID is set).
func (r *Charges) ListAuthorizations(ctx context.Context, clinicID, patientID string) ([]domain.Authorization, error) {
	return read(ctx, r.store, func(q querier) ([]domain.Authorization, error) {
		rows, err := q.Query(ctx, `SELECT `+authCols+` FROM authorizations
			WHERE clinic_id = $1 AND ($2 = '' OR patient_id::text = $2) ORDER BY patient_id, starts_on, id`, clinicID, patientID)
		if err != nil {
			return nil, fmt.Errorf("query authorizations: %w", err)
		}
		return pgx.CollectRows(rows, scanAuth)
	})
}

// errBadPageToken: the page token was not one this service wrote.
var errBadPageToken = &domain.ValidationError{Violations: []domain.Violation{
	{Field: "page_token", Rule: "page_token.valid", Msg: "a next_page_token of this listing"}}}

// ListCharges returns a page of charges by service date and id, and the token of the next
// page ("" on the last).
func (r *Charges) ListCharges(ctx context.Context, f domain.ChargeFilter) ([]domain.Charge, string, error) {
	return read2(ctx, r.store, func(q querier) ([]domain.Charge, string, error) {
		where := []string{"clinic_id = $1"}
		args := []any{f.ClinicID}
		add := func(cond string, v any) {
			args = append(args, v)
			where = append(where, fmt.Sprintf(cond, len(args)))
		}
		if f.PatientID != "" {
			add("patient_id = $%d", f.PatientID)
		}
		if f.Status != "" {
			add("status = $%d", f.Status)
		}
		if f.From != "" {
			add("service_date >= $%d", f.From)
		}
		if f.To != "" {
			add("service_date <= $%d", f.To)
		}
		if f.After != "" {
			raw, err := base64.RawURLEncoding.DecodeString(f.After)
			date, id, ok := strings.Cut(string(raw), "|")
			if _, errDate := time.Parse(time.DateOnly, date); err != nil || !ok || errDate != nil {
				return nil, "", errBadPageToken
			}
			if _, err := domain.ParseID(id); err != nil {
				return nil, "", errBadPageToken
			}
			args = append(args, date, id)
			where = append(where, fmt.Sprintf("(service_date, id) > ($%d::date, $%d::uuid)", len(args)-1, len(args)))
		}
		args = append(args, f.Limit+1)
		cs, err := r.charges(ctx, q, "WHERE "+strings.Join(where, " AND ")+
			fmt.Sprintf(" ORDER BY service_date, id LIMIT $%d", len(args)), args...)
		if err != nil {
			return nil, "", err
		}
		next := ""
		if len(cs) > f.Limit {
			cs = cs[:f.Limit]
			last := cs[len(cs)-1]
			next = base64.RawURLEncoding.EncodeToString([]byte(last.ServiceDate + "|" + last.ID))
		}
		return cs, next, nil
	})
}

// PayerExists reports whether a payer has code.
func (r *Charges) PayerExists(ctx context.Context, tx *bus.Tx, code string) (bool, error) {
	return r.cfg.PayerExists(ctx, tx, code)
}
