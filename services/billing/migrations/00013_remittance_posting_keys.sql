-- +goose Up
-- Posting an 835 writes one remittance_lines row per service line (100,000 for the files of
-- issue 9). Its three foreign keys were most of that insert (a trigger and an index probe per
-- key per row: ~60 % of the statement's time at 100,000 lines), and they only re-checked what
-- the posting had just read in the same transaction:
--
--   - remittance_claim_id: the lines are written only by the posting (SavePosting), in the
--     same transaction and batch as their remittance_claims rows, right after them, with the
--     ids the plan gave both (domain.PlanPosting);
--   - charge_id and (claim_id, line_number): copied from the claim's claim_lines (joined with
--     their charges) that LoadClaims read in the same transaction, with the claim locked FOR
--     UPDATE; claim_lines itself references claims and charges.
--
-- No code deletes remittance_claims, claim_lines or charges, so nothing can leave a line's
-- reference dangling later either; the keys' other role (refusing such a delete) is moot.
-- The index on charge_id served no query (lines are looked up by id and by their remittance
-- claim, through the primary key and the (remittance_claim_id, position) key); it only cost
-- an index insert per line.
ALTER TABLE remittance_lines
    DROP CONSTRAINT remittance_lines_remittance_claim_id_fkey,
    DROP CONSTRAINT remittance_lines_charge_id_fkey,
    DROP CONSTRAINT remittance_lines_claim_id_line_number_fkey;
DROP INDEX remittance_lines_charge_idx;

-- Likewise one remittance_claims row per CLP (25,000 in such a file): remittance_id is the
-- remittance the same transaction inserted first (InsertRemittance), claim_id a claim
-- LoadClaims locked FOR UPDATE in it. No code deletes remittances or claims. reversed_by keeps
-- its key (NULL on insert; checked when a reversal sets it).
ALTER TABLE remittance_claims
    DROP CONSTRAINT remittance_claims_remittance_id_fkey,
    DROP CONSTRAINT remittance_claims_claim_id_fkey;

-- And one ledger entry per claim with patient responsibility: claim_id and remittance_id are
-- set only by a posting (PostLedger), from the same claims and remittance as above; the
-- self-pay entries (PostCharge) set neither. account_id (whose balance the entry moves) and
-- charge_id keep their keys.
ALTER TABLE ledger_entries
    DROP CONSTRAINT ledger_entries_claim_id_fkey,
    DROP CONSTRAINT ledger_entries_remittance_id_fkey;

-- +goose Down
ALTER TABLE ledger_entries
    ADD CONSTRAINT ledger_entries_claim_id_fkey FOREIGN KEY (claim_id) REFERENCES claims (id),
    ADD CONSTRAINT ledger_entries_remittance_id_fkey FOREIGN KEY (remittance_id) REFERENCES remittances (id);
ALTER TABLE remittance_claims
    ADD CONSTRAINT remittance_claims_remittance_id_fkey FOREIGN KEY (remittance_id) REFERENCES remittances (id),
    ADD CONSTRAINT remittance_claims_claim_id_fkey FOREIGN KEY (claim_id) REFERENCES claims (id);
CREATE INDEX remittance_lines_charge_idx ON remittance_lines (charge_id);
ALTER TABLE remittance_lines
    ADD CONSTRAINT remittance_lines_remittance_claim_id_fkey FOREIGN KEY (remittance_claim_id) REFERENCES remittance_claims (id),
    ADD CONSTRAINT remittance_lines_charge_id_fkey FOREIGN KEY (charge_id) REFERENCES charges (id),
    ADD CONSTRAINT remittance_lines_claim_id_line_number_fkey FOREIGN KEY (claim_id, line_number) REFERENCES claim_lines (claim_id, line_number);
