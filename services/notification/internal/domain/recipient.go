// Package domain holds notification's rules: who a message goes to, what it says, and when a
// failed send is retried. It has no I/O.
package domain

import (
	"errors"
	"fmt"
	"net/mail"
	"regexp"
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

// Recipient is notification's own minimal copy of how to reach a patient. It is assembled
// from two facts intake publishes separately and that may arrive in either order: the
// admission (first visit date) and the contact details. A message is queued only once both
// are known.
type Recipient struct {
	PatientID     string
	ClinicID      string
	PreferredName string
	// Email is the normalised bare address, or "" when intake has none for the patient.
	Email string
	// Phone is E.164, or "" when not known. No message uses it yet.
	Phone string
	// TimeZone is the clinic's IANA zone, e.g. "America/Chicago".
	TimeZone string
	// StartDate is the first visit, a clinic-local calendar date (only Y-M-D is meaningful).
	StartDate time.Time
}

// Admission is what a PatientAdmitted contributes to the recipient copy.
type Admission struct {
	PatientID string
	ClinicID  string
	TimeZone  string
	StartDate time.Time
	// At is when the admission happened (the event's occurred_at): an older admission event
	// never overwrites a newer one.
	At time.Time
}

// Contact is what a PatientContactRecorded contributes to the recipient copy.
type Contact struct {
	PatientID     string
	ClinicID      string
	TimeZone      string
	PreferredName string
	Email         string // normalised bare address, or "" when intake has none
	Phone         string // E.164, or ""
	// At is when the details were recorded (the event's occurred_at): older contact details
	// never overwrite newer ones.
	At time.Time
}

// ErrInvalidRecipient marks event data that can never make a usable recipient copy.
var ErrInvalidRecipient = errors.New("invalid recipient")

// e164 is an international phone number, as intake validates it.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)

// NewAdmission validates admission data. A malformed id, date or zone is an error
// (ErrInvalidRecipient).
func NewAdmission(patientID, clinicID, timeZone, startDate string, at time.Time) (Admission, error) {
	errs := checkIDsAndZone(patientID, clinicID, timeZone)
	d, err := time.Parse(DateLayout, startDate)
	if err != nil {
		errs = append(errs, errors.New("start_date is not YYYY-MM-DD"))
	}
	if len(errs) > 0 {
		return Admission{}, fmt.Errorf("%w: %w", ErrInvalidRecipient, errors.Join(errs...))
	}
	return Admission{PatientID: patientID, ClinicID: clinicID, TimeZone: timeZone, StartDate: d, At: at.UTC()}, nil
}

// NewContact validates and normalises contact details. A malformed id or zone, an email that
// is not exactly one address, or a phone that is not E.164 is an error (ErrInvalidRecipient);
// an empty email or phone means intake has none. The errors never quote the values.
func NewContact(patientID, clinicID, preferredName, email, phone, timeZone string, at time.Time) (Contact, error) {
	errs := checkIDsAndZone(patientID, clinicID, timeZone)
	c := Contact{PatientID: patientID, ClinicID: clinicID, TimeZone: timeZone,
		PreferredName: CleanName(preferredName), Phone: strings.TrimSpace(phone), At: at.UTC()}
	if strings.TrimSpace(email) != "" {
		if c.Email = NormalizeEmail(email); c.Email == "" {
			errs = append(errs, errors.New("email is not a single address"))
		}
	}
	if c.Phone != "" && !e164.MatchString(c.Phone) {
		errs = append(errs, errors.New("phone is not E.164"))
	}
	if len(errs) > 0 {
		return Contact{}, fmt.Errorf("%w: %w", ErrInvalidRecipient, errors.Join(errs...))
	}
	return c, nil
}

func checkIDsAndZone(patientID, clinicID, timeZone string) []error {
	var errs []error
	if _, err := uuid.Parse(patientID); err != nil {
		errs = append(errs, errors.New("patient_id is not a uuid"))
	}
	if _, err := uuid.Parse(clinicID); err != nil {
		errs = append(errs, errors.New("clinic_id is not a uuid"))
	}
	if timeZone == "" {
		errs = append(errs, errors.New("clinic_time_zone is empty"))
	} else if _, err := time.LoadLocation(timeZone); err != nil {
		errs = append(errs, errors.New("clinic_time_zone is not an IANA zone"))
	}
	return errs
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
