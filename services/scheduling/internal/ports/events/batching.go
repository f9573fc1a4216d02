package events

// clinicLockTxBatch is the TxBatch of scheduling's consumers of intake's events (admissions,
// discharges, consents): one event per transaction. Their handlers lock a clinic's tracks
// (FOR UPDATE: an admission its one track, a discharge or a consent every track of the clinic
// in id order) and then the clinic's bookings (app: tracks first, bookings after). With
// several events per transaction (pkg/bus batching, ADR 12) a group took those locks in stream
// order and held them to the end: an admissions group holding track 2 and the bookings lock
// then wanting track 1 for its next event, while a consent locking tracks 1 and 2 in id order
// waits on track 2, is a deadlock; `make run` logged it on scheduling--consents (the retry
// succeeds). These events are few (one or two per patient), so batching them saved little.
// Batch them again once a group takes all its clinics' locks in one sorted pass.
const clinicLockTxBatch = 1
