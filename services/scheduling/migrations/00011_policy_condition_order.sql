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
    col text;
    cond text;
BEGIN
    FOREACH t IN ARRAY ARRAY['clinics', 'rooms', 'clinicians', 'clinician_availability', 'tracks', 'enrollments',
            'enrollment_history', 'discharged_episodes', 'sessions', 'appointments', 'appointment_history', 'attendance',
            'risk_episodes', 'program_completions', 'family_consents'] LOOP
        col := CASE t WHEN 'clinics' THEN 'id' ELSE 'clinic_id' END;
        cond := format('(SELECT clinic_scope_all()) OR %I = ANY ((SELECT clinic_scope_ids())::uuid[]) OR (SELECT clinic_scope_exempt(%L::regclass))', col, t);
        EXECUTE format('ALTER POLICY clinic_isolation ON %I USING (%s) WITH CHECK (%s)', t, cond, cond);
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
DECLARE
    t text;
    col text;
    cond text;
BEGIN
    FOREACH t IN ARRAY ARRAY['clinics', 'rooms', 'clinicians', 'clinician_availability', 'tracks', 'enrollments',
            'enrollment_history', 'discharged_episodes', 'sessions', 'appointments', 'appointment_history', 'attendance',
            'risk_episodes', 'program_completions', 'family_consents'] LOOP
        col := CASE t WHEN 'clinics' THEN 'id' ELSE 'clinic_id' END;
        cond := format('(SELECT clinic_scope_exempt(%L::regclass)) OR (SELECT clinic_scope_all()) OR %I = ANY ((SELECT clinic_scope_ids())::uuid[])', t, col);
        EXECUTE format('ALTER POLICY clinic_isolation ON %I USING (%s) WITH CHECK (%s)', t, cond, cond);
    END LOOP;
END
$$;
-- +goose StatementEnd
