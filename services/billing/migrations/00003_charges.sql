-- +goose Up
-- Billing's own copies of what other services decide (it never reads their tables):
-- coverages and consents from intake, attendance from scheduling. Each row keeps the event
-- that last changed it, and an older event never overwrites a newer one.

-- A patient's coverage (intake's CoverageChanged), to find the payer and member id of a claim.
CREATE TABLE coverages (
    id                      uuid        PRIMARY KEY,
    patient_id              uuid        NOT NULL,
    clinic_id               uuid        NOT NULL,
    payer_id                text        NOT NULL,
    plan                    text        NOT NULL DEFAULT '',
    member_id               text        NOT NULL DEFAULT '',
    group_number            text        NOT NULL DEFAULT '',
    subscriber_relationship text        NOT NULL DEFAULT 'self',
    effective_from          date        NOT NULL,
    effective_to            date        NULL,
    eligibility             text        NOT NULL DEFAULT 'unknown',
    -- 1 primary, 2 secondary, 3 tertiary.
    priority                integer     NOT NULL DEFAULT 1,
    source_updated_at       timestamptz NOT NULL,
    source_event_id         uuid        NOT NULL
);
CREATE INDEX coverages_patient_idx ON coverages (patient_id, clinic_id);

-- A consent version (intake's ConsentGranted / ConsentRevoked). payment: the patient allows
-- disclosure to payers for payment (42 CFR Part 2), which every claim needs.
CREATE TABLE consents (
    id              uuid        PRIMARY KEY,
    patient_id      uuid        NOT NULL,
    clinic_id       uuid        NOT NULL,
    version         integer     NOT NULL,
    payment         boolean     NOT NULL,
    effective_from  timestamptz NOT NULL,
    expires_at      timestamptz NULL,
    revoked_at      timestamptz NULL,
    -- The consent this version replaces (ConsentGranted.supersedes_consent_id): a superseded
    -- consent no longer applies, whichever of the two events arrived first.
    supersedes      uuid        NULL,
    source_event_id uuid        NOT NULL
);
CREATE INDEX consents_supersedes_idx ON consents (supersedes);
CREATE INDEX consents_patient_idx ON consents (patient_id, clinic_id);

-- The latest attendance of each appointment (scheduling's AttendanceRecorded, any version).
CREATE TABLE attendance (
    appointment_id    uuid        PRIMARY KEY,
    patient_id        uuid        NOT NULL,
    clinic_id         uuid        NOT NULL,
    enrollment_id     uuid        NOT NULL,
    program_code      text        NOT NULL DEFAULT '',
    service_type      text        NOT NULL CHECK (service_type IN ('group', 'individual', 'family', 'medication_management')),
    clinician_id      text        NOT NULL DEFAULT '',
    session_id        text        NOT NULL DEFAULT '',
    local_date        date        NOT NULL,
    starts_at         timestamptz NOT NULL,
    status            text        NOT NULL CHECK (status IN ('present', 'late', 'left_early', 'absent', 'excused')),
    minutes_attended  integer     NOT NULL CHECK (minutes_attended >= 0),
    scheduled_minutes integer     NOT NULL CHECK (scheduled_minutes >= 0),
    version           integer     NOT NULL,
    source_event_id   uuid        NOT NULL
);
CREATE INDEX attendance_day_idx ON attendance (patient_id, clinic_id, local_date);

-- A payer's prior authorization: units (or days) of a service for a patient in a date window.
CREATE TABLE authorizations (
    id                   uuid        PRIMARY KEY,
    patient_id           uuid        NOT NULL,
    clinic_id            uuid        NOT NULL,
    payer_id             text        NOT NULL REFERENCES payers (code),
    service              text        NOT NULL CHECK (service IN ('per_diem', 'group', 'individual', 'family', 'medication_management')),
    -- The payer's authorization number (REF*G1 on claims).
    number               text        NOT NULL DEFAULT '',
    authorized_units     integer     NOT NULL CHECK (authorized_units > 0),
    used_units           integer     NOT NULL DEFAULT 0 CHECK (used_units >= 0),
    starts_on            date        NOT NULL,
    ends_on              date        NOT NULL CHECK (ends_on >= starts_on),
    -- Set once the 80% / exhausted event was emitted, so each is emitted once per crossing.
    nearly_used_notified boolean     NOT NULL DEFAULT false,
    exhausted_notified   boolean     NOT NULL DEFAULT false,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX authorizations_patient_idx ON authorizations (patient_id, clinic_id, payer_id, service);

-- A charge: one billable unit. billable_unit names it ("day:<patient>:<clinic>:<date>" for a
-- per-diem day, "session:<appointment>" for a session); at most one charge per unit is not
-- void, whatever the redelivery or correction.
CREATE TABLE charges (
    id                 uuid        PRIMARY KEY,
    billable_unit      text        NOT NULL,
    patient_id         uuid        NOT NULL,
    clinic_id          uuid        NOT NULL,
    enrollment_id      uuid        NOT NULL,
    payer_id           text        NOT NULL DEFAULT '',
    contract_id        uuid        NULL REFERENCES contracts (id),
    coverage_id        uuid        NULL,
    service_date       date        NOT NULL,
    service            text        NOT NULL CHECK (service IN ('per_diem', 'group', 'individual', 'family', 'medication_management')),
    procedure_code     text        NOT NULL DEFAULT '',
    revenue_code       text        NOT NULL DEFAULT '',
    modifiers          text[]      NOT NULL DEFAULT '{}',
    units              integer     NOT NULL DEFAULT 1 CHECK (units > 0),
    minutes            integer     NOT NULL DEFAULT 0 CHECK (minutes >= 0),
    rate_cents         bigint      NOT NULL CHECK (rate_cents >= 0),
    amount_cents       bigint      NOT NULL CHECK (amount_cents >= 0),
    status             text        NOT NULL CHECK (status IN ('ready', 'held', 'submitted', 'paid', 'denied', 'void', 'patient_billed')),
    hold_reason        text        NOT NULL DEFAULT '',
    source_event_ids   uuid[]      NOT NULL,
    appointment_ids    uuid[]      NOT NULL,
    replaces_charge_id uuid        NULL REFERENCES charges (id),
    authorization_id   uuid        NULL REFERENCES authorizations (id),
    authorized_units   integer     NOT NULL DEFAULT 0,
    claim_id           uuid        NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'held') = (hold_reason <> ''))
);
CREATE UNIQUE INDEX charges_billable_unit_key ON charges (billable_unit) WHERE status <> 'void';
CREATE INDEX charges_ready_idx ON charges (clinic_id, payer_id) WHERE status = 'ready';
CREATE INDEX charges_held_idx ON charges (patient_id, clinic_id) WHERE status = 'held';
CREATE INDEX charges_patient_idx ON charges (patient_id, service_date);

-- Whether a payer's contract requires a prior authorization for what it pays (the charges of
-- a patient without one covering the day are held).
ALTER TABLE contracts ADD COLUMN requires_authorization boolean NOT NULL DEFAULT false;

CREATE INDEX charges_authorization_idx ON charges (authorization_id) WHERE authorization_id IS NOT NULL;
CREATE INDEX charges_clinic_date_idx ON charges (clinic_id, service_date, id);

-- +goose Down
ALTER TABLE contracts DROP COLUMN requires_authorization;
DROP TABLE charges;
DROP TABLE authorizations;
DROP TABLE attendance;
DROP TABLE consents;
DROP TABLE coverages;
