package app

// DischargeStore is the storage for episodes and discharge; every method runs in the caller's transaction.
type DischargeStore interface{}
