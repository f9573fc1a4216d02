-- +goose Up
-- Clinic isolation in the database (docs/security.md, "Row-level security"; ADR 0014), as
-- intake's migration 00008 does it, in billing's own schema: every table holding a clinic's
-- records gets a policy comparing clinic_id with the transaction-local setting trellis.clinics,
-- which the service sets from the caller's token at the start of every transaction (pkg/bus
-- Store.EnableClinicScope): clinic ids separated by commas, "*" for every clinic (operators,
-- and background work in auth.WithSystemScope), empty or unset for none. FORCE makes the
-- policies bind the tables' owner, the service's own role (the admin role in tests).
--
-- The policies bind every role except one that is not the tables' owner but is a member of it
-- (the administrative role that provisions the service's role: it could SET ROLE to the owner
-- and drop the policies anyway). Each expression is an uncorrelated sub-select, computed once
-- per statement (an InitPlan), so "clinic_id = ANY" can use the clinic_id indexes.
--
-- Children that had no clinic_id get a denormalised one, backfilled from their parent here and
-- written by the code on insert (a policy with a sub-select on the parent would run per row):
-- claim_lines (claims), ledger_entries and statements (accounts), contract_codes (contracts),
-- remittance_lines (remittance_claims).
--
-- Rows of an 835 that belong to no clinic: remittance_claims, remittance_lines and work_items
-- of a claim the 835 names but billing does not know (unmatched) have a NULL clinic_id; the
-- policy never matches NULL, so only a scope of every clinic sees them (the staff who may
-- upload 835s, which needs every clinic). remittances (the file, with its counts and sealed
-- content) spans clinics: it is written only in a scope of every clinic (the upload), and
-- read by a scope that sees one of its remittance_claims (the list of 835s touching a
-- caller's clinics; the sub-select is correlated, but only for a scope that is not "*", and
-- remittance_claims is itself filtered by its policy).
--
-- patient_identities (name and sealed date of birth for claims, one row per patient across
-- clinics) is read only by the claims run and written only by a consumer, both in system
-- scope: only a scope of every clinic sees it.
--
-- Not covered, and why: payers and sliding_scale (network-wide configuration, no clinic and
-- no patient data), idempotency_keys (scoped by the caller's token subject, not by clinic; a
-- replay is checked by the app), outbox and inbox (pkg/bus), audit_log (pkg/audit) and
-- goose's version table.
SELECT set_config('trellis.clinics', '*', true);

ALTER TABLE claim_lines ADD COLUMN clinic_id uuid;
UPDATE claim_lines l SET clinic_id = c.clinic_id FROM claims c WHERE c.id = l.claim_id;
ALTER TABLE claim_lines ALTER COLUMN clinic_id SET NOT NULL;

ALTER TABLE ledger_entries ADD COLUMN clinic_id uuid;
UPDATE ledger_entries e SET clinic_id = a.clinic_id FROM accounts a WHERE a.id = e.account_id;
ALTER TABLE ledger_entries ALTER COLUMN clinic_id SET NOT NULL;

ALTER TABLE statements ADD COLUMN clinic_id uuid;
UPDATE statements s SET clinic_id = a.clinic_id FROM accounts a WHERE a.id = s.account_id;
ALTER TABLE statements ALTER COLUMN clinic_id SET NOT NULL;

ALTER TABLE contract_codes ADD COLUMN clinic_id uuid;
UPDATE contract_codes k SET clinic_id = c.clinic_id FROM contracts c WHERE c.id = k.contract_id;
ALTER TABLE contract_codes ALTER COLUMN clinic_id SET NOT NULL;

-- NULL for a line of an unmatched claim, as its remittance_claims row.
ALTER TABLE remittance_lines ADD COLUMN clinic_id uuid;
UPDATE remittance_lines l SET clinic_id = rc.clinic_id FROM remittance_claims rc WHERE rc.id = l.remittance_claim_id;

-- The 835 list of a clinic's caller looks remittances up through their claims.
CREATE INDEX remittance_claims_remittance_clinic_idx ON remittance_claims (remittance_id, clinic_id);

-- +goose StatementBegin
CREATE FUNCTION clinic_scope_all() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT pg_catalog.current_setting('trellis.clinics', true) = '*' $$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION clinic_scope_ids() RETURNS uuid[]
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN pg_catalog.current_setting('trellis.clinics', true) IN ('', '*') THEN '{}'::uuid[]
        ELSE pg_catalog.string_to_array(pg_catalog.current_setting('trellis.clinics', true), ',')::uuid[] END $$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION clinic_scope_exempt(tbl regclass) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT c.relowner <> r.oid AND pg_catalog.pg_has_role(r.oid, c.relowner, 'MEMBER')
        FROM pg_catalog.pg_class c, pg_catalog.pg_roles r WHERE c.oid = tbl AND r.rolname = current_user $$;
-- +goose StatementEnd

-- +goose StatementBegin
DO $$
DECLARE
    t text;
    cond text;
BEGIN
    FOREACH t IN ARRAY ARRAY['accounts', 'contracts', 'contract_codes', 'coverages', 'consents', 'attendance',
            'authorizations', 'charges', 'patient_diagnoses', 'billing_providers', 'claim_files', 'claims',
            'claim_lines', 'disclosures', 'remittance_claims', 'remittance_lines', 'work_items', 'ledger_entries',
            'statements', 'cost_rates', 'fixed_costs', 'cost_attendance', 'delivered_sessions', 'patient_days',
            'completed_episodes', 'estimates', 'write_offs'] LOOP
        cond := format('(SELECT clinic_scope_all()) OR clinic_id = ANY ((SELECT clinic_scope_ids())::uuid[]) OR (SELECT clinic_scope_exempt(%L::regclass))', t);
        EXECUTE format('CREATE POLICY clinic_isolation ON %I USING (%s) WITH CHECK (%s)', t, cond, cond);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    END LOOP;
END
$$;
-- +goose StatementEnd

CREATE POLICY clinic_isolation ON patient_identities
    USING ((SELECT clinic_scope_all()) OR (SELECT clinic_scope_exempt('patient_identities'::regclass)))
    WITH CHECK ((SELECT clinic_scope_all()) OR (SELECT clinic_scope_exempt('patient_identities'::regclass)));
ALTER TABLE patient_identities ENABLE ROW LEVEL SECURITY;
ALTER TABLE patient_identities FORCE ROW LEVEL SECURITY;

CREATE POLICY clinic_isolation ON remittances
    USING ((SELECT clinic_scope_all())
        OR EXISTS (SELECT 1 FROM remittance_claims rc WHERE rc.remittance_id = remittances.id
            AND rc.clinic_id = ANY ((SELECT clinic_scope_ids())::uuid[]))
        OR (SELECT clinic_scope_exempt('remittances'::regclass)))
    WITH CHECK ((SELECT clinic_scope_all()) OR (SELECT clinic_scope_exempt('remittances'::regclass)));
ALTER TABLE remittances ENABLE ROW LEVEL SECURITY;
ALTER TABLE remittances FORCE ROW LEVEL SECURITY;

-- +goose Down
-- +goose StatementBegin
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['accounts', 'contracts', 'contract_codes', 'coverages', 'consents', 'attendance',
            'authorizations', 'charges', 'patient_diagnoses', 'billing_providers', 'claim_files', 'claims',
            'claim_lines', 'disclosures', 'remittance_claims', 'remittance_lines', 'work_items', 'ledger_entries',
            'statements', 'cost_rates', 'fixed_costs', 'cost_attendance', 'delivered_sessions', 'patient_days',
            'completed_episodes', 'estimates', 'write_offs', 'patient_identities', 'remittances'] LOOP
        EXECUTE format('ALTER TABLE %I NO FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I DISABLE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY clinic_isolation ON %I', t);
    END LOOP;
END
$$;
-- +goose StatementEnd
DROP FUNCTION clinic_scope_exempt(regclass);
DROP FUNCTION clinic_scope_ids();
DROP FUNCTION clinic_scope_all();
DROP INDEX remittance_claims_remittance_clinic_idx;
ALTER TABLE remittance_lines DROP COLUMN clinic_id;
ALTER TABLE contract_codes DROP COLUMN clinic_id;
ALTER TABLE statements DROP COLUMN clinic_id;
ALTER TABLE ledger_entries DROP COLUMN clinic_id;
ALTER TABLE claim_lines DROP COLUMN clinic_id;
