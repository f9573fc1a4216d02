-- +goose Up
-- Other records of a patient a request names ("episode_id=<uuid>", "consent_id=<uuid>"...), so
-- that a refused call naming a patient only through such a record is on record too. A row
-- without them keeps its first canonical form (see audit.Entry.Canonical): old rows still verify.
ALTER TABLE audit_log ADD COLUMN record_ids text[] NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE audit_log DROP COLUMN record_ids;
