-- +goose Up
-- Consents (42 CFR Part 2) and insurance coverage. Both hang off a patient; consent and
-- coverage changes for one patient are serialised by locking the patient's row.

-- One version of a patient's consent and communication preferences. Versions are 1, 2, 3...
-- per patient; a new version supersedes the active one in the same transaction, so at most one
-- is active. Rows are never deleted: superseded and revoked versions are the record of what the
-- patient agreed to and when.
CREATE TABLE consents (
    id                      uuid        PRIMARY KEY,
    patient_id              uuid        NOT NULL REFERENCES patients (id),
    clinic_id               uuid        NOT NULL REFERENCES clinics (id),
    version                 int         NOT NULL CHECK (version >= 1),
    scopes                  text[]      NOT NULL CHECK (cardinality(scopes) >= 1
                                            AND scopes <@ ARRAY['treatment', 'payment', 'operations', 'named_recipients']),
    named_recipients        jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(named_recipients) = 'array'),
    channels                text[]      NOT NULL DEFAULT '{}' CHECK (channels <@ ARRAY['email', 'sms']),
    confidential_email      text        NOT NULL DEFAULT '',
    confidential_phone      text        NOT NULL DEFAULT '',
    -- Patient-local "HH:MM"; both NULL when there are no quiet hours. The window may wrap
    -- midnight (21:00 to 08:00); start = end would be empty or everything, so it is refused.
    quiet_start             text        CHECK (quiet_start ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'),
    quiet_end               text        CHECK (quiet_end ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'),
    language                text        NOT NULL CHECK (language IN ('en', 'es')),
    effective_from          timestamptz NOT NULL,
    expires_at              timestamptz, -- NULL: until revoked
    status                  text        NOT NULL CHECK (status IN ('active', 'superseded', 'revoked')),
    supersedes_id           uuid        REFERENCES consents (id),
    revoked_at              timestamptz, -- when the revocation was recorded
    revocation_effective_at timestamptz, -- when the consent stops applying
    revocation_reason       text        NOT NULL DEFAULT '',
    recorded_by             text        NOT NULL,
    revoked_by              text        NOT NULL DEFAULT '',
    created_at              timestamptz NOT NULL,
    UNIQUE (patient_id, version),
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL)),
    CHECK (quiet_start <> quiet_end),
    CHECK (expires_at IS NULL OR expires_at > effective_from),
    CHECK ((status = 'revoked') = (revoked_at IS NOT NULL)),
    CHECK ((revoked_at IS NULL) = (revocation_effective_at IS NULL)),
    CHECK (revocation_effective_at IS NULL OR revocation_effective_at >= effective_from)
);
-- At most one active consent per patient.
CREATE UNIQUE INDEX consents_one_active ON consents (patient_id) WHERE status = 'active';
CREATE INDEX consents_clinic ON consents (clinic_id);

-- A patient's insurance coverage as it is now; every state it has had is kept in
-- coverage_versions (version 1 is the coverage as added). Eligibility is entered by staff.
-- effective_to is the last covered day (inclusive); NULL means open-ended.
CREATE TABLE coverages (
    id                      uuid        PRIMARY KEY,
    patient_id              uuid        NOT NULL REFERENCES patients (id),
    clinic_id               uuid        NOT NULL REFERENCES clinics (id),
    payer_id                text        NOT NULL CHECK (payer_id ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    plan                    text        NOT NULL DEFAULT '',
    member_id               text        NOT NULL CHECK (member_id <> ''),
    group_number            text        NOT NULL DEFAULT '',
    subscriber_relationship text        NOT NULL CHECK (subscriber_relationship IN ('self', 'spouse', 'child', 'other')),
    effective_from          date        NOT NULL,
    effective_to            date        CHECK (effective_to >= effective_from),
    eligibility             text        NOT NULL CHECK (eligibility IN ('unverified', 'eligible', 'ineligible')),
    priority                text        NOT NULL CHECK (priority IN ('primary', 'secondary', 'tertiary')),
    version                 int         NOT NULL CHECK (version >= 1),
    updated_at              timestamptz NOT NULL,
    updated_by              text        NOT NULL,
    created_at              timestamptz NOT NULL
);
CREATE INDEX coverages_patient ON coverages (patient_id);
CREATE INDEX coverages_clinic ON coverages (clinic_id);

-- Every state of every coverage, append-only: a row per add or change, written in the same
-- transaction as the coverages row (whose version it repeats).
CREATE TABLE coverage_versions (
    coverage_id             uuid        NOT NULL REFERENCES coverages (id),
    version                 int         NOT NULL CHECK (version >= 1),
    patient_id              uuid        NOT NULL,
    clinic_id               uuid        NOT NULL,
    payer_id                text        NOT NULL,
    plan                    text        NOT NULL,
    member_id               text        NOT NULL,
    group_number            text        NOT NULL,
    subscriber_relationship text        NOT NULL,
    effective_from          date        NOT NULL,
    effective_to            date,
    eligibility             text        NOT NULL,
    priority                text        NOT NULL,
    changed_at              timestamptz NOT NULL,
    changed_by              text        NOT NULL,
    PRIMARY KEY (coverage_id, version)
);

-- +goose Down
DROP TABLE coverage_versions;
DROP TABLE coverages;
DROP TABLE consents;
