-- +goose Up
-- Clinic isolation in the database (docs/security.md, "Row-level security"; ADR 0014), as in
-- intake's migration 00008: every projection holding a clinic's rows gets a policy comparing
-- clinic_id with the transaction-local setting trellis.clinics, which the dashboard sets at the
-- start of every transaction (pkg/bus Store.EnableClinicScope): from the signed-in user's token
-- for the pages and JSON endpoints, "*" for the projections (consumers run in system scope) and
-- `dashboard rebuild`. FORCE makes the policies bind the tables' owner, the dashboard's own role
-- (pkg/pg.Provision; the admin role in tests). The functions are the dashboard's own (each
-- service owns its schema; nothing is shared across schemas).
--
-- The policies bind every role except one that is not the tables' owner but is a member of it
-- (the administrative role that provisions the service's role: it could SET ROLE to the owner
-- and drop the policies anyway). Each expression is an uncorrelated sub-select, so Postgres
-- computes it once per statement (an InitPlan), not per row, and "clinic_id = ANY" can use the
-- clinic_id indexes.
--
-- Every per-clinic projection has its own clinic_id (no child table needs a denormalised one).
-- clinics is covered too: the clinics a user may see are the rows their scope shows (names and
-- time zones are not patient data, but listing another organisation's clinics is not the
-- user's business either, and every query joins it by clinic_id for the clinic's time zone).
--
-- Not covered, and why: programs (ProgramConfigured: network-wide program settings, no clinic),
-- stream_positions (the newest event time per stream, for /health: no clinic, no patient),
-- outbox and inbox (pkg/bus: the relay and the consumers' dedupe; inbox rows are event ids per
-- consumer), audit_log (pkg/audit) and goose's version table. Sign-in sessions are not stored
-- in the database (signed cookies).

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
    FOREACH t IN ARRAY ARRAY['clinics', 'tracks', 'enrollments', 'referrals', 'admissions', 'attendance', 'risks',
            'completions', 'discharges', 'charges', 'claims', 'appointments', 'write_offs'] LOOP
        cond := format('(SELECT clinic_scope_all()) OR clinic_id = ANY ((SELECT clinic_scope_ids())::uuid[]) OR (SELECT clinic_scope_exempt(%L::regclass))', t);
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
    FOREACH t IN ARRAY ARRAY['clinics', 'tracks', 'enrollments', 'referrals', 'admissions', 'attendance', 'risks',
            'completions', 'discharges', 'charges', 'claims', 'appointments', 'write_offs'] LOOP
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
