-- Claim facts the billing page's rates need (denial, clean-claim and net collection rates).
-- Rebuildable like every projection: `dashboard rebuild` replays them from the BILLING stream.

-- +goose Up
ALTER TABLE claims
    -- ClaimAdjudicated.contractual_cents of the newest adjudication.
    ADD COLUMN contractual_cents bigint      NOT NULL DEFAULT 0,
    -- When the newest adjudication (ClaimAdjudicated) occurred; NULL: not adjudicated yet.
    ADD COLUMN adjudicated_at    timestamptz,
    -- Some adjudication denied it, paid it partially or reversed it (never reset: order-free).
    ADD COLUMN ever_denied       boolean     NOT NULL DEFAULT false,
    -- It is a correction (ClaimSubmitted frequency 7 replacement or 8 void).
    ADD COLUMN correction        boolean     NOT NULL DEFAULT false,
    -- A correction names it (ClaimSubmitted.corrected_claim_id of another claim).
    ADD COLUMN corrected         boolean     NOT NULL DEFAULT false;

-- Rows projected before this migration: the status time of a decided claim is its adjudication
-- (contractual amounts and the other flags need `dashboard rebuild`).
UPDATE claims SET adjudicated_at = status_at WHERE status <> 'submitted';
UPDATE claims SET ever_denied = true WHERE status IN ('denied', 'partially_paid', 'reversed');

CREATE INDEX claims_adjudicated ON claims (adjudicated_at) WHERE adjudicated_at IS NOT NULL;

-- +goose Down
DROP INDEX claims_adjudicated;
ALTER TABLE claims
    DROP COLUMN corrected,
    DROP COLUMN correction,
    DROP COLUMN ever_denied,
    DROP COLUMN adjudicated_at,
    DROP COLUMN contractual_cents;
