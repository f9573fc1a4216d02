package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trellis-health/trellis/services/intake/internal/domain/asam"
)

// ReferralStatus is where a referral stands in the queue (stored as this text code).
type ReferralStatus string

// Referral statuses.
const (
	StatusNew         ReferralStatus = "new"
	StatusContacted   ReferralStatus = "contacted"
	StatusScreened    ReferralStatus = "screened"
	StatusAssessed    ReferralStatus = "assessed"
	StatusAdmitted    ReferralStatus = "admitted"
	StatusReferredOut ReferralStatus = "referred_out"
	StatusClosed      ReferralStatus = "closed"
)

// Statuses lists every referral status, in funnel order.
var Statuses = []ReferralStatus{StatusNew, StatusContacted, StatusScreened, StatusAssessed, StatusAdmitted, StatusReferredOut, StatusClosed}

// OpenStatuses are the statuses of referrals still being worked (duplicates are looked for among them).
var OpenStatuses = []ReferralStatus{StatusNew, StatusContacted, StatusScreened, StatusAssessed}

// Final reports whether no move leaves s.
func (s ReferralStatus) Final() bool {
	return s == StatusAdmitted || s == StatusReferredOut || s == StatusClosed
}

// Via is the call that makes a status move: some moves carry a decision and only their own
// call may make them.
type Via string

// The calls that move a referral.
const (
	ViaChangeStatus Via = "ChangeReferralStatus"
	ViaAssessment   Via = "RecordAssessment"
	ViaAdmission    Via = "AdmitPatient"
	ViaReferOut     Via = "ReferOut"
)

// Vias lists every call that moves a referral.
var Vias = []Via{ViaChangeStatus, ViaAssessment, ViaAdmission, ViaReferOut}

type move struct{ from, to ReferralStatus }

// moves is the referral state machine: every legal move and the one call that makes it.
// Anything not listed is illegal, including a move to the same status; admitted, referred_out
// and closed are final.
var moves = map[move]Via{
	{StatusNew, StatusContacted}:        ViaChangeStatus,
	{StatusContacted, StatusScreened}:   ViaChangeStatus,
	{StatusScreened, StatusAssessed}:    ViaAssessment,
	{StatusAssessed, StatusAdmitted}:    ViaAdmission,
	{StatusScreened, StatusReferredOut}: ViaReferOut,
	{StatusAssessed, StatusReferredOut}: ViaReferOut,
	{StatusNew, StatusClosed}:           ViaChangeStatus,
	{StatusContacted, StatusClosed}:     ViaChangeStatus,
	{StatusScreened, StatusClosed}:      ViaChangeStatus,
	{StatusAssessed, StatusClosed}:      ViaChangeStatus,
}

// CheckMove returns nil when via may move a referral from from to to, else a
// *PreconditionError saying why not (statuses only, no patient data).
func CheckMove(from, to ReferralStatus, via Via) error {
	legal, ok := moves[move{from, to}]
	switch {
	case ok && legal == via:
		return nil
	case ok:
		return Precondition(fmt.Sprintf("a referral moves from %s to %s only through %s", from, to, legal))
	case from.Final():
		return Precondition(fmt.Sprintf("the referral is %s, which is final", from))
	default:
		return Precondition(fmt.Sprintf("a referral cannot move from %s to %s", from, to))
	}
}

// Referral sources (stored codes).
const (
	SourceSelf        = "self"
	SourceHospital    = "hospital"
	SourceDetoxUnit   = "detox_unit"
	SourceCourt       = "court"
	SourceEmployer    = "employer"
	SourceFamily      = "family"
	SourceOtherClinic = "other_clinic"
	SourceOther       = "other"
)

// Sources lists the referral sources.
var Sources = []string{SourceSelf, SourceHospital, SourceDetoxUnit, SourceCourt, SourceEmployer, SourceFamily, SourceOtherClinic, SourceOther}

// Preferred program track times (stored codes); "" is no preference.
const (
	TrackDay     = "day"
	TrackEvening = "evening"
)

// Referral limits. First contact may be up to MaxClockSkew ahead of the server's clock (a
// client's clock a little fast is not a mistake worth refusing; it is then taken as now), and at most
// MaxFirstContactBackdateDays back: an older one is almost always a mistyped year, and it
// would distort the days-to-admission KPI.
const (
	MaxClockSkew                = 5 * time.Minute
	MaxFirstContactBackdateDays = 90
)

// Rule ids of referral violations (besides RuleDateValid, RuleNameNotBlank, RuleBirthInPast,
// RuleBirthMaxAge and RuleClinicKnown).
const (
	RuleSourceKnown          = "source.known"
	RuleTrackKnown           = "preferred_track.known"
	RuleContactRequired      = "referral.contact"
	RuleFirstContactFuture   = "first_contact_at.not_future"
	RuleFirstContactBackdate = "first_contact_at.max_backdate"
)

// ReferralInput is a referral as received (shape already checked by protovalidate).
type ReferralInput struct {
	ClinicID       string
	Source         string
	GivenName      string
	FamilyName     string
	DateOfBirth    string // "" when not given
	Phone          string // E.164 or ""
	Email          string
	PreferredTrack string // TrackDay, TrackEvening or ""
	Notes          string
	FirstContactAt *time.Time // nil: now
}

// Referral is a first contact or referral in the queue.
type Referral struct {
	ID             string
	ClinicID       string
	Source         string
	GivenName      string
	FamilyName     string
	DateOfBirth    Date // zero when not given
	Phone          string
	Email          string
	PreferredTrack string
	Notes          string
	FirstContactAt time.Time
	Status         ReferralStatus
	PatientID      string // set once admitted
	CreatedBy      string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Person is what duplicate matching compares.
func (r Referral) Person() Person {
	return Person{GivenName: r.GivenName, FamilyName: r.FamilyName, DateOfBirth: r.DateOfBirth, Phone: r.Phone, Email: r.Email}
}

// NewReferral applies the referral rules and returns every violation together in a
// *ValidationError. clinic is nil when clinic_id names no known clinic; dates of birth are
// judged on the clinic's calendar (UTC when it is unknown). The referral is "new".
func NewReferral(in ReferralInput, clinic *Clinic, now time.Time, id, createdBy string) (Referral, error) {
	var vs []Violation
	add := func(field, rule, msg string) { vs = append(vs, Violation{Field: field, Rule: rule, Msg: msg}) }

	loc := time.UTC
	if clinic == nil {
		add(fieldClinicID, RuleClinicKnown, "no clinic with this id")
	} else {
		loc = clinic.Location
	}
	today := DateIn(now, loc)

	if !slices.Contains(Sources, in.Source) {
		add("source", RuleSourceKnown, "must be one of the referral sources")
	}
	given, family := strings.TrimSpace(in.GivenName), strings.TrimSpace(in.FamilyName)
	if given == "" {
		add(fieldGivenName, RuleNameNotBlank, "must not be blank")
	}
	if family == "" {
		add(fieldFamilyName, RuleNameNotBlank, "must not be blank")
	}

	var dob Date
	if in.DateOfBirth != "" {
		d, err := ParseDate(in.DateOfBirth)
		switch {
		case err != nil:
			add(fieldDateOfBirth, RuleDateValid, "must be a real calendar date YYYY-MM-DD")
		case !d.Before(today):
			add(fieldDateOfBirth, RuleBirthInPast, "must be in the past")
		case d.Before(today.AddYears(-MaxAgeYears)):
			add(fieldDateOfBirth, RuleBirthMaxAge, fmt.Sprintf("must be within the last %d years", MaxAgeYears))
		default:
			dob = d
		}
	}

	phone, email := strings.TrimSpace(in.Phone), strings.TrimSpace(in.Email)
	if phone == "" && email == "" {
		// A rule over two fields names both, so that a form can mark either.
		add("phone", RuleContactRequired, "give a phone number or an email address")
		add("email", RuleContactRequired, "give a phone number or an email address")
	}
	if in.PreferredTrack != "" && in.PreferredTrack != TrackDay && in.PreferredTrack != TrackEvening {
		add("preferred_track", RuleTrackKnown, "must be day, evening or empty")
	}

	at := now
	if in.FirstContactAt != nil {
		at = *in.FirstContactAt
		switch {
		case at.After(now.Add(MaxClockSkew)):
			add("first_contact_at", RuleFirstContactFuture, "must not be in the future")
		case at.After(now):
			at = now // a client clock a little fast: the contact is happening now
		case at.Before(now.AddDate(0, 0, -MaxFirstContactBackdateDays)):
			add("first_contact_at", RuleFirstContactBackdate, fmt.Sprintf("must not be more than %d days in the past", MaxFirstContactBackdateDays))
		}
	}

	if len(vs) > 0 {
		return Referral{}, &ValidationError{Violations: vs}
	}
	stamp := now.UTC().Truncate(time.Microsecond)
	return Referral{
		ID: id, ClinicID: clinic.ID, Source: in.Source,
		GivenName: given, FamilyName: family, DateOfBirth: dob, Phone: phone, Email: email,
		PreferredTrack: in.PreferredTrack, Notes: strings.TrimSpace(in.Notes),
		FirstContactAt: at.UTC().Truncate(time.Microsecond), Status: StatusNew,
		CreatedBy: createdBy, CreatedAt: stamp, UpdatedAt: stamp,
	}, nil
}

// StatusChange is one move of a referral, as the history records it.
type StatusChange struct {
	ID         string // history row id
	ReferralID string
	ClinicID   string
	From       ReferralStatus // "" at creation
	To         ReferralStatus
	Reason     string
	By         string // token subject
	At         time.Time
}

// Move checks via may move r to to and returns r moved, with the change to record. at is
// truncated to the microsecond (as Postgres stores it, so the event and the row agree).
func (r Referral) Move(to ReferralStatus, via Via, reason, by, changeID string, at time.Time) (Referral, StatusChange, error) {
	if err := CheckMove(r.Status, to, via); err != nil {
		return r, StatusChange{}, err
	}
	at = at.UTC().Truncate(time.Microsecond)
	c := StatusChange{ID: changeID, ReferralID: r.ID, ClinicID: r.ClinicID, From: r.Status, To: to,
		Reason: strings.TrimSpace(reason), By: by, At: at}
	r.Status, r.UpdatedAt = to, at
	return r, c, nil
}

// Rule ids of refer-out violations.
const RuleTextNotBlank = "text.not_blank"

// ReferOutInput is a refer-out decision as received.
type ReferOutInput struct {
	Level       string // a level code of asam.Current
	Destination string
	Reason      string
}

// ReferOutDecision is a referral's refer-out decision.
type ReferOutDecision struct {
	ReferralID  string
	ClinicID    string
	Level       string
	Destination string
	Reason      string
	By          string
	At          time.Time
}

// ReferOut decides r goes to another level of care or provider: r must be screened or
// assessed (else a *PreconditionError, checked first), the level must be one of the current
// ASAM edition, and destination and reason must not be blank (a *ValidationError names each).
// It returns r moved to referred_out, the change to record and the decision.
func (r Referral) ReferOut(in ReferOutInput, by, changeID string, now time.Time) (Referral, StatusChange, ReferOutDecision, error) {
	if err := CheckMove(r.Status, StatusReferredOut, ViaReferOut); err != nil {
		return r, StatusChange{}, ReferOutDecision{}, err
	}
	var vs []Violation
	level, dest, reason := strings.TrimSpace(in.Level), strings.TrimSpace(in.Destination), strings.TrimSpace(in.Reason)
	if !asam.ValidLevel(asam.Current, level) {
		vs = append(vs, Violation{Field: "level", Rule: RuleLevelKnown, Msg: "must be a level of care of the current criteria edition (" + asam.Current + ")"})
	}
	if dest == "" {
		vs = append(vs, Violation{Field: "destination", Rule: RuleTextNotBlank, Msg: "must not be blank"})
	}
	if reason == "" {
		vs = append(vs, Violation{Field: "reason", Rule: RuleTextNotBlank, Msg: "must not be blank"})
	}
	if len(vs) > 0 {
		return r, StatusChange{}, ReferOutDecision{}, &ValidationError{Violations: vs}
	}
	moved, change, err := r.Move(StatusReferredOut, ViaReferOut, "", by, changeID, now)
	if err != nil {
		return r, StatusChange{}, ReferOutDecision{}, err
	}
	return moved, change, ReferOutDecision{ReferralID: r.ID, ClinicID: r.ClinicID, Level: level, Destination: dest,
		Reason: reason, By: by, At: change.At}, nil
}
