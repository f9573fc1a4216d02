-- When an enrollment took its seat (EnrollmentCreated's occurred_at), for the overview's weekly
-- census: an enrollment counts at a week's end once seated and until it ends, whatever its
-- (possibly later) start date, as the census of today does. Rows projected before this
-- migration take their start date (or their last change); `dashboard rebuild` sets it exactly.

-- +goose Up
ALTER TABLE enrollments ADD COLUMN seated_at timestamptz;
UPDATE enrollments SET seated_at = coalesce(start_date::timestamptz, updated_at) WHERE status <> 'waitlisted' OR ended_at IS NOT NULL;

-- +goose Down
ALTER TABLE enrollments DROP COLUMN seated_at;
