package domain

import (
	"slices"
	"strings"
	"time"
)

// EpisodeDischarged is the status of an episode of care that has ended.
const EpisodeDischarged = "discharged"

// Discharge reasons (as in SAMHSA's TEDS), stored as these codes.
const (
	DischargeCompleted   = "completed"
	DischargeTransferred = "transferred" // to another level of care or provider
	DischargeDroppedOut  = "dropped_out" // left against advice, or lost to contact
	DischargeTerminated  = "terminated"  // by the facility
	DischargeOther       = "other"       // moved, incarcerated, died...
)

// DischargeReasons are the discharge reason codes.
var DischargeReasons = []string{DischargeCompleted, DischargeTransferred, DischargeDroppedOut, DischargeTerminated, DischargeOther}

// Discharge rule ids (with RuleDateValid for a date that does not exist).
const (
	RuleDischargeReasonKnown    = "discharge_reason.known"
	RuleDischargeNotBeforeStart = "discharge_date.not_before_start"
	RuleDischargeNotFuture      = "discharge_date.not_future"
)

const (
	fieldDischargeDate = "discharge_date"
	fieldReason        = "reason"
)

// CareEpisode is an episode of care as stored: one admission to a program track at a clinic,
// and, once it has ended, its discharge.
type CareEpisode struct {
	ID           string
	PatientID    string
	ClinicID     string
	ReferralID   string // empty for a direct admission
	Program      string // may be empty for episodes admitted before programs were recorded
	ProgramTrack string
	StartDate    Date
	Status       string // EpisodeAdmitted or EpisodeDischarged
	AdmittedAt   time.Time

	// Set once discharged.
	DischargeReason string
	DischargeDate   Date
	DischargedAt    time.Time
	DischargeNote   string
	DischargedBy    string
}

// DischargeInput is a discharge request as received (shape already checked by protovalidate).
type DischargeInput struct {
	Reason        string // a DischargeReasons code
	DischargeDate string // "YYYY-MM-DD", clinic calendar
	Note          string // kept in intake only, never in events
}

// Discharge ends the episode: it returns the episode as discharged by `by` at now. The episode
// must be admitted (a *PreconditionError otherwise, e.g. when already discharged), and the
// discharge date a real date, not before the start date and not after today in the clinic's
// time zone (loc); all date and reason violations come together in a *ValidationError. A date
// that does not exist is reported before the status is looked at: it is wrong whatever the state.
func (e CareEpisode) Discharge(in DischargeInput, loc *time.Location, now time.Time, by string) (CareEpisode, error) {
	var vs []Violation
	add := func(field, rule, msg string) { vs = append(vs, Violation{Field: field, Rule: rule, Msg: msg}) }
	if !slices.Contains(DischargeReasons, in.Reason) {
		add(fieldReason, RuleDischargeReasonKnown, "must be a known discharge reason")
	}
	date, err := ParseDate(in.DischargeDate)
	if err != nil {
		add(fieldDischargeDate, RuleDateValid, "must be a real calendar date YYYY-MM-DD")
	}
	if len(vs) > 0 {
		return CareEpisode{}, &ValidationError{Violations: vs}
	}
	if e.Status != EpisodeAdmitted {
		return CareEpisode{}, Precondition("only an admitted episode can be discharged; this one is " + e.Status)
	}
	// Both can hold at once when the start date is still ahead: such an episode cannot be
	// discharged before it starts.
	if date.Before(e.StartDate) {
		add(fieldDischargeDate, RuleDischargeNotBeforeStart, "must not be before the episode's start date")
	}
	if date.After(DateIn(now, loc)) {
		add(fieldDischargeDate, RuleDischargeNotFuture, "must not be after today in the clinic's time zone")
	}
	if len(vs) > 0 {
		return CareEpisode{}, &ValidationError{Violations: vs}
	}
	e.Status = EpisodeDischarged
	e.DischargeReason = in.Reason
	e.DischargeDate = date
	e.DischargedAt = now.UTC().Truncate(time.Microsecond)
	e.DischargeNote = strings.TrimSpace(in.Note)
	e.DischargedBy = by
	return e, nil
}
