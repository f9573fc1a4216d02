-- +goose Up
-- Clinics are reference data: intake rejects admissions to unknown clinics. For now they are
-- added only by `intake seed-demo` (there is no clinic API yet).
CREATE TABLE clinics (
    id         uuid        PRIMARY KEY,
    name       text        NOT NULL CHECK (name <> ''),
    time_zone  text        NOT NULL CHECK (time_zone <> ''), -- IANA, e.g. America/Chicago (checked by the service)
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE patients (
    id            uuid        PRIMARY KEY,
    clinic_id     uuid        NOT NULL REFERENCES clinics (id),
    given_name    text        NOT NULL,
    family_name   text        NOT NULL,
    date_of_birth date        NOT NULL,
    contact_email text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX patients_clinic ON patients (clinic_id);

-- An episode of care: one admission to a program track at a clinic.
CREATE TABLE episodes (
    id            uuid        PRIMARY KEY,
    patient_id    uuid        NOT NULL REFERENCES patients (id),
    clinic_id     uuid        NOT NULL REFERENCES clinics (id),
    program_track text        NOT NULL,
    start_date    date        NOT NULL, -- clinic-local calendar date
    status        text        NOT NULL DEFAULT 'admitted' CHECK (status IN ('admitted')),
    admitted_at   timestamptz NOT NULL
);
CREATE INDEX episodes_patient ON episodes (patient_id);
CREATE INDEX episodes_clinic_status ON episodes (clinic_id, status);

-- Idempotency keys of mutating calls, scoped per caller (token subject). request_hash covers
-- the procedure and the request without its key; response is the first call's response.
CREATE TABLE idempotency_keys (
    subject      text        NOT NULL,
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    response     bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject, key)
);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE episodes;
DROP TABLE patients;
DROP TABLE clinics;
