-- +goose Up
-- Pending switches: the active enrollment whose waitlisted replacement is named by
-- replaced_by (SeatHolder looks it up by replaced_by when the replacement is promoted or
-- ends).
CREATE INDEX enrollments_pending_switch ON enrollments (replaced_by)
    WHERE status = 'active' AND replaced_by IS NOT NULL;

-- +goose Down
DROP INDEX enrollments_pending_switch;
