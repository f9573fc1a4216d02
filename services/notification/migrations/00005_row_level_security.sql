-- +goose Up
-- Clinic isolation in the database (docs/security.md, "Row-level security"; ADR 0014), as in
-- intake's migration 00008: every table holding a clinic's records gets a policy comparing
-- clinic_id with the transaction-local setting trellis.clinics, which the service sets from
-- the caller's token at the start of every transaction (pkg/bus Store.EnableClinicScope):
-- clinic ids separated by commas, "*" for every clinic (operators, and background work in
-- auth.WithSystemScope: the consumers, the dispatcher, the SMS webhooks, the dead-letter
-- watcher, the encryption pass), empty or unset for none. FORCE makes the policies bind the
-- table owner, which is the service's own role (pkg/pg.Provision; the admin role in tests).
-- The functions are notification's own copies (each service owns its schema; nothing is
-- shared across schemas).
--
-- The policies bind every role except one that is not the tables' owner but is a member of
-- it (the administrative role that provisions the service's role: it could SET ROLE to the
-- owner and drop the policies anyway, so binding it would stop nothing; the end-to-end tests
-- read through it). Each expression is an uncorrelated sub-select, so Postgres computes it
-- once per statement (an InitPlan), not per row.
--
-- Covered: recipients, messages, preferences, appointments, clinic_settings, templates (every
-- table with clinic_id; each has it NOT NULL except templates). messages' staff alerts about
-- the platform carry the nil UUID as their clinic (domain.NetworkClinicID): only "*" sees them.
-- templates: clinic_id NULL is the network default, which every clinic's messages fall back
-- to, so a second, SELECT-only policy lets every scope read those rows; writing one (or
-- changing or deleting it) needs "*" (SaveTemplate allows the network's templates only to a
-- caller of every clinic, so this matches the code).
--
-- Not covered, and why: sms_optouts (kept by the keyed hash of a phone number, with no
-- clinic and no patient: a STOP is the number's owner's command to every clinic that texts
-- it, TCPA, so it must bind them all; the API reads it only through a patient's own
-- preferences row, which the policies already filter), outbox and inbox (pkg/bus: the relay
-- and the consumers' dedupe), audit_log (pkg/audit) and goose's version table.
--
-- No row changes here, so the migration runs on a database with rows as it is.

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
    FOREACH t IN ARRAY ARRAY['recipients', 'messages', 'preferences', 'appointments', 'clinic_settings', 'templates'] LOOP
        cond := format('(SELECT clinic_scope_all()) OR clinic_id = ANY ((SELECT clinic_scope_ids())::uuid[]) OR (SELECT clinic_scope_exempt(%L::regclass))', t);
        EXECUTE format('CREATE POLICY clinic_isolation ON %I USING (%s) WITH CHECK (%s)', t, cond, cond);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    END LOOP;
END
$$;
-- +goose StatementEnd

-- The network's default templates (clinic_id NULL): readable in every scope, written only in
-- "*" (clinic_isolation above is the only policy for INSERT, UPDATE and DELETE).
CREATE POLICY network_templates_read ON templates FOR SELECT USING (clinic_id IS NULL);

-- +goose Down
DROP POLICY network_templates_read ON templates;
-- +goose StatementBegin
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['recipients', 'messages', 'preferences', 'appointments', 'clinic_settings', 'templates'] LOOP
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
