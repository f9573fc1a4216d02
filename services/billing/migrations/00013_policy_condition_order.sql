-- +goose Up
-- The clinic_isolation policies test their conditions in the cheapest order (issue 9): the
-- scope "*" (system scope: consumers, workers; operators), then the row's clinic in the
-- scope's ids, and only then whether the current role is exempt (the administrative role;
-- docs/security.md). Postgres evaluates an OR from the left and computes each InitPlan only when
-- it is reached, so the exemption's catalog lookup (pg_class, pg_roles, pg_has_role: 0.1-0.8 ms
-- per statement measured, against a few microseconds for the other two) now runs only for a
-- statement that meets a row outside the caller's scope. Which rows pass is unchanged.

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
        EXECUTE format('ALTER POLICY clinic_isolation ON %I USING (%s) WITH CHECK (%s)', t, cond, cond);
    END LOOP;
END
$$;
-- +goose StatementEnd

ALTER POLICY clinic_isolation ON patient_identities
    USING ((SELECT clinic_scope_all()) OR (SELECT clinic_scope_exempt('patient_identities'::regclass)))
    WITH CHECK ((SELECT clinic_scope_all()) OR (SELECT clinic_scope_exempt('patient_identities'::regclass)));
ALTER POLICY clinic_isolation ON remittances
    USING ((SELECT clinic_scope_all())
        OR EXISTS (SELECT 1 FROM remittance_claims rc WHERE rc.remittance_id = remittances.id
            AND rc.clinic_id = ANY ((SELECT clinic_scope_ids())::uuid[]))
        OR (SELECT clinic_scope_exempt('remittances'::regclass)))
    WITH CHECK ((SELECT clinic_scope_all()) OR (SELECT clinic_scope_exempt('remittances'::regclass)));

-- +goose Down
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
        cond := format('(SELECT clinic_scope_exempt(%L::regclass)) OR (SELECT clinic_scope_all()) OR clinic_id = ANY ((SELECT clinic_scope_ids())::uuid[])', t);
        EXECUTE format('ALTER POLICY clinic_isolation ON %I USING (%s) WITH CHECK (%s)', t, cond, cond);
    END LOOP;
END
$$;
-- +goose StatementEnd

ALTER POLICY clinic_isolation ON patient_identities
    USING ((SELECT clinic_scope_exempt('patient_identities'::regclass)) OR (SELECT clinic_scope_all()))
    WITH CHECK ((SELECT clinic_scope_exempt('patient_identities'::regclass)) OR (SELECT clinic_scope_all()));
ALTER POLICY clinic_isolation ON remittances
    USING ((SELECT clinic_scope_exempt('remittances'::regclass)) OR (SELECT clinic_scope_all())
        OR EXISTS (SELECT 1 FROM remittance_claims rc WHERE rc.remittance_id = remittances.id
            AND rc.clinic_id = ANY ((SELECT clinic_scope_ids())::uuid[])))
    WITH CHECK ((SELECT clinic_scope_exempt('remittances'::regclass)) OR (SELECT clinic_scope_all()));
