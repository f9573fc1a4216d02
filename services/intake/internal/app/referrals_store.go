package app

// ReferralStore is the storage for the referral queue, assessments' referral updates and decisions; every method runs in the caller's transaction.
type ReferralStore interface{}
