-- +goose Up
-- Attendance per appointment. Every record and correction is a new version; the latest one is
-- what counts (attendance_current). Nothing is updated in place, so history is never lost.
CREATE TABLE attendance (
    appointment_id    uuid        NOT NULL REFERENCES appointments (id),
    version           int         NOT NULL CHECK (version >= 1),
    status            text        NOT NULL CHECK (status IN ('present', 'late', 'left_early', 'absent', 'excused')),
    minutes_attended  int         NOT NULL CHECK (minutes_attended >= 0),
    scheduled_minutes int         NOT NULL CHECK (scheduled_minutes > 0),
    recorded_by       text        NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (appointment_id, version),
    CHECK (minutes_attended <= scheduled_minutes),
    CHECK (status NOT IN ('absent', 'excused') OR minutes_attended = 0)
);

CREATE VIEW attendance_current AS
SELECT DISTINCT ON (appointment_id) *
FROM attendance
ORDER BY appointment_id, version DESC;

-- +goose Down
DROP VIEW attendance_current;
DROP TABLE attendance;
