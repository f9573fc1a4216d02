-- +goose Up
-- Cost of care delivered and patient cost estimates (docs/billing.md, "Costs and estimates").

-- The hourly cost of a clinician's time at a clinic; clinician_id '' is the clinic's default.
CREATE TABLE cost_rates (
    clinic_id         uuid        NOT NULL,
    clinician_id      text        NOT NULL DEFAULT '',
    hourly_cost_cents bigint      NOT NULL CHECK (hourly_cost_cents >= 0),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (clinic_id, clinician_id)
);

-- A fixed monthly cost of a clinic (rent, utilities...), one amount per month and label.
CREATE TABLE fixed_costs (
    clinic_id    uuid        NOT NULL,
    month        date        NOT NULL CHECK (extract(day FROM month) = 1),
    label        text        NOT NULL CHECK (label <> ''),
    amount_cents bigint      NOT NULL CHECK (amount_cents > 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (clinic_id, month, label)
);

-- The latest version of each appointment's attendance as the costs consumer saw it; the
-- delivered sessions and patient-days below are recomputed from it, so a redelivered or older
-- version changes nothing.
CREATE TABLE cost_attendance (
    appointment_id    uuid    PRIMARY KEY,
    patient_id        uuid    NOT NULL,
    clinic_id         uuid    NOT NULL,
    program_code      text    NOT NULL DEFAULT '',
    clinician_id      text    NOT NULL DEFAULT '',
    -- session_id, or the appointment id when the event had none.
    session_key       text    NOT NULL,
    local_date        date    NOT NULL,
    attended_minutes  integer NOT NULL CHECK (attended_minutes >= 0),
    scheduled_minutes integer NOT NULL CHECK (scheduled_minutes >= 0),
    version           integer NOT NULL,
    source_event_id   uuid    NOT NULL
);
CREATE INDEX cost_attendance_session_idx ON cost_attendance (session_key);
CREATE INDEX cost_attendance_day_idx ON cost_attendance (patient_id, clinic_id, local_date);

-- One session of clinician time (a group session once, whatever its number of patients).
CREATE TABLE delivered_sessions (
    session_key       text    PRIMARY KEY,
    clinic_id         uuid    NOT NULL,
    clinician_id      text    NOT NULL DEFAULT '',
    program_code      text    NOT NULL DEFAULT '',
    local_date        date    NOT NULL,
    scheduled_minutes integer NOT NULL CHECK (scheduled_minutes >= 0)
);
CREATE INDEX delivered_sessions_date_idx ON delivered_sessions (local_date, clinic_id);

-- An attended patient-day: one row per patient, clinic and day with attended minutes > 0.
CREATE TABLE patient_days (
    patient_id       uuid    NOT NULL,
    clinic_id        uuid    NOT NULL,
    local_date       date    NOT NULL,
    program_code     text    NOT NULL DEFAULT '',
    attended_minutes integer NOT NULL CHECK (attended_minutes > 0),
    PRIMARY KEY (patient_id, clinic_id, local_date)
);
CREATE INDEX patient_days_date_idx ON patient_days (local_date, clinic_id);

-- A completed episode of care (scheduling's ProgramCompleted).
CREATE TABLE completed_episodes (
    enrollment_id   uuid PRIMARY KEY,
    patient_id      uuid NOT NULL,
    clinic_id       uuid NOT NULL,
    program_code    text NOT NULL DEFAULT '',
    completed_on    date NOT NULL,
    source_event_id uuid NOT NULL
);
CREATE INDEX completed_episodes_date_idx ON completed_episodes (completed_on, clinic_id);

-- A patient cost estimate: what was asked (inputs) and the itemized answer (result), both as
-- the service's JSON; the totals are columns for queries.
CREATE TABLE estimates (
    id                  uuid        PRIMARY KEY,
    clinic_id           uuid        NOT NULL,
    payer_id            text        NOT NULL DEFAULT '',
    patient_id          uuid        NULL,
    start_date          date        NOT NULL,
    good_faith          boolean     NOT NULL,
    total_charges_cents bigint      NOT NULL CHECK (total_charges_cents >= 0),
    payer_cents         bigint      NOT NULL CHECK (payer_cents >= 0),
    patient_cents       bigint      NOT NULL CHECK (patient_cents >= 0),
    inputs              jsonb       NOT NULL,
    result              jsonb       NOT NULL,
    created_by          text        NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX estimates_patient_idx ON estimates (patient_id) WHERE patient_id IS NOT NULL;

-- +goose Down
DROP TABLE estimates;
DROP TABLE completed_episodes;
DROP TABLE patient_days;
DROP TABLE delivered_sessions;
DROP TABLE cost_attendance;
DROP TABLE fixed_costs;
DROP TABLE cost_rates;
