-- +goose Up
-- A patient's phone number, for duplicate matching: copied from the referral an admission
-- decides (E.164, as the API takes it); NULL for a direct admission (AdmitPatient takes none).
ALTER TABLE patients ADD COLUMN phone text CHECK (phone <> '');
CREATE INDEX patients_phone ON patients (phone) WHERE phone IS NOT NULL;

-- The queue listing, oldest first contact first, keyset on (first_contact_at, id): of one
-- clinic (clinic_id = $1), and of every clinic. referrals_queue (clinic, status, ...) still
-- serves listings filtered by status.
CREATE INDEX referrals_clinic_contact ON referrals (clinic_id, first_contact_at, id);
CREATE INDEX referrals_contact ON referrals (first_contact_at, id);

-- Idempotency keys (and the responses they replay, which hold PHI) are pruned after a
-- retention period (IDEMPOTENCY_RETENTION): the pruner deletes by age.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- One assessment per referral: RecordAssessment needs a screened referral and moves it to
-- assessed, which no move leaves except to a decision or closed. The unique index serves the
-- lookups by referral that assessments_referral served.
ALTER TABLE assessments ADD CONSTRAINT assessments_one_per_referral UNIQUE (referral_id);
DROP INDEX assessments_referral;

-- The programs intake admits to (domain.ProgramAdultIOP, domain.ProgramAdolescentIOP).
ALTER TABLE episodes ADD CONSTRAINT episodes_program CHECK (program IN ('adult-iop', 'adolescent-iop'));

-- A consent version is superseded by at most one later version.
ALTER TABLE consents ADD CONSTRAINT consents_supersedes_once UNIQUE (supersedes_id);

-- +goose Down
ALTER TABLE consents DROP CONSTRAINT consents_supersedes_once;
ALTER TABLE episodes DROP CONSTRAINT episodes_program;
CREATE INDEX assessments_referral ON assessments (referral_id, assessed_at DESC);
ALTER TABLE assessments DROP CONSTRAINT assessments_one_per_referral;
DROP INDEX idempotency_keys_created;
DROP INDEX referrals_contact;
DROP INDEX referrals_clinic_contact;
DROP INDEX patients_phone;
ALTER TABLE patients DROP COLUMN phone;
