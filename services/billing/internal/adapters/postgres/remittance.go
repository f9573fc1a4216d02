package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/idempotency"
	"github.com/trellis-health/trellis/pkg/money"

	"github.com/trellis-health/trellis/services/billing/internal/domain"
	"github.com/trellis-health/trellis/services/billing/internal/x12"
)

// Remittances stores 835 remittances, their postings, work items, write-offs, ledger entries
// and statements, and reads the claims and charges they post against. Its idempotency keys
// (WriteOff's) are idempotency.Postgres.
type Remittances struct {
	idempotency.Postgres
	store *bus.Store
	crypt sealer
}

// NewRemittances returns the repository on store's pool; k seals the 835 files' content (they name
// patients and their member ids: fields.go).
func NewRemittances(store *bus.Store, k *fieldcrypt.Keyring) *Remittances {
	return &Remittances{store: store, crypt: sealer{k}}
}

// adjustmentsJSON is the adjustments column's JSON: [{"group","reason","amount_cents"} plus
// "quantity" when there is one], written directly (a posting writes one per service line:
// encoding/json's reflection was most of the Go time of building the lines' arrays).
func adjustmentsJSON(adjs []x12.Adjustment) string {
	if len(adjs) == 0 {
		return "[]"
	}
	b := make([]byte, 0, 64*len(adjs))
	b = append(b, '[')
	for i, a := range adjs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"group":`...)
		b = appendJSONString(b, a.Group)
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, a.Reason)
		b = append(b, `,"amount_cents":`...)
		b = strconv.AppendInt(b, a.AmountCents, 10)
		if a.Quantity != 0 {
			b = append(b, `,"quantity":`...)
			b = strconv.AppendInt(b, int64(a.Quantity), 10)
		}
		b = append(b, '}')
	}
	return string(append(b, ']'))
}

// appendJSONString appends s as a JSON string. Plain text (the X12 codes: letters and digits)
// is copied between quotes; anything else is encoded by encoding/json, which also replaces
// invalid UTF-8 as before.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string: cannot fail
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// textArrayLiteral writes list as a Postgres text[] literal ({"a","b"}: each element quoted,
// backslash and double quote escaped), so that the lines' remarks travel as one text per line
// and are cast to text[] by the array input function, not rebuilt from JSON by a sub-select
// per line. Text that is not valid UTF-8 is cleaned as encoding/json cleaned it before.
func textArrayLiteral(list []string) string {
	if len(list) == 0 {
		return "{}"
	}
	b := make([]byte, 0, 2+8*len(list))
	b = append(b, '{')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		if !utf8.ValidString(s) {
			q, _ := json.Marshal(s) // replaces invalid bytes with U+FFFD
			_ = json.Unmarshal(q, &s)
		}
		b = append(b, '"')
		for j := 0; j < len(s); j++ {
			if c := s[j]; c == '"' || c == '\\' {
				b = append(b, '\\')
			}
			b = append(b, s[j])
		}
		b = append(b, '"')
	}
	return string(append(b, '}'))
}

// InsertRemittance inserts r unless a remittance with the same content hash exists; then it
// returns that one and inserted false. A concurrent upload of the same content waits for the
// other transaction and then finds its row.
func (r *Remittances) InsertRemittance(ctx context.Context, tx *bus.Tx, rem domain.Remittance) (domain.Remittance, bool, error) {
	summary, err := json.Marshal(rem.Summary)
	if err != nil {
		return rem, false, fmt.Errorf("summary: %w", err)
	}
	content, err := r.crypt.seal(string(rem.Content), "remittances", "content", rem.ID)
	if err != nil {
		return rem, false, err
	}
	if content == nil {
		content = ""
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO remittances (id, sha256, file_name, payer, content, summary, total_paid_cents, posted_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (sha256) DO NOTHING`,
		rem.ID, rem.SHA256, rem.FileName, rem.Payer, []byte(content.(string)), summary, rem.Summary.TotalPaidCents, rem.PostedAt)
	if err != nil {
		return rem, false, fmt.Errorf("insert remittance: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return rem, true, nil
	}
	list, err := r.remittances(ctx, tx, `WHERE sha256 = $1`, rem.SHA256)
	if err != nil {
		return rem, false, err
	}
	if len(list) == 0 {
		return rem, false, errors.New("remittance hash conflict without a row")
	}
	return list[0], false, nil
}

// FinishRemittance records the posting's counts on the remittance.
func (r *Remittances) FinishRemittance(ctx context.Context, tx *bus.Tx, rem domain.Remittance) error {
	_, err := tx.Exec(ctx, `UPDATE remittances SET matched_claims = $2, unmatched_lines = $3, work_items = $4 WHERE id = $1`,
		rem.ID, rem.MatchedClaims, rem.UnmatchedLines, rem.WorkItems)
	if err != nil {
		return fmt.Errorf("update remittance: %w", err)
	}
	return nil
}

const remittanceCols = `id::text, sha256, file_name, payer, summary, matched_claims, unmatched_lines, work_items, posted_at`

func (r *Remittances) remittances(ctx context.Context, q querier, where string, args ...any) ([]domain.Remittance, error) {
	rows, err := q.Query(ctx, `SELECT `+remittanceCols+` FROM remittances `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("query remittances: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Remittance, error) {
		var m domain.Remittance
		var summary []byte
		if err := row.Scan(&m.ID, &m.SHA256, &m.FileName, &m.Payer, &summary, &m.MatchedClaims, &m.UnmatchedLines, &m.WorkItems, &m.PostedAt); err != nil {
			return m, err
		}
		return m, json.Unmarshal(summary, &m.Summary)
	})
}

// ListRemittances returns the newest remittances that touch a clinic of scope (every
// remittance for an all-clinics scope).
func (r *Remittances) ListRemittances(ctx context.Context, scope domain.Scope, limit int) ([]domain.Remittance, error) {
	return read(ctx, r.store, func(q querier) ([]domain.Remittance, error) {
		return r.remittances(ctx, q, `WHERE $1::boolean OR EXISTS (SELECT 1 FROM remittance_claims rc
			WHERE rc.remittance_id = remittances.id AND rc.clinic_id::text = ANY($2::text[]))
			ORDER BY posted_at DESC, id LIMIT $3`, scope.All, scope.Clinics, limit)
	})
}

// LockClaimPatients takes, until tx ends, the charges lock (domain.ChargesLockKey, as
// Charges.LockPatient and the charge consumers' LockKeys) of every patient whose claims the
// control numbers name (and of the claims they correct), sorted as pkg/bus sorts a group's
// keys. A posting takes them before any row lock: the attendance consumer's groups take the
// same locks first too, so a posting and a consumer never hold rows the other waits for
// (charges, accounts) in a cycle. A claim's patient never changes, so reading them unlocked
// first is safe.
func (r *Remittances) LockClaimPatients(ctx context.Context, tx *bus.Tx, controls []string) error {
	if len(controls) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `
		SELECT DISTINCT c.patient_id::text, c.clinic_id::text FROM claims c
		WHERE c.control_number = ANY($1)
		   OR c.id IN (SELECT replaces_claim_id FROM claims WHERE control_number = ANY($1))`, controls)
	if err != nil {
		return fmt.Errorf("query claim patients: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (string, error) {
		var patient, clinic string
		err := row.Scan(&patient, &clinic)
		return domain.ChargesLockKey(patient, clinic), err
	})
	if err != nil || len(keys) == 0 {
		return err
	}
	slices.Sort(keys)
	keys = slices.Compact(keys) // patients share buckets (domain.ChargeLockBuckets)
	// unnest yields the array in order; the locks are taken row by row in that order.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest($1::text[]) AS k`, keys); err != nil {
		return fmt.Errorf("lock claim patients: %w", err)
	}
	return nil
}

// LoadClaims returns the claims with these control numbers (CLM01), locked until tx ends,
// with their lines, their charges' statuses (domain.ChargeOnOtherClaim for a charge that moved
// on to a correction) and their active posting; a correction also with the claim it corrects
// (locked too, with its active posting).
func (r *Remittances) LoadClaims(ctx context.Context, tx *bus.Tx, controls []string) (map[string]*domain.BilledClaim, error) {
	out := map[string]*domain.BilledClaim{}
	if len(controls) == 0 {
		return out, nil
	}
	// The claims, and the claims the corrections among them correct (each locked once).
	rows, err := tx.Query(ctx, `
		WITH named AS (SELECT id, replaces_claim_id FROM claims WHERE control_number = ANY($1))
		SELECT c.id::text, c.control_number, c.clinic_id::text, c.patient_id::text, c.payer_id, c.status, c.total_cents,
		       c.id IN (SELECT id FROM named), coalesce(c.replaces_claim_id::text, '')
		FROM claims c WHERE c.id IN (SELECT id FROM named UNION SELECT replaces_claim_id FROM named)
		ORDER BY c.id FOR UPDATE OF c`, controls)
	if err != nil {
		return nil, fmt.Errorf("query claims: %w", err)
	}
	byID := map[string]*domain.BilledClaim{}
	corrects := map[string]string{}
	var ids []string
	_, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (struct{}, error) {
		c := &domain.BilledClaim{}
		var named bool
		var replaces string
		if err := row.Scan(&c.ID, &c.ControlNumber, &c.ClinicID, &c.PatientID, &c.PayerID, &c.Status, &c.TotalCents,
			&named, &replaces); err != nil {
			return struct{}{}, err
		}
		if named {
			out[c.ControlNumber] = c
			if replaces != "" {
				corrects[c.ID] = replaces
			}
		}
		byID[c.ID] = c
		ids = append(ids, c.ID)
		return struct{}{}, nil
	})
	if err != nil || len(ids) == 0 {
		return out, err
	}
	for id, replaces := range corrects {
		byID[id].Corrects = byID[replaces]
	}
	rows, err = tx.Query(ctx, `
		SELECT l.claim_id::text, l.line_number, l.charge_id::text,
		       CASE WHEN ch.claim_id = l.claim_id OR ch.status = 'void' THEN ch.status ELSE $2 END,
		       l.line_control_number, l.procedure_code,
		       to_char(l.service_date, 'YYYYMMDD'), l.charge_cents
		FROM claim_lines l JOIN charges ch ON ch.id = l.charge_id
		WHERE l.claim_id = ANY($1::uuid[]) ORDER BY l.claim_id, l.line_number`, ids, domain.ChargeOnOtherClaim)
	if err != nil {
		return nil, fmt.Errorf("query claim lines: %w", err)
	}
	_, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (struct{}, error) {
		var claimID string
		var l domain.BilledLine
		if err := row.Scan(&claimID, &l.LineNumber, &l.ChargeID, &l.ChargeStatus, &l.LineControl, &l.ProcedureCode, &l.ServiceDate, &l.ExpectedCents); err != nil {
			return struct{}{}, err
		}
		byID[claimID].Lines = append(byID[claimID].Lines, l)
		return struct{}{}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read claim lines: %w", err)
	}
	// The active posting, and what of it reached the patient's ledger.
	rows, err = tx.Query(ctx, `
		SELECT rc.claim_id::text, rc.id::text, coalesce(le.amount_cents, 0)
		FROM remittance_claims rc LEFT JOIN ledger_entries le ON le.ref = 'pr:' || rc.id::text
		WHERE rc.claim_id = ANY($1::uuid[]) AND rc.classification = 'posted' AND rc.reversed_by IS NULL`, ids)
	if err != nil {
		return nil, fmt.Errorf("query postings: %w", err)
	}
	_, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (struct{}, error) {
		var claimID string
		a := &domain.ActivePosting{}
		if err := row.Scan(&claimID, &a.RemitClaimID, &a.PatientRespCents); err != nil {
			return struct{}{}, err
		}
		byID[claimID].Active = a
		return struct{}{}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read postings: %w", err)
	}
	return out, nil
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// SavePosting writes a planned posting in tx, in order: remittance claims and lines, work
// items, reversals (marking the undone posting and resolving its open work items), claim
// updates and charge status changes. Each kind of row is one set-based statement over arrays
// (unnest), all sent in one round trip: a 400-line file is ~6 statements, not ~1,000 (each
// statement also pays the row-level-security checks once, not once per row). COPY is not an
// option: Postgres refuses COPY FROM into tables with row-level security.
func (r *Remittances) SavePosting(ctx context.Context, tx *bus.Tx, remittanceID string, p domain.Posting) error {
	b := &pgx.Batch{}
	queueRemitClaims(b, remittanceID, p.Claims)
	queueRemitLines(b, p.Claims)
	queueWorkItems(b, remittanceID, p.WorkItems)
	queueReversals(b, p.Claims)
	queueClaimUpdates(b, p.ClaimUpdates)
	queueChargeChanges(b, p.ChargeChanges)
	if b.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("save posting: %w", err)
	}
	return nil
}

func queueRemitClaims(b *pgx.Batch, remittanceID string, claims []domain.RemitClaim) {
	if len(claims) == 0 {
		return
	}
	n := len(claims)
	ids, claimIDs, clinics, controls, payerNumbers := make([]string, n), make([]*string, n), make([]*string, n), make([]string, n), make([]string, n)
	statusCodes, adjs, classes, claimStatuses := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	positions, charged, paid, pr, contractual := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, c := range claims {
		ids[i], claimIDs[i], clinics[i], controls[i], payerNumbers[i] = c.ID, nullable(c.ClaimID), nullable(c.ClinicID), c.PatientControl, c.PayerClaimNumber
		statusCodes[i], adjs[i], classes[i], claimStatuses[i] = c.StatusCode, adjustmentsJSON(c.Adjustments), c.Classification, c.ClaimStatus
		positions[i], charged[i], paid[i], pr[i], contractual[i] = int64(c.Position), int64(c.Charged), int64(c.Paid), int64(c.PatientResp), int64(c.Contractual)
	}
	b.Queue(`INSERT INTO remittance_claims (id, remittance_id, position, claim_id, clinic_id, patient_control,
		payer_claim_number, status_code, charged_cents, paid_cents, patient_resp_cents, contractual_cents,
		adjustments, classification, claim_status)
		SELECT v.id::uuid, $1::uuid, v.position, v.claim_id::uuid, v.clinic_id::uuid, v.patient_control, v.payer_claim_number,
		       v.status_code, v.charged, v.paid, v.patient_resp, v.contractual, v.adjustments::jsonb, v.classification, v.claim_status
		FROM unnest($2::text[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int8[], $10::int8[],
		            $11::int8[], $12::int8[], $13::text[], $14::text[], $15::text[])
		     AS v(id, position, claim_id, clinic_id, patient_control, payer_claim_number, status_code, charged, paid,
		          patient_resp, contractual, adjustments, classification, claim_status)`,
		remittanceID, ids, positions, claimIDs, clinics, controls, payerNumbers, statusCodes, charged, paid, pr, contractual,
		adjs, classes, claimStatuses)
}

func queueRemitLines(b *pgx.Batch, claims []domain.RemitClaim) {
	n := 0
	for _, c := range claims {
		n += len(c.Lines)
	}
	if n == 0 {
		return
	}
	// Absent ids and line numbers travel as '' and 0 (NULLIF gives NULL back): no pointer per
	// line and value.
	ids, remitClaims, claimIDs, chargeIDs, clinics := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	codes, dates, controls, adjs, remarks, classes := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	positions, lineNumbers := make([]int64, 0, n), make([]int64, 0, n)
	expected, charged, paid, pr, contractual, variance := make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n)
	for _, c := range claims {
		for _, l := range c.Lines {
			claimID := ""
			if l.LineNumber != 0 {
				claimID = l.ClaimID
			}
			ids, remitClaims, claimIDs = append(ids, l.ID), append(remitClaims, c.ID), append(claimIDs, claimID)
			chargeIDs, clinics = append(chargeIDs, l.ChargeID), append(clinics, c.ClinicID)
			codes, dates, controls = append(codes, l.ProcedureCode), append(dates, l.ServiceDate), append(controls, l.LineControl)
			adjs, remarks, classes = append(adjs, adjustmentsJSON(l.Adjustments)), append(remarks, textArrayLiteral(l.Remarks)), append(classes, l.Result.Classification)
			positions, lineNumbers = append(positions, int64(l.Position)), append(lineNumbers, int64(l.LineNumber))
			expected, charged, paid = append(expected, int64(l.Result.Expected)), append(charged, int64(l.Charged)), append(paid, int64(l.Result.Paid))
			pr, contractual, variance = append(pr, int64(l.Result.PatientResp)), append(contractual, int64(l.Result.Contractual)), append(variance, int64(l.Result.Variance))
		}
	}
	// remarks travel as one text[] literal per line (unnest cannot carry an array of arrays of
	// different lengths: textArrayLiteral).
	b.Queue(`INSERT INTO remittance_lines (id, remittance_claim_id, position, claim_id, line_number, charge_id,
		procedure_code, service_date, line_control, expected_cents, charged_cents, paid_cents, patient_resp_cents,
		contractual_cents, variance_cents, adjustments, remarks, classification, clinic_id)
		SELECT v.id::uuid, v.remittance_claim_id::uuid, v.position, nullif(v.claim_id, '')::uuid, nullif(v.line_number, 0),
		       nullif(v.charge_id, '')::uuid, v.procedure_code, v.service_date, v.line_control, v.expected, v.charged, v.paid,
		       v.patient_resp, v.contractual, v.variance, v.adjustments::jsonb, v.remarks::text[], v.classification,
		       nullif(v.clinic_id, '')::uuid
		FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[], $5::int8[], $6::text[], $7::text[], $8::text[], $9::text[],
		            $10::int8[], $11::int8[], $12::int8[], $13::int8[], $14::int8[], $15::int8[], $16::text[], $17::text[],
		            $18::text[], $19::text[])
		     AS v(id, remittance_claim_id, position, claim_id, line_number, charge_id, procedure_code, service_date,
		          line_control, expected, charged, paid, patient_resp, contractual, variance, adjustments, remarks,
		          classification, clinic_id)`,
		ids, remitClaims, positions, claimIDs, lineNumbers, chargeIDs, codes, dates, controls, expected, charged, paid, pr,
		contractual, variance, adjs, remarks, classes, clinics)
}

func queueWorkItems(b *pgx.Batch, remittanceID string, items []domain.WorkItem) {
	if len(items) == 0 {
		return
	}
	n := len(items)
	ids, queues, refs, claimIDs, clinics := make([]string, n), make([]string, n), make([]string, n), make([]*string, n), make([]*string, n)
	payers, reasons, statuses, appeals := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	amounts, created, updated := make([]int64, n), make([]time.Time, n), make([]time.Time, n)
	for i, w := range items {
		ids[i], queues[i], refs[i], claimIDs[i], clinics[i] = w.ID, w.Queue, w.Ref, nullable(w.ClaimID), nullable(w.ClinicID)
		payers[i], reasons[i], statuses[i], appeals[i] = w.PayerID, w.Reason, w.Status, w.AppealStatus
		amounts[i], created[i], updated[i] = int64(w.Amount), w.CreatedAt, w.UpdatedAt
	}
	b.Queue(`INSERT INTO work_items (id, queue, ref, remittance_id, claim_id, clinic_id, payer_id, amount_cents, reason,
		status, appeal_status, created_at, updated_at)
		SELECT v.id::uuid, v.queue, v.ref, $1::uuid, v.claim_id::uuid, v.clinic_id::uuid, v.payer_id, v.amount, v.reason,
		       v.status, v.appeal_status, v.created_at, v.updated_at
		FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int8[], $9::text[],
		            $10::text[], $11::text[], $12::timestamptz[], $13::timestamptz[])
		     AS v(id, queue, ref, claim_id, clinic_id, payer_id, amount, reason, status, appeal_status, created_at, updated_at)`,
		remittanceID, ids, queues, refs, claimIDs, clinics, payers, amounts, reasons, statuses, appeals, created, updated)
}

// queueReversals marks the postings the file undoes and resolves their open work items (the
// claim's and its lines').
func queueReversals(b *pgx.Batch, claims []domain.RemitClaim) {
	var undone, by, claimRefs []string
	for _, c := range claims {
		if c.ReversesRemitClaim == "" {
			continue
		}
		undone, by, claimRefs = append(undone, c.ReversesRemitClaim), append(by, c.ID), append(claimRefs, "claim:"+c.ReversesRemitClaim)
	}
	if len(undone) == 0 {
		return
	}
	// A posting is undone once (a reversal needs an active posting), so the pairs name each
	// undone posting once; should one repeat, the last reversal wins, as row by row.
	last := map[string]int{}
	for i, id := range undone {
		last[id] = i
	}
	var ids, bys []string
	for i, id := range undone {
		if last[id] == i {
			ids, bys = append(ids, id), append(bys, by[i])
		}
	}
	b.Queue(`UPDATE remittance_claims rc SET reversed_by = v.by::uuid
		FROM unnest($1::text[], $2::text[]) AS v(id, by) WHERE rc.id = v.id::uuid`, ids, bys)
	b.Queue(`UPDATE work_items SET status = 'resolved', updated_at = now() WHERE status = 'open' AND
		(ref = ANY($1::text[]) OR ref IN (SELECT 'line:' || id::text FROM remittance_lines WHERE remittance_claim_id = ANY($2::text[]::uuid[])))`,
		claimRefs, undone)
}

// queueClaimUpdates writes each claim's final posting state. A file can post, reverse and post
// the same claim again: applied one after the other, the last update sets status and amounts
// and the last non-empty payer claim number wins, which is what is folded here (one UPDATE ...
// FROM would apply an arbitrary one of a claim's rows).
func queueClaimUpdates(b *pgx.Batch, updates []domain.ClaimUpdate) {
	if len(updates) == 0 {
		return
	}
	index := map[string]int{}
	var folded []domain.ClaimUpdate
	for _, u := range updates {
		i, ok := index[u.ClaimID]
		if !ok {
			index[u.ClaimID] = len(folded)
			folded = append(folded, u)
			continue
		}
		number := folded[i].PayerClaimNumber
		if u.PayerClaimNumber != "" {
			number = u.PayerClaimNumber
		}
		folded[i] = u
		folded[i].PayerClaimNumber = number
	}
	n := len(folded)
	ids, statuses, numbers, paid, pr := make([]string, n), make([]string, n), make([]string, n), make([]int64, n), make([]int64, n)
	for i, u := range folded {
		ids[i], statuses[i], numbers[i], paid[i], pr[i] = u.ClaimID, u.Status, u.PayerClaimNumber, int64(u.Paid), int64(u.PatientResp)
	}
	b.Queue(`UPDATE claims c SET status = v.status, paid_cents = v.paid, patient_resp_cents = v.patient_resp,
		payer_claim_number = CASE WHEN v.payer_claim_number = '' THEN c.payer_claim_number ELSE v.payer_claim_number END
		FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::text[]) AS v(id, status, paid, patient_resp, payer_claim_number)
		WHERE c.id = v.id::uuid`, ids, statuses, paid, pr, numbers)
}

// queueChargeChanges moves charges from one status to another (only if still in the from
// status). Charges changed once in the file (nearly all) go in one statement, in id order (the
// posting holds its patients' charges locks already: LockClaimPatients); a charge changed
// several times (posted, reversed, posted again) keeps its row-by-row statements in file
// order, since each step depends on the one before.
func queueChargeChanges(b *pgx.Batch, changes []domain.ChargeChange) {
	if len(changes) == 0 {
		return
	}
	count := map[string]int{}
	for _, c := range changes {
		count[c.ChargeID]++
	}
	var once, repeated []domain.ChargeChange
	for _, c := range changes {
		if count[c.ChargeID] > 1 {
			repeated = append(repeated, c)
		} else {
			once = append(once, c)
		}
	}
	if len(once) > 0 {
		slices.SortFunc(once, func(a, b domain.ChargeChange) int { return cmp.Compare(a.ChargeID, b.ChargeID) })
		ids, from, to := make([]string, len(once)), make([]string, len(once)), make([]string, len(once))
		for i, c := range once {
			ids[i], from[i], to[i] = c.ChargeID, c.From, c.To
		}
		b.Queue(`UPDATE charges c SET status = v.to_status, updated_at = now()
		FROM unnest($1::text[], $2::text[], $3::text[]) AS v(id, from_status, to_status)
		WHERE c.id = v.id::uuid AND c.status = v.from_status`, ids, from, to)
	}
	for _, c := range repeated {
		b.Queue(`UPDATE charges SET status = $3, updated_at = now() WHERE id = $1 AND status = $2`, c.ChargeID, c.From, c.To)
	}
}

// PostLedger adds the entries to the accounts of their patient and clinic (an entry whose
// ref exists already, or whose patient has no account there, posts nothing) and returns
// each touched account's balance and net change, in the order of the accounts' first posted
// entry. One statement for the whole file: it locks the accounts in id order (two postings,
// or a posting and the attendance consumer's self-pay entry, cannot wait on each other in a
// cycle through accounts), inserts the entries (ON CONFLICT (ref) DO NOTHING, in entry order:
// a ref repeated in the file posts once, the first) and moves each balance by the sum of its
// posted entries.
func (r *Remittances) PostLedger(ctx context.Context, tx *bus.Tx, remittanceID string, entries []domain.LedgerPosting, newID func() string, at time.Time) ([]domain.AccountChange, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	n := len(entries)
	ids, patients, clinics, kinds, refs, claimIDs, amounts := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]*string, n), make([]int64, n)
	for i, e := range entries {
		ids[i], patients[i], clinics[i], kinds[i], refs[i], claimIDs[i], amounts[i] = newID(), e.PatientID, e.ClinicID, e.Kind, e.Ref, nullable(e.ClaimID), int64(e.Amount)
	}
	rows, err := tx.Query(ctx, `
		WITH v AS (SELECT v.id::uuid AS id, v.patient_id::uuid AS patient_id, v.clinic_id::uuid AS clinic_id, v.kind, v.amount,
		                  v.ref, v.claim_id::uuid AS claim_id, v.n
		           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[], $7::text[])
		                WITH ORDINALITY AS v(id, patient_id, clinic_id, kind, amount, ref, claim_id, n)),
		acc AS (SELECT a.id, a.patient_id, a.clinic_id FROM accounts a
		        WHERE (a.patient_id, a.clinic_id) IN (SELECT patient_id, clinic_id FROM v) ORDER BY a.id FOR UPDATE),
		ins AS (INSERT INTO ledger_entries (id, account_id, kind, amount_cents, ref, claim_id, remittance_id, created_at, clinic_id)
		        SELECT v.id, acc.id, v.kind, v.amount, v.ref, v.claim_id, $8::uuid, $9, v.clinic_id
		        FROM v JOIN acc ON acc.patient_id = v.patient_id AND acc.clinic_id = v.clinic_id ORDER BY v.n
		        ON CONFLICT (ref) DO NOTHING
		        RETURNING id, account_id, amount_cents),
		s AS (SELECT ins.account_id, sum(ins.amount_cents)::bigint AS delta, min(v.n) AS first
		      FROM ins JOIN v ON v.id = ins.id GROUP BY ins.account_id)
		UPDATE accounts a SET balance_cents = a.balance_cents + s.delta FROM s WHERE a.id = s.account_id
		RETURNING a.id::text, a.patient_id::text, a.clinic_id::text, a.balance_cents, s.delta, s.first`,
		ids, patients, clinics, kinds, amounts, refs, claimIDs, remittanceID, at)
	if err != nil {
		return nil, fmt.Errorf("post ledger: %w", err)
	}
	type change struct {
		domain.AccountChange
		first int64
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (change, error) {
		var c change
		err := row.Scan(&c.AccountID, &c.PatientID, &c.ClinicID, &c.Balance, &c.Delta, &c.first)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("post ledger: %w", err)
	}
	slices.SortFunc(list, func(a, b change) int { return cmp.Compare(a.first, b.first) })
	out := make([]domain.AccountChange, len(list))
	for i, c := range list {
		out[i] = c.AccountChange
	}
	return out, nil
}

// AddStatements stores statements, in one statement.
func (r *Remittances) AddStatements(ctx context.Context, tx *bus.Tx, list []domain.StatementIssued) error {
	return insertStatements(ctx, tx, list)
}

const workItemCols = `id::text, queue, ref, remittance_id::text, coalesce(claim_id::text, ''), coalesce(clinic_id::text, ''),
	payer_id, amount_cents, written_off_cents, reason, status, appeal_status, created_at, updated_at`

func scanWorkItem(row pgx.CollectableRow) (domain.WorkItem, error) {
	var w domain.WorkItem
	err := row.Scan(&w.ID, &w.Queue, &w.Ref, &w.RemittanceID, &w.ClaimID, &w.ClinicID, &w.PayerID, &w.Amount, &w.WrittenOff,
		&w.Reason, &w.Status, &w.AppealStatus, &w.CreatedAt, &w.UpdatedAt)
	return w, err
}

// WorkItems lists a stored queue in scope (clinic: only that clinic; status: only that
// status), oldest first. Items without a clinic are in the all-clinics scope only.
func (r *Remittances) WorkItems(ctx context.Context, scope domain.Scope, queue, clinic, status string) ([]domain.WorkItem, error) {
	return read(ctx, r.store, func(q querier) ([]domain.WorkItem, error) {
		rows, err := q.Query(ctx, `SELECT `+workItemCols+` FROM work_items
			WHERE queue = $1 AND ($2::boolean OR clinic_id::text = ANY($3::text[]))
			  AND ($4 = '' OR clinic_id::text = $4) AND ($5 = '' OR status = $5)
			ORDER BY created_at, id LIMIT 1000`, queue, scope.All, scope.Clinics, clinic, status)
		if err != nil {
			return nil, fmt.Errorf("query work items: %w", err)
		}
		return pgx.CollectRows(rows, scanWorkItem)
	})
}

// HeldCharges lists the held charges in scope as work items of the holds queue (id: the
// charge id, reason: the hold reason, amount: the charge).
func (r *Remittances) HeldCharges(ctx context.Context, scope domain.Scope, clinic string) ([]domain.WorkItem, error) {
	return read(ctx, r.store, func(q querier) ([]domain.WorkItem, error) {
		rows, err := q.Query(ctx, `
			SELECT id::text, clinic_id::text, payer_id, coalesce(claim_id::text, ''), amount_cents, hold_reason, created_at, updated_at
			FROM charges WHERE status = 'held' AND ($1::boolean OR clinic_id::text = ANY($2::text[]))
			  AND ($3 = '' OR clinic_id::text = $3)
			ORDER BY created_at, id LIMIT 1000`, scope.All, scope.Clinics, clinic)
		if err != nil {
			return nil, fmt.Errorf("query held charges: %w", err)
		}
		return pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.WorkItem, error) {
			w := domain.WorkItem{Queue: domain.QueueHolds, Status: domain.WorkOpen, AppealStatus: domain.AppealNone}
			err := row.Scan(&w.ID, &w.ClinicID, &w.PayerID, &w.ClaimID, &w.Amount, &w.Reason, &w.CreatedAt, &w.UpdatedAt)
			return w, err
		})
	})
}

// LockWorkItem reads a work item for update; ok is false if there is none.
func (r *Remittances) LockWorkItem(ctx context.Context, tx *bus.Tx, id string) (domain.WorkItem, bool, error) {
	rows, err := tx.Query(ctx, `SELECT `+workItemCols+` FROM work_items WHERE id = $1 FOR UPDATE`, id)
	if err != nil {
		return domain.WorkItem{}, false, fmt.Errorf("query work item: %w", err)
	}
	list, err := pgx.CollectRows(rows, scanWorkItem)
	if err != nil || len(list) == 0 {
		return domain.WorkItem{}, false, err
	}
	return list[0], true, nil
}

// SaveWorkItem stores a work item's status and appeal status.
func (r *Remittances) SaveWorkItem(ctx context.Context, tx *bus.Tx, w domain.WorkItem) error {
	_, err := tx.Exec(ctx, `UPDATE work_items SET status = $2, appeal_status = $3, updated_at = $4 WHERE id = $1`,
		w.ID, w.Status, w.AppealStatus, w.UpdatedAt)
	if err != nil {
		return fmt.Errorf("update work item: %w", err)
	}
	return nil
}

// ClaimReceivables returns the claims in scope not fully settled with what the payer still
// owes: total - paid - contractual (CO of the active posting) - patient responsibility -
// written off (the write-offs of the active posting's denial and underpayment items). A
// corrected claim (replaced or voided) is owed through its replacement; a void claim owes
// nothing.
func (r *Remittances) ClaimReceivables(ctx context.Context, scope domain.Scope, clinic string) ([]domain.ClaimReceivable, error) {
	return read(ctx, r.store, func(q querier) ([]domain.ClaimReceivable, error) {
		rows, err := q.Query(ctx, `
			SELECT c.payer_id, c.clinic_id::text, c.submitted_at, c.total_cents, c.paid_cents, coalesce(p.contractual, 0), c.patient_resp_cents,
				coalesce(w.written_off, 0)
			FROM claims c LEFT JOIN LATERAL (
				SELECT sum(rc.contractual_cents) AS contractual FROM remittance_claims rc
				WHERE rc.claim_id = c.id AND rc.classification = 'posted' AND rc.reversed_by IS NULL) p ON true
			LEFT JOIN LATERAL (
				SELECT sum(wo.amount_cents) AS written_off FROM write_offs wo
				JOIN remittance_claims rc ON rc.id = wo.remittance_claim_id AND rc.classification = 'posted' AND rc.reversed_by IS NULL
				WHERE wo.claim_id = c.id) w ON true
			WHERE c.status IN ('submitted', 'partially_paid', 'denied', 'reversed') AND c.frequency_code <> '8'
			  AND ($1::boolean OR c.clinic_id::text = ANY($2::text[])) AND ($3 = '' OR c.clinic_id::text = $3)`,
			scope.All, scope.Clinics, clinic)
		if err != nil {
			return nil, fmt.Errorf("query receivables: %w", err)
		}
		return pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.ClaimReceivable, error) {
			var c domain.ClaimReceivable
			var total, paid, contractual, pr, writtenOff money.Cents
			err := row.Scan(&c.PayerID, &c.ClinicID, &c.SubmittedAt, &total, &paid, &contractual, &pr, &writtenOff)
			c.Outstanding = domain.Outstanding(total, paid, contractual, pr, writtenOff)
			return c, err
		})
	})
}

// PatientReceivables returns the accounts in scope that owe something.
func (r *Remittances) PatientReceivables(ctx context.Context, scope domain.Scope, clinic string) ([]domain.PatientReceivable, error) {
	return read(ctx, r.store, func(q querier) ([]domain.PatientReceivable, error) {
		rows, err := q.Query(ctx, `
			SELECT a.clinic_id::text, coalesce((SELECT min(issued_at) FROM statements s WHERE s.account_id = a.id), now()), a.balance_cents
			FROM accounts a WHERE a.balance_cents > 0
			  AND ($1::boolean OR a.clinic_id::text = ANY($2::text[])) AND ($3 = '' OR a.clinic_id::text = $3)`,
			scope.All, scope.Clinics, clinic)
		if err != nil {
			return nil, fmt.Errorf("query patient receivables: %w", err)
		}
		return pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.PatientReceivable, error) {
			var p domain.PatientReceivable
			return p, row.Scan(&p.ClinicID, &p.Since, &p.Balance)
		})
	})
}

// PatientBalance returns the patient's account at clinic; ok is false if there is none.
func (r *Remittances) PatientBalance(ctx context.Context, patientID, clinicID string) (domain.PatientBalance, bool, error) {
	return read2(ctx, r.store, func(q querier) (domain.PatientBalance, bool, error) {
		var b domain.PatientBalance
		err := q.QueryRow(ctx, `SELECT id::text, balance_cents FROM accounts WHERE patient_id = $1 AND clinic_id = $2`,
			patientID, clinicID).Scan(&b.AccountID, &b.Balance)
		if errors.Is(err, pgx.ErrNoRows) {
			return b, false, nil
		}
		if err != nil {
			return b, false, fmt.Errorf("query account: %w", err)
		}
		rows, err := q.Query(ctx, `
			SELECT id::text, kind, coalesce(claim_id::text, ''), coalesce(remittance_id::text, ''), amount_cents, created_at
			FROM ledger_entries WHERE account_id = $1 ORDER BY created_at, id`, b.AccountID)
		if err != nil {
			return b, false, fmt.Errorf("query ledger: %w", err)
		}
		b.Entries, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.LedgerRow, error) {
			var l domain.LedgerRow
			return l, row.Scan(&l.ID, &l.Kind, &l.ClaimID, &l.RemittanceID, &l.Amount, &l.CreatedAt)
		})
		if err != nil {
			return b, false, fmt.Errorf("read ledger: %w", err)
		}
		var s domain.StatementIssued
		err = q.QueryRow(ctx, `SELECT id::text, balance_cents, due_date::text, issued_at FROM statements
			WHERE account_id = $1 ORDER BY issued_at DESC, id DESC LIMIT 1`, b.AccountID).Scan(&s.ID, &s.Balance, &s.DueDate, &s.IssuedAt)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return b, false, fmt.Errorf("query statement: %w", err)
		default:
			s.AccountID = b.AccountID
			b.LastStatement = &s
		}
		return b, true, nil
	})
}
