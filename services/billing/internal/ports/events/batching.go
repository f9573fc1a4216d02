package events

// lockingTxBatch is the TxBatch of the consumers whose handlers lock a patient's charges (or
// the sliding scale) before re-deciding them: one event per transaction. With several events
// per transaction (pkg/bus batching, ADR 12) such a consumer held several patients' locks,
// taken in stream order, for the whole group, and the benchmark harness saw deadlocks against
// the API's own charge updates (an API call answered internal). Batch them again once the
// locks of a group are taken in one sorted pass.
const lockingTxBatch = 1
