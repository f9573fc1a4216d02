// Package domain holds intake's rules: what makes an admission valid. It is pure (no I/O) so the
// rules are tested exhaustively with tables.
package domain

import (
	"fmt"
	"strings"
	"time"
)

// Admission limits. A start date may be back-dated a little (paperwork often follows the first
// session), but a start date further back, or far ahead, is almost always a typing mistake in
// the year. 90 days covers a long-running admission entered late; 365 days covers planned
// admissions (court or employer referrals with a fixed start). A date of birth more than 120
// years back is likewise a typo.
const (
	MaxStartBackdateDays = 90
	MaxStartLeadDays     = 365
	MaxAgeYears          = 120
)

// Rule ids reported with a violation (alongside protovalidate's own, e.g. "string.uuid").
const (
	RuleDateValid     = "date.valid"
	RuleNameNotBlank  = "name.not_blank"
	RuleBirthInPast   = "date_of_birth.past"
	RuleBirthMaxAge   = "date_of_birth.max_age"
	RuleStartBackdate = "start_date.max_backdate"
	RuleStartLead     = "start_date.max_lead"
	RuleClinicKnown   = "clinic.known"
)

// Request field names, as in AdmitPatientRequest.
const (
	fieldGivenName   = "given_name"
	fieldFamilyName  = "family_name"
	fieldDateOfBirth = "date_of_birth"
	fieldStartDate   = "start_date"
	fieldClinicID    = "clinic_id"
)

// EpisodeAdmitted is the status of a new episode of care.
const EpisodeAdmitted = "admitted"

// Violation is one broken rule on one request field. Messages never quote the value (it may be
// PHI and messages end up in client logs).
type Violation struct {
	Field string
	Rule  string
	Msg   string
}

// ValidationError lists every violation of one request.
type ValidationError struct{ Violations []Violation }

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.Field + ": " + v.Rule
	}
	return "invalid admission: " + strings.Join(parts, ", ")
}

// AdmissionInput is an admission request as received (already checked for shape by
// protovalidate: lengths, "YYYY-MM-DD" pattern, email, uuid, track code).
type AdmissionInput struct {
	GivenName    string
	FamilyName   string
	DateOfBirth  string
	ContactEmail string
	ClinicID     string
	ProgramTrack string
	StartDate    string
}

// Admission is a valid admission: a new patient and their first episode of care.
type Admission struct {
	PatientID    string
	EpisodeID    string
	Clinic       Clinic
	GivenName    string
	FamilyName   string
	DateOfBirth  Date
	ContactEmail string
	ProgramTrack string
	StartDate    Date
	AdmittedAt   time.Time // UTC, to the microsecond (as Postgres stores it, so the event and the row agree)
}

// NewAdmission applies the admission rules and returns every violation together in a
// *ValidationError. clinic is nil when clinic_id names no known clinic. "Today" is the
// calendar date at now in the clinic's time zone (UTC when the clinic is unknown).
func NewAdmission(in AdmissionInput, clinic *Clinic, now time.Time, patientID, episodeID string) (Admission, error) {
	var vs []Violation
	add := func(field, rule, msg string) { vs = append(vs, Violation{Field: field, Rule: rule, Msg: msg}) }

	loc := time.UTC
	if clinic == nil {
		add(fieldClinicID, RuleClinicKnown, "no clinic with this id")
	} else {
		loc = clinic.Location
	}
	today := DateIn(now, loc)

	given, family := strings.TrimSpace(in.GivenName), strings.TrimSpace(in.FamilyName)
	if given == "" {
		add(fieldGivenName, RuleNameNotBlank, "must not be blank")
	}
	if family == "" {
		add(fieldFamilyName, RuleNameNotBlank, "must not be blank")
	}

	dob, err := ParseDate(in.DateOfBirth)
	switch {
	case err != nil:
		add(fieldDateOfBirth, RuleDateValid, "must be a real calendar date YYYY-MM-DD")
	case !dob.Before(today):
		add(fieldDateOfBirth, RuleBirthInPast, "must be in the past")
	case dob.Before(today.AddYears(-MaxAgeYears)):
		add(fieldDateOfBirth, RuleBirthMaxAge, fmt.Sprintf("must be within the last %d years", MaxAgeYears))
	}

	start, err := ParseDate(in.StartDate)
	switch {
	case err != nil:
		add(fieldStartDate, RuleDateValid, "must be a real calendar date YYYY-MM-DD")
	case start.Before(today.AddDays(-MaxStartBackdateDays)):
		add(fieldStartDate, RuleStartBackdate, fmt.Sprintf("must not be more than %d days in the past (clinic calendar)", MaxStartBackdateDays))
	case start.After(today.AddDays(MaxStartLeadDays)):
		add(fieldStartDate, RuleStartLead, fmt.Sprintf("must not be more than %d days ahead (clinic calendar)", MaxStartLeadDays))
	}

	if len(vs) > 0 {
		return Admission{}, &ValidationError{Violations: vs}
	}
	return Admission{
		PatientID: patientID, EpisodeID: episodeID, Clinic: *clinic,
		GivenName: given, FamilyName: family, DateOfBirth: dob,
		ContactEmail: strings.TrimSpace(in.ContactEmail), ProgramTrack: in.ProgramTrack,
		StartDate: start, AdmittedAt: now.UTC().Truncate(time.Microsecond),
	}, nil
}
