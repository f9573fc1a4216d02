-- +goose Up
-- Payers of the network (network-wide, not per clinic). code is the id intake's coverages name.
CREATE TABLE payers (
    code         text        PRIMARY KEY CHECK (code ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name         text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('commercial', 'medicaid', 'medicare', 'self_pay')),
    -- NM1*PR identifier on claims; empty for self-pay.
    x12_payer_id text        NOT NULL DEFAULT '',
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- A payer's contract with one clinic, for a date window. At most one contract per payer and
-- clinic is effective on any day (checked by the service under an advisory lock).
CREATE TABLE contracts (
    id                       uuid        PRIMARY KEY,
    payer_id                 text        NOT NULL REFERENCES payers (code),
    clinic_id                uuid        NOT NULL,
    billing_mode             text        NOT NULL CHECK (billing_mode IN ('per_diem', 'per_service')),
    claim_type               text        NOT NULL CHECK (claim_type IN ('837I', '837P')),
    per_diem_minimum_minutes integer     NOT NULL DEFAULT 180 CHECK (per_diem_minimum_minutes BETWEEN 1 AND 1440),
    below_minimum            text        NOT NULL DEFAULT 'bill_nothing' CHECK (below_minimum IN ('bill_nothing', 'bill_per_service')),
    timely_filing_days       integer     NOT NULL DEFAULT 90 CHECK (timely_filing_days BETWEEN 1 AND 730),
    effective_from           date        NOT NULL,
    effective_to             date        NULL CHECK (effective_to IS NULL OR effective_to >= effective_from),
    updated_at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contracts_clinic_idx ON contracts (clinic_id, payer_id);

-- The code and rate of each billable service of a contract; time-based codes are several rows
-- of one service with minute ranges (max_minutes 0: no upper bound).
CREATE TABLE contract_codes (
    contract_id    uuid    NOT NULL REFERENCES contracts (id) ON DELETE CASCADE,
    position       integer NOT NULL,
    service        text    NOT NULL CHECK (service IN ('per_diem', 'group', 'individual', 'family', 'medication_management')),
    procedure_code text    NOT NULL,
    revenue_code   text    NOT NULL DEFAULT '',
    modifiers      text[]  NOT NULL DEFAULT '{}',
    rate_cents     bigint  NOT NULL CHECK (rate_cents >= 0),
    min_minutes    integer NOT NULL DEFAULT 0 CHECK (min_minutes >= 0),
    max_minutes    integer NOT NULL DEFAULT 0 CHECK (max_minutes >= 0),
    PRIMARY KEY (contract_id, position)
);

-- The self-pay sliding scale (network-wide): discount by household income as a percentage of
-- the federal poverty level, up to and including max_fpl_percent. Above the last tier: no discount.
CREATE TABLE sliding_scale (
    max_fpl_percent  integer PRIMARY KEY CHECK (max_fpl_percent > 0),
    discount_percent integer NOT NULL CHECK (discount_percent BETWEEN 0 AND 100)
);

-- +goose Down
DROP TABLE sliding_scale;
DROP TABLE contract_codes;
DROP TABLE contracts;
DROP TABLE payers;
