package domain

import (
	"fmt"
	"slices"
	"time"
)

// Appointments (docs/scheduling.md, "Appointments"): the weekly schedule an enrollment gets
// when it becomes active. Dates and times are clinic-local; the UTC instants are computed in
// the clinic's zone, so a session keeps its local time across daylight-saving changes.

// Service types of sessions and appointments.
const (
	ServiceGroup      = "group"
	ServiceIndividual = "individual"
	ServiceFamily     = "family"
	ServiceMedication = "medication_management"
)

// Appointment statuses and who cancelled.
const (
	AppointmentScheduled = "scheduled"
	AppointmentCancelled = "cancelled"

	CancelledByPatient    = "patient"
	CancelledByClinic     = "clinic"
	CancelledByDischarged = "discharged"
)

// Rule ids of appointment requests.
const (
	RuleAppointmentScheduled = "appointment.scheduled"    // the appointment is already cancelled
	RuleAppointmentGroup     = "appointment.not_group"    // group places move with their group
	RuleAppointmentFuture    = "appointment.future"       // the appointment (or the new time) is not in the future
	RuleSlotAvailability     = "slot.clinician_available" // the new time is outside the clinician's availability
	RuleSlotFree             = "slot.clinician_free"      // the clinician is booked at the new time
	RuleSlotClinician        = "slot.clinician"           // the appointment has no clinician to check against
	RuleSlotPatientFree      = "slot.patient_free"        // the patient has another appointment at the new time
	RuleDateFormat           = "date.format"              // not a "YYYY-MM-DD" calendar date
)

// SchedulePolicy holds the numbers of the generated schedule.
type SchedulePolicy struct {
	IndividualMinutes    int // length of an individual session (50)
	IndividualEveryWeeks int // an individual session every n program weeks (1: weekly, the first in week 1)
	MedicationMinutes    int // length of a medication-management visit (30)
	MedicationEveryWeeks int // a medication-management visit every n program weeks, starting in week 1 (4)
	FamilyMinutes        int // length of a family session (60), booked only where consented
	FamilyEveryWeeks     int // a family session every n program weeks, starting in week 1 (2; 0: none)
	SlotStepMinutes      int // candidate start times are scanned on this step from a window's start (30)
}

// DefaultSchedulePolicy: weekly 50-minute individual sessions, a 30-minute medication visit
// every 4 weeks, a 60-minute family session every 2 weeks (where consented), slots on a
// 30-minute grid.
var DefaultSchedulePolicy = SchedulePolicy{
	IndividualMinutes: 50, IndividualEveryWeeks: 1, MedicationMinutes: 30, MedicationEveryWeeks: 4,
	FamilyMinutes: 60, FamilyEveryWeeks: 2, SlotStepMinutes: 30,
}

// Interval is a span of time [Start, End), UTC.
type Interval struct{ Start, End time.Time }

// Overlaps reports whether i and j share an instant.
func (i Interval) Overlaps(j Interval) bool { return i.Start.Before(j.End) && j.Start.Before(i.End) }

// Visit is one planned (or stored) session time: a clinic-local date and times with their
// UTC instants.
type Visit struct {
	ServiceType string
	Date        time.Time // local calendar date, at 00:00 UTC
	Start, End  Clock
	StartsAt    time.Time // UTC
	EndsAt      time.Time
	ClinicianID string // empty: none available (group sessions only)
	RoomID      string
}

// Interval is the visit's span.
func (v Visit) Interval() Interval { return Interval{v.StartsAt, v.EndsAt} }

// Skip is a planned session no clinician could take (program week, 1-based, and type).
type Skip struct {
	Week        int
	ServiceType string
}

// PlanInput is what a schedule is planned from.
type PlanInput struct {
	Policy    SchedulePolicy
	Zone      *time.Location
	Track     Track
	Weeks     int       // program length
	StartDate time.Time // enrollment start, local date at 00:00 UTC
	Today     time.Time // the clinic's local date today, at 00:00 UTC: nothing is planned before it
	Now       time.Time // nothing is planned to start before now
	// PastGroups also places the patient in the track's group sessions from the start date to
	// now: an admission whose start date is in the past (the admission was entered late) gets
	// its places in the sessions it attended, so that attendance can be recorded after the
	// fact (and billed). Weekly visits are still planned from now on only. At most
	// MaxPastGroupDays back.
	PastGroups bool
	Clinicians []Clinician
	// Busy: each clinician's booked sessions, UTC. The plan adds its own bookings to it.
	Busy map[string][]Interval
	// GroupExists: local dates ("YYYY-MM-DD") on which the track's session already exists
	// (its clinician is already chosen).
	GroupExists map[string]bool
	// Family: plan family sessions too (the patient's consent names recipients), each
	// starting before FamilyUntil (zero: no limit; the consent's revocation or expiry).
	Family      bool
	FamilyUntil time.Time
	// FamilyOnly plans the family sessions alone (the rest is already booked); PatientBusy is
	// then the patient's booked appointments, UTC, which they must not overlap.
	FamilyOnly  bool
	PatientBusy []Interval
}

// Plan is an enrollment's schedule: group places, then individual and medication visits by
// week; Skipped lists the weekly visits nobody could take.
type Plan struct {
	Visits  []Visit
	Skipped []Skip
}

// ISOWeekday is 1 (Monday) to 7 (Sunday).
func ISOWeekday(d time.Time) int {
	if w := int(d.Weekday()); w != 0 {
		return w
	}
	return 7
}

// LocalInstant is the UTC instant of local time c on local date d in zone loc.
func LocalInstant(d time.Time, c Clock, loc *time.Location) time.Time {
	m := c.Minutes()
	return time.Date(d.Year(), d.Month(), d.Day(), m/60, m%60, 0, 0, loc).UTC()
}

// ClockOf is minutes after midnight as a Clock.
func ClockOf(minutes int) Clock { return Clock(fmt.Sprintf("%02d:%02d", minutes/60, minutes%60)) }

// NewVisit builds a visit on local date d from start for minutes, in loc.
func NewVisit(serviceType string, d time.Time, start Clock, minutes int, loc *time.Location) Visit {
	end := ClockOf(start.Minutes() + minutes)
	return Visit{ServiceType: serviceType, Date: d, Start: start, End: end,
		StartsAt: LocalInstant(d, start, loc), EndsAt: LocalInstant(d, start, loc).Add(time.Duration(minutes) * time.Minute)}
}

// Available reports whether one of c's windows on weekday holds [start, start+minutes).
func (c Clinician) Available(weekday, start, minutes int) bool {
	for _, w := range c.Availability {
		if w.Weekday == weekday && w.Start.Minutes() <= start && start+minutes <= w.End.Minutes() {
			return true
		}
	}
	return false
}

// Free reports whether i overlaps none of busy.
func Free(busy []Interval, i Interval) bool {
	for _, b := range busy {
		if b.Overlaps(i) {
			return false
		}
	}
	return true
}

// MaxPastGroupDays bounds how far back PastGroups places a patient: intake refuses admissions
// whose start date is more than 90 days past, so an older one is not an admission entered late.
const MaxPastGroupDays = 90

// PlanSchedule plans an enrollment's appointments for the program weeks from its start date,
// from today on (group places from the start date with PastGroups; see docs/scheduling.md):
//   - a place in the track's group session on each of its weekdays; a session not yet created
//     gets the first active counselor available and free then (or none) and the track's room;
//   - per program week (7 days from the start date), an individual session with an active
//     therapist, the first in week 1, then every IndividualEveryWeeks weeks; and a medication
//     visit with an active prescriber every MedicationEveryWeeks weeks from week 1. The slot is
//     the earliest on the week's first day that has one (days without the patient's group first),
//     scanning each window from its start on SlotStepMinutes, with a clinician who is free and
//     not overlapping the patient's other visits. A week without one is skipped (Skipped).
//   - where in.Family (consented), a family session with an active therapist every
//     FamilyEveryWeeks weeks from week 1, found the same way, starting before FamilyUntil;
//     in.FamilyOnly plans these alone, clear of in.PatientBusy.
//
// Clinicians are tried in the order given.
func PlanSchedule(in PlanInput) Plan {
	var p Plan
	busy := map[string][]Interval{}
	for id, b := range in.Busy {
		busy[id] = slices.Clone(b)
	}
	end := in.StartDate.AddDate(0, 0, 7*in.Weeks)
	from := in.StartDate
	if in.Today.After(from) {
		from = in.Today
	}
	groupDay := map[int]bool{}
	for _, d := range in.Track.Weekdays {
		groupDay[d] = true
	}
	mine := slices.Clone(in.PatientBusy) // the patient's own visits
	groupMinutes := in.Track.End.Minutes() - in.Track.Start.Minutes()
	groupsFrom := from
	if in.PastGroups {
		groupsFrom = in.StartDate
		if limit := in.Today.AddDate(0, 0, -MaxPastGroupDays); groupsFrom.Before(limit) {
			groupsFrom = limit
		}
	}
	for d := groupsFrom; d.Before(end) && !in.FamilyOnly; d = d.AddDate(0, 0, 1) {
		if !groupDay[ISOWeekday(d)] {
			continue
		}
		v := NewVisit(ServiceGroup, d, in.Track.Start, groupMinutes, in.Zone)
		if v.StartsAt.Before(in.Now) && !in.PastGroups {
			continue
		}
		v.RoomID = in.Track.RoomID
		if !in.GroupExists[d.Format(DateLayout)] {
			for _, c := range in.Clinicians {
				if c.Active && c.Role == ClinicianCounselor && c.Available(ISOWeekday(d), in.Track.Start.Minutes(), groupMinutes) &&
					Free(busy[c.ID], v.Interval()) {
					v.ClinicianID = c.ID
					busy[c.ID] = append(busy[c.ID], v.Interval())
					break
				}
			}
		}
		p.Visits = append(p.Visits, v)
		mine = append(mine, v.Interval())
	}
	book := func(week int, serviceType, role string, minutes int, days []time.Time) {
		for _, d := range days {
			type cand struct {
				start int
				c     Clinician
			}
			var cands []cand
			for _, c := range in.Clinicians {
				if !c.Active || c.Role != role {
					continue
				}
				for _, w := range c.Availability {
					if w.Weekday != ISOWeekday(d) {
						continue
					}
					for s := w.Start.Minutes(); s+minutes <= w.End.Minutes(); s += in.Policy.SlotStepMinutes {
						cands = append(cands, cand{s, c})
					}
				}
			}
			slices.SortStableFunc(cands, func(a, b cand) int { return a.start - b.start })
			for _, c := range cands {
				v := NewVisit(serviceType, d, ClockOf(c.start), minutes, in.Zone)
				if v.StartsAt.Before(in.Now) || !Free(busy[c.c.ID], v.Interval()) || !Free(mine, v.Interval()) ||
					(serviceType == ServiceFamily && !in.FamilyUntil.IsZero() && !v.StartsAt.Before(in.FamilyUntil)) {
					continue
				}
				v.ClinicianID = c.c.ID
				busy[c.c.ID] = append(busy[c.c.ID], v.Interval())
				mine = append(mine, v.Interval())
				p.Visits = append(p.Visits, v)
				return
			}
		}
		p.Skipped = append(p.Skipped, Skip{Week: week + 1, ServiceType: serviceType})
	}
	for w := 0; w < in.Weeks; w++ {
		ws, we := in.StartDate.AddDate(0, 0, 7*w), in.StartDate.AddDate(0, 0, 7*(w+1))
		if !we.After(from) {
			continue
		}
		if ws.Before(from) {
			ws = from
		}
		var days, later []time.Time // days without the group first, then group days
		for d := ws; d.Before(we); d = d.AddDate(0, 0, 1) {
			if groupDay[ISOWeekday(d)] {
				later = append(later, d)
			} else {
				days = append(days, d)
			}
		}
		days = append(days, later...)
		if !in.FamilyOnly && in.Policy.IndividualEveryWeeks > 0 && w%in.Policy.IndividualEveryWeeks == 0 {
			book(w, ServiceIndividual, ClinicianTherapist, in.Policy.IndividualMinutes, days)
		}
		if !in.FamilyOnly && in.Policy.MedicationEveryWeeks > 0 && w%in.Policy.MedicationEveryWeeks == 0 &&
			hasRole(in.Clinicians, ClinicianPrescriber) {
			book(w, ServiceMedication, ClinicianPrescriber, in.Policy.MedicationMinutes, days)
		}
		if (in.Family || in.FamilyOnly) && in.Policy.FamilyEveryWeeks > 0 && w%in.Policy.FamilyEveryWeeks == 0 &&
			(in.FamilyUntil.IsZero() || ws.Before(in.FamilyUntil)) {
			book(w, ServiceFamily, ClinicianTherapist, in.Policy.FamilyMinutes, days)
		}
	}
	return p
}

func hasRole(cs []Clinician, role string) bool {
	return slices.ContainsFunc(cs, func(c Clinician) bool { return c.Active && c.Role == role })
}

// Appointment is a patient's appointment with its session's time and place.
type Appointment struct {
	ID              string
	PatientID       string
	ClinicID        string
	EnrollmentID    string
	SessionID       string
	TrackID         string // group places only
	Visit                  // the session's type, time, clinician and room
	Status          string // AppointmentScheduled or AppointmentCancelled
	CancelledBy     string
	RescheduleCount int
}

// CheckReschedule checks moving a (non-group, scheduled, future) appointment to v (same length):
// within its clinician's availability, not overlapping the clinician's other bookings (busy,
// without this appointment's own session) nor the patient's other appointments (mine).
func CheckReschedule(a Appointment, c Clinician, v Visit, now time.Time, busy, mine []Interval) error {
	switch {
	case a.ServiceType == ServiceGroup:
		return &PreconditionError{Rule: RuleAppointmentGroup, Msg: "a group place moves with its group session"}
	case a.Status != AppointmentScheduled:
		return &PreconditionError{Rule: RuleAppointmentScheduled, Msg: "the appointment is cancelled"}
	case !a.StartsAt.After(now):
		return &PreconditionError{Rule: RuleAppointmentFuture, Msg: "the appointment has already started"}
	case !v.StartsAt.After(now):
		return &PreconditionError{Rule: RuleAppointmentFuture, Msg: "the new time is not in the future"}
	case a.ClinicianID == "" || c.ID != a.ClinicianID || !c.Active:
		return &PreconditionError{Rule: RuleSlotClinician, Msg: "the appointment has no active clinician"}
	case v.End.Minutes() <= v.Start.Minutes() ||
		!c.Available(ISOWeekday(v.Date), v.Start.Minutes(), v.End.Minutes()-v.Start.Minutes()):
		return &PreconditionError{Rule: RuleSlotAvailability, Msg: "the new time is outside the clinician's availability"}
	case !Free(busy, v.Interval()):
		return &PreconditionError{Rule: RuleSlotFree, Msg: "the clinician is booked at the new time"}
	case !Free(mine, v.Interval()):
		return &PreconditionError{Rule: RuleSlotPatientFree, Msg: "the patient has another appointment at the new time"}
	}
	return nil
}

// CheckCancel checks cancelling a: it must be scheduled and not yet started.
func CheckCancel(a Appointment, now time.Time) error {
	switch {
	case a.Status != AppointmentScheduled:
		return &PreconditionError{Rule: RuleAppointmentScheduled, Msg: "the appointment is already cancelled"}
	case !a.StartsAt.After(now):
		return &PreconditionError{Rule: RuleAppointmentFuture, Msg: "the appointment has already started"}
	}
	return nil
}
