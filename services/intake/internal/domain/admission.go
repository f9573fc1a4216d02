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
	RuleProgramKnown  = "program.known"
	// An admission from a referral: the clinic is the referral's, and the program is for the
	// population the referral was assessed as.
	RuleReferralClinic    = "referral.clinic"
	RuleProgramPopulation = "program.population"
)

// Programs (codes) and the population each serves. An empty program means ProgramAdultIOP for
// a direct admission and the assessed population's program for an admission from a referral.
const (
	ProgramAdultIOP      = "adult-iop"
	ProgramAdolescentIOP = "adolescent-iop"
)

var programPopulation = map[string]string{ProgramAdultIOP: PopulationAdult, ProgramAdolescentIOP: PopulationAdolescent}

// IOPLevel is the ASAM level of care of intensive outpatient treatment (2.1 in the 3rd and
// 4th editions). A referral is admitted only when its assessment's final level is this one: a
// person assessed for level 1 would be over-treated and one assessed for 2.5 or more
// under-treated; the clinician overrides the recommendation (with a reason) or refers out.
const IOPLevel = "2.1"

// Request field names, as in AdmitPatientRequest.
const (
	fieldGivenName   = "given_name"
	fieldFamilyName  = "family_name"
	fieldDateOfBirth = "date_of_birth"
	fieldStartDate   = "start_date"
	fieldClinicID    = "clinic_id"
	fieldProgram     = "program"
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
	return "invalid request: " + strings.Join(parts, ", ")
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
	Program      string // "" for the default (see ProgramAdultIOP)
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
	// Phone is the referral's phone number (E.164), "" for a direct admission (which takes
	// none). Intake keeps it for duplicate matching only; it is not a notification channel.
	Phone        string
	ProgramTrack string
	StartDate    Date
	AdmittedAt   time.Time // UTC, to the microsecond (as Postgres stores it, so the event and the row agree)
	Program      string
	// ReferralID is the referral the admission decides ("" for a direct admission), LevelOfCare
	// its assessment's final level ("" for a direct admission).
	ReferralID  string
	LevelOfCare string
	// FirstContactAt is the referral's first contact, or AdmittedAt for a direct admission (the
	// days-to-admission KPI counts from it).
	FirstContactAt time.Time
}

// Person is what duplicate matching compares.
func (a Admission) Person() Person {
	return Person{GivenName: a.GivenName, FamilyName: a.FamilyName, DateOfBirth: a.DateOfBirth, Phone: a.Phone, Email: a.ContactEmail}
}

// NewAdmission applies the admission rules and returns every violation together in a
// *ValidationError. clinic is nil when clinic_id names no known clinic. "Today" is the
// calendar date at now in the clinic's time zone (UTC when the clinic is unknown).
func NewAdmission(in AdmissionInput, clinic *Clinic, now time.Time, patientID, episodeID string) (Admission, error) {
	return newAdmission(in, clinic, nil, now, patientID, episodeID)
}

// AdmitReferral is NewAdmission deciding referral r, whose latest assessment is a (nil when
// it has none). r must be assessed, at a (the final level) IOPLevel, else a *PreconditionError
// (checked before the request's fields). The admission must be to r's clinic (RuleReferralClinic
// on clinic_id) and to the program of the assessed population (RuleProgramPopulation on
// program; an empty program takes it). The admission keeps r's first contact, r's phone number
// and a's final level.
func AdmitReferral(in AdmissionInput, clinic *Clinic, r Referral, a *Assessment, now time.Time, patientID, episodeID string) (Admission, error) {
	if err := CheckMove(r.Status, StatusAdmitted, ViaAdmission); err != nil {
		return Admission{}, err
	}
	if a == nil {
		return Admission{}, Precondition("the referral has no assessment")
	}
	if a.FinalLevel != IOPLevel {
		return Admission{}, Precondition("the referral's assessed level of care is not intensive outpatient (" + IOPLevel +
			"): override the assessment with a reason, or refer out")
	}
	return newAdmission(in, clinic, &admissionReferral{r, *a}, now, patientID, episodeID)
}

type admissionReferral struct {
	r Referral
	a Assessment
}

func newAdmission(in AdmissionInput, clinic *Clinic, from *admissionReferral, now time.Time, patientID, episodeID string) (Admission, error) {
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

	program := in.Program
	switch {
	case program == "" && from != nil && from.a.Population == PopulationAdolescent:
		program = ProgramAdolescentIOP
	case program == "":
		program = ProgramAdultIOP
	}
	if pop, ok := programPopulation[program]; !ok {
		add(fieldProgram, RuleProgramKnown, "must be adult-iop or adolescent-iop")
	} else if from != nil && pop != from.a.Population {
		add(fieldProgram, RuleProgramPopulation, "must be the program of the population the referral was assessed as")
	}
	if from != nil && clinic != nil && from.r.ClinicID != clinic.ID {
		add(fieldClinicID, RuleReferralClinic, "must be the referral's clinic")
	}

	if len(vs) > 0 {
		return Admission{}, &ValidationError{Violations: vs}
	}
	at := now.UTC().Truncate(time.Microsecond)
	a := Admission{
		PatientID: patientID, EpisodeID: episodeID, Clinic: *clinic,
		GivenName: given, FamilyName: family, DateOfBirth: dob,
		ContactEmail: strings.TrimSpace(in.ContactEmail), ProgramTrack: in.ProgramTrack,
		StartDate: start, AdmittedAt: at, Program: program, FirstContactAt: at,
	}
	if from != nil {
		a.ReferralID, a.LevelOfCare, a.FirstContactAt, a.Phone = from.r.ID, from.a.FinalLevel, from.r.FirstContactAt, from.r.Phone
	}
	return a, nil
}
