package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"

	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// Claims holds patient identities, diagnoses, billing providers, claim files, claims, claim
// lines and disclosures, and moves charges onto claims.
type Claims struct {
	store *bus.Store
	crypt sealer
}

// NewClaims returns the repository on store's pool; k seals and opens the encrypted fields (dates of
// birth, member ids: fields.go).
func NewClaims(store *bus.Store, k *fieldcrypt.Keyring) *Claims {
	return &Claims{store: store, crypt: sealer{k}}
}

// UpsertIdentity stores id unless billing already holds one recorded at the same time or
// later; it reports whether it wrote.
func (r *Claims) UpsertIdentity(ctx context.Context, tx *bus.Tx, id domain.PatientIdentity) (bool, error) {
	dob, err := r.crypt.seal(id.DateOfBirth, "patient_identities", "date_of_birth", id.PatientID)
	if err != nil {
		return false, err
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO patient_identities (patient_id, given_name, family_name, date_of_birth_enc, source_event_id, recorded_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (patient_id) DO UPDATE SET given_name = excluded.given_name, family_name = excluded.family_name,
			date_of_birth = NULL, date_of_birth_enc = excluded.date_of_birth_enc,
			source_event_id = excluded.source_event_id, recorded_at = excluded.recorded_at
		WHERE patient_identities.recorded_at < excluded.recorded_at`,
		id.PatientID, id.GivenName, id.FamilyName, dob, id.SourceEventID, id.RecordedAt)
	if err != nil {
		return false, fmt.Errorf("upsert patient identity: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// ReleaseHeld makes the patient's charges held for reason ready again (at clinicID, or at
// every clinic when clinicID is empty) and returns them.
func (r *Claims) ReleaseHeld(ctx context.Context, tx *bus.Tx, patientID, clinicID, reason string) ([]domain.ClaimChargeRef, error) {
	rows, err := tx.Query(ctx, `
		UPDATE charges SET status = 'ready', hold_reason = '', updated_at = now()
		WHERE patient_id = $1 AND ($2 = '' OR clinic_id::text = $2) AND status = 'held' AND hold_reason = $3
		RETURNING id::text, patient_id::text, clinic_id::text`, patientID, clinicID, reason)
	if err != nil {
		return nil, fmt.Errorf("release held charges: %w", err)
	}
	return collectRefs(rows)
}

func collectRefs(rows pgx.Rows) ([]domain.ClaimChargeRef, error) {
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.ClaimChargeRef, error) {
		var c domain.ClaimChargeRef
		return c, row.Scan(&c.ID, &c.PatientID, &c.ClinicID)
	})
	if err != nil {
		return nil, fmt.Errorf("read charges: %w", err)
	}
	return out, nil
}

// SaveBillingProvider inserts or replaces the clinic's billing provider.
func (r *Claims) SaveBillingProvider(ctx context.Context, tx *bus.Tx, p domain.BillingProvider) error {
	if _, err := tx.Exec(ctx, `
		INSERT INTO billing_providers (clinic_id, name, npi, tax_id, taxonomy_code, address_line, city, state, postal_code)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (clinic_id) DO UPDATE SET name = excluded.name, npi = excluded.npi, tax_id = excluded.tax_id,
			taxonomy_code = excluded.taxonomy_code, address_line = excluded.address_line, city = excluded.city,
			state = excluded.state, postal_code = excluded.postal_code, updated_at = now()
		WHERE (billing_providers.name, billing_providers.npi, billing_providers.tax_id, billing_providers.taxonomy_code,
			billing_providers.address_line, billing_providers.city, billing_providers.state, billing_providers.postal_code)
			IS DISTINCT FROM (excluded.name, excluded.npi, excluded.tax_id, excluded.taxonomy_code,
			excluded.address_line, excluded.city, excluded.state, excluded.postal_code)`,
		p.ClinicID, p.Name, p.NPI, p.TaxID, p.Taxonomy, p.AddressLine, p.City, p.State, p.PostalCode); err != nil {
		return fmt.Errorf("save billing provider: %w", err)
	}
	return nil
}

// BillingProvider returns the clinic's billing provider; ok is false if none is set.
func (r *Claims) BillingProvider(ctx context.Context, clinicID string) (domain.BillingProvider, bool, error) {
	return read2(ctx, r.store, func(q querier) (domain.BillingProvider, bool, error) {
		var p domain.BillingProvider
		err := q.QueryRow(ctx, `
			SELECT clinic_id::text, name, npi, tax_id, taxonomy_code, address_line, city, state, postal_code
			FROM billing_providers WHERE clinic_id = $1`, clinicID).
			Scan(&p.ClinicID, &p.Name, &p.NPI, &p.TaxID, &p.Taxonomy, &p.AddressLine, &p.City, &p.State, &p.PostalCode)
		if err == pgx.ErrNoRows {
			return p, false, nil
		}
		if err != nil {
			return p, false, fmt.Errorf("billing provider: %w", err)
		}
		return p, true, nil
	})
}

// SaveDiagnoses replaces the patient's diagnoses at the clinic.
func (r *Claims) SaveDiagnoses(ctx context.Context, tx *bus.Tx, patientID, clinicID string, codes []string) error {
	if _, err := tx.Exec(ctx, `
		INSERT INTO patient_diagnoses (patient_id, clinic_id, codes) VALUES ($1, $2, $3)
		ON CONFLICT (patient_id, clinic_id) DO UPDATE SET codes = excluded.codes, updated_at = now()`,
		patientID, clinicID, codes); err != nil {
		return fmt.Errorf("save diagnoses: %w", err)
	}
	return nil
}

// ReadyPayers returns the payers (all, or only payerID) that have ready charges at the clinic
// (or charges held for their claim data, which each run tries again, or claims to correct),
// self-pay excluded (its charges are billed to the patient, not claimed).
func (r *Claims) ReadyPayers(ctx context.Context, clinicID, payerID string) ([]domain.Payer, error) {
	return read(ctx, r.store, func(q querier) ([]domain.Payer, error) {
		rows, err := q.Query(ctx, `
			SELECT p.code, p.name, p.kind, p.x12_payer_id FROM payers p
			WHERE p.kind <> 'self_pay' AND ($2 = '' OR p.code = $2)
			  AND (EXISTS (SELECT 1 FROM charges c WHERE c.clinic_id = $1 AND c.payer_id = p.code
			               AND (c.status = 'ready' OR (c.status = 'held' AND starts_with(c.hold_reason, $3))))
			    OR EXISTS (SELECT 1 FROM claims c WHERE c.clinic_id = $1 AND c.payer_id = p.code AND `+toCorrect+`))
			ORDER BY p.code`, clinicID, payerID, domain.ClaimHoldData+":")
		if err != nil {
			return nil, fmt.Errorf("ready payers: %w", err)
		}
		return pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Payer, error) {
			var p domain.Payer
			return p, row.Scan(&p.Code, &p.Name, &p.Kind, &p.X12PayerID)
		})
	})
}

// claimChargeCols and claimChargeJoins read a charge (ch) with what its claim needs; $3 is the
// time a payment consent must be in force at. Lines of a claim (l) override the amounts, codes
// and date with the line as sent (claimLineCols).
const (
	claimChargeCols = `ch.id::text, ch.patient_id::text, ch.clinic_id::text, ch.payer_id,
		       coalesce(ch.contract_id::text, ''), coalesce(cv.id::text, ''), ch.service_date::text,
		       ch.procedure_code, ch.revenue_code, ch.modifiers, ch.units, ch.amount_cents,
		       coalesce(ct.claim_type, ''), coalesce(ct.timely_filing_days, 0),
		       NULLIF(cv.member_id, ''), cv.member_id_enc, coalesce(cv.group_number, ''),
		       coalesce(cs.id::text, ''),
		       pi.patient_id IS NOT NULL, coalesce(pi.given_name, ''), coalesce(pi.family_name, ''),
		       to_char(pi.date_of_birth, 'YYYY-MM-DD'), pi.date_of_birth_enc,
		       coalesce(pd.codes, '{}'), coalesce(au.number, ''), ch.status`
	claimLineCols = `ch.id::text, ch.patient_id::text, ch.clinic_id::text, ch.payer_id,
		       coalesce(ch.contract_id::text, ''), coalesce(cv.id::text, ''), l.service_date::text,
		       l.procedure_code, l.revenue_code, l.modifiers, l.units, l.charge_cents,
		       coalesce(ct.claim_type, ''), coalesce(ct.timely_filing_days, 0),
		       NULLIF(cv.member_id, ''), cv.member_id_enc, coalesce(cv.group_number, ''),
		       coalesce(cs.id::text, ''),
		       pi.patient_id IS NOT NULL, coalesce(pi.given_name, ''), coalesce(pi.family_name, ''),
		       to_char(pi.date_of_birth, 'YYYY-MM-DD'), pi.date_of_birth_enc,
		       coalesce(pd.codes, '{}'), coalesce(au.number, ''), ch.status`
	claimChargeJoins = `
		LEFT JOIN contracts ct ON ct.id = ch.contract_id
		LEFT JOIN coverages cv ON cv.id = ch.coverage_id
		LEFT JOIN patient_identities pi ON pi.patient_id = ch.patient_id
		LEFT JOIN patient_diagnoses pd ON pd.patient_id = ch.patient_id AND pd.clinic_id = ch.clinic_id
		LEFT JOIN authorizations au ON au.id = ch.authorization_id
		LEFT JOIN LATERAL (
			-- A payment consent in force now that no later version supersedes (as the charges
			-- area judges it: domain.HasPaymentConsent), the latest if several.
			SELECT k.id FROM consents k
			WHERE k.patient_id = ch.patient_id AND k.clinic_id = ch.clinic_id AND k.payment AND k.effective_from <= $3
			  AND (k.expires_at IS NULL OR k.expires_at > $3) AND (k.revoked_at IS NULL OR k.revoked_at > $3)
			  AND NOT EXISTS (SELECT 1 FROM consents s WHERE s.supersedes = k.id)
			ORDER BY k.version DESC, k.effective_from DESC LIMIT 1) cs ON true`
	// toCorrect: claim c went out, one of its lines' charges was voided since, and it has no
	// correction yet (a void claim is never corrected).
	toCorrect = `c.corrected_by_claim_id IS NULL AND c.frequency_code <> '8' AND c.status NOT IN ('replaced', 'voided')
		AND EXISTS (SELECT 1 FROM claim_lines vl JOIN charges v ON v.id = vl.charge_id WHERE vl.claim_id = c.id AND v.status = 'void')`
)

// sealedCols receives the encrypted fields of a claim charge row (claimChargeCols), opened
// into the charge by open.
type sealedCols struct{ memberID, memberIDEnc, dob, dobEnc *string }

func claimChargeDest(c *domain.ClaimCharge, s *sealedCols, extra ...any) []any {
	return append([]any{&c.ID, &c.PatientID, &c.ClinicID, &c.PayerID, &c.ContractID, &c.CoverageID, &c.ServiceDate,
		&c.ProcedureCode, &c.RevenueCode, &c.Modifiers, &c.Units, &c.AmountCents, &c.ClaimType, &c.TimelyFilingDays,
		&s.memberID, &s.memberIDEnc, &c.GroupNumber, &c.ConsentID, &c.HasIdentity, &c.Identity.GivenName, &c.Identity.FamilyName,
		&s.dob, &s.dobEnc, &c.Diagnoses, &c.PriorAuthorization, &c.Status}, extra...)
}

// open decrypts the member id and date of birth the 837 needs into c (after the scan).
func (r *Claims) open(c *domain.ClaimCharge, s *sealedCols) error {
	var err error
	if c.MemberID, err = r.crypt.open(s.memberID, s.memberIDEnc, "coverages", "member_id", c.CoverageID); err != nil {
		return err
	}
	c.Identity.DateOfBirth, err = r.crypt.open(s.dob, s.dobEnc, "patient_identities", "date_of_birth", c.PatientID)
	return err
}

// LockReadyCharges locks the clinic's ready charges of a payer (skipping any another run holds)
// and returns them with what their claims need; consents are judged valid at now. A charge
// that bills again the unit of a voided line of a claim of the payer not corrected yet (it
// replaces that line's charge, or has its billable unit) names that claim.
func (r *Claims) LockReadyCharges(ctx context.Context, tx *bus.Tx, clinicID, payerID string, now time.Time) ([]domain.ClaimCharge, error) {
	rows, err := tx.Query(ctx, `
		SELECT `+claimChargeCols+`, coalesce(oc.id::text, ''), coalesce(oc.ref, '')
		FROM charges ch`+claimChargeJoins+`
		LEFT JOIN LATERAL (
			SELECT c.id, coalesce(nullif(c.payer_claim_number, ''), c.control_number) AS ref
			FROM charges v JOIN claim_lines l ON l.charge_id = v.id JOIN claims c ON c.id = l.claim_id
			WHERE v.status = 'void' AND (v.id = ch.replaces_charge_id OR v.billable_unit = ch.billable_unit)
			  AND c.clinic_id = ch.clinic_id AND c.payer_id = ch.payer_id AND c.patient_id = ch.patient_id AND `+toCorrect+`
			ORDER BY c.submitted_at DESC, c.id DESC LIMIT 1) oc ON true
		WHERE ch.clinic_id = $1 AND ch.payer_id = $2 AND ch.status = 'ready'
		ORDER BY ch.patient_id, ch.service_date, ch.id
		FOR UPDATE OF ch SKIP LOCKED`, clinicID, payerID, now)
	if err != nil {
		return nil, fmt.Errorf("lock ready charges: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.ClaimCharge, error) {
		var c domain.ClaimCharge
		var s sealedCols
		if err := row.Scan(claimChargeDest(&c, &s, &c.ReplacesClaimID, &c.OriginalReference)...); err != nil {
			return c, err
		}
		c.Identity.PatientID = c.PatientID
		return c, r.open(&c, &s)
	})
	if err != nil {
		return nil, fmt.Errorf("read ready charges: %w", err)
	}
	return out, nil
}

// LockClaimsToCorrect locks the clinic's claims of a payer that must be corrected (a line's
// charge voided since they went out, no correction yet; claims another run holds are skipped)
// and returns them with their lines as sent, each with its charge (locked too) and what a
// claim needs, and the charges not on a claim yet that bill again their voided lines' units.
func (r *Claims) LockClaimsToCorrect(ctx context.Context, tx *bus.Tx, clinicID, payerID string, now time.Time) ([]domain.ToCorrect, error) {
	rows, err := tx.Query(ctx, `
		SELECT c.id::text, c.control_number, coalesce(nullif(c.payer_claim_number, ''), c.control_number), c.patient_id::text,
		       c.payer_id, c.contract_id::text, coalesce(c.coverage_id::text, ''), c.claim_type
		FROM claims c WHERE c.clinic_id = $1 AND c.payer_id = $2 AND `+toCorrect+`
		ORDER BY c.patient_id, c.submitted_at, c.id
		FOR UPDATE OF c SKIP LOCKED`, clinicID, payerID)
	if err != nil {
		return nil, fmt.Errorf("lock claims to correct: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.ToCorrect, error) {
		var o domain.ToCorrect
		return o, row.Scan(&o.ID, &o.ControlNumber, &o.Reference, &o.PatientID, &o.PayerID, &o.ContractID, &o.CoverageID, &o.ClaimType)
	})
	if err != nil || len(out) == 0 {
		return nil, err
	}
	index := map[string]int{}
	ids := make([]string, len(out))
	for i, o := range out {
		index[o.ID], ids[i] = i, o.ID
	}
	rows, err = tx.Query(ctx, `
		SELECT l.claim_id::text, `+claimLineCols+`
		FROM claim_lines l JOIN charges ch ON ch.id = l.charge_id`+claimChargeJoins+`
		WHERE l.claim_id = ANY($4::uuid[]) AND $1::text <> '' AND $2::text <> ''
		ORDER BY l.claim_id, l.line_number
		FOR UPDATE OF ch`, clinicID, payerID, now, ids)
	if err != nil {
		return nil, fmt.Errorf("claim lines to correct: %w", err)
	}
	_, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (struct{}, error) {
		var claimID string
		var c domain.ClaimCharge
		var s sealedCols
		if err := row.Scan(append([]any{&claimID}, claimChargeDest(&c, &s)...)...); err != nil {
			return struct{}{}, err
		}
		if err := r.open(&c, &s); err != nil {
			return struct{}{}, err
		}
		c.Identity.PatientID = c.PatientID
		out[index[claimID]].Lines = append(out[index[claimID]].Lines, c)
		return struct{}{}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read claim lines to correct: %w", err)
	}
	rows, err = tx.Query(ctx, `
		SELECT DISTINCT l.claim_id::text, cur.id::text
		FROM claim_lines l JOIN claims c ON c.id = l.claim_id JOIN charges v ON v.id = l.charge_id AND v.status = 'void'
		JOIN charges cur ON (cur.replaces_charge_id = v.id OR cur.billable_unit = v.billable_unit)
		  AND cur.status IN ('ready', 'held') AND cur.claim_id IS NULL AND cur.payer_id = c.payer_id
		WHERE l.claim_id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, fmt.Errorf("charges replacing claim lines: %w", err)
	}
	var claimID, chargeID string
	_, err = pgx.ForEachRow(rows, []any{&claimID, &chargeID}, func() error {
		out[index[claimID]].Pending = append(out[index[claimID]].Pending, chargeID)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("charges replacing claim lines: %w", err)
	}
	return out, nil
}

// HoldCharges holds the ready charges ids for reason; it returns how many it held.
func (r *Claims) HoldCharges(ctx context.Context, tx *bus.Tx, ids []string, reason string) (int, error) {
	tag, err := tx.Exec(ctx, `UPDATE charges SET status = 'held', hold_reason = $2, updated_at = now()
		WHERE id = ANY($1::uuid[]) AND status = 'ready'`, ids, reason)
	if err != nil {
		return 0, fmt.Errorf("hold charges: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// ReleaseClaimDataHolds makes the clinic's charges of payerID held for their claim data ready
// again, in tx, and returns their ids with the reason they were held for.
func (r *Claims) ReleaseClaimDataHolds(ctx context.Context, tx *bus.Tx, clinicID, payerID string) (map[string]string, error) {
	rows, err := tx.Query(ctx, `
		UPDATE charges c SET status = 'ready', hold_reason = '', updated_at = now()
		FROM (SELECT id, hold_reason FROM charges
		      WHERE clinic_id = $1 AND payer_id = $2 AND status = 'held' AND starts_with(hold_reason, $3)
		      FOR UPDATE) old
		WHERE c.id = old.id
		RETURNING c.id::text, old.hold_reason`, clinicID, payerID, domain.ClaimHoldData+":")
	if err != nil {
		return nil, fmt.Errorf("release claim data holds: %w", err)
	}
	out := map[string]string{}
	var id, reason string
	_, err = pgx.ForEachRow(rows, []any{&id, &reason}, func() error {
		out[id] = reason
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("release claim data holds: %w", err)
	}
	return out, nil
}

// NextInterchangeNumber draws the next ISA13.
func (r *Claims) NextInterchangeNumber(ctx context.Context, tx *bus.Tx) (int64, error) {
	var n int64
	if err := tx.QueryRow(ctx, `SELECT nextval('interchange_control_seq')`).Scan(&n); err != nil {
		return 0, fmt.Errorf("next interchange control number: %w", err)
	}
	return n, nil
}

// SaveClaimFile stores f, its claims and their lines, moves the claims' charges from ready to
// submitted on them, and records one disclosure per claim (to recipient, for payment, under
// the claim's consent). A correction also moves the still valid charges of the claim it
// corrects onto itself (submitted; a void claim's charges are void and stay) and marks that
// claim replaced or voided. It fails if any charge is no longer where the run found it.
func (r *Claims) SaveClaimFile(ctx context.Context, tx *bus.Tx, f domain.ClaimFile, claims []domain.ClaimDraft, recipient string) error {
	// The 837 holds the member ids and dates of birth (and names, diagnoses): it is sealed too.
	content, err := r.crypt.seal(f.Content, "claim_files", "content", f.ID)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO claim_files (id, clinic_id, payer_id, claim_type, interchange_control_number, claim_count, total_cents, content, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		f.ID, f.ClinicID, f.PayerID, f.ClaimType, f.InterchangeControlNumber, f.ClaimCount, f.TotalCents, content, f.CreatedAt); err != nil {
		return fmt.Errorf("insert claim file: %w", err)
	}
	for _, d := range claims {
		dates := d.ClaimDates()
		var coverage, replaces *string
		if d.CoverageID != "" {
			coverage = &d.CoverageID
		}
		if d.ReplacesClaimID != "" {
			replaces = &d.ReplacesClaimID
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO claims (id, file_id, control_number, clinic_id, patient_id, payer_id, contract_id, coverage_id,
				claim_type, frequency_code, replaces_claim_id, total_cents, first_service_date, last_service_date, submitted_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
			d.ID, f.ID, d.ControlNumber, f.ClinicID, d.PatientID, d.PayerID, d.ContractID, coverage, d.ClaimType,
			d.FrequencyCode, replaces, d.TotalCents, dates[0], dates[len(dates)-1], f.CreatedAt); err != nil {
			return fmt.Errorf("insert claim: %w", err)
		}
		ids := make([]string, len(d.Charges))
		for i, c := range d.Charges {
			ids[i] = c.ID
			if _, err := tx.Exec(ctx, `
				INSERT INTO claim_lines (claim_id, line_number, charge_id, line_control_number, procedure_code, revenue_code,
					modifiers, units, charge_cents, service_date, clinic_id)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
				d.ID, i+1, c.ID, domain.LineControlNumber(d.ControlNumber, i+1), c.ProcedureCode, c.RevenueCode,
				nonNil(c.Modifiers), c.Units, c.AmountCents, c.ServiceDate, f.ClinicID); err != nil {
				return fmt.Errorf("insert claim line: %w", err)
			}
		}
		if d.FrequencyCode != domain.FrequencyVoid {
			// A correction's lines still valid move onto it too: the payer adjudicates it anew.
			tag, err := tx.Exec(ctx, `UPDATE charges SET status = 'submitted', claim_id = $1, updated_at = now()
				WHERE id = ANY($2::uuid[]) AND ((status = 'ready' AND claim_id IS NULL)
				  OR (status IN ('submitted', 'paid', 'denied') AND claim_id::text = $3))`, d.ID, ids, d.ReplacesClaimID)
			if err != nil {
				return fmt.Errorf("submit charges: %w", err)
			}
			if int(tag.RowsAffected()) != len(ids) {
				return fmt.Errorf("submit charges: %d of %d were still ready", tag.RowsAffected(), len(ids))
			}
		}
		if d.ReplacesClaimID != "" {
			tag, err := tx.Exec(ctx, `UPDATE claims SET corrected_by_claim_id = $1, status = $3
				WHERE id = $2 AND corrected_by_claim_id IS NULL`, d.ID, d.ReplacesClaimID, domain.CorrectedStatus(d))
			if err != nil {
				return fmt.Errorf("mark corrected claim: %w", err)
			}
			if tag.RowsAffected() != 1 {
				return fmt.Errorf("mark corrected claim %s: already corrected", d.ReplacesClaimID)
			}
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO disclosures (id, patient_id, clinic_id, recipient, purpose, consent_id, claim_id, description, disclosed_at)
			VALUES ($1, $2, $3, $4, 'payment', $5, $6, $7, $8)`,
			bus.NewID(), d.PatientID, f.ClinicID, recipient, d.ConsentID, d.ID, domain.DisclosureDescription(dates), f.CreatedAt); err != nil {
			return fmt.Errorf("insert disclosure: %w", err)
		}
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

const claimFileCols = `f.id::text, f.clinic_id::text, f.payer_id, f.claim_type, f.interchange_control_number, f.claim_count,
	(SELECT count(*) FROM claim_lines l JOIN claims c ON c.id = l.claim_id WHERE c.file_id = f.id), f.total_cents, f.created_at`

func scanClaimFile(row pgx.Row, withContent bool) (domain.ClaimFile, error) {
	var f domain.ClaimFile
	dest := []any{&f.ID, &f.ClinicID, &f.PayerID, &f.ClaimType, &f.InterchangeControlNumber, &f.ClaimCount, &f.LineCount,
		&f.TotalCents, &f.CreatedAt}
	if withContent {
		dest = append(dest, &f.Content)
	}
	err := row.Scan(dest...)
	return f, err
}

// ClaimFiles lists the clinic's files (of payerID, or all), newest first, without content.
func (r *Claims) ClaimFiles(ctx context.Context, clinicID, payerID string) ([]domain.ClaimFile, error) {
	return read(ctx, r.store, func(q querier) ([]domain.ClaimFile, error) {
		rows, err := q.Query(ctx, `SELECT `+claimFileCols+` FROM claim_files f
			WHERE f.clinic_id = $1 AND ($2 = '' OR f.payer_id = $2)
			ORDER BY f.created_at DESC, f.interchange_control_number DESC`, clinicID, payerID)
		if err != nil {
			return nil, fmt.Errorf("query claim files: %w", err)
		}
		out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.ClaimFile, error) { return scanClaimFile(row, false) })
		if err != nil {
			return nil, fmt.Errorf("read claim files: %w", err)
		}
		return out, nil
	})
}

// ClaimFile returns one file with its content; ok is false if there is none.
func (r *Claims) ClaimFile(ctx context.Context, id string) (domain.ClaimFile, bool, error) {
	return read2(ctx, r.store, func(q querier) (domain.ClaimFile, bool, error) {
		f, err := scanClaimFile(q.QueryRow(ctx, `SELECT `+claimFileCols+`, f.content FROM claim_files f WHERE f.id = $1`, id), true)
		if err == pgx.ErrNoRows {
			return f, false, nil
		}
		if err != nil {
			return f, false, fmt.Errorf("claim file: %w", err)
		}
		// A file not sealed yet (written before migration 00010) is an 837: it starts with ISA.
		if strings.HasPrefix(f.Content, fieldcrypt.Version+":") {
			if f.Content, err = r.crypt.open(nil, &f.Content, "claim_files", "content", f.ID); err != nil {
				return f, false, err
			}
		}
		return f, true, nil
	})
}

// ClaimFilePatients lists the patients whose claims file fileID holds, sorted (for the audit
// trail of a download).
func (r *Claims) ClaimFilePatients(ctx context.Context, fileID string) ([]string, error) {
	return read(ctx, r.store, func(q querier) ([]string, error) {
		rows, err := q.Query(ctx, `SELECT DISTINCT patient_id::text FROM claims WHERE file_id = $1 ORDER BY 1`, fileID)
		if err != nil {
			return nil, fmt.Errorf("query claim file patients: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("read claim file patients: %w", err)
		}
		return ids, nil
	})
}

// ListClaims lists the clinic's claims (of patientID and in status, when not empty), newest
// first, with their lines.
func (r *Claims) ListClaims(ctx context.Context, clinicID, patientID, status string) ([]domain.Claim, error) {
	return read(ctx, r.store, func(q querier) ([]domain.Claim, error) {
		rows, err := q.Query(ctx, `
			SELECT id::text, file_id::text, control_number, clinic_id::text, patient_id::text, payer_id, contract_id::text,
			       claim_type, frequency_code, coalesce(replaces_claim_id::text, ''), status, total_cents,
			       first_service_date::text, last_service_date::text, submitted_at, coalesce(corrected_by_claim_id::text, '')
			FROM claims WHERE clinic_id = $1 AND ($2 = '' OR patient_id::text = $2) AND ($3 = '' OR status = $3)
			ORDER BY submitted_at DESC, control_number`, clinicID, patientID, status)
		if err != nil {
			return nil, fmt.Errorf("query claims: %w", err)
		}
		claims, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Claim, error) {
			var c domain.Claim
			err := row.Scan(&c.ID, &c.FileID, &c.ControlNumber, &c.ClinicID, &c.PatientID, &c.PayerID, &c.ContractID,
				&c.ClaimType, &c.FrequencyCode, &c.ReplacesClaimID, &c.Status, &c.TotalCents, &c.FirstServiceDate,
				&c.LastServiceDate, &c.SubmittedAt, &c.CorrectedByClaimID)
			return c, err
		})
		if err != nil {
			return nil, fmt.Errorf("read claims: %w", err)
		}
		for i := range claims {
			rows, err := q.Query(ctx, `
				SELECT line_number, charge_id::text, line_control_number, procedure_code, revenue_code, modifiers, units,
				       charge_cents, service_date::text
				FROM claim_lines WHERE claim_id = $1 ORDER BY line_number`, claims[i].ID)
			if err != nil {
				return nil, fmt.Errorf("query claim lines: %w", err)
			}
			claims[i].Lines, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.ClaimLine, error) {
				var l domain.ClaimLine
				err := row.Scan(&l.LineNumber, &l.ChargeID, &l.ControlNumber, &l.ProcedureCode, &l.RevenueCode, &l.Modifiers,
					&l.Units, &l.ChargeCents, &l.ServiceDate)
				return l, err
			})
			if err != nil {
				return nil, fmt.Errorf("read claim lines: %w", err)
			}
		}
		return claims, nil
	})
}

// Disclosures is the patient's accounting of disclosures at the clinic, oldest first.
func (r *Claims) Disclosures(ctx context.Context, patientID, clinicID string) ([]domain.Disclosure, error) {
	return read(ctx, r.store, func(q querier) ([]domain.Disclosure, error) {
		rows, err := q.Query(ctx, `
			SELECT id::text, patient_id::text, clinic_id::text, recipient, purpose, consent_id::text, claim_id::text,
			       description, disclosed_at
			FROM disclosures WHERE patient_id = $1 AND clinic_id = $2 ORDER BY disclosed_at, id`, patientID, clinicID)
		if err != nil {
			return nil, fmt.Errorf("query disclosures: %w", err)
		}
		out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Disclosure, error) {
			var d domain.Disclosure
			err := row.Scan(&d.ID, &d.PatientID, &d.ClinicID, &d.Recipient, &d.Purpose, &d.ConsentID, &d.ClaimID,
				&d.Description, &d.DisclosedAt)
			return d, err
		})
		if err != nil {
			return nil, fmt.Errorf("read disclosures: %w", err)
		}
		return out, nil
	})
}
