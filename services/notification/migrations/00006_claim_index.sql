-- +goose Up
-- The dispatcher's claim (ClaimDue) reads the due messages in (next_attempt_at, id) order.
-- messages_due had next_attempt_at alone: the plan sorted on id incrementally, and an
-- incremental sort fetches at least 32 rows (a heap visit each) before it returns the first,
-- so a claim of 10 visited three times the rows it locked. With id in the index the scan
-- stops at the batch.
--
-- Every message is updated two or three times (claimed, then sent or retried), and each
-- update leaves dead versions at the front of the due index: vacuum and analyze the table
-- sooner than the defaults (20 % and 10 % of its rows changed), so the claim's scan walks
-- fewer dead entries and the planner's estimates of the queue stay near its size.
DROP INDEX messages_due;
CREATE INDEX messages_due ON messages (next_attempt_at, id) WHERE status = 'queued';
ALTER TABLE messages SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 200,
    autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 200);

-- +goose Down
ALTER TABLE messages RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold,
    autovacuum_analyze_scale_factor, autovacuum_analyze_threshold);
DROP INDEX messages_due;
CREATE INDEX messages_due ON messages (next_attempt_at) WHERE status = 'queued';
