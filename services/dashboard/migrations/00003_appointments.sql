-- Appointments, for the clinic page's "Today's sessions": scheduling's AppointmentScheduled,
-- AppointmentRescheduled and AppointmentCancelled, one row per appointment. The newest event
-- (occurred_at) sets the date, times and session; cancelled is final. Rebuildable like every
-- projection (`dashboard rebuild` empties it and replays the SCHEDULING stream). Ids only.

-- +goose Up
CREATE TABLE appointments (
    appointment_id uuid        PRIMARY KEY,
    clinic_id      uuid        NOT NULL,
    -- The group session this place belongs to; NULL for individual, family and medication visits.
    session_id     uuid,
    service_type   text        NOT NULL,
    -- Clinic-local date and "HH:MM" times.
    local_date     date        NOT NULL,
    start_time     text        NOT NULL,
    end_time       text        NOT NULL,
    status         text        NOT NULL CHECK (status IN ('scheduled', 'cancelled')),
    updated_at     timestamptz NOT NULL
);
CREATE INDEX appointments_clinic_date ON appointments (clinic_id, local_date);

-- +goose Down
DROP TABLE appointments;
