package domain

import (
	"fmt"
	"strings"
	"time"
)

// Consent is billing's copy of one consent version (intake's ConsentGranted / ConsentRevoked).
// Payment: the patient allows disclosure to payers for payment (42 CFR Part 2), which every
// claim needs.
type Consent struct {
	ID            string
	PatientID     string
	ClinicID      string
	Version       int32
	Payment       bool
	EffectiveFrom time.Time
	ExpiresAt     time.Time // zero: no expiry
	RevokedAt     time.Time // zero: not revoked
	Supersedes    string    // the consent this version replaces, if any
	SourceEventID string
}

// PaymentValid reports whether the consent allows disclosure for payment at now. superseded
// tells whether a later version replaced it.
func (c Consent) PaymentValid(now time.Time, superseded bool) bool {
	return c.Payment && !superseded && !c.EffectiveFrom.After(now) &&
		(c.ExpiresAt.IsZero() || now.Before(c.ExpiresAt)) &&
		(c.RevokedAt.IsZero() || now.Before(c.RevokedAt))
}

// ValidateConsent checks the ids and dates billing relies on (ErrInvalid, naming fields only).
func ValidateConsent(c Consent) (Consent, error) {
	var errs []string
	id := func(field string, v *string) {
		s, err := ParseID(*v)
		if err != nil {
			errs = append(errs, field+": must be a UUID")
		}
		*v = s
	}
	id("consent_id", &c.ID)
	id("patient_id", &c.PatientID)
	id("clinic_id", &c.ClinicID)
	id("source_event_id", &c.SourceEventID)
	if c.Supersedes != "" {
		id("supersedes_consent_id", &c.Supersedes)
	}
	if c.EffectiveFrom.IsZero() {
		errs = append(errs, "effective_from: required")
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, ", "))
	}
	return c, nil
}

// HasPaymentConsent reports whether any of a patient's consents (at one clinic) allows
// disclosure for payment at now; a version another one supersedes no longer counts.
func HasPaymentConsent(cs []Consent, now time.Time) bool {
	superseded := map[string]bool{}
	for _, c := range cs {
		if c.Supersedes != "" {
			superseded[c.Supersedes] = true
		}
	}
	for _, c := range cs {
		if c.PaymentValid(now, superseded[c.ID]) {
			return true
		}
	}
	return false
}
