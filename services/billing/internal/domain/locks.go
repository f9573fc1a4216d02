package domain

import (
	"hash/fnv"
	"strconv"
)

// Advisory lock keys. Handlers lock these texts (pg_advisory_xact_lock(hashtextextended(key,
// 0))) and the consumers declare the same texts as their bus.ConsumerConfig.LockKeys, so that
// a group of messages takes them all first, sorted: one definition keeps the two equal.

// ChargeLockBuckets bounds the distinct charges locks. Each advisory lock a transaction holds
// takes a slot of Postgres's shared lock table (max_locks_per_transaction x max_connections:
// 6,400 by default, for the whole cluster), and an 835 posting holds the lock of every patient
// it names until it commits: with a lock per patient, a file naming more than ~6,000 patients
// failed with "out of shared memory" (and starved every other session of the cluster while it
// tried). Patients share 1,024 locks instead, so a posting holds at most 1,024. Two patients
// in one bucket only wait for each other; every holder takes its keys sorted, so still no
// deadlock.
const ChargeLockBuckets = 1024

// ChargesLockKey serializes everything that decides a patient's charges at a clinic (with the
// other patients of its bucket: ChargeLockBuckets).
func ChargesLockKey(patientID, clinicID string) string {
	h := fnv.New32a()
	h.Write([]byte(patientID))
	h.Write([]byte{':'})
	h.Write([]byte(clinicID))
	return "billing.charges:" + strconv.FormatUint(uint64(h.Sum32()%ChargeLockBuckets), 10)
}

// CostsDayLockKey serializes the recomputation of a patient-day of the cost projections.
func CostsDayLockKey(patientID, localDate string) string {
	return "billing.costs.day:" + patientID + ":" + localDate
}

// CostsSessionLockKey serializes the recomputation of a delivered session.
func CostsSessionLockKey(sessionKey string) string { return "billing.costs.session:" + sessionKey }
