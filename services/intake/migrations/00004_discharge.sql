-- +goose Up
-- Discharge: an episode of care ends with a reason (SAMHSA TEDS codes) and a clinic-local date.
-- The note is free text kept here only (never in events); discharged_by is the token subject.
-- An episode is either admitted with no discharge details, or discharged with all of them
-- (the note is optional) and a discharge date not before its start date.
ALTER TABLE episodes
    ADD COLUMN discharge_reason text CHECK (discharge_reason IN
        ('completed', 'transferred', 'dropped_out', 'terminated', 'other')),
    ADD COLUMN discharge_date   date,
    ADD COLUMN discharged_at    timestamptz,
    ADD COLUMN discharge_note   text,
    ADD COLUMN discharged_by    text;
-- 00001 allowed only 'admitted' (its column CHECK got Postgres' default name).
ALTER TABLE episodes DROP CONSTRAINT episodes_status_check;
ALTER TABLE episodes ADD CONSTRAINT episodes_status_check CHECK (status IN ('admitted', 'discharged'));
ALTER TABLE episodes ADD CONSTRAINT episodes_discharge CHECK (
    CASE status
        WHEN 'admitted' THEN discharge_reason IS NULL AND discharge_date IS NULL AND discharged_at IS NULL
            AND discharge_note IS NULL AND discharged_by IS NULL
        ELSE discharge_reason IS NOT NULL AND discharge_date IS NOT NULL AND discharged_at IS NOT NULL
            AND discharged_by IS NOT NULL AND discharge_date >= start_date
    END);

-- +goose Down
-- Fails while discharged episodes exist: going back would lose their discharge.
ALTER TABLE episodes DROP CONSTRAINT episodes_discharge;
ALTER TABLE episodes DROP CONSTRAINT episodes_status_check;
ALTER TABLE episodes ADD CONSTRAINT episodes_status_check CHECK (status IN ('admitted'));
ALTER TABLE episodes
    DROP COLUMN discharged_by,
    DROP COLUMN discharge_note,
    DROP COLUMN discharged_at,
    DROP COLUMN discharge_date,
    DROP COLUMN discharge_reason;
