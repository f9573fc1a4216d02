package postgres

// CancelQueuedSQL is the statement CancelQueued runs, for the plan test.
var CancelQueuedSQL = cancelQueuedSQL
