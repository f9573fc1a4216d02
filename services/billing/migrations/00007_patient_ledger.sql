-- +goose Up
-- Self-pay care is owed by the patient: a charge billed to the patient (status patient_billed)
-- posts to the patient's account, and its void takes it back. charge_id names the charge.
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check
    CHECK (kind IN ('patient_responsibility', 'payment', 'adjustment', 'self_pay_charge'));
ALTER TABLE ledger_entries ADD COLUMN charge_id uuid NULL REFERENCES charges (id);

-- The statement cycle looks for accounts with activity since their last statement.
CREATE INDEX statements_account_latest_idx ON statements (account_id, issued_at DESC);

-- +goose Down
DROP INDEX statements_account_latest_idx;
DELETE FROM ledger_entries WHERE kind = 'self_pay_charge';
ALTER TABLE ledger_entries DROP COLUMN charge_id;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check
    CHECK (kind IN ('patient_responsibility', 'payment', 'adjustment'));
