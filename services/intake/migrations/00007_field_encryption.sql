-- +goose Up
-- Field encryption (docs/security.md#field-encryption): dates of birth, phone numbers, e-mail
-- addresses and member ids are sealed in the application (pkg/fieldcrypt, AES-256-GCM, text
-- "v1:<key id>:<base64>", bound to table, column and row) into the *_enc columns, and the
-- values intake looks up (duplicate detection) have a keyed hash (HMAC-SHA256) in *_hash.
-- SQL cannot encrypt: this migration only adds the columns. The service encrypts the rows that
-- still hold plaintext when it starts (and `intake encrypt-fields` does it on demand), clearing
-- the plaintext columns; new rows never get plaintext. The plaintext columns stay (NULL, or ''
-- where they were NOT NULL DEFAULT '') so that the Down migration and an older binary still
-- find them.
ALTER TABLE patients
    ALTER COLUMN date_of_birth DROP NOT NULL,
    ALTER COLUMN contact_email DROP NOT NULL,
    ADD COLUMN date_of_birth_enc  text CHECK (date_of_birth_enc LIKE 'v1:%'),
    ADD COLUMN date_of_birth_hash bytea,
    ADD COLUMN contact_email_enc  text CHECK (contact_email_enc LIKE 'v1:%'),
    ADD COLUMN contact_email_hash bytea,
    ADD COLUMN phone_enc          text CHECK (phone_enc LIKE 'v1:%'),
    ADD COLUMN phone_hash         bytea,
    ADD CONSTRAINT patients_date_of_birth_given CHECK (date_of_birth IS NOT NULL OR date_of_birth_enc IS NOT NULL),
    ADD CONSTRAINT patients_contact_email_given CHECK (contact_email IS NOT NULL OR contact_email_enc IS NOT NULL);
DROP INDEX patients_dob;
DROP INDEX patients_email;
DROP INDEX patients_phone;
CREATE INDEX patients_dob_hash ON patients (date_of_birth_hash);
CREATE INDEX patients_email_hash ON patients (contact_email_hash);
CREATE INDEX patients_phone_hash ON patients (phone_hash) WHERE phone_hash IS NOT NULL;

ALTER TABLE referrals
    ADD COLUMN date_of_birth_enc  text CHECK (date_of_birth_enc LIKE 'v1:%'),
    ADD COLUMN date_of_birth_hash bytea,
    ADD COLUMN phone_enc          text CHECK (phone_enc LIKE 'v1:%'),
    ADD COLUMN phone_hash         bytea,
    ADD COLUMN email_enc          text CHECK (email_enc LIKE 'v1:%'),
    ADD COLUMN email_hash         bytea,
    DROP CONSTRAINT referrals_contact,
    ADD CONSTRAINT referrals_contact CHECK (phone IS NOT NULL OR email IS NOT NULL OR phone_enc IS NOT NULL OR email_enc IS NOT NULL);
DROP INDEX referrals_open_dob;
DROP INDEX referrals_open_phone;
DROP INDEX referrals_open_email;
CREATE INDEX referrals_open_dob_hash ON referrals (date_of_birth_hash)
    WHERE date_of_birth_hash IS NOT NULL AND status IN ('new', 'contacted', 'screened', 'assessed');
CREATE INDEX referrals_open_phone_hash ON referrals (phone_hash)
    WHERE phone_hash IS NOT NULL AND status IN ('new', 'contacted', 'screened', 'assessed');
CREATE INDEX referrals_open_email_hash ON referrals (email_hash)
    WHERE email_hash IS NOT NULL AND status IN ('new', 'contacted', 'screened', 'assessed');

-- No lookups on these: no hashes. Empty stays '' in the plaintext column and NULL here.
ALTER TABLE consents
    ADD COLUMN confidential_email_enc text CHECK (confidential_email_enc LIKE 'v1:%'),
    ADD COLUMN confidential_phone_enc text CHECK (confidential_phone_enc LIKE 'v1:%');

ALTER TABLE coverages
    ALTER COLUMN member_id DROP NOT NULL,
    ADD COLUMN member_id_enc text CHECK (member_id_enc LIKE 'v1:%'),
    ADD CONSTRAINT coverages_member_id_given CHECK (member_id IS NOT NULL OR member_id_enc IS NOT NULL);
ALTER TABLE coverage_versions
    ALTER COLUMN member_id DROP NOT NULL,
    ADD COLUMN member_id_enc text CHECK (member_id_enc LIKE 'v1:%'),
    ADD CONSTRAINT coverage_versions_member_id_given CHECK (member_id IS NOT NULL OR member_id_enc IS NOT NULL);

-- +goose Down
-- SQL cannot decrypt: going down is refused while any sealed value exists (it would be lost).
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM patients WHERE date_of_birth_enc IS NOT NULL OR contact_email_enc IS NOT NULL OR phone_enc IS NOT NULL)
        OR EXISTS (SELECT 1 FROM referrals WHERE date_of_birth_enc IS NOT NULL OR phone_enc IS NOT NULL OR email_enc IS NOT NULL)
        OR EXISTS (SELECT 1 FROM consents WHERE confidential_email_enc IS NOT NULL OR confidential_phone_enc IS NOT NULL)
        OR EXISTS (SELECT 1 FROM coverages WHERE member_id_enc IS NOT NULL)
        OR EXISTS (SELECT 1 FROM coverage_versions WHERE member_id_enc IS NOT NULL) THEN
        RAISE EXCEPTION 'intake holds encrypted fields; SQL cannot decrypt them, so migration 00007 cannot be undone';
    END IF;
END
$$;
-- +goose StatementEnd
ALTER TABLE coverage_versions
    DROP CONSTRAINT coverage_versions_member_id_given,
    DROP COLUMN member_id_enc,
    ALTER COLUMN member_id SET NOT NULL;
ALTER TABLE coverages
    DROP CONSTRAINT coverages_member_id_given,
    DROP COLUMN member_id_enc,
    ALTER COLUMN member_id SET NOT NULL;
ALTER TABLE consents
    DROP COLUMN confidential_phone_enc,
    DROP COLUMN confidential_email_enc;
DROP INDEX referrals_open_email_hash;
DROP INDEX referrals_open_phone_hash;
DROP INDEX referrals_open_dob_hash;
ALTER TABLE referrals
    DROP CONSTRAINT referrals_contact,
    ADD CONSTRAINT referrals_contact CHECK (phone IS NOT NULL OR email IS NOT NULL),
    DROP COLUMN email_hash,
    DROP COLUMN email_enc,
    DROP COLUMN phone_hash,
    DROP COLUMN phone_enc,
    DROP COLUMN date_of_birth_hash,
    DROP COLUMN date_of_birth_enc;
CREATE INDEX referrals_open_dob ON referrals (date_of_birth)
    WHERE date_of_birth IS NOT NULL AND status IN ('new', 'contacted', 'screened', 'assessed');
CREATE INDEX referrals_open_phone ON referrals (phone)
    WHERE phone IS NOT NULL AND status IN ('new', 'contacted', 'screened', 'assessed');
CREATE INDEX referrals_open_email ON referrals (lower(email))
    WHERE email IS NOT NULL AND status IN ('new', 'contacted', 'screened', 'assessed');
DROP INDEX patients_phone_hash;
DROP INDEX patients_email_hash;
DROP INDEX patients_dob_hash;
ALTER TABLE patients
    DROP CONSTRAINT patients_contact_email_given,
    DROP CONSTRAINT patients_date_of_birth_given,
    DROP COLUMN phone_hash,
    DROP COLUMN phone_enc,
    DROP COLUMN contact_email_hash,
    DROP COLUMN contact_email_enc,
    DROP COLUMN date_of_birth_hash,
    DROP COLUMN date_of_birth_enc,
    ALTER COLUMN contact_email SET NOT NULL,
    ALTER COLUMN date_of_birth SET NOT NULL;
CREATE INDEX patients_dob ON patients (date_of_birth);
CREATE INDEX patients_email ON patients (lower(contact_email));
CREATE INDEX patients_phone ON patients (phone) WHERE phone IS NOT NULL;
