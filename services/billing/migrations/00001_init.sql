-- +goose Up
-- A patient account: one per patient and clinic, opened when scheduling enrolls the patient,
-- ready to receive charges. Money is integer cents; a positive balance means the patient owes.
CREATE TABLE accounts (
    id              uuid        PRIMARY KEY,
    patient_id      uuid        NOT NULL,
    clinic_id       uuid        NOT NULL,
    -- The enrollment that opened the account; later enrollments at the same clinic reuse it.
    enrollment_id   uuid        NOT NULL,
    balance_cents   bigint      NOT NULL DEFAULT 0,
    -- Later lifecycle states (closed, in collections, ...) extend this check.
    status          text        NOT NULL DEFAULT 'open' CHECK (status IN ('open')),
    source_event_id uuid        NOT NULL,
    opened_at       timestamptz NOT NULL DEFAULT now(),
    -- Two guards, independent of the bus inbox: a replayed event opens nothing twice, and a
    -- patient has one account per clinic whatever the number of enrollments. The second also
    -- serves lookups by patient.
    CONSTRAINT accounts_source_event_key UNIQUE (source_event_id),
    CONSTRAINT accounts_patient_clinic_key UNIQUE (patient_id, clinic_id)
);

-- +goose Down
DROP TABLE accounts;
