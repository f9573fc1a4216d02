package domain

// Advisory lock keys. Handlers lock these texts (pg_advisory_xact_lock(hashtextextended(key,
// 0))) and the consumers declare the same texts as their bus.ConsumerConfig.LockKeys, so that
// a group of messages takes them all first, sorted: one definition keeps the two equal.

// ChargesLockKey serializes everything that decides a patient's charges at a clinic.
func ChargesLockKey(patientID, clinicID string) string {
	return "billing.charges:" + patientID + ":" + clinicID
}

// CostsDayLockKey serializes the recomputation of a patient-day of the cost projections.
func CostsDayLockKey(patientID, localDate string) string {
	return "billing.costs.day:" + patientID + ":" + localDate
}

// CostsSessionLockKey serializes the recomputation of a delivered session.
func CostsSessionLockKey(sessionKey string) string { return "billing.costs.session:" + sessionKey }
