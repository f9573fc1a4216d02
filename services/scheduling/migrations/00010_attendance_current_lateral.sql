-- +goose Up
-- attendance_current was a DISTINCT ON over the whole attendance table: Postgres cannot push a
-- join's "appointment_id = a.id" into it, so every query using it (RecordAttendance's session
-- places, compliance's visits and history) read and sorted all attendance history of the
-- network, per call, under the session's lock (docs/benchmarks.md, issue 9: 26.7 ms of
-- Postgres per attendance event at 2,919 rows; ~0.1-0.2 s at 100,000).
--
-- The same rows, as a LATERAL per appointment: the latest version is one backward step on
-- attendance_pkey (appointment_id, version). The view is a plain join that the planner
-- flattens into the queries that use it, so their "a.id = ..." or join condition reaches the
-- LATERAL and each appointment costs one index probe, whatever the history's size.
-- Same columns, same order, same rows: an appointment without attendance has no row (CROSS
-- JOIN). appointments and attendance carry the same clinic_id (00009), so their row-level
-- security policies agree.
CREATE OR REPLACE VIEW attendance_current AS
SELECT a.id AS appointment_id, cur.version, cur.status, cur.minutes_attended, cur.scheduled_minutes,
       cur.recorded_by, cur.recorded_at
FROM appointments a
CROSS JOIN LATERAL (
    SELECT t.version, t.status, t.minutes_attended, t.scheduled_minutes, t.recorded_by, t.recorded_at
    FROM attendance t
    WHERE t.appointment_id = a.id
    ORDER BY t.version DESC
    LIMIT 1
) cur;

-- +goose Down
CREATE OR REPLACE VIEW attendance_current AS
SELECT DISTINCT ON (appointment_id) appointment_id, version, status, minutes_attended, scheduled_minutes,
       recorded_by, recorded_at
FROM attendance
ORDER BY appointment_id, version DESC;
