-- +goose Up
-- Notification's own minimal copy of how to reach a patient, taken from intake's
-- PatientAdmitted. Only what a message needs: no family name, no date of birth, no program.
CREATE TABLE recipients (
    patient_id     uuid        PRIMARY KEY,
    clinic_id      uuid        NOT NULL,
    preferred_name text        NOT NULL,
    -- Empty when intake gave no usable address: messages to it fail as invalid_address.
    email          text        NOT NULL,
    time_zone      text        NOT NULL,
    start_date     date        NOT NULL,
    -- When the copied fact happened (the event's occurred_at), so an older event never
    -- overwrites a newer one.
    updated_at     timestamptz NOT NULL
);

-- Messages to patients. A row is queued by an event and sent by the dispatcher; the
-- unique (patient_id, kind) key means a welcome is queued at most once per patient.
CREATE TABLE messages (
    id              uuid        PRIMARY KEY,
    patient_id      uuid        NOT NULL,
    clinic_id       uuid        NOT NULL,
    kind            text        NOT NULL,
    channel         text        NOT NULL,
    status          text        NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed')),
    -- W3C trace context of the event that queued the message, so the send continues its trace.
    traceparent     text        NOT NULL DEFAULT '',
    correlation_id  text        NOT NULL DEFAULT '',
    cause_event_id  text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- When the dispatcher may (next) try; while a send is in flight it is the claim's lease end.
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    attempts        integer     NOT NULL DEFAULT 0,
    -- Error class of the last failed attempt (e.g. smtp_unavailable), never provider text.
    last_error_code text        NOT NULL DEFAULT '',
    CONSTRAINT messages_dedupe UNIQUE (patient_id, kind)
);
CREATE INDEX messages_due ON messages (next_attempt_at) WHERE status = 'queued';

-- +goose Down
DROP TABLE messages;
DROP TABLE recipients;
