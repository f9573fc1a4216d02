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

// Enrollment statuses (see docs/scheduling.md).
const (
	StatusActive     = "active"     // holds a seat in its track
	StatusWaitlisted = "waitlisted" // waits in its track's queue, in order of WaitlistedAt
	StatusSwitched   = "switched"   // left for another track (ReplacedBy)
	StatusEnded      = "ended"      // the episode of care ended (discharge)
)

// Why an enrollment stopped (EnrollmentEnded.reason).
const (
	EndDischarged = "discharged"
	EndSwitched   = "switched"
)

// DateLayout is the wire form of calendar dates ("YYYY-MM-DD", clinic-local).
const DateLayout = time.DateOnly

var trackRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)

// Enrollment is a patient's place in a program track of a clinic, from a start date: a seat
// (active) or a place in the track's queue (waitlisted), until it is switched or ended.
type Enrollment struct {
	ID            string
	PatientID     string
	ClinicID      string
	EpisodeID     string    // intake's episode of care; empty on enrollments older than seats
	ProgramTrack  string    // the track's code
	StartDate     time.Time // calendar date, at 00:00 UTC
	Status        string
	SourceEventID string // the admission event it was created from; empty for a switch
	CreatedAt     time.Time

	TrackID      string // empty on enrollments older than seats
	ProgramCode  string
	WaitlistedAt time.Time // zero unless it waited
	EnrolledAt   time.Time // when it got its seat; zero while waitlisted
	EndedAt      time.Time // zero unless switched or ended
	EndReason    string
	Replaces     string // the enrollment this one was switched from
	// ReplacedBy is, on a switched enrollment, the one that replaced it; on an active one, the
	// waitlisted enrollment of a pending switch (the seat is kept until that one is promoted).
	ReplacedBy string
}

// Current reports whether e is active or waitlisted.
func (e Enrollment) Current() bool { return e.Status == StatusActive || e.Status == StatusWaitlisted }

// Admission is what scheduling needs from an admitted patient.
type Admission struct {
	PatientID    string
	EpisodeID    string
	ClinicID     string
	ProgramTrack string
	StartDate    string // "YYYY-MM-DD"
	// Program is the program code the admission names (e.g. "adult-iop"); empty when intake
	// sent none. When set it must be the track's program (RuleTrackProgram, the app checks it).
	Program string
}

// RuleTrackProgram: an admission names a program other than its track's.
const RuleTrackProgram = "program.track_program"

// NewEnrollment validates an admission and returns the enrollment it creates, not yet placed
// in a track (the app does that under the track lock, see Seat). Every problem is reported,
// wrapped in ErrInvalid.
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
		EpisodeID:     check("episode_id", a.EpisodeID),
		ClinicID:      check("clinic_id", a.ClinicID),
		SourceEventID: check("source_event_id", sourceEventID),
		ProgramTrack:  a.ProgramTrack,
	}
	if !trackRE.MatchString(a.ProgramTrack) {
		errs = append(errs, errors.New("program_track: must be a lowercase track code"))
	}
	if a.Program != "" && !trackRE.MatchString(a.Program) {
		errs = append(errs, errors.New("program: must be a lowercase program code"))
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

// CurrentFor picks the enrollment to show viewer among a patient's enrollments: an active or
// waitlisted one, in a clinic viewer can see, with the latest start date (then the latest
// created). The waitlisted replacement of a pending switch is not picked: the enrollment
// holding the seat is (its ReplacedBy names the replacement). Enrollments in other clinics are
// treated as absent, so ok is false both when the patient has none and when viewer may see
// none of them: existence is never disclosed across clinics.
func CurrentFor(viewer Viewer, all []Enrollment) (Enrollment, bool) {
	pending := map[string]bool{}
	for _, e := range all {
		if e.Status == StatusActive && e.ReplacedBy != "" {
			pending[e.ReplacedBy] = true
		}
	}
	var best Enrollment
	found := false
	for _, e := range all {
		if !e.Current() || pending[e.ID] || !viewer.CanSeeClinic(e.ClinicID) {
			continue
		}
		if !found || e.StartDate.After(best.StartDate) ||
			(e.StartDate.Equal(best.StartDate) && e.CreatedAt.After(best.CreatedAt)) {
			best, found = e, true
		}
	}
	return best, found
}
