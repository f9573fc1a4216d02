-- +goose Up
-- The dashboard's read model: projections of the other contexts' events. Every row is keyed by
-- the entity's id and updated only by a newer fact (the event's time or version), so a
-- redelivered or late event converges to the same state; figures are counted from these rows
-- by queries, never kept as counters. `dashboard rebuild` truncates them all and replays.
-- Ids only: no names, contact details or notes of patients.

-- Clinics, from scheduling's ClinicConfigured (name and time zone) or first seen in any event.
CREATE TABLE clinics (
    clinic_id  uuid        PRIMARY KEY,
    name       text        NOT NULL DEFAULT '',
    time_zone  text        NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT '-infinity'
);

-- Tracks, from TrackConfigured.
CREATE TABLE tracks (
    track_id     uuid        PRIMARY KEY,
    clinic_id    uuid        NOT NULL,
    track_code   text        NOT NULL,
    program_code text        NOT NULL,
    capacity     int         NOT NULL,
    active       boolean     NOT NULL,
    updated_at   timestamptz NOT NULL
);

-- Enrollments: a seat (active), a place in a queue (waitlisted), or over (ended, terminal).
CREATE TABLE enrollments (
    enrollment_id uuid        PRIMARY KEY,
    clinic_id     uuid        NOT NULL,
    track_id      uuid,
    patient_id    uuid        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('active', 'waitlisted', 'ended')),
    start_date    date,
    ended_at      timestamptz,
    end_reason    text        NOT NULL DEFAULT '',
    updated_at    timestamptz NOT NULL
);
CREATE INDEX enrollments_clinic ON enrollments (clinic_id, status);

-- Referrals, from ReferralReceived and ReferralStatusChanged (either may arrive first).
CREATE TABLE referrals (
    referral_id      uuid        PRIMARY KEY,
    clinic_id        uuid        NOT NULL,
    status           text        NOT NULL,
    first_contact_at timestamptz,
    status_at        timestamptz NOT NULL
);
CREATE INDEX referrals_clinic ON referrals (clinic_id, status);

-- Admissions, from PatientAdmitted: first contact and admission times (days to admission).
CREATE TABLE admissions (
    episode_id       uuid        PRIMARY KEY,
    clinic_id        uuid        NOT NULL,
    patient_id       uuid        NOT NULL,
    first_contact_at timestamptz,
    admitted_at      timestamptz NOT NULL,
    start_date       date
);
CREATE INDEX admissions_clinic ON admissions (clinic_id, admitted_at);

-- Attendance, the latest version per appointment (recorded and corrected).
CREATE TABLE attendance (
    appointment_id    uuid PRIMARY KEY,
    clinic_id         uuid NOT NULL,
    enrollment_id     uuid,
    track_id          uuid,
    status            text NOT NULL,
    minutes_attended  int  NOT NULL,
    scheduled_minutes int  NOT NULL,
    local_date        date NOT NULL,
    version           int  NOT NULL
);
CREATE INDEX attendance_clinic_date ON attendance (clinic_id, local_date);

-- Episodes of risk: one row per enrollment and start of the risk; cleared when it ends.
-- PatientAtRisk and PatientRiskCleared meet on the same key in whichever order they arrive.
CREATE TABLE risks (
    enrollment_id uuid        NOT NULL,
    since         timestamptz NOT NULL,
    clinic_id     uuid        NOT NULL,
    patient_id    uuid        NOT NULL,
    reasons       text[]      NOT NULL DEFAULT '{}',
    cleared_at    timestamptz,
    PRIMARY KEY (enrollment_id, since)
);
CREATE INDEX risks_open ON risks (clinic_id) WHERE cleared_at IS NULL;

-- Program completions (ProgramCompleted) and discharges (PatientDischarged, with the reason).
CREATE TABLE completions (
    enrollment_id         uuid PRIMARY KEY,
    clinic_id             uuid NOT NULL,
    program_code          text NOT NULL,
    completed_on          date NOT NULL,
    weeks                 int  NOT NULL,
    weeks_meeting_minimum int  NOT NULL
);
CREATE TABLE discharges (
    episode_id     uuid PRIMARY KEY,
    clinic_id      uuid NOT NULL,
    patient_id     uuid NOT NULL,
    reason         text NOT NULL,
    start_date     date,
    discharge_date date NOT NULL
);
CREATE INDEX discharges_clinic ON discharges (clinic_id, discharge_date);

-- Charges, from ChargeCreated and ChargeStatusChanged; integer cents.
CREATE TABLE charges (
    charge_id    uuid        PRIMARY KEY,
    clinic_id    uuid        NOT NULL,
    payer_id     text        NOT NULL DEFAULT '',
    amount_cents bigint      NOT NULL DEFAULT 0,
    service_date date,
    status       text        NOT NULL,
    hold_reason  text        NOT NULL DEFAULT '',
    status_at    timestamptz NOT NULL
);
CREATE INDEX charges_clinic ON charges (clinic_id, status);

-- Claims, from ClaimSubmitted and ClaimAdjudicated.
CREATE TABLE claims (
    claim_id       uuid        PRIMARY KEY,
    clinic_id      uuid        NOT NULL,
    payer_id       text        NOT NULL DEFAULT '',
    total_cents    bigint      NOT NULL DEFAULT 0,
    paid_cents     bigint      NOT NULL DEFAULT 0,
    status         text        NOT NULL,
    submitted_at   timestamptz,
    status_at      timestamptz NOT NULL
);
CREATE INDEX claims_clinic ON claims (clinic_id, status);

-- The newest event projected from each stream (for /health); the count is the inbox's.
CREATE TABLE stream_positions (
    stream        text        PRIMARY KEY,
    last_event_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE stream_positions;
DROP TABLE claims;
DROP TABLE charges;
DROP TABLE discharges;
DROP TABLE completions;
DROP TABLE risks;
DROP TABLE attendance;
DROP TABLE admissions;
DROP TABLE referrals;
DROP TABLE enrollments;
DROP TABLE tracks;
DROP TABLE clinics;
