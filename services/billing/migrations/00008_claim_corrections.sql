-- +goose Up
-- Corrections after a claim went out: a claim whose line's charge was voided (replaced or no
-- longer billable) is corrected by one claim of the same payer, a replacement (frequency 7,
-- every line the claim should now have) or a void (frequency 8, its lines as sent). The
-- original names its correction and is then 'replaced' or 'voided'; it is never corrected twice.
ALTER TABLE claims ADD COLUMN corrected_by_claim_id uuid NULL UNIQUE REFERENCES claims (id);
ALTER TABLE claims DROP CONSTRAINT claims_status_check;
ALTER TABLE claims ADD CONSTRAINT claims_status_check
    CHECK (status IN ('submitted', 'paid', 'partially_paid', 'denied', 'reversed', 'replaced', 'voided'));
-- The claims still to be corrected are found through their voided lines' charges, and the
-- charge that now bills a voided one's unit through its billable unit.
CREATE INDEX charges_void_unit_idx ON charges (billable_unit) WHERE status = 'void';
CREATE INDEX charges_replaces_idx ON charges (replaces_charge_id) WHERE replaces_charge_id IS NOT NULL;

-- +goose Down
DROP INDEX charges_replaces_idx;
DROP INDEX charges_void_unit_idx;
ALTER TABLE claims DROP CONSTRAINT claims_status_check;
UPDATE claims SET status = 'submitted' WHERE status IN ('replaced', 'voided');
ALTER TABLE claims ADD CONSTRAINT claims_status_check
    CHECK (status IN ('submitted', 'paid', 'partially_paid', 'denied', 'reversed'));
ALTER TABLE claims DROP COLUMN corrected_by_claim_id;
