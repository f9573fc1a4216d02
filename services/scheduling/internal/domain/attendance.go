package domain

import (
	"fmt"
	"time"
)

// Attendance (docs/scheduling.md, "Attendance"): what a clinician records for an appointment
// once its session has started. Every record or correction is a new version; the latest counts.

// Attendance statuses.
const (
	AttendancePresent   = "present"
	AttendanceLate      = "late"
	AttendanceLeftEarly = "left_early"
	AttendanceAbsent    = "absent"
	AttendanceExcused   = "excused"
)

// Rule ids of attendance requests.
const (
	RuleMinutesRange       = "minutes.range"       // late/left early: 1 to the scheduled length minus one
	RuleAttendanceStatus   = "status.known"        // not an attendance status
	RuleAppointmentStarted = "appointment.started" // the session has not started yet
	RuleEntrySession       = "entry.session"       // the appointment is not a place in the named session
	RuleEntryUnique        = "entry.unique"        // the appointment is named twice
)

// AttendanceRecord is one version of an appointment's attendance.
type AttendanceRecord struct {
	AppointmentID    string
	ClinicID         string // the appointment's clinic, stored with each version (row-level security); set when recording
	Status           string
	MinutesAttended  int
	ScheduledMinutes int
	Version          int
	RecordedBy       string
	RecordedAt       time.Time
}

// ScheduledMinutes is the appointment's length in minutes (its session's real duration).
func ScheduledMinutes(a Appointment) int { return int(a.EndsAt.Sub(a.StartsAt) / time.Minute) }

// AttendedMinutes returns the minutes that count for status: the whole scheduled length when
// present (given is ignored), given when late or left early (which must then be 1 to
// scheduled-1), 0 when absent or excused. field names the minutes in the request.
func AttendedMinutes(field, status string, given, scheduled int) (int, error) {
	switch status {
	case AttendancePresent:
		return scheduled, nil
	case AttendanceAbsent, AttendanceExcused:
		return 0, nil
	case AttendanceLate, AttendanceLeftEarly:
		if given < 1 || given > scheduled-1 {
			return 0, Invalid(field, RuleMinutesRange,
				fmt.Sprintf("required when late or left early: 1 to %d (the scheduled length minus one)", scheduled-1))
		}
		return given, nil
	}
	return 0, Invalid(field, RuleAttendanceStatus, "must be present, late, left_early, absent or excused")
}

// CheckAttendable checks that attendance may be recorded for a: it is scheduled (not
// cancelled) and its session has started (starts at or before now).
func CheckAttendable(a Appointment, now time.Time) error {
	switch {
	case a.Status != AppointmentScheduled:
		return &PreconditionError{Rule: RuleAppointmentScheduled, Msg: "the appointment is cancelled"}
	case a.StartsAt.After(now):
		return &PreconditionError{Rule: RuleAppointmentStarted, Msg: "the session has not started yet"}
	}
	return nil
}

// NextAttendance returns the version to store when status and minutes are recorded over
// current (nil: nothing recorded yet), and false when they equal current (nothing to store).
func NextAttendance(current *AttendanceRecord, status string, minutes int) (version int, changed bool) {
	if current == nil {
		return 1, true
	}
	if current.Status == status && current.MinutesAttended == minutes {
		return current.Version, false
	}
	return current.Version + 1, true
}
