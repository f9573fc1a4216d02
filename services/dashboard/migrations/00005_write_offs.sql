-- Write-offs, from billing's BalanceWrittenOff: what billing staff gave up on a denial or an
-- underpayment, with the reason code (never the note). A write-off is a fact that never changes:
-- keyed by its id, a redelivery or replay inserts nothing. Rebuildable like every projection.

-- +goose Up
CREATE TABLE write_offs (
    write_off_id   uuid        PRIMARY KEY,
    work_item_id   uuid        NOT NULL,
    queue          text        NOT NULL,
    claim_id       uuid,
    clinic_id      uuid        NOT NULL,
    payer_id       text        NOT NULL DEFAULT '',
    amount_cents   bigint      NOT NULL,
    reason         text        NOT NULL,
    written_off_at timestamptz NOT NULL
);
CREATE INDEX write_offs_clinic ON write_offs (clinic_id, written_off_at);

-- +goose Down
DROP TABLE write_offs;
