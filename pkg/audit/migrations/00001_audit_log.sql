-- +goose Up
-- The PHI audit trail (pkg/audit): one row per call that reads or changes a patient's records,
-- hash-chained (hash = sha256(prev_hash || the row's canonical content)) and append-only.
CREATE TABLE audit_log (
    seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL,
    service       text        NOT NULL,
    request_id    text        NOT NULL,
    subject       text        NOT NULL, -- the token's subject; '' when not authenticated
    roles         text[]      NOT NULL,
    procedure     text        NOT NULL, -- "/trellis.intake.v1.IntakeService/AdmitPatient", "GET /audit"
    access        text        NOT NULL CHECK (access IN ('read', 'change')),
    outcome       text        NOT NULL, -- "started", "ok" or a Connect code: permission_denied, not_found...
    patient_ids   uuid[]      NOT NULL,
    referral_ids  uuid[]      NOT NULL,
    client_ip     text        NOT NULL,
    forwarded_for text        NOT NULL, -- X-Forwarded-For as sent (claimed by the client or a proxy)
    user_agent    text        NOT NULL,
    prev_hash     bytea       NOT NULL CHECK (length(prev_hash) = 32),
    hash          bytea       NOT NULL UNIQUE CHECK (length(hash) = 32)
);
CREATE INDEX audit_log_patient_ids ON audit_log USING gin (patient_ids);
CREATE INDEX audit_log_referral_ids ON audit_log USING gin (referral_ids);
CREATE INDEX audit_log_at ON audit_log (at);

-- Append-only. The service's role owns its schema, so REVOKE UPDATE, DELETE would not bind it
-- (an owner can grant itself back): triggers refuse every UPDATE, DELETE and TRUNCATE, for
-- every role. Dropping the trigger needs DDL; the hash chain shows what was changed then.
-- +goose StatementBegin
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- +goose Down
DROP TABLE audit_log;
DROP FUNCTION audit_log_append_only();
