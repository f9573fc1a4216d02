package app

// AssessmentStore is the storage for ASAM assessments and the versioned level-of-care list; every method runs in the caller's transaction.
type AssessmentStore interface{}
