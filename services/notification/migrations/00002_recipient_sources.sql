-- +goose Up
-- The recipient copy is now assembled from two facts intake publishes separately, in either
-- order: PatientAdmitted (the first visit date) and PatientContactRecorded (name, email, phone,
-- on a subject of its own so that only notification receives contact details). Each source
-- has its own "updated at" (the event's occurred_at): an older event never overwrites a newer
-- one of the same kind, and a fact not seen yet is NULL.
ALTER TABLE recipients
    ALTER COLUMN start_date DROP NOT NULL,
    ALTER COLUMN preferred_name DROP NOT NULL,
    -- NULL: no contact details yet. '': intake has no address for the patient (a message to
    -- it fails as invalid_address).
    ALTER COLUMN email DROP NOT NULL,
    -- E.164, '' when not known.
    ADD COLUMN phone text,
    ADD COLUMN admission_updated_at timestamptz,
    ADD COLUMN contact_updated_at timestamptz;

-- Rows so far came from PatientAdmitted, which carried the contact details as well.
UPDATE recipients SET phone = '', admission_updated_at = updated_at, contact_updated_at = updated_at;

ALTER TABLE recipients
    DROP COLUMN updated_at,
    ADD CONSTRAINT recipients_admission_fields CHECK (num_nulls(admission_updated_at, start_date) IN (0, 2)),
    ADD CONSTRAINT recipients_contact_fields CHECK (num_nulls(contact_updated_at, preferred_name, email, phone) IN (0, 4)),
    ADD CONSTRAINT recipients_some_fact CHECK (admission_updated_at IS NOT NULL OR contact_updated_at IS NOT NULL);

-- +goose Down
-- A copy still missing one of its facts cannot be kept in the old shape.
DELETE FROM recipients WHERE admission_updated_at IS NULL OR contact_updated_at IS NULL;
ALTER TABLE recipients
    DROP CONSTRAINT recipients_admission_fields,
    DROP CONSTRAINT recipients_contact_fields,
    DROP CONSTRAINT recipients_some_fact,
    ADD COLUMN updated_at timestamptz;
UPDATE recipients SET updated_at = GREATEST(admission_updated_at, contact_updated_at);
ALTER TABLE recipients
    ALTER COLUMN updated_at SET NOT NULL,
    ALTER COLUMN start_date SET NOT NULL,
    ALTER COLUMN preferred_name SET NOT NULL,
    ALTER COLUMN email SET NOT NULL,
    DROP COLUMN phone,
    DROP COLUMN admission_updated_at,
    DROP COLUMN contact_updated_at;
