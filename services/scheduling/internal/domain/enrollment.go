// Package domain holds scheduling's rules, free of transport and storage.
package domain

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Errors the app and ports translate: ErrInvalid for input that can never be accepted (an
// event carrying it is dead-lettered), ErrNotFound for an absent or invisible enrollment.
var (
	ErrInvalid  = errors.New("invalid")
	ErrNotFound = errors.New("not found")
)

// StatusActive is the status of a new enrollment.
const StatusActive = "active"

// DateLayout is the wire form of calendar dates ("YYYY-MM-DD", clinic-local).
const DateLayout = time.DateOnly

var trackRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)

// Enrollment is a patient's seat in a program track of a clinic, from a start date.
type Enrollment struct {
	ID            string
	PatientID     string
	ClinicID      string
	ProgramTrack  string
	StartDate     time.Time // calendar date, at 00:00 UTC
	Status        string
	SourceEventID string // the admission event it was created from
	CreatedAt     time.Time
}

// Admission is what scheduling needs from an admitted patient.
type Admission struct {
	PatientID    string
	ClinicID     string
	ProgramTrack string
	StartDate    string // "YYYY-MM-DD"
}

// NewEnrollment validates an admission and returns the active enrollment it creates. Every
// problem is reported, wrapped in ErrInvalid.
func NewEnrollment(id, sourceEventID string, a Admission) (Enrollment, error) {
	var errs []error
	check := func(field, value string) string {
		v, err := ParseID(value)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
		return v
	}
	e := Enrollment{
		ID:            check("enrollment_id", id),
		PatientID:     check("patient_id", a.PatientID),
		ClinicID:      check("clinic_id", a.ClinicID),
		SourceEventID: check("source_event_id", sourceEventID),
		ProgramTrack:  a.ProgramTrack,
		Status:        StatusActive,
	}
	if !trackRE.MatchString(a.ProgramTrack) {
		errs = append(errs, errors.New("program_track: must be a lowercase track code"))
	}
	d, err := time.Parse(DateLayout, a.StartDate)
	if err != nil {
		errs = append(errs, errors.New("start_date: must be a calendar date YYYY-MM-DD"))
	}
	e.StartDate = d
	if len(errs) > 0 {
		return Enrollment{}, fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return e, nil
}

// ParseID accepts a non-nil UUID in its canonical 36-character form and returns it lowercase.
func ParseID(s string) (string, error) {
	u, err := uuid.Parse(s)
	if err != nil || len(s) != 36 || u == uuid.Nil {
		return "", errors.New("must be a UUID")
	}
	return strings.ToLower(s), nil
}

// Viewer is whoever reads enrollments: it sees only the clinics it is granted.
type Viewer interface {
	CanSeeClinic(clinicID string) bool
}

// Current picks the enrollment to show viewer among a patient's enrollments: the one with the
// latest start date (then the latest created) in a clinic viewer can see. Enrollments in other
// clinics are treated as absent, so ok is false both when the patient has none and when
// viewer may see none of them: existence is never disclosed across clinics.
func Current(viewer Viewer, all []Enrollment) (Enrollment, bool) {
	var best Enrollment
	found := false
	for _, e := range all {
		if !viewer.CanSeeClinic(e.ClinicID) {
			continue
		}
		if !found || e.StartDate.After(best.StartDate) ||
			(e.StartDate.Equal(best.StartDate) && e.CreatedAt.After(best.CreatedAt)) {
			best, found = e, true
		}
	}
	return best, found
}
