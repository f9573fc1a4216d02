-- +goose Up
-- Clinic isolation in the database (docs/security.md, "Row-level security"; ADR 0014), as in
-- intake's 00008: every table holding a clinic's records gets a policy comparing its clinic
-- with the transaction-local setting trellis.clinics, which the service sets from the caller's
-- token at the start of every transaction (pkg/bus Store.EnableClinicScope): clinic ids
-- separated by commas, "*" for every clinic (operators, and background work in
-- auth.WithSystemScope: consumers, the compliance worker, seed-demo), empty or unset for none.
-- FORCE makes the policies bind the tables' owner, the service's own role (pkg/pg.Provision;
-- the admin role in tests). The functions are scheduling's own (each service owns its schema).
--
-- Who is exempt: a role that is not the tables' owner but a member of it (the administrative
-- role that provisions the service's role: it could SET ROLE to the owner and drop the
-- policies anyway; the end-to-end tests read through it). Each expression is an uncorrelated
-- sub-select, computed once per statement (an InitPlan), so "clinic_id = ANY" can still use
-- the clinic_id indexes and the per-row cost is a comparison.
--
-- Children that had no clinic_id get a denormalised copy of their parent's (backfilled here,
-- NOT NULL, written by the code on insert) rather than a policy with a per-row sub-select:
-- attendance and appointment_history (from appointments), clinician_availability (from
-- clinicians), program_completions (from enrollments).
--
-- clinics: scheduling's configuration, with the policy on its id: clinic staff see their
-- clinics' rows only; operators and admins with "*" tokens manage every clinic (UpsertClinic
-- creates a clinic with a new id only for a "*" caller, as the app already required).
--
-- Not covered, and why: programs (the same across the network, no clinic and no patient
-- data), idempotency_keys (scoped by the caller's token subject, its primary key's first
-- column; a replay is checked against the caller's clinics by the app), outbox and inbox
-- (pkg/bus: the relay and the consumers' dedupe), audit_log (pkg/audit) and goose's version
-- table. The view attendance_current reads attendance with its owner's rights, the service's
-- role, so attendance's policy applies through it.

-- The backfill below reads and writes clinic rows.
SELECT set_config('trellis.clinics', '*', true);

ALTER TABLE attendance ADD COLUMN clinic_id uuid;
UPDATE attendance t SET clinic_id = a.clinic_id FROM appointments a WHERE a.id = t.appointment_id;
ALTER TABLE attendance ALTER COLUMN clinic_id SET NOT NULL;

ALTER TABLE appointment_history ADD COLUMN clinic_id uuid;
UPDATE appointment_history h SET clinic_id = a.clinic_id FROM appointments a WHERE a.id = h.appointment_id;
ALTER TABLE appointment_history ALTER COLUMN clinic_id SET NOT NULL;

ALTER TABLE clinician_availability ADD COLUMN clinic_id uuid;
UPDATE clinician_availability w SET clinic_id = c.clinic_id FROM clinicians c WHERE c.id = w.clinician_id;
ALTER TABLE clinician_availability ALTER COLUMN clinic_id SET NOT NULL;

ALTER TABLE program_completions ADD COLUMN clinic_id uuid;
UPDATE program_completions p SET clinic_id = e.clinic_id FROM enrollments e WHERE e.id = p.enrollment_id;
ALTER TABLE program_completions ALTER COLUMN clinic_id SET NOT NULL;

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
    col text;
    cond text;
BEGIN
    FOREACH t IN ARRAY ARRAY['clinics', 'rooms', 'clinicians', 'clinician_availability', 'tracks', 'enrollments',
            'enrollment_history', 'discharged_episodes', 'sessions', 'appointments', 'appointment_history', 'attendance',
            'risk_episodes', 'program_completions', 'family_consents'] LOOP
        col := CASE t WHEN 'clinics' THEN 'id' ELSE 'clinic_id' END;
        cond := format('(SELECT clinic_scope_all()) OR %I = ANY ((SELECT clinic_scope_ids())::uuid[]) OR (SELECT clinic_scope_exempt(%L::regclass))', col, t);
        EXECUTE format('CREATE POLICY clinic_isolation ON %I USING (%s) WITH CHECK (%s)', t, cond, cond);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['clinics', 'rooms', 'clinicians', 'clinician_availability', 'tracks', 'enrollments',
            'enrollment_history', 'discharged_episodes', 'sessions', 'appointments', 'appointment_history', 'attendance',
            'risk_episodes', 'program_completions', 'family_consents'] LOOP
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
ALTER TABLE program_completions DROP COLUMN clinic_id;
ALTER TABLE clinician_availability DROP COLUMN clinic_id;
ALTER TABLE appointment_history DROP COLUMN clinic_id;
ALTER TABLE attendance DROP COLUMN clinic_id;
