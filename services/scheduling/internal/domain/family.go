package domain

import "time"

// FamilyConsent is scheduling's copy of a patient's latest consent at a clinic, as far as
// family sessions go (intake's ConsentGranted and ConsentRevoked): whether it names
// recipients (a family member), from when, until its revocation or expiry.
type FamilyConsent struct {
	PatientID       string
	ClinicID        string
	ConsentID       string
	Version         int
	NamedRecipients bool
	EffectiveFrom   time.Time
	ExpiresAt       time.Time // zero: none
	RevokedAt       time.Time // zero: not revoked
}

// FamilyUntil is when family sessions stop being consented (zero: no end): the earlier of the
// revocation and the expiry. A consent without the named-recipients scope ends at once
// (the zero time is never returned then).
func (c FamilyConsent) FamilyUntil() time.Time {
	if !c.NamedRecipients {
		return c.EffectiveFrom.Add(-time.Nanosecond) // before anything schedulable
	}
	until := c.RevokedAt
	if !c.ExpiresAt.IsZero() && (until.IsZero() || c.ExpiresAt.Before(until)) {
		until = c.ExpiresAt
	}
	return until
}

// Consented reports whether family sessions are consented at t.
func (c FamilyConsent) Consented(t time.Time) bool {
	until := c.FamilyUntil()
	return c.NamedRecipients && (until.IsZero() || t.Before(until))
}
