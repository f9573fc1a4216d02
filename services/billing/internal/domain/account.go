// Package domain holds billing's rules, free of transport and storage.
package domain

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Errors the app and ports translate: ErrInvalid for input that can never be accepted (an
// event carrying it is dead-lettered), ErrNotFound for an absent or invisible account.
var (
	ErrInvalid  = errors.New("invalid")
	ErrNotFound = errors.New("not found")
)

// StatusOpen is the status of a new account.
const StatusOpen = "open"

// Account is a patient's account at a clinic. Money is integer cents.
type Account struct {
	ID            string
	PatientID     string
	ClinicID      string
	EnrollmentID  string // the enrollment that opened it
	BalanceCents  int64  // positive: the patient owes
	Status        string
	SourceEventID string // the event it was opened from
	OpenedAt      time.Time
}

// Enrollment is what billing needs from a new enrollment.
type Enrollment struct {
	EnrollmentID string
	PatientID    string
	ClinicID     string
}

// OpenAccount validates an enrollment and returns the open, zero-balance account it opens.
// Every problem is reported, wrapped in ErrInvalid.
func OpenAccount(id, sourceEventID string, e Enrollment) (Account, error) {
	var errs []error
	check := func(field, value string) string {
		v, err := ParseID(value)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
		return v
	}
	a := Account{
		ID:            check("account_id", id),
		PatientID:     check("patient_id", e.PatientID),
		ClinicID:      check("clinic_id", e.ClinicID),
		EnrollmentID:  check("enrollment_id", e.EnrollmentID),
		SourceEventID: check("source_event_id", sourceEventID),
		Status:        StatusOpen,
	}
	if len(errs) > 0 {
		return Account{}, fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return a, nil
}

// ParseID accepts a non-nil UUID in its canonical 36-character form and returns it lowercase.
func ParseID(s string) (string, error) {
	u, err := uuid.Parse(s)
	if err != nil || len(s) != 36 || u == uuid.Nil {
		return "", errors.New("must be a UUID")
	}
	return strings.ToLower(s), nil
}

// Viewer is whoever reads accounts: it sees only the clinics it is granted.
type Viewer interface {
	CanSeeClinic(clinicID string) bool
}

// Visible picks the account to show viewer among a patient's accounts (one per clinic): the
// most recently opened in a clinic viewer can see. Accounts in other clinics are treated as
// absent, so ok is false both when the patient has none and when viewer may see none of them:
// existence is never disclosed across clinics.
func Visible(viewer Viewer, all []Account) (Account, bool) {
	var best Account
	found := false
	for _, a := range all {
		if viewer.CanSeeClinic(a.ClinicID) && (!found || a.OpenedAt.After(best.OpenedAt)) {
			best, found = a, true
		}
	}
	return best, found
}
