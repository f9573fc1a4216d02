-- +goose Up
-- Episodes of risk: a patient flagged at risk stays flagged (one open row) until no at-risk
-- rule holds any more; each episode is announced once when it opens and once when it clears.
CREATE TABLE risk_episodes (
    id             uuid        PRIMARY KEY,
    enrollment_id  uuid        NOT NULL REFERENCES enrollments (id),
    patient_id     uuid        NOT NULL,
    clinic_id      uuid        NOT NULL,
    reasons        text[]      NOT NULL CHECK (cardinality(reasons) >= 1),
    since          timestamptz NOT NULL,
    cleared_at     timestamptz,
    CHECK (cleared_at IS NULL OR cleared_at >= since)
);
-- At most one open episode per enrollment.
CREATE UNIQUE INDEX risk_episodes_open ON risk_episodes (enrollment_id) WHERE cleared_at IS NULL;

-- Program completion, announced once per enrollment.
CREATE TABLE program_completions (
    enrollment_id         uuid        PRIMARY KEY REFERENCES enrollments (id),
    completed_on          date        NOT NULL,
    weeks                 int         NOT NULL,
    weeks_meeting_minimum int         NOT NULL,
    recorded_at           timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE program_completions;
DROP TABLE risk_episodes;
