package domain

import (
	"strings"
	"time"
)

// Authorization is a payer's prior authorization: units of one service (days for per diem,
// sessions otherwise) for a patient at a clinic, in an inclusive date window.
type Authorization struct {
	ID              string
	PatientID       string
	ClinicID        string
	PayerID         string
	Service         string
	Number          string
	AuthorizedUnits int32
	UsedUnits       int32
	StartsOn        string
	EndsOn          string
}

// Covers reports whether the authorization's window holds date.
func (a Authorization) Covers(date string) bool { return a.StartsOn <= date && date <= a.EndsOn }

// ValidateAuthorization checks an authorization to record; payerKnown tells whether its payer
// exists. Fields are "authorization.*".
func ValidateAuthorization(a Authorization, payerKnown bool) (Authorization, error) {
	var vs violations
	if a.ID != "" {
		id, err := ParseID(a.ID)
		if err != nil {
			vs.add("authorization.authorization_id", "authorization_id.uuid", "a UUID, or empty for a new authorization")
		}
		a.ID = id
	}
	var err error
	if a.PatientID, err = ParseID(a.PatientID); err != nil {
		vs.add("authorization.patient_id", "patient_id.uuid", "must be a UUID")
	}
	if a.ClinicID, err = ParseID(a.ClinicID); err != nil {
		vs.add("authorization.clinic_id", "clinic_id.uuid", "must be a UUID")
	}
	if !payerKnown {
		vs.add("authorization.payer_id", "payer_id.exists", "no payer has this id")
	}
	switch a.Service {
	case ServicePerDiem, ServiceGroup, ServiceIndividual, ServiceFamily, ServiceMedication:
	default:
		vs.add("authorization.service", "service.known", "per diem, group, individual, family or medication management")
	}
	a.Number = strings.TrimSpace(a.Number)
	if len(a.Number) > 50 {
		vs.add("authorization.number", "number.max_len", "at most 50 characters")
	}
	if a.AuthorizedUnits < 1 || a.AuthorizedUnits > 10000 {
		vs.add("authorization.authorized_units", "authorized_units.range", "1 to 10000 units")
	}
	from, errFrom := time.Parse(time.DateOnly, a.StartsOn)
	if errFrom != nil {
		vs.add("authorization.starts_on", "starts_on.date", "a real date, YYYY-MM-DD")
	}
	to, errTo := time.Parse(time.DateOnly, a.EndsOn)
	switch {
	case errTo != nil:
		vs.add("authorization.ends_on", "ends_on.date", "a real date, YYYY-MM-DD")
	case errFrom == nil && to.Before(from):
		vs.add("authorization.ends_on", "ends_on.after_starts_on", "on or after starts_on")
	}
	return a, vs.err()
}

// PickAuthorization chooses, among a patient's authorizations of one payer and service, the
// one a charge of units on date uses: the first (callers order them) whose window covers the
// date and with units left. used maps an authorization id to the units already used (it
// overrides UsedUnits). With none, hold is the reason the charge is held.
func PickAuthorization(auths []Authorization, used map[string]int32, date string, units int32) (id, hold string) {
	if len(auths) == 0 {
		return "", HoldAuthNone
	}
	hold = HoldAuthWindow
	for _, a := range auths {
		if !a.Covers(date) {
			continue
		}
		u, ok := used[a.ID]
		if !ok {
			u = a.UsedUnits
		}
		if a.AuthorizedUnits-u >= units {
			return a.ID, ""
		}
		hold = HoldAuthExhausted
	}
	return "", hold
}

// Usage thresholds: an authorization is nearly used at 80% of its units, exhausted at 100%.
func NearlyUsed(authorized, used int32) bool { return used*5 >= authorized*4 }

// Exhausted reports whether every authorized unit is used.
func Exhausted(authorized, used int32) bool { return used >= authorized }

// AuthorizationUse is an authorization's usage after a refresh, with the notices already sent.
type AuthorizationUse struct {
	Authorization
	NearlyUsedNotified bool
	ExhaustedNotified  bool
}
