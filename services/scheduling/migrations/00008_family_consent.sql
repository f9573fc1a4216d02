-- +goose Up
-- Scheduling's copy of each patient's latest consent at a clinic, as far as family sessions
-- go (intake's ConsentGranted and ConsentRevoked). A newer version replaces an older one; an
-- older version arriving late is ignored. Family sessions are booked while the latest
-- version names recipients and is neither revoked nor expired.
CREATE TABLE family_consents (
    patient_id        uuid        NOT NULL,
    clinic_id         uuid        NOT NULL,
    consent_id        uuid        NOT NULL,
    version           int         NOT NULL CHECK (version > 0),
    named_recipients  bool        NOT NULL,
    effective_from    timestamptz NOT NULL,
    expires_at        timestamptz,
    revoked_at        timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, clinic_id)
);

-- +goose Down
DROP TABLE family_consents;
