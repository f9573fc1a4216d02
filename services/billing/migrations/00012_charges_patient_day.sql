-- +goose Up
-- The charges of one patient's day at a clinic that are not void (DayCharges, on every
-- attendance event under the patient lock). Without it the lookup went through
-- charges_clinic_date_idx and read every charge of the clinic that day, filtering the patient
-- (growing with the clinic's census); this reads the patient's few rows (issue 9, B7).
CREATE INDEX charges_patient_day_idx ON charges (patient_id, clinic_id, service_date) WHERE status <> 'void';

-- +goose Down
DROP INDEX charges_patient_day_idx;
