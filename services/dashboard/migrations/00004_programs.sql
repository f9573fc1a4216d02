-- Programs, from scheduling's ProgramConfigured (network-wide: no clinic): the weekly minimum
-- of attended minutes and the length in weeks, for the overview's "meeting weekly minimum".
-- The newer occurred_at wins. Rebuildable like every projection (`dashboard rebuild`).

-- +goose Up
CREATE TABLE programs (
    program_code           text        PRIMARY KEY,
    weekly_minimum_minutes int         NOT NULL,
    length_weeks           int         NOT NULL,
    updated_at             timestamptz NOT NULL
);
CREATE INDEX attendance_enrollment ON attendance (enrollment_id, local_date) WHERE enrollment_id IS NOT NULL;

-- +goose Down
DROP INDEX attendance_enrollment;
DROP TABLE programs;
