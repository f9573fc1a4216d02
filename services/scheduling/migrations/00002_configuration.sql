-- +goose Up
-- Clinic configuration that scheduling owns. Times of day are clinic-local ("wall clock")
-- times: sessions keep their local time across daylight-saving changes.

CREATE TABLE clinics (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL CHECK (name <> ''),
    time_zone   text        NOT NULL CHECK (time_zone <> ''),
    address     jsonb       NOT NULL DEFAULT '{}',
    npi         text        NOT NULL DEFAULT '' CHECK (npi = '' OR npi ~ '^[0-9]{10}$'),
    phone       text        NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE rooms (
    id          uuid        PRIMARY KEY,
    clinic_id   uuid        NOT NULL REFERENCES clinics (id),
    name        text        NOT NULL CHECK (name <> ''),
    seats       int         NOT NULL CHECK (seats > 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (clinic_id, name)
);

CREATE TABLE clinicians (
    id            uuid        PRIMARY KEY,
    clinic_id     uuid        NOT NULL REFERENCES clinics (id),
    display_name  text        NOT NULL CHECK (display_name <> ''),
    role          text        NOT NULL CHECK (role IN ('counselor', 'therapist', 'prescriber', 'case_manager')),
    credentials   text[]      NOT NULL DEFAULT '{}',
    active        boolean     NOT NULL DEFAULT true,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX clinicians_clinic ON clinicians (clinic_id);

-- Weekly availability windows, replaced as a whole when a clinician is updated.
CREATE TABLE clinician_availability (
    clinician_id uuid NOT NULL REFERENCES clinicians (id) ON DELETE CASCADE,
    weekday      int  NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    start_time   time NOT NULL,
    end_time     time NOT NULL,
    CHECK (start_time < end_time),
    PRIMARY KEY (clinician_id, weekday, start_time)
);

-- Programs are the same across the network.
CREATE TABLE programs (
    code                    text        PRIMARY KEY CHECK (code ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name                    text        NOT NULL CHECK (name <> ''),
    population              text        NOT NULL CHECK (population IN ('adult', 'adolescent')),
    length_weeks            int         NOT NULL CHECK (length_weeks BETWEEN 1 AND 52),
    weekly_minimum_minutes  int         NOT NULL CHECK (weekly_minimum_minutes BETWEEN 0 AND 10080),
    updated_at              timestamptz NOT NULL DEFAULT now()
);

-- A track is one program's group schedule at one clinic. Its row is also the lock that
-- serialises seat assignment (SELECT ... FOR UPDATE), so two enrollments racing for the last
-- seat cannot both win.
CREATE TABLE tracks (
    id            uuid        PRIMARY KEY,
    clinic_id     uuid        NOT NULL REFERENCES clinics (id),
    program_code  text        NOT NULL REFERENCES programs (code),
    code          text        NOT NULL CHECK (code ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    time_of_day   text        NOT NULL CHECK (time_of_day IN ('day', 'evening')),
    weekdays      int[]       NOT NULL CHECK (cardinality(weekdays) BETWEEN 1 AND 7 AND weekdays <@ ARRAY[1,2,3,4,5,6,7]),
    start_time    time        NOT NULL,
    end_time      time        NOT NULL,
    capacity      int         NOT NULL CHECK (capacity BETWEEN 1 AND 100),
    room_id       uuid        REFERENCES rooms (id),
    active        boolean     NOT NULL DEFAULT true,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (start_time < end_time),
    UNIQUE (clinic_id, code)
);

-- +goose Down
DROP TABLE tracks;
DROP TABLE programs;
DROP TABLE clinician_availability;
DROP TABLE clinicians;
DROP TABLE rooms;
DROP TABLE clinics;
