package postgres

// CancelQueuedSQL is the statement CancelQueued runs, for the plan test.
var CancelQueuedSQL = cancelQueuedSQL

// ClaimDueSQL is the statement ClaimDue runs, for the plan test.
const ClaimDueSQL = claimDueSQL
