package app

// ConsentStore is the storage for consents and coverage; every method runs in the caller's transaction.
type ConsentStore interface{}
