-- +goose Up
-- What an X12 837 needs about the patient (intake's PatientBillingIdentityRecorded, a subject
-- only billing subscribes to). Never logged, never in events billing emits.
CREATE TABLE patient_identities (
    patient_id      uuid        PRIMARY KEY,
    given_name      text        NOT NULL,
    family_name     text        NOT NULL,
    date_of_birth   date        NOT NULL,
    source_event_id uuid        NOT NULL,
    recorded_at     timestamptz NOT NULL
);

-- The patient's diagnoses (ICD-10-CM, principal first) as billing staff coded them for claims
-- (HI segment). A charge of a patient without one is held with reason "diagnosis".
CREATE TABLE patient_diagnoses (
    patient_id uuid        NOT NULL,
    clinic_id  uuid        NOT NULL,
    codes      text[]      NOT NULL CHECK (cardinality(codes) BETWEEN 1 AND 12),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, clinic_id)
);

-- The billing provider of a clinic on claims (loop 2010AA), set through the API.
CREATE TABLE billing_providers (
    clinic_id     uuid        PRIMARY KEY,
    name          text        NOT NULL,
    npi           text        NOT NULL CHECK (npi ~ '^[0-9]{10}$'),
    tax_id        text        NOT NULL CHECK (tax_id ~ '^[0-9]{9}$'),
    taxonomy_code text        NOT NULL DEFAULT '',
    address_line  text        NOT NULL,
    city          text        NOT NULL,
    state         text        NOT NULL CHECK (state ~ '^[A-Z]{2}$'),
    postal_code   text        NOT NULL CHECK (postal_code ~ '^[0-9]{5}([0-9]{4})?$'),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- ISA13 interchange control numbers: unique across every file billing writes.
CREATE SEQUENCE interchange_control_seq MINVALUE 1 MAXVALUE 999999999 NO CYCLE;

-- An X12 837 file: the claims of one clinic for one payer, written in one run.
CREATE TABLE claim_files (
    id                         uuid        PRIMARY KEY,
    clinic_id                  uuid        NOT NULL,
    payer_id                   text        NOT NULL REFERENCES payers (code),
    claim_type                 text        NOT NULL CHECK (claim_type IN ('837I', '837P')),
    interchange_control_number bigint      NOT NULL UNIQUE,
    claim_count                integer     NOT NULL CHECK (claim_count > 0),
    total_cents                bigint      NOT NULL CHECK (total_cents >= 0),
    content                    text        NOT NULL,
    created_at                 timestamptz NOT NULL DEFAULT now()
);

-- A claim: one patient's charges for one payer in a file. control_number is CLM01 (the
-- patient control number the 835 echoes in CLP01).
CREATE TABLE claims (
    id                  uuid        PRIMARY KEY,
    file_id             uuid        NOT NULL REFERENCES claim_files (id),
    control_number      text        NOT NULL UNIQUE,
    clinic_id           uuid        NOT NULL,
    patient_id          uuid        NOT NULL,
    payer_id            text        NOT NULL,
    contract_id         uuid        NOT NULL REFERENCES contracts (id),
    coverage_id         uuid        NULL,
    claim_type          text        NOT NULL CHECK (claim_type IN ('837I', '837P')),
    -- CLM05-3: 1 original, 7 replacement, 8 void.
    frequency_code      text        NOT NULL DEFAULT '1' CHECK (frequency_code IN ('1', '7', '8')),
    replaces_claim_id   uuid        NULL REFERENCES claims (id),
    total_cents         bigint      NOT NULL CHECK (total_cents >= 0),
    status              text        NOT NULL DEFAULT 'submitted' CHECK (status IN ('submitted', 'paid', 'partially_paid', 'denied', 'reversed')),
    paid_cents          bigint      NOT NULL DEFAULT 0,
    patient_resp_cents  bigint      NOT NULL DEFAULT 0,
    -- The payer's own claim number (CLP07), once a remittance names it.
    payer_claim_number  text        NOT NULL DEFAULT '',
    first_service_date  date        NOT NULL,
    last_service_date   date        NOT NULL,
    submitted_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX claims_clinic_payer_idx ON claims (clinic_id, payer_id, status);

-- A claim's service lines; line_control_number (REF*6R) is echoed by the 835 on the line.
CREATE TABLE claim_lines (
    claim_id            uuid    NOT NULL REFERENCES claims (id),
    line_number         integer NOT NULL CHECK (line_number > 0),
    charge_id           uuid    NOT NULL REFERENCES charges (id),
    line_control_number text    NOT NULL UNIQUE,
    procedure_code      text    NOT NULL,
    revenue_code        text    NOT NULL DEFAULT '',
    modifiers           text[]  NOT NULL DEFAULT '{}',
    units               integer NOT NULL,
    charge_cents        bigint  NOT NULL,
    service_date        date    NOT NULL,
    PRIMARY KEY (claim_id, line_number)
);
CREATE INDEX claim_lines_charge_idx ON claim_lines (charge_id);

-- The accounting of disclosures (42 CFR Part 2, HIPAA): every claim sent is a disclosure of
-- the patient's records to the payer, under the payment consent it relied on.
CREATE TABLE disclosures (
    id           uuid        PRIMARY KEY,
    patient_id   uuid        NOT NULL,
    clinic_id    uuid        NOT NULL,
    recipient    text        NOT NULL,
    purpose      text        NOT NULL CHECK (purpose IN ('payment')),
    consent_id   uuid        NOT NULL,
    claim_id     uuid        NOT NULL UNIQUE REFERENCES claims (id),
    -- What was disclosed, in general terms (no clinical detail).
    description  text        NOT NULL,
    disclosed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX disclosures_patient_idx ON disclosures (patient_id, disclosed_at);

ALTER TABLE charges ADD CONSTRAINT charges_claim_fk FOREIGN KEY (claim_id) REFERENCES claims (id);

-- +goose Down
ALTER TABLE charges DROP CONSTRAINT charges_claim_fk;
DROP TABLE disclosures;
DROP TABLE claim_lines;
DROP TABLE claims;
DROP TABLE claim_files;
DROP SEQUENCE interchange_control_seq;
DROP TABLE billing_providers;
DROP TABLE patient_identities;
DROP TABLE patient_diagnoses;
