-- +goose Up
-- The referral queue: first contacts and referrals, from "new" to a decision (admitted or
-- referred out) or "closed". Contact details are optional one by one, but a referral needs a
-- phone number or an email address to be worked. Status codes and legal moves are in
-- internal/domain/referral.go; refer-out details live on the referral (one decision each).
CREATE TABLE referrals (
    id                  uuid        PRIMARY KEY,
    clinic_id           uuid        NOT NULL REFERENCES clinics (id),
    source              text        NOT NULL CHECK (source IN
                            ('self', 'hospital', 'detox_unit', 'court', 'employer', 'family', 'other_clinic', 'other')),
    given_name          text        NOT NULL CHECK (given_name <> ''),
    family_name         text        NOT NULL CHECK (family_name <> ''),
    date_of_birth       date,                                   -- NULL: not given at first contact
    phone               text        CHECK (phone <> ''),        -- E.164; NULL: not given
    email               text        CHECK (email <> ''),        -- NULL: not given
    preferred_track     text        CHECK (preferred_track IN ('day', 'evening')), -- NULL: no preference
    notes               text        NOT NULL DEFAULT '',
    first_contact_at    timestamptz NOT NULL,                   -- days-to-admission KPI starts here
    status              text        NOT NULL DEFAULT 'new' CHECK (status IN
                            ('new', 'contacted', 'screened', 'assessed', 'admitted', 'referred_out', 'closed')),
    patient_id          uuid        REFERENCES patients (id),   -- set when admitted
    referred_out_level  text,                                   -- level code of the current ASAM edition
    referred_out_to     text,
    referred_out_reason text,
    created_by          text        NOT NULL,                   -- token subject
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    CONSTRAINT referrals_contact CHECK (phone IS NOT NULL OR email IS NOT NULL),
    CONSTRAINT referrals_admitted_patient CHECK ((status = 'admitted') = (patient_id IS NOT NULL)),
    CONSTRAINT referrals_referred_out CHECK ((status = 'referred_out') = (referred_out_level IS NOT NULL)
        AND (referred_out_level IS NULL) = (referred_out_to IS NULL)
        AND (referred_out_level IS NULL) = (referred_out_reason IS NULL))
);
-- The queue listing: filter by clinic and status, oldest first contact first, keyset on (first_contact_at, id).
CREATE INDEX referrals_queue ON referrals (clinic_id, status, first_contact_at, id);
-- Duplicate candidates among open referrals (see domain.MatchOn for the exact rules).
CREATE INDEX referrals_open_dob ON referrals (date_of_birth)
    WHERE date_of_birth IS NOT NULL AND status IN ('new', 'contacted', 'screened', 'assessed');
CREATE INDEX referrals_open_phone ON referrals (phone)
    WHERE phone IS NOT NULL AND status IN ('new', 'contacted', 'screened', 'assessed');
CREATE INDEX referrals_open_email ON referrals (lower(email))
    WHERE email IS NOT NULL AND status IN ('new', 'contacted', 'screened', 'assessed');
-- Duplicate candidates among patients.
CREATE INDEX patients_dob ON patients (date_of_birth);
CREATE INDEX patients_email ON patients (lower(contact_email));

-- Possible duplicates found when a referral was created: flagged, never merged. Each pair is
-- stored once, on the newer referral, and read from both sides; other_clinic_id lets a reader
-- see only the records of clinics they may see.
CREATE TABLE referral_duplicates (
    referral_id     uuid   NOT NULL REFERENCES referrals (id),
    clinic_id       uuid   NOT NULL REFERENCES clinics (id),
    kind            text   NOT NULL CHECK (kind IN ('referral', 'patient')),
    other_id        uuid   NOT NULL,
    other_clinic_id uuid   NOT NULL REFERENCES clinics (id),
    matched_on      text[] NOT NULL CHECK (cardinality(matched_on) > 0
                        AND matched_on <@ ARRAY['name_and_date_of_birth', 'phone', 'email']),
    PRIMARY KEY (referral_id, kind, other_id)
);
CREATE INDEX referral_duplicates_other ON referral_duplicates (other_id) WHERE kind = 'referral';

-- Every status a referral took, with who moved it and why (from_status is NULL at creation).
CREATE TABLE referral_status_history (
    id          uuid        PRIMARY KEY,
    referral_id uuid        NOT NULL REFERENCES referrals (id),
    clinic_id   uuid        NOT NULL REFERENCES clinics (id),
    from_status text        CHECK (from_status IN ('new', 'contacted', 'screened', 'assessed')),
    to_status   text        NOT NULL CHECK (to_status IN
                    ('new', 'contacted', 'screened', 'assessed', 'admitted', 'referred_out', 'closed')),
    reason      text        NOT NULL DEFAULT '',
    changed_by  text        NOT NULL,
    changed_at  timestamptz NOT NULL
);
CREATE INDEX referral_status_history_referral ON referral_status_history (referral_id, changed_at);

-- ASAM multidimensional assessments. ratings[i] and dimension_notes[i] are dimension i's (1-based,
-- as the dimensions are numbered). The rule set's recommendation and the clinician's override
-- (with its required reason) are both kept; final_level is the one that counts.
CREATE TABLE assessments (
    id                     uuid        PRIMARY KEY,
    referral_id            uuid        NOT NULL REFERENCES referrals (id),
    clinic_id              uuid        NOT NULL REFERENCES clinics (id),
    edition                text        NOT NULL CHECK (edition <> ''),
    population             text        NOT NULL CHECK (population IN ('adult', 'adolescent')),
    ratings                smallint[]  NOT NULL CHECK (cardinality(ratings) = 6 AND 0 <= ALL (ratings) AND 4 >= ALL (ratings)),
    dimension_notes        text[]      NOT NULL CHECK (cardinality(dimension_notes) = 6),
    withdrawal             text        NOT NULL CHECK (withdrawal IN ('no_detox_needed', 'detox_completed', 'detox_needed')),
    co_occurring           text[]      NOT NULL DEFAULT '{}' CHECK (co_occurring <@ ARRAY
                               ['depression', 'anxiety', 'ptsd', 'bipolar', 'psychosis', 'suicide_risk', 'other']),
    recommended_level      text        NOT NULL CHECK (recommended_level <> ''),
    recommendation_reasons text[]      NOT NULL DEFAULT '{}',
    override_level         text,
    override_reason        text,
    final_level            text        NOT NULL,
    assessed_by            text        NOT NULL,
    assessed_at            timestamptz NOT NULL,
    CONSTRAINT assessments_override_reason CHECK ((override_level IS NULL) = (override_reason IS NULL)),
    CONSTRAINT assessments_final_level CHECK (final_level = COALESCE(override_level, recommended_level))
);
CREATE INDEX assessments_referral ON assessments (referral_id, assessed_at DESC);

-- What an episode came from: the referral it decided (NULL for a direct admission), the
-- program, the first contact (the admission time for a direct admission) and the assessed
-- level of care (NULL for a direct admission).
ALTER TABLE episodes
    ADD COLUMN referral_id      uuid REFERENCES referrals (id),
    ADD COLUMN program          text NOT NULL DEFAULT 'adult-iop' CHECK (program <> ''),
    ADD COLUMN first_contact_at timestamptz,
    ADD COLUMN level_of_care    text;
UPDATE episodes SET first_contact_at = admitted_at;
ALTER TABLE episodes ALTER COLUMN first_contact_at SET NOT NULL;
CREATE UNIQUE INDEX episodes_referral ON episodes (referral_id) WHERE referral_id IS NOT NULL;

-- +goose Down
DROP INDEX episodes_referral;
ALTER TABLE episodes
    DROP COLUMN level_of_care,
    DROP COLUMN first_contact_at,
    DROP COLUMN program,
    DROP COLUMN referral_id;
DROP TABLE assessments;
DROP TABLE referral_status_history;
DROP TABLE referral_duplicates;
DROP INDEX patients_email;
DROP INDEX patients_dob;
DROP TABLE referrals;
