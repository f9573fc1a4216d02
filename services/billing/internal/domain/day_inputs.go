package domain

// DayInputs is everything recomputing a patient's day at a clinic reads, fetched in one round
// trip (issue 9: the attendance consumer was bound by sequential round trips).
type DayInputs struct {
	Sessions    []Attendance // the day's attendance
	Coverage    Coverage     // the primary coverage on the day (ID and PayerID), if HasCoverage
	HasCoverage bool
	PayerKind   string // the coverage's payer's kind, if PayerKnown
	PayerKnown  bool
	Contract    Contract // the payer's contract with the clinic on the day, if HasContract (payer known)
	HasContract bool
	Charges     []Charge  // the day's charges that are not void, locked until the transaction ends
	Consents    []Consent // the patient's consent versions at the clinic
	// Authorizations are the patient's at the clinic, every payer and service, those ending
	// first first; their used units are current.
	Authorizations []Authorization
}

// AuthorizationsFor returns the authorizations of payerID and service, in the same order.
func (in DayInputs) AuthorizationsFor(payerID, service string) []Authorization {
	var out []Authorization
	for _, a := range in.Authorizations {
		if a.PayerID == payerID && a.Service == service {
			out = append(out, a)
		}
	}
	return out
}
