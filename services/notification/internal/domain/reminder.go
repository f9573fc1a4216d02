package domain

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// DefaultReminderOffsets are the minutes before an appointment its reminders go when the clinic
// has set none: a day and two hours before.
var DefaultReminderOffsets = []int{1440, 120}

// Appointment statuses of the appointments copy.
const (
	AppointmentScheduled = "scheduled"
	AppointmentCancelled = "cancelled"
)

// Appointment is notification's copy of one appointment (scheduling's events): when it is,
// in UTC and on the clinic's wall clock, and whether it still takes place. At is when the
// copied fact happened (the event's occurred_at): an older event never overwrites a newer one.
type Appointment struct {
	ID, PatientID, ClinicID string
	LocalDate               string // "YYYY-MM-DD", clinic-local
	StartTime, EndTime      string // "HH:MM", clinic-local
	StartsAt                time.Time
	TimeZone                string // IANA; "" when the event did not carry it (a cancellation)
	Status                  string
	At                      time.Time
}

// NewAppointment checks an appointment from scheduling's events. zone may be empty (a
// cancellation carries none: the copy keeps the one it has).
func NewAppointment(id, patientID, clinicID, localDate, startTime, endTime string, startsAt time.Time,
	zone, status string, at time.Time) (Appointment, error) {
	for name, v := range map[string]string{"appointment_id": id, "patient_id": patientID, "clinic_id": clinicID} {
		if _, err := uuid.Parse(v); err != nil {
			return Appointment{}, fmt.Errorf("appointment: %s is not a uuid", name)
		}
	}
	if _, err := time.Parse(time.DateOnly, localDate); err != nil {
		return Appointment{}, errors.New("appointment: local_date is not YYYY-MM-DD")
	}
	if startsAt.IsZero() || startsAt.Unix() <= 0 {
		return Appointment{}, errors.New("appointment: starts_at is missing")
	}
	if zone != "" {
		if _, err := time.LoadLocation(zone); err != nil {
			return Appointment{}, errors.New("appointment: clinic_time_zone is not an IANA zone")
		}
	}
	if status != AppointmentScheduled && status != AppointmentCancelled {
		return Appointment{}, errors.New("appointment: status is neither scheduled nor cancelled")
	}
	return Appointment{ID: id, PatientID: patientID, ClinicID: clinicID, LocalDate: localDate,
		StartTime: startTime, EndTime: endTime, StartsAt: startsAt.UTC(), TimeZone: zone, Status: status, At: at}, nil
}

// Location is the appointment's zone (UTC when unknown).
func (a Appointment) Location() *time.Location { return LocationOrUTC(a.TimeZone) }

// LocationOrUTC loads zone, or UTC when it is empty or unknown.
func LocationOrUTC(zone string) *time.Location {
	if zone == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// FormatDay formats an instant as the clinic in loc reads its day: "Monday, March 2".
func FormatDay(t time.Time, loc *time.Location) string { return t.In(loc).Format("Monday, January 2") }

// FormatClock formats an instant as the clinic in loc reads its time: "6:00 PM".
func FormatClock(t time.Time, loc *time.Location) string { return t.In(loc).Format("3:04 PM") }

// FormatDueDate formats a calendar date "YYYY-MM-DD" as "March 30, 2026" (the date as given,
// not converted between zones); a malformed date is returned unchanged.
func FormatDueDate(date string) string {
	d, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return date
	}
	return d.Format("January 2, 2006")
}

// When is the payload of a message about an appointment: its clinic-local "date" and "time".
func (a Appointment) When() map[string]string {
	loc := a.Location()
	return map[string]string{"date": FormatDay(a.StartsAt, loc), "time": FormatClock(a.StartsAt, loc)}
}

// FirstWeekLine is one line of the welcome's first week: "Monday, March 2 at 6:00 PM".
func (a Appointment) FirstWeekLine() string {
	w := a.When()
	return w["date"] + " at " + w["time"]
}

// Reminder is one reminder to queue for an appointment.
type Reminder struct {
	OffsetMinutes int
	DueAt         time.Time
	DedupeKey     string
	Payload       map[string]string
}

// ReminderKey is the dedupe key of the reminder offsetMinutes before an appointment starting
// at startsAt: a rescheduled appointment (another start) gets new reminders.
func ReminderKey(appointmentID string, offsetMinutes int, startsAt time.Time) string {
	return "reminder:" + appointmentID + ":" + strconv.Itoa(offsetMinutes) + ":" + strconv.FormatInt(startsAt.Unix(), 10)
}

// Reminders are the reminders of a scheduled appointment for the clinic's offsets (minutes
// before its start, counted as elapsed time: 1440 is 24 hours before, also across a
// daylight-saving change), leaving out those whose due time is not after now. A cancelled
// appointment has none. Offsets that are not positive, or repeated, are ignored.
func (a Appointment) Reminders(offsets []int, now time.Time) []Reminder {
	if a.Status != AppointmentScheduled {
		return nil
	}
	var out []Reminder
	seen := map[int]bool{}
	for _, off := range offsets {
		if off <= 0 || seen[off] {
			continue
		}
		seen[off] = true
		due := a.StartsAt.Add(-time.Duration(off) * time.Minute)
		if !due.After(now) {
			continue
		}
		p := a.When()
		p["offset_minutes"] = strconv.Itoa(off)
		out = append(out, Reminder{OffsetMinutes: off, DueAt: due, DedupeKey: ReminderKey(a.ID, off, a.StartsAt), Payload: p})
	}
	return out
}

// MovedKey is the dedupe key of the notice that an appointment moved to startsAt.
func MovedKey(appointmentID string, startsAt time.Time) string {
	return "moved:" + appointmentID + ":" + strconv.FormatInt(startsAt.Unix(), 10)
}

// CancelledKey is the dedupe key of the notice that the clinic cancelled an appointment.
func CancelledKey(appointmentID string) string { return "cancelled:" + appointmentID }
