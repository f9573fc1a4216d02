-- +goose Up
-- Sessions and appointments. A group session is one meeting of a track's group on a local
-- date; each enrolled patient holds an appointment (a place) in it. Individual, family and
-- medication-management visits are sessions with one appointment. Local date and times are
-- the clinic's wall clock and never change with daylight-saving time; starts_at/ends_at are
-- the UTC instants computed from them in the clinic's zone.
CREATE TABLE sessions (
    id            uuid        PRIMARY KEY,
    clinic_id     uuid        NOT NULL REFERENCES clinics (id),
    service_type  text        NOT NULL CHECK (service_type IN ('group', 'individual', 'family', 'medication_management')),
    track_id      uuid        REFERENCES tracks (id),
    clinician_id  uuid        REFERENCES clinicians (id),
    room_id       uuid        REFERENCES rooms (id),
    local_date    date        NOT NULL,
    start_time    time        NOT NULL,
    end_time      time        NOT NULL,
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz NOT NULL,
    status        text        NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'cancelled')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (start_time < end_time AND starts_at < ends_at),
    CHECK ((service_type = 'group') = (track_id IS NOT NULL))
);
-- One group session per track and date.
CREATE UNIQUE INDEX sessions_group_day ON sessions (track_id, local_date) WHERE service_type = 'group';
CREATE INDEX sessions_clinic_day ON sessions (clinic_id, local_date);
-- A clinician's bookings, for double-booking checks.
CREATE INDEX sessions_clinician_time ON sessions (clinician_id, starts_at) WHERE status = 'scheduled';

CREATE TABLE appointments (
    id                uuid        PRIMARY KEY,
    session_id        uuid        NOT NULL REFERENCES sessions (id),
    enrollment_id     uuid        NOT NULL REFERENCES enrollments (id),
    patient_id        uuid        NOT NULL,
    clinic_id         uuid        NOT NULL,
    status            text        NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'cancelled')),
    cancelled_by      text        CHECK (cancelled_by IN ('patient', 'clinic', 'discharged')),
    cancel_reason     text,
    reschedule_count  int         NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'cancelled') = (cancelled_by IS NOT NULL)),
    UNIQUE (session_id, enrollment_id)
);
CREATE INDEX appointments_patient ON appointments (patient_id);
CREATE INDEX appointments_enrollment ON appointments (enrollment_id);

-- Every reschedule and cancellation, with the previous time and the free-text reason (kept
-- here only, never in events or logs).
CREATE TABLE appointment_history (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    appointment_id  uuid        NOT NULL REFERENCES appointments (id),
    change          text        NOT NULL CHECK (change IN ('rescheduled', 'cancelled')),
    previous_start  timestamptz,
    reason          text,
    actor           text        NOT NULL,
    at              timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE appointment_history;
DROP TABLE appointments;
DROP TABLE sessions;
