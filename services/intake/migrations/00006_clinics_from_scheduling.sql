-- +goose Up
-- Clinics come from scheduling: the consumer intake--clinics copies each ClinicConfigured
-- event (trellis.scheduling.clinic.configured.v1) into this table. configured_at and
-- configured_event_id are the occurred_at and event id of the event the row holds, so an
-- older event (redelivered, or overtaken) never overwrites a newer one; both are NULL for a
-- row only `intake seed-demo` wrote, which any event replaces.
ALTER TABLE clinics
    ADD COLUMN configured_at       timestamptz,
    ADD COLUMN configured_event_id uuid,
    ADD CONSTRAINT clinics_configured_together CHECK ((configured_at IS NULL) = (configured_event_id IS NULL));

-- +goose Down
ALTER TABLE clinics
    DROP CONSTRAINT clinics_configured_together,
    DROP COLUMN configured_event_id,
    DROP COLUMN configured_at;
