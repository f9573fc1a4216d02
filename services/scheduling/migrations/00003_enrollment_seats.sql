-- +goose Up
-- Enrollment with seats (docs/scheduling.md). An enrollment now belongs to a configured track:
-- it holds one of the track's seats ('active'), waits for one in the track's queue
-- ('waitlisted'), or has stopped: 'switched' (left for another track, see replaced_by) or
-- 'ended' (a discharge). Every seat change happens under the track row's lock (tracks,
-- SELECT ... FOR UPDATE); several tracks are locked in id order.
--
-- Rows written before this migration have no track (track_id NULL): they hold no seat, are
-- never switched or promoted, and a discharge ends them like the others.

ALTER TABLE enrollments DROP CONSTRAINT enrollments_status_check;
-- A switch creates another enrollment for the same admission (and may come back to the same
-- track), so the facts of an admission no longer identify one row. Replays are absorbed by
-- source_event_id and, for a re-emitted admission, by the episode (enrollments_episode_key);
-- switches by their idempotency key.
ALTER TABLE enrollments DROP CONSTRAINT enrollments_admission_key;

ALTER TABLE enrollments
    -- NULL for enrollments created by a switch (they come from a call, not an event).
    ALTER COLUMN source_event_id DROP NOT NULL,
    ADD COLUMN track_id      uuid REFERENCES tracks (id),
    ADD COLUMN program_code  text,
    -- intake's episode of care; NULL on older rows. A switch keeps the episode.
    ADD COLUMN episode_id    uuid,
    ADD COLUMN waitlisted_at timestamptz,
    -- When the enrollment got its seat (NULL while waitlisted).
    ADD COLUMN enrolled_at   timestamptz,
    ADD COLUMN ended_at      timestamptz,
    ADD COLUMN end_reason    text CHECK (end_reason IN ('discharged', 'switched', 'superseded')),
    -- The enrollment this one replaces (a track switch). Deferred: the two rows of a switch
    -- point at each other and are written in either order.
    ADD COLUMN replaces      uuid REFERENCES enrollments (id) DEFERRABLE INITIALLY DEFERRED,
    -- Set on a 'switched' enrollment: the one that replaced it. Also set on an 'active' one
    -- while a switch waits for a seat in the target track (a pending switch): the enrollment
    -- keeps its seat until the waitlisted replacement is promoted.
    ADD COLUMN replaced_by   uuid REFERENCES enrollments (id) DEFERRABLE INITIALLY DEFERRED,
    ADD CONSTRAINT enrollments_status_check
        CHECK (status IN ('active', 'waitlisted', 'switched', 'ended')),
    ADD CONSTRAINT enrollments_waitlisted_at CHECK (status <> 'waitlisted' OR waitlisted_at IS NOT NULL),
    ADD CONSTRAINT enrollments_ended CHECK ((status IN ('switched', 'ended')) = (ended_at IS NOT NULL)),
    ADD CONSTRAINT enrollments_track_required CHECK (status NOT IN ('waitlisted') OR track_id IS NOT NULL);

UPDATE enrollments SET enrolled_at = created_at WHERE enrolled_at IS NULL;

-- Older rows may hold several active enrollments of one patient at one clinic; the one shown
-- as current (latest start date, then latest created) stays, the others end as superseded.
UPDATE enrollments e SET status = 'ended', ended_at = now(), end_reason = 'superseded'
WHERE e.status = 'active' AND EXISTS (
    SELECT 1 FROM enrollments l
    WHERE l.patient_id = e.patient_id AND l.clinic_id = e.clinic_id AND l.status = 'active'
      AND (l.start_date, l.created_at, l.id) > (e.start_date, e.created_at, e.id));

-- A patient has at most one current enrollment per clinic: active, or waitlisted. The one
-- exception is a pending switch: the active enrollment (replaced_by set) and its waitlisted
-- replacement; only the replacement counts here.
CREATE UNIQUE INDEX enrollments_one_current ON enrollments (patient_id, clinic_id)
    WHERE status IN ('active', 'waitlisted') AND replaced_by IS NULL;
-- One enrollment per admitted episode: a re-emitted admission (a new event id) adds nothing,
-- even after the first enrollment ended.
CREATE UNIQUE INDEX enrollments_episode_key ON enrollments (episode_id)
    WHERE source_event_id IS NOT NULL AND episode_id IS NOT NULL;
-- Lookups by patient (GetEnrollment, discharge); the dropped admission key served them.
CREATE INDEX enrollments_patient ON enrollments (patient_id, clinic_id);
-- The waitlist, first come first served; and the seats taken.
CREATE INDEX enrollments_waitlist ON enrollments (track_id, waitlisted_at, id) WHERE status = 'waitlisted';
CREATE INDEX enrollments_seats ON enrollments (track_id) WHERE status = 'active';

-- Every status change of an enrollment, its creation included (from_status NULL).
CREATE TABLE enrollment_history (
    id            uuid        PRIMARY KEY,
    enrollment_id uuid        NOT NULL REFERENCES enrollments (id),
    clinic_id     uuid        NOT NULL,
    from_status   text,
    to_status     text        NOT NULL,
    -- admitted, promoted, switch (created by one), switched, switch_cancelled, discharged
    reason        text        NOT NULL,
    -- The caller's words for a switch (kept here only: never in events or logs).
    note          text        NOT NULL DEFAULT '',
    at            timestamptz NOT NULL,
    -- Token subject of the caller, or "event:<id>" of the event that caused the change.
    actor         text        NOT NULL
);
CREATE INDEX enrollment_history_enrollment ON enrollment_history (enrollment_id, at);

-- Discharged episodes (from intake's PatientDischarged). Admissions and discharges are
-- consumed separately, so a discharge may be handled before its admission (say, one retried
-- while its track was being configured); that admission then enrolls nobody.
CREATE TABLE discharged_episodes (
    episode_id      uuid        PRIMARY KEY,
    patient_id      uuid        NOT NULL,
    clinic_id       uuid        NOT NULL,
    source_event_id uuid        NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);

-- Idempotency keys of SwitchTrack, scoped per caller (token subject). request_hash covers the
-- procedure and the request without its key; response is the first call's response.
CREATE TABLE idempotency_keys (
    subject      text        NOT NULL,
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    response     bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject, key)
);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE discharged_episodes;
DROP TABLE enrollment_history;
DROP INDEX enrollments_seats;
DROP INDEX enrollments_waitlist;
DROP INDEX enrollments_patient;
DROP INDEX enrollments_episode_key;
DROP INDEX enrollments_one_current;
ALTER TABLE enrollments
    DROP CONSTRAINT enrollments_track_required,
    DROP CONSTRAINT enrollments_ended,
    DROP CONSTRAINT enrollments_waitlisted_at,
    DROP CONSTRAINT enrollments_status_check,
    DROP COLUMN replaced_by,
    DROP COLUMN replaces,
    DROP COLUMN end_reason,
    DROP COLUMN ended_at,
    DROP COLUMN enrolled_at,
    DROP COLUMN waitlisted_at,
    DROP COLUMN episode_id,
    DROP COLUMN program_code,
    DROP COLUMN track_id;
-- The first schema knows only active enrollments created from an admission.
DELETE FROM enrollments WHERE status <> 'active' OR source_event_id IS NULL;
ALTER TABLE enrollments
    ALTER COLUMN source_event_id SET NOT NULL,
    ADD CONSTRAINT enrollments_status_check CHECK (status IN ('active')),
    ADD CONSTRAINT enrollments_admission_key UNIQUE (patient_id, clinic_id, program_track, start_date);
