-- +goose Up
-- An enrollment: an admitted patient holds a seat in a program track of a clinic from a start
-- date. Created from intake's PatientAdmitted; it keeps ids and scheduling facts only, no PHI.
CREATE TABLE enrollments (
    id              uuid        PRIMARY KEY,
    patient_id      uuid        NOT NULL,
    clinic_id       uuid        NOT NULL,
    program_track   text        NOT NULL,
    start_date      date        NOT NULL,
    -- Later lifecycle states (completed, transferred, ...) extend this check.
    status          text        NOT NULL DEFAULT 'active' CHECK (status IN ('active')),
    source_event_id uuid        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- Two guards, independent of the bus inbox: a replayed event (same event id) and a
    -- re-emitted admission (new event id, same facts) each create at most one enrollment.
    -- The second also serves lookups by patient.
    CONSTRAINT enrollments_source_event_key UNIQUE (source_event_id),
    CONSTRAINT enrollments_admission_key UNIQUE (patient_id, clinic_id, program_track, start_date)
);

-- +goose Down
DROP TABLE enrollments;
