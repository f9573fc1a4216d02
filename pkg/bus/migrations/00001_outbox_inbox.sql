-- +goose Up
-- The transactional outbox: events written in the same transaction as the state change that
-- caused them, published by the relay in commit order (txid, then seq), kept after publishing
-- so that they can be re-published.
CREATE TABLE outbox (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    txid         xid8        NOT NULL DEFAULT pg_current_xact_id(),
    subject      text        NOT NULL,
    headers      jsonb       NOT NULL DEFAULT '{}',
    payload      bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (txid, seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;

-- The inbox: one row per (consumer, event) applied, written in the consumer's transaction, so a
-- redelivered event is recognised and skipped whatever JetStream's duplicate window says.
CREATE TABLE inbox (
    consumer    text        NOT NULL,
    event_id    uuid        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- +goose Down
DROP TABLE inbox;
DROP TABLE outbox;
