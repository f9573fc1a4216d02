package postgres

import (
	"context"
	"fmt"
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/testkit"
	"github.com/trellis-health/trellis/pkg/testkit/rlstest"

	"github.com/trellis-health/trellis/services/billing/internal/domain"
	"github.com/trellis-health/trellis/services/billing/migrations"
)

// rlsTables are the billing tables that hold clinic data in a clinic_id column; the catalog
// check below fails when a table with clinic_id is missing here or has no policy. A copy of a
// row needs no fresh keys: the policy's WITH CHECK comes before any key or constraint.
var rlsTables = tables("accounts", "contracts", "contract_codes", "coverages", "consents", "attendance",
	"authorizations", "charges", "patient_diagnoses", "billing_providers", "claim_files", "claims", "claim_lines",
	"disclosures", "remittance_claims", "remittance_lines", "work_items", "ledger_entries", "statements",
	"cost_rates", "fixed_costs", "cost_attendance", "delivered_sessions", "patient_days", "completed_episodes",
	"estimates", "write_offs")

func tables(names ...string) []rlstest.Table {
	out := make([]rlstest.Table, len(names))
	for i, n := range names {
		out[i] = rlstest.Table{Name: n}
	}
	return out
}

// rlsSystemOnly are the tables without clinic_id that have a policy of their own (migration
// 00011): patient_identities (every clinic's scope only) and remittances (written in every
// clinic's scope, read by the clinics of its claims).
var rlsSystemOnly = []string{"patient_identities", "remittances"}

const (
	rlsClinicA = rlstest.ClinicA
	rlsClinicB = rlstest.ClinicB
	rlsPayer   = "rls-payer"
)

// principalCtx is a caller of clinics (as pkg/rpc puts the token's principal in the context).
var principalCtx = rlstest.Caller

// ownerPool migrates billing's schema as billing's own role (rlstest.ServiceRole: not a
// superuser, no BYPASSRLS, the tables' owner) and returns a pool connected as it, without a
// clinic scope, as the service connects, and a store on it with the clinic scope enabled, as
// Setup does.
func ownerPool(t *testing.T) (*rlstest.Role, *bus.Store) {
	t.Helper()
	r := rlstest.ServiceRole(t, "billing", func(ctx context.Context, pool *pgxpool.Pool) error {
		if err := bus.Migrate(ctx, pool, "billing", nil); err != nil {
			return err
		}
		return pg.Migrate(ctx, pool, "billing", "goose_db_version", migrations.FS, nil)
	})
	store := r.Store()
	if err := store.InTx(auth.WithSystemScope(context.Background()), func(ctx context.Context, tx *bus.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO payers (code, name, kind, x12_payer_id) VALUES ($1, 'RLS', 'commercial', 'RLS1')`, rlsPayer)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return r, store
}

// rlsSeed is what seedClinic wrote for one clinic.
type rlsSeed struct{ patient, file, claim, remittance, workItem, estimate string }

// seedClinic writes one row of clinic into every table of rlsTables (and rlsSystemOnly), in
// system scope: a patient's account, contract, coverage, consent, attendance, authorization,
// a charge on a claim in a claim file, an 835 paying it with a denial item and a write-off,
// ledger entries, a statement and the cost tables.
func seedClinic(t *testing.T, store *bus.Store, clinic string, icn int) rlsSeed {
	t.Helper()
	s := rlsSeed{patient: bus.NewID(), file: bus.NewID(), claim: bus.NewID(), remittance: bus.NewID(),
		workItem: bus.NewID(), estimate: bus.NewID()}
	account, contract, consent, charge, rc := bus.NewID(), bus.NewID(), bus.NewID(), bus.NewID(), bus.NewID()
	control := fmt.Sprintf("RLS%d", icn)
	rlstest.Seed(t, store, []rlstest.Stmt{
		{SQL: `INSERT INTO accounts (id, patient_id, clinic_id, enrollment_id, source_event_id)
			VALUES ($1, $2, $3, gen_random_uuid(), gen_random_uuid())`, Args: []any{account, s.patient, clinic}},
		{SQL: `INSERT INTO contracts (id, payer_id, clinic_id, billing_mode, claim_type, effective_from)
			VALUES ($1, $2, $3, 'per_diem', '837I', '2026-01-01')`, Args: []any{contract, rlsPayer, clinic}},
		{SQL: `INSERT INTO contract_codes (contract_id, position, service, procedure_code, rate_cents, clinic_id)
			VALUES ($1, 0, 'per_diem', 'H0015', 10000, $2)`, Args: []any{contract, clinic}},
		{SQL: `INSERT INTO coverages (id, patient_id, clinic_id, payer_id, effective_from, source_updated_at, source_event_id)
			VALUES (gen_random_uuid(), $1, $2, $3, '2026-01-01', now(), gen_random_uuid())`, Args: []any{s.patient, clinic, rlsPayer}},
		{SQL: `INSERT INTO consents (id, patient_id, clinic_id, version, payment, effective_from, source_event_id)
			VALUES ($1, $2, $3, 1, true, now(), gen_random_uuid())`, Args: []any{consent, s.patient, clinic}},
		{SQL: `INSERT INTO attendance (appointment_id, patient_id, clinic_id, enrollment_id, service_type, local_date, starts_at,
				status, minutes_attended, scheduled_minutes, version, source_event_id)
			VALUES (gen_random_uuid(), $1, $2, gen_random_uuid(), 'group', '2026-03-02', now(), 'present', 60, 60, 1,
				gen_random_uuid())`, Args: []any{s.patient, clinic}},
		{SQL: `INSERT INTO authorizations (id, patient_id, clinic_id, payer_id, service, authorized_units, starts_on, ends_on)
			VALUES (gen_random_uuid(), $1, $2, $3, 'per_diem', 10, '2026-01-01', '2026-12-31')`, Args: []any{s.patient, clinic, rlsPayer}},
		{SQL: `INSERT INTO charges (id, billable_unit, patient_id, clinic_id, enrollment_id, service_date, service, rate_cents,
				amount_cents, status, source_event_ids, appointment_ids)
			VALUES ($1::uuid, 'rls:' || $1::text, $2, $3, gen_random_uuid(), '2026-03-02', 'per_diem', 10000, 10000, 'submitted',
				'{}', '{}')`, Args: []any{charge, s.patient, clinic}},
		{SQL: `INSERT INTO patient_diagnoses (patient_id, clinic_id, codes) VALUES ($1, $2, '{F11.20}')`, Args: []any{s.patient, clinic}},
		{SQL: `INSERT INTO billing_providers (clinic_id, name, npi, tax_id, address_line, city, state, postal_code)
			VALUES ($1, 'P', '1234567890', '123456789', '1 Main St', 'Chicago', 'IL', '60601')`, Args: []any{clinic}},
		{SQL: `INSERT INTO patient_identities (patient_id, given_name, family_name, date_of_birth, source_event_id, recorded_at)
			VALUES ($1, 'G', 'F', '1980-01-01', gen_random_uuid(), now())`, Args: []any{s.patient}},
		{SQL: `INSERT INTO claim_files (id, clinic_id, payer_id, claim_type, interchange_control_number, claim_count, total_cents, content)
			VALUES ($1, $2, $3, '837I', $4, 1, 10000, 'ISA*fixture')`, Args: []any{s.file, clinic, rlsPayer, icn}},
		{SQL: `INSERT INTO claims (id, file_id, control_number, clinic_id, patient_id, payer_id, contract_id, claim_type,
				total_cents, first_service_date, last_service_date)
			VALUES ($1, $2, $3, $4, $5, $6, $7, '837I', 10000, '2026-03-02', '2026-03-02')`,
			Args: []any{s.claim, s.file, control, clinic, s.patient, rlsPayer, contract}},
		{SQL: `INSERT INTO claim_lines (claim_id, line_number, charge_id, line_control_number, procedure_code, units,
				charge_cents, service_date, clinic_id)
			VALUES ($1, 1, $2, $3, 'H0015', 1, 10000, '2026-03-02', $4)`, Args: []any{s.claim, charge, control + "-1", clinic}},
		{SQL: `INSERT INTO disclosures (id, patient_id, clinic_id, recipient, purpose, consent_id, claim_id, description)
			VALUES (gen_random_uuid(), $1, $2, 'RLS', 'payment', $3, $4, 'claim')`, Args: []any{s.patient, clinic, consent, s.claim}},
		{SQL: `INSERT INTO remittances (id, sha256, content, summary, total_paid_cents, posted_at)
			VALUES ($1::uuid, $1::text, '', '{}', 0, now())`, Args: []any{s.remittance}},
		{SQL: `INSERT INTO remittance_claims (id, remittance_id, position, claim_id, clinic_id, patient_control, status_code,
				charged_cents, paid_cents, patient_resp_cents, classification)
			VALUES ($1, $2, 1, $3, $4, $5, '4', 10000, 0, 0, 'posted')`, Args: []any{rc, s.remittance, s.claim, clinic, control}},
		{SQL: `INSERT INTO remittance_lines (id, remittance_claim_id, position, expected_cents, charged_cents, paid_cents,
				patient_resp_cents, contractual_cents, variance_cents, classification, clinic_id)
			VALUES (gen_random_uuid(), $1, 1, 10000, 10000, 0, 0, 0, 10000, 'denied', $2)`, Args: []any{rc, clinic}},
		{SQL: `INSERT INTO work_items (id, queue, ref, remittance_id, claim_id, clinic_id, payer_id, amount_cents, created_at, updated_at)
			VALUES ($1, 'denial', 'claim:' || $2::text, $3, $4, $5, $6, 10000, now(), now())`,
			Args: []any{s.workItem, rc, s.remittance, s.claim, clinic, rlsPayer}},
		{SQL: `INSERT INTO write_offs (id, work_item_id, queue, claim_id, clinic_id, payer_id, remittance_claim_id, amount_cents,
				reason, written_off_by, created_at)
			VALUES (gen_random_uuid(), $1, 'denial', $2, $3, $4, $5, 100, 'small_balance', 'rls', now())`,
			Args: []any{s.workItem, s.claim, clinic, rlsPayer, rc}},
		{SQL: `INSERT INTO ledger_entries (id, account_id, kind, amount_cents, ref, created_at, clinic_id)
			VALUES (gen_random_uuid(), $1::uuid, 'payment', 100, 'rls:' || $1::text, now(), $2)`, Args: []any{account, clinic}},
		{SQL: `INSERT INTO statements (id, account_id, balance_cents, due_date, issued_at, clinic_id)
			VALUES (gen_random_uuid(), $1, 100, '2026-04-01', now(), $2)`, Args: []any{account, clinic}},
		{SQL: `INSERT INTO cost_rates (clinic_id, hourly_cost_cents) VALUES ($1, 5000)`, Args: []any{clinic}},
		{SQL: `INSERT INTO fixed_costs (clinic_id, month, label, amount_cents) VALUES ($1, '2026-03-01', 'rent', 100)`, Args: []any{clinic}},
		{SQL: `INSERT INTO cost_attendance (appointment_id, patient_id, clinic_id, session_key, local_date, attended_minutes,
				scheduled_minutes, version, source_event_id)
			VALUES (gen_random_uuid(), $1, $2::uuid, 'k-' || $2::text, '2026-03-02', 60, 60, 1, gen_random_uuid())`, Args: []any{s.patient, clinic}},
		{SQL: `INSERT INTO delivered_sessions (session_key, clinic_id, local_date, scheduled_minutes)
			VALUES ('k-' || $1::text, $1::uuid, '2026-03-02', 60)`, Args: []any{clinic}},
		{SQL: `INSERT INTO patient_days (patient_id, clinic_id, local_date, attended_minutes) VALUES ($1, $2, '2026-03-02', 60)`,
			Args: []any{s.patient, clinic}},
		{SQL: `INSERT INTO completed_episodes (enrollment_id, patient_id, clinic_id, completed_on, source_event_id)
			VALUES (gen_random_uuid(), $1, $2, '2026-03-02', gen_random_uuid())`, Args: []any{s.patient, clinic}},
		{SQL: `INSERT INTO estimates (id, clinic_id, patient_id, start_date, good_faith, total_charges_cents, payer_cents,
				patient_cents, inputs, result)
			VALUES ($1, $2, $3, '2026-03-02', false, 0, 0, 0, '{}', '{}')`, Args: []any{s.estimate, clinic, s.patient}},
	}...)
	return s
}

// With billing's tables' owner (not a superuser, no BYPASSRLS) the database, not the code,
// keeps each clinic's rows to callers of that clinic: in a transaction scoped to clinic A
// every table shows only A's rows, B's rows cannot be counted, updated or deleted, a row
// cannot be written to (or moved into) clinic B, and without a scope nothing is visible.
func TestRowLevelSecurityIsolatesClinics(t *testing.T) {
	r, store := ownerPool(t)
	ctx := context.Background()
	rlstest.CheckCatalog(t, r.Pool, rlstest.Names(rlsTables)...)
	rlstest.CheckForced(t, r.Pool, rlsSystemOnly...)
	a := seedClinic(t, store, rlsClinicA, 1)
	b := seedClinic(t, store, rlsClinicB, 2)
	rlstest.OtherRoles(t, r, "accounts", rlsTables...)
	rlstest.Probe(t, store, r.Pool, rlsTables...)
	asA := principalCtx(rlsClinicA)

	t.Run("patient_identities", func(t *testing.T) {
		count := func(ctx context.Context) int {
			var n int
			if err := store.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
				return tx.QueryRow(ctx, `SELECT count(*) FROM patient_identities`).Scan(&n)
			}); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if all, ofA, none := count(auth.WithSystemScope(ctx)), count(asA), count(ctx); all != 2 || ofA != 0 || none != 0 {
			t.Errorf("identities: %d in system scope, %d in clinic A's, %d without a scope; want 2, 0, 0", all, ofA, none)
		}
		if all := count(principalCtx(auth.AllClinics)); all != 2 {
			t.Errorf("a caller of every clinic sees %d identities, want 2", all)
		}
		err := store.InTx(asA, func(ctx context.Context, tx *bus.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO patient_identities (patient_id, given_name, family_name, date_of_birth, source_event_id, recorded_at)
				VALUES (gen_random_uuid(), 'G', 'F', '1980-01-01', gen_random_uuid(), now())`)
			return err
		})
		if !rlstest.IsViolation(err) {
			t.Errorf("an identity written in clinic A's scope: %v, want 42501", err)
		}
	})

	t.Run("remittances", func(t *testing.T) {
		// An 835 of clinic B's claims only, and one naming no known claim (unmatched, no clinic).
		unmatched := bus.NewID()
		if err := store.InTx(auth.WithSystemScope(ctx), func(ctx context.Context, tx *bus.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO remittances (id, sha256, content, summary, total_paid_cents, posted_at)
				VALUES ($1::uuid, $1::text, '', '{}', 0, now())`, unmatched)
			if err == nil {
				_, err = tx.Exec(ctx, `INSERT INTO remittance_claims (id, remittance_id, position, patient_control, status_code,
					charged_cents, paid_cents, patient_resp_cents, classification)
					VALUES (gen_random_uuid(), $1, 1, 'NOPE', '1', 100, 100, 0, 'unmatched')`, unmatched)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		ids := func(ctx context.Context) map[string]bool {
			out := map[string]bool{}
			if err := store.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
				rows, err := tx.Query(ctx, `SELECT id::text FROM remittances`)
				if err != nil {
					return err
				}
				list, err := pgx.CollectRows(rows, pgx.RowTo[string])
				for _, id := range list {
					out[id] = true
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return out
		}
		if got := ids(asA); len(got) != 1 || !got[a.remittance] {
			t.Errorf("clinic A's scope sees remittances %v, want only A's %s", got, a.remittance)
		}
		if got := ids(auth.WithSystemScope(ctx)); len(got) != 3 || !got[unmatched] || !got[b.remittance] {
			t.Errorf("system scope sees remittances %v, want all 3", got)
		}
		if got := ids(ctx); len(got) != 0 {
			t.Errorf("no scope sees remittances %v", got)
		}
		var n int
		if err := store.Read(asA, func(ctx context.Context, tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM remittance_claims WHERE clinic_id IS NULL`).Scan(&n)
		}); err != nil || n != 0 {
			t.Errorf("clinic A's scope sees %d unmatched remittance claims (%v), want 0", n, err)
		}
		// Only a scope of every clinic writes a remittance (the upload needs every clinic).
		for _, q := range []string{
			`INSERT INTO remittances (id, sha256, content, summary, total_paid_cents, posted_at) VALUES (gen_random_uuid(), 'x', '', '{}', 0, now())`,
			`UPDATE remittances SET matched_claims = 7`,
		} {
			var affected int64
			err := store.InTx(asA, func(ctx context.Context, tx *bus.Tx) error {
				tag, err := tx.Exec(ctx, q)
				affected = tag.RowsAffected()
				return err
			})
			if !rlstest.IsViolation(err) {
				t.Errorf("%s in clinic A's scope: %v (%d rows), want 42501", q, err, affected)
			}
		}
	})
}

// The repositories, called directly with a caller of clinic A (no app check in between), do
// not get clinic B's records from the database, by a guessed id or in a listing of every
// clinic; a caller of B, of every clinic, and the system scope do.
func TestRowLevelSecurityStopsGuessedIDs(t *testing.T) {
	_, store := ownerPool(t)
	a := seedClinic(t, store, rlsClinicA, 1)
	b := seedClinic(t, store, rlsClinicB, 2)
	claims, accounts, costs := NewClaims(store, fieldcrypt.Dev()), NewAccounts(store), NewCosts(store)
	remits := NewRemittances(store, fieldcrypt.Dev())
	asA, asB := principalCtx(rlsClinicA), principalCtx(rlsClinicB)

	file := func(ctx context.Context, id string) bool {
		_, ok, err := claims.ClaimFile(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if file(asA, b.file) || !file(asA, a.file) || !file(asB, b.file) || !file(principalCtx(auth.AllClinics), b.file) {
		t.Error("claim files by id: clinic A's scope must find A's only; B's and every clinic's find B's")
	}
	if file(principalCtx("not-a-clinic-id'; --"), a.file) {
		t.Error("a caller whose clinics are not clinic ids finds a claim file")
	}
	estimate := func(ctx context.Context, id string) bool {
		_, ok, err := costs.Estimate(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if estimate(asA, b.estimate) || !estimate(asB, b.estimate) {
		t.Error("estimates by id: clinic A's scope finds B's, or B's does not")
	}
	accs, err := accounts.ForPatient(asA, b.patient)
	if err != nil || len(accs) != 0 {
		t.Errorf("clinic A's scope reads B's patient's accounts: %v (%v)", accs, err)
	}
	if accs, err := accounts.ForPatient(auth.WithSystemScope(context.Background()), b.patient); err != nil || len(accs) != 1 {
		t.Errorf("system scope: %v (%v), want B's account", accs, err)
	}
	// "Every clinic" asked for in A's scope: A's only.
	all := domain.Scope{All: true}
	items, err := remits.WorkItems(asA, all, domain.QueueDenial, "", "")
	if err != nil || len(items) != 1 || items[0].ID != a.workItem {
		t.Errorf("work items of every clinic in A's scope: %v (%v), want A's only", items, err)
	}
	rems, err := remits.ListRemittances(asA, all, 10)
	if err != nil || len(rems) != 1 || rems[0].ID != a.remittance {
		t.Errorf("remittances of every clinic in A's scope: %v (%v), want A's only", rems, err)
	}
	offs, err := remits.ListWriteOffs(asA, all, "", "", 10)
	if err != nil || len(offs) != 1 || offs[0].ClinicID != rlsClinicA {
		t.Errorf("write-offs of every clinic in A's scope: %v (%v), want A's only", offs, err)
	}
	// Locking B's work item for a change, in A's scope, finds nothing.
	if err := store.InTx(asA, func(ctx context.Context, tx *bus.Tx) error {
		_, ok, err := remits.LockWorkItem(ctx, tx, b.workItem)
		if err == nil && ok {
			t.Error("clinic A's scope locked B's work item")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if in, _, err := costs.ReportData(asA, "2026-03-01", "2026-03-31", nil); err != nil || len(in.Sessions) != 1 || in.Sessions[0].ClinicID != rlsClinicA {
		t.Errorf("a cost report of every clinic in A's scope: sessions %v (%v), want A's only", in.Sessions, err)
	}
}

// Migration 00011 runs on a database with rows: the children's new clinic_id columns are
// filled from their parents (an unmatched 835 claim's lines keep none), and the policies then
// hold every clinic's rows to its scope.
func TestRowLevelSecurityMigrationOnExistingRows(t *testing.T) {
	ctx := context.Background()
	pool := testkit.Pool(t, "billing")
	if err := bus.Migrate(ctx, pool, "billing", nil); err != nil {
		t.Fatal(err)
	}
	before := fstest.MapFS{}
	entries, err := fs.ReadDir(migrations.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() >= "00011_" { // the release before 00011: later migrations come after it
			continue
		}
		b, err := fs.ReadFile(migrations.FS, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		before[e.Name()] = &fstest.MapFile{Data: b}
	}
	if err := pg.Migrate(ctx, pool, "billing", "goose_db_version", before, nil); err != nil {
		t.Fatal(err)
	}
	// The previous release's rows: clinic A's account, contract, claim, an 835 paying it and
	// naming an unknown claim, a ledger entry and a statement.
	account, contract, file, claim, charge, rem, rc, rcUnmatched := bus.NewID(), bus.NewID(), bus.NewID(), bus.NewID(),
		bus.NewID(), bus.NewID(), bus.NewID(), bus.NewID()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO payers (code, name, kind) VALUES ($1, 'RLS', 'commercial')`, []any{rlsPayer}},
		{`INSERT INTO accounts (id, patient_id, clinic_id, enrollment_id, source_event_id)
			VALUES ($1, gen_random_uuid(), $2, gen_random_uuid(), gen_random_uuid())`, []any{account, rlsClinicA}},
		{`INSERT INTO contracts (id, payer_id, clinic_id, billing_mode, claim_type, effective_from)
			VALUES ($1, $2, $3, 'per_diem', '837I', '2026-01-01')`, []any{contract, rlsPayer, rlsClinicA}},
		{`INSERT INTO contract_codes (contract_id, position, service, procedure_code, rate_cents) VALUES ($1, 0, 'per_diem', 'H0015', 1)`,
			[]any{contract}},
		{`INSERT INTO charges (id, billable_unit, patient_id, clinic_id, enrollment_id, service_date, service, rate_cents,
				amount_cents, status, source_event_ids, appointment_ids)
			VALUES ($1::uuid, 'm:' || $1::text, gen_random_uuid(), $2, gen_random_uuid(), '2026-03-02', 'per_diem', 1, 1,
				'submitted', '{}', '{}')`, []any{charge, rlsClinicA}},
		{`INSERT INTO claim_files (id, clinic_id, payer_id, claim_type, interchange_control_number, claim_count, total_cents, content)
			VALUES ($1, $2, $3, '837I', 7, 1, 1, '')`, []any{file, rlsClinicA, rlsPayer}},
		{`INSERT INTO claims (id, file_id, control_number, clinic_id, patient_id, payer_id, contract_id, claim_type, total_cents,
				first_service_date, last_service_date)
			VALUES ($1, $2, 'M1', $3, gen_random_uuid(), $4, $5, '837I', 1, '2026-03-02', '2026-03-02')`,
			[]any{claim, file, rlsClinicA, rlsPayer, contract}},
		{`INSERT INTO claim_lines (claim_id, line_number, charge_id, line_control_number, procedure_code, units, charge_cents, service_date)
			VALUES ($1, 1, $2, 'M1-1', 'H0015', 1, 1, '2026-03-02')`, []any{claim, charge}},
		{`INSERT INTO remittances (id, sha256, content, summary, total_paid_cents, posted_at)
			VALUES ($1::uuid, $1::text, '', '{}', 0, now())`, []any{rem}},
		{`INSERT INTO remittance_claims (id, remittance_id, position, claim_id, clinic_id, patient_control, status_code,
				charged_cents, paid_cents, patient_resp_cents, classification)
			VALUES ($1, $2, 1, $3, $4, 'M1', '1', 1, 1, 0, 'posted'),
				($5, $2, 2, NULL, NULL, 'NOPE', '1', 1, 1, 0, 'unmatched')`, []any{rc, rem, claim, rlsClinicA, rcUnmatched}},
		{`INSERT INTO remittance_lines (id, remittance_claim_id, position, expected_cents, charged_cents, paid_cents,
				patient_resp_cents, contractual_cents, variance_cents, classification)
			VALUES (gen_random_uuid(), $1, 1, 1, 1, 1, 0, 0, 0, 'paid'), (gen_random_uuid(), $2, 1, 0, 1, 1, 0, 0, 0, 'unmatched')`,
			[]any{rc, rcUnmatched}},
		{`INSERT INTO ledger_entries (id, account_id, kind, amount_cents, ref, created_at)
			VALUES (gen_random_uuid(), $1, 'payment', 1, 'm', now())`, []any{account}},
		{`INSERT INTO statements (id, account_id, balance_cents, due_date, issued_at)
			VALUES (gen_random_uuid(), $1, 1, '2026-04-01', now())`, []any{account}},
	} {
		if _, err := pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	if err := pg.Migrate(ctx, pool, "billing", "goose_db_version", migrations.FS, nil); err != nil {
		t.Fatal(err)
	}
	store := bus.NewStore(pool, "billing")
	store.EnableClinicScope()
	for _, tc := range []struct {
		table                string
		inA, noClinic, inAll int
	}{
		{"claim_lines", 1, 0, 1}, {"contract_codes", 1, 0, 1}, {"ledger_entries", 1, 0, 1}, {"statements", 1, 0, 1},
		{"remittance_lines", 1, 1, 2},
	} {
		var inA, noClinic, inAll int
		if err := store.Read(principalCtx(rlsClinicA), func(ctx context.Context, tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM `+tc.table).Scan(&inA)
		}); err != nil {
			t.Fatal(err)
		}
		if err := store.Read(auth.WithSystemScope(ctx), func(ctx context.Context, tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE clinic_id IS NULL), count(*) FROM `+tc.table).Scan(&noClinic, &inAll)
		}); err != nil {
			t.Fatal(err)
		}
		if inA != tc.inA || noClinic != tc.noClinic || inAll != tc.inAll {
			t.Errorf("%s after the migration: %d rows in clinic A's scope, %d without a clinic, %d in all; want %d, %d, %d",
				tc.table, inA, noClinic, inAll, tc.inA, tc.noClinic, tc.inAll)
		}
	}
}
