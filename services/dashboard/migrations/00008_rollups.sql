-- +goose Up
-- Rollups: the figures the overview and billing pages sum over a range, kept per clinic and day
-- so a year of 100 clinics is read from tens of thousands of rows instead of a million
-- (docs/dashboard.md, "Rollups"). They are derived data, never written by the code: statement
-- triggers on the projections they sum apply the difference between the rows a statement
-- removed (OLD TABLE) and the rows it wrote (NEW TABLE), in the same transaction as the
-- projection's write. A redelivery or an older version arriving late writes no row, so it adds
-- nothing; a corrected attendance record replaces its earlier version (-1 for the old row, +1
-- for the new one). `dashboard rebuild` truncates them with the projections and the replay
-- fills them again; this migration fills them from the rows already projected.
--
-- attendance_days: attendance records (latest version) per clinic, clinic-local date and status.
-- charge_days:     charges not void, in cents, per clinic and date of service.
-- claim_days:      per clinic and clinic-local date, the claims submitted on it (their totals,
--                  paid and denied) and the claims whose newest adjudication (paid, partially
--                  paid or denied) falls on it (kpi.ClaimInputs).
-- program_weeks:   the complete program weeks (kpi.MinimumWeeks) of each enrollment whose weeks
--                  end (its program's length is known or it ended): each week (its last day)
--                  and whether the minutes attended in it reached the program's weekly minimum.
--                  A week depends on the enrollment (start, end, track), its track's program
--                  (minimum, length) and the clinic's time zone (the end's local date): a change
--                  to any of them recomputes the enrollments concerned from their attendance
--                  (refresh_minimum). The weeks of an enrollment without an end (a program of
--                  unknown length, not ended) are counted when read, from its attendance.
-- minimum_days:    program_weeks per clinic and last day: the weeks and those met.
-- census_days:     per clinic and clinic-local date, the enrollments seated on it (+1) less
--                  those ended on it (or seated on it, when they ended before): the census at
--                  the end of a day is the sum of the changes up to it.
-- admission_days:  admissions per clinic and clinic-local date of admission.
-- admission_samples: per admission with a first contact, its clinic-local date of admission and
--                  its days from first contact to admission (the median's samples).
-- hold_counts:     held charges per clinic and hold reason (the part before any ":" detail).
-- attendance_weekly, charge_weekly, claim_weekly, minimum_weekly, census_weekly, admission_weekly:
--                  the same per clinic and
--                  Monday-start week (its Monday), kept by the same statements: a range reads
--                  its whole weeks from them and only the days at its ends from the daily ones
--                  (a year: 53 rows a clinic and figure instead of 365).

CREATE TABLE attendance_days (
    clinic_id  uuid NOT NULL,
    local_date date NOT NULL,
    status     text NOT NULL,
    sessions   int  NOT NULL,
    PRIMARY KEY (clinic_id, local_date, status)
);
CREATE INDEX attendance_days_date ON attendance_days (local_date);
CREATE TABLE attendance_weekly (
    clinic_id uuid NOT NULL,
    monday    date NOT NULL,
    status    text NOT NULL,
    sessions  int  NOT NULL,
    PRIMARY KEY (clinic_id, monday, status)
);
CREATE INDEX attendance_weekly_monday ON attendance_weekly (monday);

CREATE TABLE charge_days (
    clinic_id    uuid   NOT NULL,
    service_date date   NOT NULL,
    amount_cents bigint NOT NULL,
    PRIMARY KEY (clinic_id, service_date)
);
CREATE INDEX charge_days_date ON charge_days (service_date);
CREATE TABLE charge_weekly (
    clinic_id    uuid   NOT NULL,
    monday       date   NOT NULL,
    amount_cents bigint NOT NULL,
    PRIMARY KEY (clinic_id, monday)
);
CREATE INDEX charge_weekly_monday ON charge_weekly (monday);

CREATE TABLE claim_days (
    clinic_id              uuid   NOT NULL,
    day                    date   NOT NULL,
    -- Claims submitted on the day: total_cents, paid_cents, and total_cents of those denied.
    submitted_cents        bigint NOT NULL,
    submitted_paid_cents   bigint NOT NULL,
    submitted_denied_cents bigint NOT NULL,
    -- Claims adjudicated on the day (paid, partially paid or denied): how many, denied, clean,
    -- and their total, contractual and paid cents.
    adjudicated            int    NOT NULL,
    adjudicated_denied     int    NOT NULL,
    adjudicated_clean      int    NOT NULL,
    adjudicated_cents      bigint NOT NULL,
    contractual_cents      bigint NOT NULL,
    adjudicated_paid_cents bigint NOT NULL,
    PRIMARY KEY (clinic_id, day)
);
CREATE INDEX claim_days_day ON claim_days (day);
CREATE TABLE claim_weekly (LIKE claim_days);
ALTER TABLE claim_weekly RENAME COLUMN day TO monday;
ALTER TABLE claim_weekly ADD PRIMARY KEY (clinic_id, monday);
CREATE INDEX claim_weekly_monday ON claim_weekly (monday);

CREATE TABLE census_days (
    clinic_id uuid NOT NULL,
    day       date NOT NULL,
    delta     int  NOT NULL,
    PRIMARY KEY (clinic_id, day)
);
CREATE INDEX census_days_day ON census_days (day);
CREATE TABLE census_weekly (
    clinic_id uuid NOT NULL,
    monday    date NOT NULL,
    delta     int  NOT NULL,
    PRIMARY KEY (clinic_id, monday)
);
CREATE INDEX census_weekly_monday ON census_weekly (monday);

CREATE TABLE admission_days (
    clinic_id uuid NOT NULL,
    day       date NOT NULL,
    admitted  int  NOT NULL,
    PRIMARY KEY (clinic_id, day)
);
CREATE INDEX admission_days_day ON admission_days (day);
CREATE TABLE admission_weekly (
    clinic_id uuid NOT NULL,
    monday    date NOT NULL,
    admitted  int  NOT NULL,
    PRIMARY KEY (clinic_id, monday)
);
CREATE INDEX admission_weekly_monday ON admission_weekly (monday);

CREATE TABLE admission_samples (
    episode_id uuid   PRIMARY KEY,
    clinic_id  uuid   NOT NULL,
    day        date   NOT NULL,
    days       float8 NOT NULL
);
CREATE INDEX admission_samples_day ON admission_samples (day);

CREATE TABLE hold_counts (
    clinic_id uuid NOT NULL,
    reason    text NOT NULL,
    charges   int  NOT NULL,
    PRIMARY KEY (clinic_id, reason)
);

-- The aging table reads the claims still waiting for a decision.
CREATE INDEX claims_submitted ON claims (payer_id) WHERE status = 'submitted';

CREATE TABLE program_weeks (
    enrollment_id uuid    NOT NULL,
    last_day      date    NOT NULL,
    clinic_id     uuid    NOT NULL,
    met           boolean NOT NULL,
    PRIMARY KEY (enrollment_id, last_day)
);

CREATE TABLE minimum_days (
    clinic_id uuid NOT NULL,
    last_day  date NOT NULL,
    weeks     int  NOT NULL,
    met       int  NOT NULL,
    PRIMARY KEY (clinic_id, last_day)
);
CREATE INDEX minimum_days_day ON minimum_days (last_day);
CREATE TABLE minimum_weekly (
    clinic_id uuid NOT NULL,
    monday    date NOT NULL,
    weeks     int  NOT NULL,
    met       int  NOT NULL,
    PRIMARY KEY (clinic_id, monday)
);
CREATE INDEX minimum_weekly_monday ON minimum_weekly (monday);

-- The clinics' track pages count enrollments per track; a track's new program recomputes its
-- enrollments' weeks.
CREATE INDEX enrollments_track ON enrollments (track_id);

-- The clinic-local date of ts in zone ('' is UTC); a zone Postgres does not know is UTC too,
-- so a bad time zone from an event cannot stop the projection.
-- +goose StatementBegin
CREATE FUNCTION local_day(ts timestamptz, zone text) RETURNS date
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    AS $$
BEGIN
    RETURN (ts AT TIME ZONE coalesce(nullif(zone, ''), 'UTC'))::date;
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN (ts AT TIME ZONE 'UTC')::date;
END
$$;
-- +goose StatementEnd

-- The Monday on or before d (weeks start on Monday, as kpi.Monday).
-- +goose StatementBegin
CREATE FUNCTION monday_of(d date) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT d - (extract(isodow FROM d)::int - 1) $$;
-- +goose StatementEnd

-- refresh_minimum recomputes the program weeks of the enrollments ids (those whose weeks end)
-- from their attendance (the latest versions) and moves minimum_days and minimum_weekly by the
-- difference: a week gone -1 (and -1 met if it was), a week new +1, a week whose minutes
-- crossed the minimum +1 or -1 met; in key order (two transactions take the rows' locks in the
-- same order); an unchanged week writes nothing. An enrollment's weeks are k = 0, 1, ... from
-- its start date while within its program's length (when known) and ending on or before the
-- day it ended (when it did); only enrollments with a start date and a track whose program is
-- configured have any. (An enrollment's clinic never changes: the projection writes it once.)
-- PL/pgSQL keeps the statement's plan for the session (an SQL function would plan it anew on
-- every call: once per attendance record projected).
-- +goose StatementBegin
CREATE FUNCTION refresh_minimum(ids uuid[]) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
WITH e AS (
    SELECT e.enrollment_id, e.clinic_id, e.start_date AS s, p.weekly_minimum_minutes AS minimum,
        least(CASE WHEN p.length_weeks > 0 THEN p.length_weeks - 1 END,
            CASE WHEN e.ended_at IS NOT NULL THEN floor((local_day(e.ended_at, c.time_zone) - e.start_date - 6)::float8 / 7)::int END) AS kcap
    FROM enrollments e
    JOIN tracks t ON t.track_id = e.track_id
    JOIN programs p ON p.program_code = t.program_code
    LEFT JOIN clinics c ON c.clinic_id = e.clinic_id
    WHERE e.enrollment_id = ANY (ids) AND e.start_date IS NOT NULL
), minutes AS (
    SELECT a.enrollment_id, (a.local_date - e.s) / 7 AS k, sum(a.minutes_attended) AS minutes
    FROM e JOIN attendance a ON a.enrollment_id = e.enrollment_id AND a.local_date >= e.s
    WHERE e.kcap IS NOT NULL
    GROUP BY 1, 2
), weeks AS (
    SELECT e.enrollment_id, e.clinic_id, e.s + 7 * k.k + 6 AS last_day, coalesce(m.minutes, 0) >= e.minimum AS met
    FROM e CROSS JOIN LATERAL generate_series(0, e.kcap) AS k (k)
    LEFT JOIN minutes m ON m.enrollment_id = e.enrollment_id AND m.k = k.k
    WHERE e.kcap IS NOT NULL
), old AS (
    DELETE FROM program_weeks w WHERE w.enrollment_id = ANY (ids)
        AND NOT EXISTS (SELECT 1 FROM weeks n WHERE n.enrollment_id = w.enrollment_id AND n.last_day = w.last_day)
    RETURNING w.clinic_id, w.last_day, -1 AS weeks, -w.met::int AS met
), changed AS (
    UPDATE program_weeks w SET met = n.met FROM weeks n
    WHERE w.enrollment_id = ANY (ids) AND w.enrollment_id = n.enrollment_id AND w.last_day = n.last_day AND w.met <> n.met
    RETURNING w.clinic_id, w.last_day, 0 AS weeks, CASE WHEN n.met THEN 1 ELSE -1 END AS met
), fresh AS (
    INSERT INTO program_weeks (enrollment_id, last_day, clinic_id, met) SELECT enrollment_id, last_day, clinic_id, met FROM weeks
    ON CONFLICT (enrollment_id, last_day) DO NOTHING
    RETURNING clinic_id, last_day, 1 AS weeks, met::int AS met
), delta AS (
    SELECT * FROM old UNION ALL SELECT * FROM changed UNION ALL SELECT * FROM fresh
), weekly AS (
    INSERT INTO minimum_weekly AS w (clinic_id, monday, weeks, met)
    SELECT clinic_id, monday_of(last_day), sum(weeks)::int, sum(met)::int FROM delta
    GROUP BY 1, 2 HAVING sum(weeks) <> 0 OR sum(met) <> 0 ORDER BY 1, 2
    ON CONFLICT (clinic_id, monday) DO UPDATE SET weeks = w.weeks + excluded.weeks, met = w.met + excluded.met
)
INSERT INTO minimum_days AS d (clinic_id, last_day, weeks, met)
SELECT clinic_id, last_day, sum(weeks)::int, sum(met)::int FROM delta
GROUP BY 1, 2 HAVING sum(weeks) <> 0 OR sum(met) <> 0 ORDER BY 1, 2
ON CONFLICT (clinic_id, last_day) DO UPDATE SET weeks = d.weeks + excluded.weeks, met = d.met + excluded.met;
END
$$;
-- +goose StatementEnd

-- refresh_minimum_weeks is refresh_minimum for a change of attendance only: the enrollment,
-- its program and its clinic are as they were, so its program weeks are the same rows and
-- only the weeks holding the changed records (enrollment ids[i], day days[i]) can change from
-- met to not met or back. It recomputes those weeks' minutes (an index range of a week) and
-- moves minimum_days and minimum_weekly by the difference. A record outside every kept week
-- (before the start, past the program's length or the end, or of an enrollment not projected
-- yet, whose weeks the enrollment's own refresh_minimum will compute) changes nothing.
-- +goose StatementBegin
-- Its statement is planned once per session (force_generic_plan): with the arrays as
-- parameters Postgres otherwise kept planning a custom plan on every call, about 1 ms of
-- planning for 0.1 ms of work (the arrays are always a statement's few records).
CREATE FUNCTION refresh_minimum_weeks(ids uuid[], days date[]) RETURNS void
    LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan
    AS $$
BEGIN
WITH touched AS (
    SELECT DISTINCT w.enrollment_id, w.last_day, w.met, p.weekly_minimum_minutes AS minimum
    FROM unnest(ids, days) AS t (enrollment_id, d)
    JOIN enrollments e ON e.enrollment_id = t.enrollment_id AND t.d >= e.start_date
    JOIN tracks tr ON tr.track_id = e.track_id
    JOIN programs p ON p.program_code = tr.program_code
    JOIN program_weeks w ON w.enrollment_id = t.enrollment_id AND w.last_day = e.start_date + 7 * ((t.d - e.start_date) / 7) + 6
), weeks AS (
    SELECT t.enrollment_id, t.last_day, coalesce((SELECT sum(a.minutes_attended) FROM attendance a
        WHERE a.enrollment_id = t.enrollment_id AND a.local_date BETWEEN t.last_day - 6 AND t.last_day), 0) >= t.minimum AS met
    FROM touched t
), changed AS (
    UPDATE program_weeks w SET met = n.met FROM weeks n
    WHERE w.enrollment_id = n.enrollment_id AND w.last_day = n.last_day AND w.met <> n.met
    RETURNING w.clinic_id, w.last_day, CASE WHEN n.met THEN 1 ELSE -1 END AS met
), weekly AS (
    INSERT INTO minimum_weekly AS w (clinic_id, monday, weeks, met)
    SELECT clinic_id, monday_of(last_day), 0, sum(met)::int FROM changed
    GROUP BY 1, 2 HAVING sum(met) <> 0 ORDER BY 1, 2
    ON CONFLICT (clinic_id, monday) DO UPDATE SET met = w.met + excluded.met
)
INSERT INTO minimum_days AS d (clinic_id, last_day, weeks, met)
SELECT clinic_id, last_day, 0, sum(met)::int FROM changed
GROUP BY 1, 2 HAVING sum(met) <> 0 ORDER BY 1, 2
ON CONFLICT (clinic_id, last_day) DO UPDATE SET met = d.met + excluded.met;
END
$$;
-- +goose StatementEnd

-- change_rows is the rows a statement changed, for EXECUTE in a statement trigger: +1 (column
-- s) for each row written, -1 for each row removed, with the table's columns.
-- +goose StatementBegin
CREATE FUNCTION change_rows(op text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT CASE op
        WHEN 'INSERT' THEN 'SELECT 1 AS s, n.* FROM new_rows n'
        WHEN 'UPDATE' THEN 'SELECT 1 AS s, n.* FROM new_rows n UNION ALL SELECT -1 AS s, o.* FROM old_rows o'
        ELSE 'SELECT -1 AS s, o.* FROM old_rows o' END $$;
-- +goose StatementEnd

-- claim_days_sql adds the claims of a source like change_rows's (%1$s) to claim_days (%2$s:
-- claim_days, %3$s: '', %4$s: day) or to claim_weekly (claim_weekly, monday_of, monday).
-- +goose StatementBegin
CREATE FUNCTION claim_days_sql() RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT $q$
INSERT INTO %2$s AS d (clinic_id, %4$s, submitted_cents, submitted_paid_cents, submitted_denied_cents,
    adjudicated, adjudicated_denied, adjudicated_clean, adjudicated_cents, contractual_cents, adjudicated_paid_cents)
SELECT clinic_id, day, sum(sub), sum(sub_paid), sum(sub_denied), sum(adj), sum(adj_denied), sum(adj_clean),
    sum(adj_cents), sum(adj_contractual), sum(adj_paid)
FROM (
    SELECT x.clinic_id, %3$s(local_day(x.submitted_at, c.time_zone)) AS day, x.s * x.total_cents AS sub,
        x.s * x.paid_cents AS sub_paid, CASE WHEN x.status = 'denied' THEN x.s * x.total_cents ELSE 0 END AS sub_denied,
        0 AS adj, 0 AS adj_denied, 0 AS adj_clean, 0::bigint AS adj_cents, 0::bigint AS adj_contractual, 0::bigint AS adj_paid
    FROM (%1$s) x LEFT JOIN clinics c ON c.clinic_id = x.clinic_id
    WHERE x.submitted_at IS NOT NULL
    UNION ALL
    SELECT x.clinic_id, %3$s(local_day(x.adjudicated_at, c.time_zone)), 0, 0, 0, x.s,
        CASE WHEN x.status = 'denied' THEN x.s ELSE 0 END,
        CASE WHEN x.status = 'paid' AND NOT x.ever_denied AND NOT x.correction AND NOT x.corrected THEN x.s ELSE 0 END,
        x.s * x.total_cents, x.s * x.contractual_cents, x.s * x.paid_cents
    FROM (%1$s) x LEFT JOIN clinics c ON c.clinic_id = x.clinic_id
    WHERE x.adjudicated_at IS NOT NULL AND x.status IN ('paid', 'partially_paid', 'denied')
) p
GROUP BY 1, 2
HAVING sum(sub) <> 0 OR sum(sub_paid) <> 0 OR sum(sub_denied) <> 0 OR sum(adj) <> 0 OR sum(adj_denied) <> 0
    OR sum(adj_clean) <> 0 OR sum(adj_cents) <> 0 OR sum(adj_contractual) <> 0 OR sum(adj_paid) <> 0
ORDER BY 1, 2
ON CONFLICT (clinic_id, %4$s) DO UPDATE SET
    submitted_cents        = d.submitted_cents + excluded.submitted_cents,
    submitted_paid_cents   = d.submitted_paid_cents + excluded.submitted_paid_cents,
    submitted_denied_cents = d.submitted_denied_cents + excluded.submitted_denied_cents,
    adjudicated            = d.adjudicated + excluded.adjudicated,
    adjudicated_denied     = d.adjudicated_denied + excluded.adjudicated_denied,
    adjudicated_clean      = d.adjudicated_clean + excluded.adjudicated_clean,
    adjudicated_cents      = d.adjudicated_cents + excluded.adjudicated_cents,
    contractual_cents      = d.contractual_cents + excluded.contractual_cents,
    adjudicated_paid_cents = d.adjudicated_paid_cents + excluded.adjudicated_paid_cents
$q$ $$;
-- +goose StatementEnd

-- census_sql adds the enrollments of a source like change_rows's (%1$s) to census_days (%2$s:
-- census_days, %3$s: '', %4$s: day) or to census_weekly (census_weekly, monday_of, monday).
-- +goose StatementBegin
CREATE FUNCTION census_sql() RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT $q$
INSERT INTO %2$s AS d (clinic_id, %4$s, delta)
SELECT clinic_id, day, sum(n) FROM (
    SELECT x.clinic_id, %3$s(local_day(x.seated_at, c.time_zone)) AS day, x.s AS n
    FROM (%1$s) x LEFT JOIN clinics c ON c.clinic_id = x.clinic_id WHERE x.seated_at IS NOT NULL
    UNION ALL
    SELECT x.clinic_id, %3$s(greatest(local_day(x.seated_at, c.time_zone), local_day(x.ended_at, c.time_zone))), -x.s
    FROM (%1$s) x LEFT JOIN clinics c ON c.clinic_id = x.clinic_id WHERE x.seated_at IS NOT NULL AND x.ended_at IS NOT NULL
) p
GROUP BY 1, 2 HAVING sum(n) <> 0 ORDER BY 1, 2
ON CONFLICT (clinic_id, %4$s) DO UPDATE SET delta = d.delta + excluded.delta
$q$ $$;
-- +goose StatementEnd

-- admission_days_sql adds the admissions of a source like change_rows's (%1$s) to admission_days
-- (%2$s: admission_days, %3$s: '', %4$s: day) or to admission_weekly (admission_weekly,
-- monday_of, monday).
-- +goose StatementBegin
CREATE FUNCTION admission_days_sql() RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT $q$
INSERT INTO %2$s AS d (clinic_id, %4$s, admitted)
SELECT x.clinic_id, %3$s(local_day(x.admitted_at, c.time_zone)), sum(x.s)
FROM (%1$s) x LEFT JOIN clinics c ON c.clinic_id = x.clinic_id
GROUP BY 1, 2 HAVING sum(x.s) <> 0 ORDER BY 1, 2
ON CONFLICT (clinic_id, %4$s) DO UPDATE SET admitted = d.admitted + excluded.admitted
$q$ $$;
-- +goose StatementEnd

-- admission_samples_sql writes the samples of the admissions of a query (%1$s) selecting rows
-- of admissions.
-- +goose StatementBegin
CREATE FUNCTION admission_samples_sql() RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT $q$
INSERT INTO admission_samples AS d (episode_id, clinic_id, day, days)
SELECT x.episode_id, x.clinic_id, local_day(x.admitted_at, c.time_zone),
    extract(epoch FROM x.admitted_at - x.first_contact_at)::float8 / 86400
FROM (%1$s) x LEFT JOIN clinics c ON c.clinic_id = x.clinic_id
WHERE x.first_contact_at IS NOT NULL ORDER BY 1
ON CONFLICT (episode_id) DO UPDATE SET clinic_id = excluded.clinic_id, day = excluded.day, days = excluded.days
$q$ $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION admissions_rollup() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    -- A statement that wrote nothing (an upsert that found a newer row, or the other half of an
    -- upsert) changes no rollup.
    IF TG_OP = 'DELETE' THEN
        IF NOT EXISTS (SELECT 1 FROM old_rows) THEN
            RETURN NULL;
        END IF;
    ELSIF NOT EXISTS (SELECT 1 FROM new_rows) THEN
        RETURN NULL;
    END IF;
    EXECUTE format(admission_days_sql(), change_rows(TG_OP), 'admission_days', '', 'day');
    EXECUTE format(admission_days_sql(), change_rows(TG_OP), 'admission_weekly', 'monday_of', 'monday');
    IF TG_OP = 'DELETE' THEN
        DELETE FROM admission_samples WHERE episode_id IN (SELECT episode_id FROM old_rows);
    ELSE
        DELETE FROM admission_samples WHERE episode_id IN (SELECT episode_id FROM new_rows WHERE first_contact_at IS NULL);
        EXECUTE format(admission_samples_sql(), 'SELECT * FROM new_rows');
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION attendance_rollup() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    ids uuid[];
    days date[];
BEGIN
    -- A statement that wrote nothing (an upsert that found a newer row, or the other half of an
    -- upsert) changes no rollup. Static SQL per operation (not EXECUTE of change_rows), so
    -- PL/pgSQL keeps the plans: this runs once per attendance record projected.
    IF TG_OP = 'DELETE' THEN
        IF NOT EXISTS (SELECT 1 FROM old_rows) THEN
            RETURN NULL;
        END IF;
    ELSIF NOT EXISTS (SELECT 1 FROM new_rows) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        WITH x AS MATERIALIZED (
            SELECT clinic_id, local_date, status, count(*) AS n FROM new_rows GROUP BY 1, 2, 3
        ), weekly AS (
            INSERT INTO attendance_weekly AS d (clinic_id, monday, status, sessions)
            SELECT clinic_id, monday_of(local_date), status, sum(n) FROM x GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
            ON CONFLICT (clinic_id, monday, status) DO UPDATE SET sessions = d.sessions + excluded.sessions
        )
        INSERT INTO attendance_days AS d (clinic_id, local_date, status, sessions)
        SELECT clinic_id, local_date, status, n FROM x ORDER BY 1, 2, 3
        ON CONFLICT (clinic_id, local_date, status) DO UPDATE SET sessions = d.sessions + excluded.sessions;
        SELECT array_agg(enrollment_id), array_agg(local_date) INTO ids, days
        FROM (SELECT DISTINCT enrollment_id, local_date FROM new_rows WHERE enrollment_id IS NOT NULL) x;
    ELSIF TG_OP = 'UPDATE' THEN
        WITH x AS MATERIALIZED (
            SELECT clinic_id, local_date, status, sum(s) AS n FROM (
                SELECT 1 AS s, clinic_id, local_date, status FROM new_rows
                UNION ALL SELECT -1, clinic_id, local_date, status FROM old_rows) c
            GROUP BY 1, 2, 3 HAVING sum(s) <> 0
        ), weekly AS (
            INSERT INTO attendance_weekly AS d (clinic_id, monday, status, sessions)
            SELECT clinic_id, monday_of(local_date), status, sum(n) FROM x GROUP BY 1, 2, 3 HAVING sum(n) <> 0 ORDER BY 1, 2, 3
            ON CONFLICT (clinic_id, monday, status) DO UPDATE SET sessions = d.sessions + excluded.sessions
        )
        INSERT INTO attendance_days AS d (clinic_id, local_date, status, sessions)
        SELECT clinic_id, local_date, status, n FROM x ORDER BY 1, 2, 3
        ON CONFLICT (clinic_id, local_date, status) DO UPDATE SET sessions = d.sessions + excluded.sessions;
        SELECT array_agg(enrollment_id), array_agg(local_date) INTO ids, days
        FROM (SELECT enrollment_id, local_date FROM new_rows WHERE enrollment_id IS NOT NULL
              UNION SELECT enrollment_id, local_date FROM old_rows WHERE enrollment_id IS NOT NULL) x;
    ELSE
        WITH x AS MATERIALIZED (
            SELECT clinic_id, local_date, status, count(*) AS n FROM old_rows GROUP BY 1, 2, 3
        ), weekly AS (
            INSERT INTO attendance_weekly AS d (clinic_id, monday, status, sessions)
            SELECT clinic_id, monday_of(local_date), status, -sum(n) FROM x GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
            ON CONFLICT (clinic_id, monday, status) DO UPDATE SET sessions = d.sessions + excluded.sessions
        )
        INSERT INTO attendance_days AS d (clinic_id, local_date, status, sessions)
        SELECT clinic_id, local_date, status, -n FROM x ORDER BY 1, 2, 3
        ON CONFLICT (clinic_id, local_date, status) DO UPDATE SET sessions = d.sessions + excluded.sessions;
        SELECT array_agg(enrollment_id), array_agg(local_date) INTO ids, days
        FROM (SELECT DISTINCT enrollment_id, local_date FROM old_rows WHERE enrollment_id IS NOT NULL) x;
    END IF;
    IF ids IS NOT NULL THEN
        PERFORM refresh_minimum_weeks(ids, days);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION charges_rollup() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    -- A statement that wrote nothing (an upsert that found a newer row, or the other half of an
    -- upsert) changes no rollup. Static SQL per operation (not EXECUTE of change_rows), so
    -- PL/pgSQL keeps the plans: this runs once per charge event projected.
    IF TG_OP = 'DELETE' THEN
        IF NOT EXISTS (SELECT 1 FROM old_rows) THEN
            RETURN NULL;
        END IF;
    ELSIF NOT EXISTS (SELECT 1 FROM new_rows) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        WITH x AS MATERIALIZED (
            SELECT clinic_id, service_date, status, hold_reason, s, amount_cents FROM (SELECT 1 AS s, clinic_id, service_date, status, hold_reason, amount_cents FROM new_rows) x
            WHERE status = 'held' OR (status <> 'void' AND service_date IS NOT NULL)
        ), weekly AS (
            INSERT INTO charge_weekly AS d (clinic_id, monday, amount_cents)
            SELECT clinic_id, monday_of(service_date), sum(s * amount_cents) FROM x
            WHERE status <> 'void' AND service_date IS NOT NULL
            GROUP BY 1, 2 HAVING sum(s * amount_cents) <> 0 ORDER BY 1, 2
            ON CONFLICT (clinic_id, monday) DO UPDATE SET amount_cents = d.amount_cents + excluded.amount_cents
        ), holds AS (
            INSERT INTO hold_counts AS d (clinic_id, reason, charges)
            SELECT clinic_id, coalesce(nullif(trim(split_part(hold_reason, ':', 1)), ''), 'unspecified'), sum(s) FROM x
            WHERE status = 'held' GROUP BY 1, 2 HAVING sum(s) <> 0 ORDER BY 1, 2
            ON CONFLICT (clinic_id, reason) DO UPDATE SET charges = d.charges + excluded.charges
        )
        INSERT INTO charge_days AS d (clinic_id, service_date, amount_cents)
        SELECT clinic_id, service_date, sum(s * amount_cents) FROM x
        WHERE status <> 'void' AND service_date IS NOT NULL
        GROUP BY 1, 2 HAVING sum(s * amount_cents) <> 0 ORDER BY 1, 2
        ON CONFLICT (clinic_id, service_date) DO UPDATE SET amount_cents = d.amount_cents + excluded.amount_cents;
    ELSIF TG_OP = 'UPDATE' THEN
        WITH x AS MATERIALIZED (
            SELECT clinic_id, service_date, status, hold_reason, s, amount_cents FROM (SELECT 1 AS s, clinic_id, service_date, status, hold_reason, amount_cents FROM new_rows UNION ALL SELECT -1, clinic_id, service_date, status, hold_reason, amount_cents FROM old_rows) x
            WHERE status = 'held' OR (status <> 'void' AND service_date IS NOT NULL)
        ), weekly AS (
            INSERT INTO charge_weekly AS d (clinic_id, monday, amount_cents)
            SELECT clinic_id, monday_of(service_date), sum(s * amount_cents) FROM x
            WHERE status <> 'void' AND service_date IS NOT NULL
            GROUP BY 1, 2 HAVING sum(s * amount_cents) <> 0 ORDER BY 1, 2
            ON CONFLICT (clinic_id, monday) DO UPDATE SET amount_cents = d.amount_cents + excluded.amount_cents
        ), holds AS (
            INSERT INTO hold_counts AS d (clinic_id, reason, charges)
            SELECT clinic_id, coalesce(nullif(trim(split_part(hold_reason, ':', 1)), ''), 'unspecified'), sum(s) FROM x
            WHERE status = 'held' GROUP BY 1, 2 HAVING sum(s) <> 0 ORDER BY 1, 2
            ON CONFLICT (clinic_id, reason) DO UPDATE SET charges = d.charges + excluded.charges
        )
        INSERT INTO charge_days AS d (clinic_id, service_date, amount_cents)
        SELECT clinic_id, service_date, sum(s * amount_cents) FROM x
        WHERE status <> 'void' AND service_date IS NOT NULL
        GROUP BY 1, 2 HAVING sum(s * amount_cents) <> 0 ORDER BY 1, 2
        ON CONFLICT (clinic_id, service_date) DO UPDATE SET amount_cents = d.amount_cents + excluded.amount_cents;
    ELSE
        WITH x AS MATERIALIZED (
            SELECT clinic_id, service_date, status, hold_reason, s, amount_cents FROM (SELECT -1 AS s, clinic_id, service_date, status, hold_reason, amount_cents FROM old_rows) x
            WHERE status = 'held' OR (status <> 'void' AND service_date IS NOT NULL)
        ), weekly AS (
            INSERT INTO charge_weekly AS d (clinic_id, monday, amount_cents)
            SELECT clinic_id, monday_of(service_date), sum(s * amount_cents) FROM x
            WHERE status <> 'void' AND service_date IS NOT NULL
            GROUP BY 1, 2 HAVING sum(s * amount_cents) <> 0 ORDER BY 1, 2
            ON CONFLICT (clinic_id, monday) DO UPDATE SET amount_cents = d.amount_cents + excluded.amount_cents
        ), holds AS (
            INSERT INTO hold_counts AS d (clinic_id, reason, charges)
            SELECT clinic_id, coalesce(nullif(trim(split_part(hold_reason, ':', 1)), ''), 'unspecified'), sum(s) FROM x
            WHERE status = 'held' GROUP BY 1, 2 HAVING sum(s) <> 0 ORDER BY 1, 2
            ON CONFLICT (clinic_id, reason) DO UPDATE SET charges = d.charges + excluded.charges
        )
        INSERT INTO charge_days AS d (clinic_id, service_date, amount_cents)
        SELECT clinic_id, service_date, sum(s * amount_cents) FROM x
        WHERE status <> 'void' AND service_date IS NOT NULL
        GROUP BY 1, 2 HAVING sum(s * amount_cents) <> 0 ORDER BY 1, 2
        ON CONFLICT (clinic_id, service_date) DO UPDATE SET amount_cents = d.amount_cents + excluded.amount_cents;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION claims_rollup() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    -- A statement that wrote nothing (an upsert that found a newer row, or the other half of an
    -- upsert) changes no rollup.
    IF TG_OP = 'DELETE' THEN
        IF NOT EXISTS (SELECT 1 FROM old_rows) THEN
            RETURN NULL;
        END IF;
    ELSIF NOT EXISTS (SELECT 1 FROM new_rows) THEN
        RETURN NULL;
    END IF;
    EXECUTE format(claim_days_sql(), change_rows(TG_OP), 'claim_days', '', 'day');
    EXECUTE format(claim_days_sql(), change_rows(TG_OP), 'claim_weekly', 'monday_of', 'monday');
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- An enrollment's seat and end move the census; a new start, end, track or clinic of an
-- enrollment recomputes its weeks.
-- +goose StatementBegin
CREATE FUNCTION enrollments_rollup() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    ids uuid[];
BEGIN
    -- A statement that wrote nothing (an upsert that found a newer row, or the other half of an
    -- upsert) changes no rollup.
    IF TG_OP = 'DELETE' THEN
        IF NOT EXISTS (SELECT 1 FROM old_rows) THEN
            RETURN NULL;
        END IF;
    ELSIF NOT EXISTS (SELECT 1 FROM new_rows) THEN
        RETURN NULL;
    END IF;
    EXECUTE format(census_sql(), change_rows(TG_OP), 'census_days', '', 'day');
    EXECUTE format(census_sql(), change_rows(TG_OP), 'census_weekly', 'monday_of', 'monday');
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(enrollment_id) INTO ids FROM new_rows;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT array_agg(n.enrollment_id) INTO ids FROM new_rows n JOIN old_rows o USING (enrollment_id)
        WHERE (n.start_date, n.ended_at, n.track_id, n.clinic_id) IS DISTINCT FROM (o.start_date, o.ended_at, o.track_id, o.clinic_id);
    ELSE
        SELECT array_agg(enrollment_id) INTO ids FROM old_rows;
    END IF;
    IF ids IS NOT NULL THEN
        PERFORM refresh_minimum(ids);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- A track's new program recomputes the weeks of its enrollments.
-- +goose StatementBegin
CREATE FUNCTION tracks_rollup() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    ids uuid[];
BEGIN
    -- A statement that wrote nothing (an upsert that found a newer row, or the other half of an
    -- upsert) changes no rollup.
    IF TG_OP = 'DELETE' THEN
        IF NOT EXISTS (SELECT 1 FROM old_rows) THEN
            RETURN NULL;
        END IF;
    ELSIF NOT EXISTS (SELECT 1 FROM new_rows) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(e.enrollment_id) INTO ids FROM enrollments e JOIN new_rows n USING (track_id);
    ELSE
        SELECT array_agg(e.enrollment_id) INTO ids FROM enrollments e
        JOIN new_rows n USING (track_id) JOIN old_rows o USING (track_id)
        WHERE n.program_code IS DISTINCT FROM o.program_code;
    END IF;
    IF ids IS NOT NULL THEN
        PERFORM refresh_minimum(ids);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- A program's new minimum or length recomputes the weeks of the enrollments of its tracks.
-- +goose StatementBegin
CREATE FUNCTION programs_rollup() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    ids uuid[];
BEGIN
    -- A statement that wrote nothing (an upsert that found a newer row, or the other half of an
    -- upsert) changes no rollup.
    IF TG_OP = 'DELETE' THEN
        IF NOT EXISTS (SELECT 1 FROM old_rows) THEN
            RETURN NULL;
        END IF;
    ELSIF NOT EXISTS (SELECT 1 FROM new_rows) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(e.enrollment_id) INTO ids FROM enrollments e JOIN tracks t ON t.track_id = e.track_id
        JOIN new_rows n ON n.program_code = t.program_code;
    ELSE
        SELECT array_agg(e.enrollment_id) INTO ids FROM enrollments e JOIN tracks t ON t.track_id = e.track_id
        JOIN new_rows n ON n.program_code = t.program_code JOIN old_rows o ON o.program_code = n.program_code
        WHERE (n.weekly_minimum_minutes, n.length_weeks) IS DISTINCT FROM (o.weekly_minimum_minutes, o.length_weeks);
    END IF;
    IF ids IS NOT NULL THEN
        PERFORM refresh_minimum(ids);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- A clinic's new time zone moves its claims' local dates and its enrollments' ends: its
-- claim_days, claim_weekly, admission_days and the census are counted again from its claims,
-- admissions and enrollments, its ended enrollments' weeks recomputed.
-- +goose StatementBegin
CREATE FUNCTION clinics_rollup() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    clinics uuid[];
    ids     uuid[];
BEGIN
    -- A statement that wrote nothing (an upsert that found a newer row, or the other half of an
    -- upsert) changes no rollup.
    IF TG_OP = 'DELETE' THEN
        IF NOT EXISTS (SELECT 1 FROM old_rows) THEN
            RETURN NULL;
        END IF;
    ELSIF NOT EXISTS (SELECT 1 FROM new_rows) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(clinic_id) INTO clinics FROM new_rows;
    ELSE
        SELECT array_agg(n.clinic_id) INTO clinics FROM new_rows n JOIN old_rows o USING (clinic_id)
        WHERE n.time_zone IS DISTINCT FROM o.time_zone;
    END IF;
    IF clinics IS NULL THEN
        RETURN NULL;
    END IF;
    DELETE FROM claim_days WHERE clinic_id = ANY (clinics);
    DELETE FROM claim_weekly WHERE clinic_id = ANY (clinics);
    EXECUTE format(claim_days_sql(), 'SELECT 1 AS s, k.* FROM claims k WHERE k.clinic_id = ANY ($1)', 'claim_days', '', 'day') USING clinics;
    EXECUTE format(claim_days_sql(), 'SELECT 1 AS s, k.* FROM claims k WHERE k.clinic_id = ANY ($1)', 'claim_weekly', 'monday_of', 'monday') USING clinics;
    DELETE FROM admission_days WHERE clinic_id = ANY (clinics);
    DELETE FROM admission_weekly WHERE clinic_id = ANY (clinics);
    EXECUTE format(admission_days_sql(), 'SELECT 1 AS s, a.* FROM admissions a WHERE a.clinic_id = ANY ($1)',
        'admission_days', '', 'day') USING clinics;
    EXECUTE format(admission_days_sql(), 'SELECT 1 AS s, a.* FROM admissions a WHERE a.clinic_id = ANY ($1)',
        'admission_weekly', 'monday_of', 'monday') USING clinics;
    EXECUTE format(admission_samples_sql(), 'SELECT * FROM admissions a WHERE a.clinic_id = ANY ($1)') USING clinics;
    DELETE FROM census_days WHERE clinic_id = ANY (clinics);
    DELETE FROM census_weekly WHERE clinic_id = ANY (clinics);
    EXECUTE format(census_sql(), 'SELECT 1 AS s, e.* FROM enrollments e WHERE e.clinic_id = ANY ($1)', 'census_days', '', 'day') USING clinics;
    EXECUTE format(census_sql(), 'SELECT 1 AS s, e.* FROM enrollments e WHERE e.clinic_id = ANY ($1)', 'census_weekly', 'monday_of', 'monday') USING clinics;
    SELECT array_agg(enrollment_id) INTO ids FROM enrollments WHERE clinic_id = ANY (clinics) AND ended_at IS NOT NULL;
    IF ids IS NOT NULL THEN
        PERFORM refresh_minimum(ids);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['attendance', 'charges', 'claims', 'enrollments', 'tracks', 'programs', 'clinics', 'admissions'] LOOP
        EXECUTE format('CREATE TRIGGER %1$s_rollup_insert AFTER INSERT ON %1$I REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION %1$s_rollup()', t);
        EXECUTE format('CREATE TRIGGER %1$s_rollup_update AFTER UPDATE ON %1$I REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION %1$s_rollup()', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['attendance', 'charges', 'claims', 'enrollments', 'admissions'] LOOP
        EXECUTE format('CREATE TRIGGER %1$s_rollup_delete AFTER DELETE ON %1$I REFERENCING OLD TABLE AS old_rows
            FOR EACH STATEMENT EXECUTE FUNCTION %1$s_rollup()', t);
    END LOOP;
    -- Clinic isolation, as in migration 00007.
    FOREACH t IN ARRAY ARRAY['attendance_days', 'charge_days', 'claim_days', 'program_weeks', 'minimum_days',
            'attendance_weekly', 'charge_weekly', 'claim_weekly', 'minimum_weekly', 'census_days', 'census_weekly',
            'admission_days', 'hold_counts', 'admission_samples', 'admission_weekly'] LOOP
        EXECUTE format('CREATE POLICY clinic_isolation ON %I USING (%s) WITH CHECK (%s)', t,
            format('(SELECT clinic_scope_all()) OR clinic_id = ANY ((SELECT clinic_scope_ids())::uuid[]) OR (SELECT clinic_scope_exempt(%L::regclass))', t),
            format('(SELECT clinic_scope_all()) OR clinic_id = ANY ((SELECT clinic_scope_ids())::uuid[]) OR (SELECT clinic_scope_exempt(%L::regclass))', t));
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    END LOOP;
END
$$;
-- +goose StatementEnd

-- The rollups of the rows already projected (in every clinic's scope, whichever role migrates).
SELECT pg_catalog.set_config('trellis.clinics', '*', true);
INSERT INTO attendance_days (clinic_id, local_date, status, sessions)
    SELECT clinic_id, local_date, status, count(*) FROM attendance GROUP BY 1, 2, 3;
INSERT INTO charge_days (clinic_id, service_date, amount_cents)
    SELECT clinic_id, service_date, sum(amount_cents) FROM charges WHERE status <> 'void' AND service_date IS NOT NULL GROUP BY 1, 2
    HAVING sum(amount_cents) <> 0;
INSERT INTO hold_counts (clinic_id, reason, charges)
    SELECT clinic_id, coalesce(nullif(trim(split_part(hold_reason, ':', 1)), ''), 'unspecified'), count(*) FROM charges
    WHERE status = 'held' GROUP BY 1, 2;
INSERT INTO attendance_weekly (clinic_id, monday, status, sessions)
    SELECT clinic_id, monday_of(local_date), status, sum(sessions) FROM attendance_days GROUP BY 1, 2, 3;
INSERT INTO charge_weekly (clinic_id, monday, amount_cents)
    SELECT clinic_id, monday_of(service_date), sum(amount_cents) FROM charge_days GROUP BY 1, 2;
-- +goose StatementBegin
DO $$
BEGIN
    EXECUTE format(claim_days_sql(), 'SELECT 1 AS s, k.* FROM claims k', 'claim_days', '', 'day');
    EXECUTE format(claim_days_sql(), 'SELECT 1 AS s, k.* FROM claims k', 'claim_weekly', 'monday_of', 'monday');
    EXECUTE format(census_sql(), 'SELECT 1 AS s, e.* FROM enrollments e', 'census_days', '', 'day');
    EXECUTE format(admission_days_sql(), 'SELECT 1 AS s, a.* FROM admissions a', 'admission_days', '', 'day');
    EXECUTE format(admission_days_sql(), 'SELECT 1 AS s, a.* FROM admissions a', 'admission_weekly', 'monday_of', 'monday');
    EXECUTE format(admission_samples_sql(), 'SELECT * FROM admissions a');
    EXECUTE format(census_sql(), 'SELECT 1 AS s, e.* FROM enrollments e', 'census_weekly', 'monday_of', 'monday');
END
$$;
-- +goose StatementEnd
SELECT refresh_minimum(ARRAY(SELECT enrollment_id FROM enrollments));

-- +goose Down
-- +goose StatementBegin
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['attendance', 'charges', 'claims', 'enrollments', 'tracks', 'programs', 'clinics', 'admissions'] LOOP
        EXECUTE format('DROP TRIGGER %1$s_rollup_insert ON %1$I', t);
        EXECUTE format('DROP TRIGGER %1$s_rollup_update ON %1$I', t);
        EXECUTE format('DROP TRIGGER IF EXISTS %1$s_rollup_delete ON %1$I', t);
        EXECUTE format('DROP FUNCTION %s_rollup()', t);
    END LOOP;
END
$$;
-- +goose StatementEnd
DROP FUNCTION admission_samples_sql();
DROP FUNCTION admission_days_sql();
DROP FUNCTION census_sql();
DROP FUNCTION claim_days_sql();
DROP FUNCTION change_rows(text);
DROP FUNCTION refresh_minimum_weeks(uuid[], date[]);
DROP FUNCTION refresh_minimum(uuid[]);
DROP FUNCTION monday_of(date);
DROP FUNCTION local_day(timestamptz, text);
DROP INDEX enrollments_track;
DROP INDEX claims_submitted;
DROP TABLE hold_counts;
DROP TABLE admission_samples;
DROP TABLE admission_weekly;
DROP TABLE admission_days;
DROP TABLE census_weekly;
DROP TABLE census_days;
DROP TABLE minimum_weekly;
DROP TABLE claim_weekly;
DROP TABLE charge_weekly;
DROP TABLE attendance_weekly;
DROP TABLE minimum_days;
DROP TABLE program_weeks;
DROP TABLE claim_days;
DROP TABLE charge_days;
DROP TABLE attendance_days;
