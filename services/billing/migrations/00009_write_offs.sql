-- +goose Up
-- What write-offs took off a work item so far (the sum of its write_offs rows, kept on the row
-- that WriteOff locks): what is left on the item is amount_cents - written_off_cents. Only
-- denials and underpayments are written off, never beyond their amount.
ALTER TABLE work_items ADD COLUMN written_off_cents bigint NOT NULL DEFAULT 0;
ALTER TABLE work_items ADD CONSTRAINT work_items_written_off_check
    CHECK (written_off_cents = 0 OR (queue IN ('denial', 'underpayment') AND written_off_cents > 0
        AND written_off_cents <= amount_cents));

-- A write-off: an amount billing gives up on, from a denial or underpayment item, with a
-- reason code, a note for colleagues (never in events or logs) and who decided.
-- remittance_claim_id is the posting the item came from: aging takes a write-off off its
-- claim's outstanding amount only while that posting stands (not reversed or superseded).
-- idempotency_key (empty: none) is the caller's key; the stored answer is in idempotency_keys.
CREATE TABLE write_offs (
    id                  uuid        PRIMARY KEY,
    work_item_id        uuid        NOT NULL REFERENCES work_items (id),
    queue               text        NOT NULL CHECK (queue IN ('denial', 'underpayment')),
    claim_id            uuid        NOT NULL REFERENCES claims (id),
    clinic_id           uuid        NOT NULL,
    payer_id            text        NOT NULL,
    remittance_claim_id uuid        NOT NULL REFERENCES remittance_claims (id),
    amount_cents        bigint      NOT NULL CHECK (amount_cents > 0),
    reason              text        NOT NULL CHECK (reason IN ('small_balance', 'timely_filing', 'non_covered',
                                        'authorization', 'uncollectible', 'administrative', 'charity_care')),
    note                text        NOT NULL DEFAULT '' CHECK (char_length(note) <= 500),
    written_off_by      text        NOT NULL,
    idempotency_key     text        NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL
);
CREATE INDEX write_offs_item_idx ON write_offs (work_item_id);
CREATE INDEX write_offs_claim_idx ON write_offs (claim_id);
CREATE INDEX write_offs_clinic_idx ON write_offs (clinic_id, created_at DESC);
CREATE UNIQUE INDEX write_offs_idempotency_idx ON write_offs (written_off_by, idempotency_key)
    WHERE idempotency_key <> '';

-- Idempotency keys of WriteOff (pkg/idempotency), scoped per caller (token subject).
-- request_hash covers the procedure and the request without its key; response is the first
-- call's response.
CREATE TABLE idempotency_keys (
    subject      text        NOT NULL,
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    response     bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE write_offs;
ALTER TABLE work_items DROP CONSTRAINT work_items_written_off_check;
ALTER TABLE work_items DROP COLUMN written_off_cents;
