// Package domain holds notification's rules: who a message goes to, what it says, and when a
// failed send is retried. It has no I/O.
package domain

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"

	_ "time/tzdata" // clinic time zones must resolve even on hosts without a zoneinfo database
)

// DateLayout is the calendar-date format on the bus ("YYYY-MM-DD").
const DateLayout = "2006-01-02"

// maxNameRunes bounds the preferred name copied into messages.
const maxNameRunes = 100

// Recipient is notification's own minimal copy of how to reach a patient.
type Recipient struct {
	PatientID     string
	ClinicID      string
	PreferredName string
	// Email is the normalised bare address, or "" when the one given is unusable.
	Email string
	// TimeZone is the clinic's IANA zone, e.g. "America/Chicago".
	TimeZone string
	// StartDate is the first visit, a clinic-local calendar date (only Y-M-D is meaningful).
	StartDate time.Time
	// UpdatedAt is when the copied fact happened (the event's occurred_at).
	UpdatedAt time.Time
}

// ErrInvalidRecipient marks admission data that can never make a usable recipient.
var ErrInvalidRecipient = errors.New("invalid recipient")

// NewRecipient validates and normalises admission data. A malformed id, date or zone is an
// error (ErrInvalidRecipient); an unusable email is kept as "" so that the message to it
// fails visibly instead of the admission being dropped.
func NewRecipient(patientID, clinicID, preferredName, email, timeZone, startDate string, updatedAt time.Time) (Recipient, error) {
	r := Recipient{UpdatedAt: updatedAt.UTC()}
	var errs []error
	if _, err := uuid.Parse(patientID); err != nil {
		errs = append(errs, errors.New("patient_id is not a uuid"))
	}
	if _, err := uuid.Parse(clinicID); err != nil {
		errs = append(errs, errors.New("clinic_id is not a uuid"))
	}
	d, err := time.Parse(DateLayout, startDate)
	if err != nil {
		errs = append(errs, errors.New("start_date is not YYYY-MM-DD"))
	}
	if timeZone == "" {
		errs = append(errs, errors.New("clinic_time_zone is empty"))
	} else if _, err := time.LoadLocation(timeZone); err != nil {
		errs = append(errs, errors.New("clinic_time_zone is not an IANA zone"))
	}
	if len(errs) > 0 {
		return Recipient{}, fmt.Errorf("%w: %w", ErrInvalidRecipient, errors.Join(errs...))
	}
	r.PatientID, r.ClinicID, r.TimeZone, r.StartDate = patientID, clinicID, timeZone, d
	r.PreferredName = CleanName(preferredName)
	r.Email = NormalizeEmail(email)
	return r, nil
}

// NormalizeEmail returns the bare address of s, or "" when s is not exactly one address.
func NormalizeEmail(s string) string {
	a, err := mail.ParseAddress(strings.TrimSpace(s))
	if err != nil || !strings.Contains(a.Address, "@") {
		return ""
	}
	return a.Address
}

// CleanName makes a name safe to print in a message: control characters dropped, white space
// collapsed, length bounded.
func CleanName(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r):
			return ' '
		case unicode.IsControl(r):
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > maxNameRunes {
		s = strings.TrimSpace(string(r[:maxNameRunes]))
	}
	return s
}
