package domain

import (
	"time"
)

// Reasons recorded on messages a trigger cancels (messages.status_reason).
const (
	CancelRescheduled = "rescheduled"          // the appointment moved: its old reminders
	CancelCancelled   = "cancelled"            // the appointment was cancelled
	CancelDischarged  = "discharged"           // the patient was discharged: every queued patient message
	CancelAttendance  = "attendance_corrected" // a check-in after an absence corrected to attendance
	CancelSuperseded  = "superseded"           // a newer notice of the same appointment replaces it
)

// Reasons scheduling gives for a cancellation (AppointmentCancelled.reason_code).
const (
	CancelledByPatient    = "patient"
	CancelledByClinic     = "clinic"
	CancelledByDischarged = "discharged"
)

// CheckInKey is the dedupe key of the check-in after a missed appointment.
func CheckInKey(appointmentID string) string { return "check_in:" + appointmentID }

// CheckInHour is the clinic-local hour of the morning after a missed session when the
// check-in goes.
const CheckInHour = 10

// CheckInDue is when the check-in after a session on localDate ("YYYY-MM-DD", clinic-local)
// goes: 10:00 on the clinic's wall clock the next day, whatever the UTC offset that day. When
// localDate is malformed the day after sessionStart (in loc) is used.
func CheckInDue(localDate string, sessionStart time.Time, loc *time.Location) time.Time {
	y, m, d := sessionStart.In(loc).Date()
	if t, err := time.Parse(time.DateOnly, localDate); err == nil {
		y, m, d = t.Date()
	}
	return time.Date(y, m, d+1, CheckInHour, 0, 0, 0, loc).UTC()
}

// SessionDay formats a session's clinic-local date "YYYY-MM-DD" as "Monday, March 2" (the
// date as given), or the day of sessionStart in loc when it is malformed.
func SessionDay(localDate string, sessionStart time.Time, loc *time.Location) string {
	if t, err := time.Parse(time.DateOnly, localDate); err == nil {
		return t.Format("Monday, January 2")
	}
	return FormatDay(sessionStart, loc)
}

// StatementKey is the dedupe key of the message that a statement is ready.
func StatementKey(statementID string) string { return "statement:" + statementID }
