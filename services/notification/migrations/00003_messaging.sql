-- +goose Up
-- Messages become general: patient messages (welcome, reminders, notices, check-ins,
-- statements) and staff alerts, on email or SMS, scheduled for a time, deduplicated by a key
-- naming the trigger, its subject and the kind: one message per (trigger, subject, kind),
-- whatever the redelivery.
ALTER TABLE messages DROP CONSTRAINT messages_dedupe;
ALTER TABLE messages DROP CONSTRAINT messages_status_check;
ALTER TABLE messages
    ALTER COLUMN patient_id DROP NOT NULL,
    ADD COLUMN dedupe_key text,
    -- patient: to the patient (address resolved when sent, from the contact copy and consent);
    -- staff: to a team address of the clinic (clinic_settings) or the network.
    ADD COLUMN audience text NOT NULL DEFAULT 'patient' CHECK (audience IN ('patient', 'staff')),
    -- staff messages: which team (care_team, billing, operations).
    ADD COLUMN team text NOT NULL DEFAULT '',
    -- What the message is about: an appointment id, a statement id, a charge id, ... ('' none).
    ADD COLUMN subject_ref text NOT NULL DEFAULT '',
    -- The data a template renders (appointment local date and time, amounts, counts). No
    -- clinical content; never logged.
    ADD COLUMN payload jsonb NOT NULL DEFAULT '{}',
    -- When the message should go (the dispatcher also uses next_attempt_at for retries).
    ADD COLUMN due_at timestamptz NOT NULL DEFAULT now(),
    -- Reminders are pointless after this (the appointment's start): skipped, not sent late.
    ADD COLUMN expires_at timestamptz NULL,
    -- Why a message was cancelled, skipped or failed (a short code, never provider text).
    ADD COLUMN status_reason text NOT NULL DEFAULT '',
    -- The address used (set when sent: email or E.164), kept for delivery tracking.
    ADD COLUMN sent_to text NOT NULL DEFAULT '',
    -- The provider's id (SMS), for delivery status callbacks.
    ADD COLUMN provider_message_id text NOT NULL DEFAULT '',
    ADD COLUMN delivered_at timestamptz NULL,
    ADD COLUMN template_version integer NOT NULL DEFAULT 0,
    ADD COLUMN locale text NOT NULL DEFAULT '';
UPDATE messages SET dedupe_key = kind || ':' || patient_id::text;
ALTER TABLE messages
    ALTER COLUMN dedupe_key SET NOT NULL,
    ADD CONSTRAINT messages_dedupe_key UNIQUE (dedupe_key),
    ADD CONSTRAINT messages_status_check
        CHECK (status IN ('queued', 'sent', 'delivered', 'failed', 'cancelled', 'skipped')),
    ADD CONSTRAINT messages_channel_check CHECK (channel IN ('email', 'sms')),
    ADD CONSTRAINT messages_patient_audience CHECK (audience = 'staff' OR patient_id IS NOT NULL);
CREATE INDEX messages_patient_idx ON messages (patient_id, created_at DESC);
CREATE INDEX messages_subject_idx ON messages (subject_ref) WHERE status = 'queued';
CREATE UNIQUE INDEX messages_provider_idx ON messages (provider_message_id) WHERE provider_message_id <> '';

-- The patient's communication preferences, from intake's consent events (the latest version).
CREATE TABLE preferences (
    patient_id         uuid        PRIMARY KEY,
    clinic_id          uuid        NOT NULL,
    consent_id         uuid        NOT NULL,
    version            integer     NOT NULL,
    -- Opted-in channels: email, sms.
    channels           text[]      NOT NULL DEFAULT '{}',
    -- Confidential-communication address and number: used instead of the usual ones.
    confidential_email text        NOT NULL DEFAULT '',
    confidential_phone text        NOT NULL DEFAULT '',
    -- Quiet hours in the patient's time zone ("HH:MM"; empty: none).
    quiet_start        text        NOT NULL DEFAULT '',
    quiet_end          text        NOT NULL DEFAULT '',
    time_zone          text        NOT NULL DEFAULT '',
    language           text        NOT NULL DEFAULT 'en',
    revoked            boolean     NOT NULL DEFAULT false,
    updated_at         timestamptz NOT NULL
);

-- Text opt-outs by number (inbound STOP / START through the provider's webhook).
CREATE TABLE sms_optouts (
    phone      text        PRIMARY KEY,
    opted_out  boolean     NOT NULL,
    updated_at timestamptz NOT NULL
);

-- Notification's copy of appointments (scheduling's events), for reminders and the welcome's
-- first week. version orders the copies: a later event wins.
CREATE TABLE appointments (
    appointment_id uuid        PRIMARY KEY,
    patient_id     uuid        NOT NULL,
    clinic_id      uuid        NOT NULL,
    local_date     date        NOT NULL,
    start_time     text        NOT NULL,
    end_time       text        NOT NULL,
    starts_at      timestamptz NOT NULL,
    time_zone      text        NOT NULL,
    status         text        NOT NULL CHECK (status IN ('scheduled', 'cancelled')),
    updated_at     timestamptz NOT NULL
);
CREATE INDEX appointments_patient_idx ON appointments (patient_id, starts_at);

-- Per-clinic settings (the defaults apply to a clinic without a row).
CREATE TABLE clinic_settings (
    clinic_id                uuid        PRIMARY KEY,
    -- Minutes before the appointment each reminder goes, e.g. {1440,120}.
    reminder_offsets_minutes integer[]   NOT NULL DEFAULT '{1440,120}',
    -- The clinic's contact number, in every text (TCPA).
    contact_phone            text        NOT NULL DEFAULT '',
    -- Staff alert addresses.
    care_team_email          text        NOT NULL DEFAULT '',
    billing_email            text        NOT NULL DEFAULT '',
    updated_at               timestamptz NOT NULL DEFAULT now()
);

-- Message templates: versioned, per clinic (clinic_id NULL: the network default), per kind,
-- channel and locale. The newest active version applies.
CREATE TABLE templates (
    id         uuid        PRIMARY KEY,
    clinic_id  uuid        NULL,
    kind       text        NOT NULL,
    channel    text        NOT NULL CHECK (channel IN ('email', 'sms')),
    locale     text        NOT NULL,
    version    integer     NOT NULL CHECK (version > 0),
    subject    text        NOT NULL DEFAULT '',
    body       text        NOT NULL,
    created_by text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX templates_version_key ON templates (coalesce(clinic_id, '00000000-0000-0000-0000-000000000000'::uuid), kind, channel, locale, version);

-- +goose Down
DROP TABLE templates;
DROP TABLE clinic_settings;
DROP TABLE appointments;
DROP TABLE sms_optouts;
DROP TABLE preferences;
DROP INDEX messages_provider_idx;
DROP INDEX messages_subject_idx;
DROP INDEX messages_patient_idx;
DELETE FROM messages WHERE audience = 'staff' OR channel <> 'email' OR status NOT IN ('queued', 'sent', 'failed');
ALTER TABLE messages
    DROP CONSTRAINT messages_patient_audience,
    DROP CONSTRAINT messages_channel_check,
    DROP CONSTRAINT messages_status_check,
    DROP CONSTRAINT messages_dedupe_key,
    DROP COLUMN locale, DROP COLUMN template_version, DROP COLUMN delivered_at,
    DROP COLUMN provider_message_id, DROP COLUMN sent_to, DROP COLUMN status_reason,
    DROP COLUMN expires_at, DROP COLUMN due_at, DROP COLUMN payload, DROP COLUMN subject_ref,
    DROP COLUMN team, DROP COLUMN audience, DROP COLUMN dedupe_key,
    ALTER COLUMN patient_id SET NOT NULL,
    ADD CONSTRAINT messages_status_check CHECK (status IN ('queued', 'sent', 'failed')),
    ADD CONSTRAINT messages_dedupe UNIQUE (patient_id, kind);
