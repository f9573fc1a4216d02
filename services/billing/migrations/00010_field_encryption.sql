-- +goose Up
-- Field encryption (docs/security.md#field-encryption), as in intake: the date of birth of
-- patient_identities and the member id of coverages are sealed in the application
-- (pkg/fieldcrypt, AES-256-GCM, text "v1:<key id>:<base64>", bound to table, column and row)
-- into the *_enc columns. billing looks neither up, so there are no hashes. SQL cannot
-- encrypt: this migration only adds the columns; the service encrypts the rows that still hold
-- plaintext when it starts (and `billing encrypt-fields` does it on demand), clearing the
-- plaintext columns (NULL for the date, '' for the NOT NULL DEFAULT '' member id).
ALTER TABLE patient_identities
    ALTER COLUMN date_of_birth DROP NOT NULL,
    ADD COLUMN date_of_birth_enc text CHECK (date_of_birth_enc LIKE 'v1:%'),
    ADD CONSTRAINT patient_identities_date_of_birth_given CHECK (date_of_birth IS NOT NULL OR date_of_birth_enc IS NOT NULL);

ALTER TABLE coverages
    ADD COLUMN member_id_enc text CHECK (member_id_enc LIKE 'v1:%');

-- +goose Down
-- SQL cannot decrypt: going down is refused while any sealed value exists (it would be lost).
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM patient_identities WHERE date_of_birth_enc IS NOT NULL)
        OR EXISTS (SELECT 1 FROM coverages WHERE member_id_enc IS NOT NULL) THEN
        RAISE EXCEPTION 'billing holds encrypted fields; SQL cannot decrypt them, so migration 00010 cannot be undone';
    END IF;
END
$$;
-- +goose StatementEnd
ALTER TABLE coverages DROP COLUMN member_id_enc;
ALTER TABLE patient_identities
    DROP CONSTRAINT patient_identities_date_of_birth_given,
    DROP COLUMN date_of_birth_enc,
    ALTER COLUMN date_of_birth SET NOT NULL;
