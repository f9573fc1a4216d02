-- +goose Up
-- Field encryption (docs/security.md#field-encryption), as in intake: the patients' e-mail
-- addresses and phone numbers (the contact copy, the consent's confidential ones, and the
-- address a message went to) are sealed in the application (pkg/fieldcrypt, AES-256-GCM, text
-- "v1:<key id>:<base64>", bound to table, column and row) into the *_enc columns; the numbers
-- a text opt-out is checked against have a keyed hash (HMAC-SHA256) in *_hash, and the
-- opt-outs themselves (STOP / START) are looked up by that hash (the number sealed beside it). SQL cannot encrypt: this
-- migration only adds the columns. The service encrypts the rows that still hold plaintext
-- when it starts (and `notification encrypt-fields` does it on demand), clearing the plaintext
-- columns to '' (their NOT NULL or "known" meaning stays: '' with no sealed value is still "no
-- address"); new rows never get plaintext.
ALTER TABLE recipients
    ADD COLUMN email_enc  text CHECK (email_enc LIKE 'v1:%'),
    ADD COLUMN phone_enc  text CHECK (phone_enc LIKE 'v1:%'),
    ADD COLUMN phone_hash bytea;

ALTER TABLE preferences
    ADD COLUMN confidential_email_enc  text CHECK (confidential_email_enc LIKE 'v1:%'),
    ADD COLUMN confidential_phone_enc  text CHECK (confidential_phone_enc LIKE 'v1:%'),
    ADD COLUMN confidential_phone_hash bytea;

ALTER TABLE messages
    ADD COLUMN sent_to_enc text CHECK (sent_to_enc LIKE 'v1:%');

-- An opt-out is kept by the keyed hash of the number and the number sealed (phone NULL);
-- phone is what an older binary wrote, until the encryption pass turns it into those.
ALTER TABLE sms_optouts
    DROP CONSTRAINT sms_optouts_pkey,
    ALTER COLUMN phone DROP NOT NULL,
    ADD COLUMN phone_enc text CHECK (phone_enc LIKE 'v1:%'),
    ADD COLUMN phone_hash bytea,
    ADD CONSTRAINT sms_optouts_phone_key UNIQUE (phone),
    ADD CONSTRAINT sms_optouts_phone_hash_key UNIQUE (phone_hash),
    ADD CONSTRAINT sms_optouts_number_given CHECK (phone IS NOT NULL OR phone_hash IS NOT NULL);

-- +goose Down
-- SQL cannot decrypt, nor undo a hash: going down is refused while any exists (it would be lost).
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM recipients WHERE email_enc IS NOT NULL OR phone_enc IS NOT NULL)
        OR EXISTS (SELECT 1 FROM preferences WHERE confidential_email_enc IS NOT NULL OR confidential_phone_enc IS NOT NULL)
        OR EXISTS (SELECT 1 FROM messages WHERE sent_to_enc IS NOT NULL)
        OR EXISTS (SELECT 1 FROM sms_optouts WHERE phone IS NULL) THEN
        RAISE EXCEPTION 'notification holds encrypted fields; SQL cannot decrypt them, so migration 00004 cannot be undone';
    END IF;
END
$$;
-- +goose StatementEnd
ALTER TABLE sms_optouts
    DROP CONSTRAINT sms_optouts_number_given,
    DROP CONSTRAINT sms_optouts_phone_hash_key,
    DROP CONSTRAINT sms_optouts_phone_key,
    DROP COLUMN phone_hash,
    DROP COLUMN phone_enc,
    ALTER COLUMN phone SET NOT NULL,
    ADD PRIMARY KEY (phone);
ALTER TABLE messages DROP COLUMN sent_to_enc;
ALTER TABLE preferences
    DROP COLUMN confidential_phone_hash,
    DROP COLUMN confidential_phone_enc,
    DROP COLUMN confidential_email_enc;
ALTER TABLE recipients
    DROP COLUMN phone_hash,
    DROP COLUMN phone_enc,
    DROP COLUMN email_enc;
