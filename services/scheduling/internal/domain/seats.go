package domain

import (
	"errors"
	"fmt"
	"time"
)

// Seats and waitlists (docs/scheduling.md). The app applies these rules while it holds the
// track's row lock, so the counts they see cannot change under them.

// ErrFailedPrecondition: the request is well formed but the enrollment's or track's state
// forbids it (a *PreconditionError says which rule).
var ErrFailedPrecondition = errors.New("failed precondition")

// Rule ids of enrollment requests.
const (
	RuleTrackCodeKnown       = "track_code.known"          // no such track in the enrollment's clinic
	RuleTrackCodeSameProgram = "track_code.same_program"   // the track belongs to another program
	RuleTrackCodeDifferent   = "track_code.different"      // the enrollment is already in that track
	RuleEnrollmentCurrent    = "enrollment.current"        // the enrollment is switched or ended
	RuleEnrollmentTrack      = "enrollment.track"          // an enrollment older than seats, without a track
	RuleEnrollmentPending    = "enrollment.switch_pending" // its switch waits for a seat: switch the waitlisted one
	RuleTrackActive          = "track.active"              // the track takes no new enrollments
)

// PreconditionError names the state rule a request breaks. Its message never quotes a value.
type PreconditionError struct {
	Rule string
	Msg  string
}

func (e *PreconditionError) Error() string { return e.Msg + " [" + e.Rule + "]" }

// Unwrap makes a PreconditionError an ErrFailedPrecondition.
func (e *PreconditionError) Unwrap() error { return ErrFailedPrecondition }

// Seat decides where a newcomer to a track goes: a seat (StatusActive) when one is free and
// nobody waits ahead of them, else the waitlist (StatusWaitlisted). taken counts the active
// enrollments, waiting the waitlisted ones. A capacity lowered below taken keeps everyone
// seated and gives no new seat until enough have left.
func Seat(capacity, taken, waiting int) string {
	if taken < capacity && waiting == 0 {
		return StatusActive
	}
	return StatusWaitlisted
}

// Promotions is how many of the waiting get a seat now: the free seats, at most everybody
// waiting, never fewer than none.
func Promotions(capacity, taken, waiting int) int {
	return max(0, min(capacity-taken, waiting))
}

// SwitchKind is what a track switch does.
type SwitchKind int

// Kinds of track switch.
const (
	// SwitchToSeat: a new active enrollment in the target track; the switched one ends, and
	// the seat it (or the enrollment it was to replace) held is freed.
	SwitchToSeat SwitchKind = iota + 1
	// SwitchToWaitlist: a new waitlisted enrollment in the target track. A seat held in the
	// old track is kept until the new one is promoted (a pending switch); a place in the old
	// track's queue is given up at once.
	SwitchToWaitlist
	// SwitchCancel: the target is the track whose seat a pending switch would give up; the
	// waitlisted replacement ends and the seat is kept.
	SwitchCancel
)

// SwitchInput is what a track switch is decided on.
type SwitchInput struct {
	Enrollment Enrollment // the enrollment asked to switch
	// Holder is the active enrollment whose seat the switch would give up: Enrollment itself
	// when active, the seat holder when Enrollment is the waitlisted replacement of a pending
	// switch, nil otherwise.
	Holder  *Enrollment
	Target  *Track // nil: no track of that code in the clinic
	Taken   int    // active enrollments of Target
	Waiting int    // waitlisted enrollments of Target
}

// PlanSwitch decides a track switch, or says which rule forbids it: a *ValidationError naming
// track_code for a target that can never be valid, a *PreconditionError for a state that
// forbids it now.
func PlanSwitch(in SwitchInput) (SwitchKind, error) {
	e := in.Enrollment
	switch {
	case !e.Current():
		return 0, &PreconditionError{RuleEnrollmentCurrent, "the enrollment is no longer active or waitlisted"}
	case e.TrackID == "":
		return 0, &PreconditionError{RuleEnrollmentTrack, "the enrollment predates tracks with seats and cannot be switched"}
	case e.Status == StatusActive && e.ReplacedBy != "":
		return 0, &PreconditionError{RuleEnrollmentPending, "a switch of this enrollment waits for a seat; switch the waitlisted enrollment instead"}
	case in.Target == nil:
		return 0, Invalid("track_code", RuleTrackCodeKnown, "no such track in the enrollment's clinic")
	case in.Target.ProgramCode != e.ProgramCode:
		return 0, Invalid("track_code", RuleTrackCodeSameProgram, "must be a track of the enrollment's program")
	case in.Target.ID == e.TrackID:
		return 0, Invalid("track_code", RuleTrackCodeDifferent, "the enrollment is already in this track")
	case in.Holder != nil && in.Holder.ID != e.ID && in.Holder.TrackID == in.Target.ID:
		return SwitchCancel, nil
	case !in.Target.Active:
		return 0, &PreconditionError{RuleTrackActive, "the track takes no new enrollments"}
	case Seat(in.Target.Capacity, in.Taken, in.Waiting) == StatusActive:
		return SwitchToSeat, nil
	default:
		return SwitchToWaitlist, nil
	}
}

// Reasons of status changes in an enrollment's history.
const (
	ReasonAdmitted        = "admitted"         // created from an admission (active or waitlisted)
	ReasonPromoted        = "promoted"         // waitlisted -> active when a seat freed
	ReasonSwitch          = "switch"           // created by a track switch
	ReasonSwitched        = "switched"         // left for another track
	ReasonSwitchCancelled = "switch_cancelled" // a pending switch's replacement, withdrawn
	ReasonDischarged      = "discharged"       // the episode of care ended
)

// HistoryEntry is one status change of an enrollment. From is empty when it was created.
type HistoryEntry struct {
	ID           string
	EnrollmentID string
	ClinicID     string
	From, To     string
	Reason       string
	Note         string // the caller's words for a switch; never in events or logs
	At           time.Time
	Actor        string // token subject of the caller, or "event:<id>" of the causing event
}

// Discharge is what scheduling needs from intake's PatientDischarged.
type Discharge struct {
	PatientID string
	EpisodeID string
	ClinicID  string
}

// NewDischarge validates a discharge; every problem is reported, wrapped in ErrInvalid.
func NewDischarge(d Discharge) (Discharge, error) {
	var errs []error
	check := func(field, value string) string {
		v, err := ParseID(value)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
		return v
	}
	out := Discharge{PatientID: check("patient_id", d.PatientID), EpisodeID: check("episode_id", d.EpisodeID),
		ClinicID: check("clinic_id", d.ClinicID)}
	if len(errs) > 0 {
		return Discharge{}, fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return out, nil
}

// Ends reports whether a discharge of episode ends e: an active or waitlisted enrollment of
// that episode, or of no known episode (enrollments older than seats). A discharge of an
// earlier episode never ends a later one.
func (d Discharge) Ends(e Enrollment) bool {
	return e.Current() && e.PatientID == d.PatientID && e.ClinicID == d.ClinicID &&
		(e.EpisodeID == d.EpisodeID || e.EpisodeID == "")
}
