-- +goose Up
-- Clinic isolation in the database (docs/security.md, "Row-level security"; ADR 0014): every
-- table holding a clinic's records gets a policy comparing clinic_id with the
-- transaction-local setting trellis.clinics, which the service sets from the caller's token at
-- the start of every transaction (pkg/bus Store.EnableClinicScope): clinic ids separated by
-- commas, "*" for every clinic (operators, and background work in auth.WithSystemScope), empty
-- or unset for none. FORCE makes the policies bind the table owner, which is the service's
-- own role (pkg/pg.Provision; the admin role in tests).
--
-- The policies bind every role except one that is not the tables' owner but is a member of
-- it (the administrative role that provisions the service's role: it could SET ROLE to the
-- owner and drop the policies anyway, so binding it would stop nothing; the end-to-end tests
-- read through it). The owner, and any role merely granted rights on a table (a separate
-- migration role's service role, a reporting role), is bound. Each expression is an
-- uncorrelated sub-select, so Postgres computes it once per statement (an InitPlan), not per
-- row, and "clinic_id = ANY" can use the clinic_id indexes.
--
-- Not covered, and why: clinics (reference data from scheduling, no patient data; every
-- caller's requests name clinics they may not see, and the answer must not depend on it),
-- idempotency_keys (scoped by the caller's token subject, its primary key's first column, not
-- by clinic), outbox and inbox (pkg/bus: the relay and the consumers' dedupe), audit_log
-- (pkg/audit) and goose's version table.

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
    FOREACH t IN ARRAY ARRAY['patients', 'episodes', 'referrals', 'referral_duplicates', 'referral_status_history',
            'assessments', 'consents', 'coverages', 'coverage_versions'] LOOP
        cond := format('(SELECT clinic_scope_exempt(%L::regclass)) OR (SELECT clinic_scope_all()) OR clinic_id = ANY ((SELECT clinic_scope_ids())::uuid[])', t);
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
    FOREACH t IN ARRAY ARRAY['patients', 'episodes', 'referrals', 'referral_duplicates', 'referral_status_history',
            'assessments', 'consents', 'coverages', 'coverage_versions'] LOOP
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
