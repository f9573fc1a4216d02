package domain

import (
	"reflect"
	"testing"
	"time"
)

const apptID = "0190b000-0000-7000-8000-000000000001"

func trChicago(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func trAppointment(t *testing.T, localDate, startTime string, zone string, status string) Appointment {
	t.Helper()
	loc := LocationOrUTC(zone)
	start, err := time.ParseInLocation("2006-01-02 15:04", localDate+" "+startTime, loc)
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAppointment(apptID, "0190b000-0000-7000-8000-000000000002", "0190b000-0000-7000-8000-000000000003",
		localDate, startTime, "", start, zone, status, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// US daylight-saving time began on 2026-03-08 at 02:00 in Chicago (CST -6 -> CDT -5).
func TestRemindersAcrossDaylightSavingChange(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name, date, at string
		want           map[int]time.Time
	}{
		// The day before is already CDT: 18:00 CDT is 23:00Z on both days.
		{"after the change", "2026-03-09", "18:00", map[int]time.Time{
			1440: time.Date(2026, 3, 8, 23, 0, 0, 0, time.UTC),
			120:  time.Date(2026, 3, 9, 21, 0, 0, 0, time.UTC),
		}},
		// 24 hours before 18:00 CDT on the day of the change is 17:00 CST the day before
		// (elapsed time, not the same wall clock).
		{"on the day of the change", "2026-03-08", "18:00", map[int]time.Time{
			1440: time.Date(2026, 3, 7, 23, 0, 0, 0, time.UTC),
			120:  time.Date(2026, 3, 8, 21, 0, 0, 0, time.UTC),
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := trAppointment(t, c.date, c.at, "America/Chicago", AppointmentScheduled)
			if want := time.Date(2026, 3, 8, 23, 0, 0, 0, time.UTC); c.date == "2026-03-08" && !a.StartsAt.Equal(want) {
				t.Fatalf("starts_at = %s, want %s", a.StartsAt, want)
			}
			rs := a.Reminders(DefaultReminderOffsets, now)
			if len(rs) != 2 {
				t.Fatalf("got %d reminders, want 2", len(rs))
			}
			for _, r := range rs {
				if want := c.want[r.OffsetMinutes]; !r.DueAt.Equal(want) {
					t.Errorf("offset %d: due %s, want %s", r.OffsetMinutes, r.DueAt.UTC(), want)
				}
				if r.Payload["time"] != "6:00 PM" || r.Payload["offset_minutes"] == "" {
					t.Errorf("offset %d: payload %v", r.OffsetMinutes, r.Payload)
				}
			}
		})
	}
	a := trAppointment(t, "2026-03-09", "18:00", "America/Chicago", AppointmentScheduled)
	if !a.StartsAt.Equal(time.Date(2026, 3, 9, 23, 0, 0, 0, time.UTC)) {
		t.Errorf("starts_at = %s, want 2026-03-09 23:00Z", a.StartsAt)
	}
	if got := a.When(); got["date"] != "Monday, March 9" || got["time"] != "6:00 PM" {
		t.Errorf("When = %v", got)
	}
}

func TestRemindersLeaveOutPastDueAndCancelled(t *testing.T) {
	a := trAppointment(t, "2026-03-09", "18:00", "America/Chicago", AppointmentScheduled)
	// An hour after the day-before reminder was due: only the 2-hour one is left.
	now := time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)
	rs := a.Reminders([]int{1440, 120, 120, 0, -5}, now)
	if len(rs) != 1 || rs[0].OffsetMinutes != 120 {
		t.Fatalf("reminders = %+v, want only the 120-minute one", rs)
	}
	// Exactly at the due time: not queued (it is not ahead any more).
	if rs := a.Reminders([]int{120}, time.Date(2026, 3, 9, 21, 0, 0, 0, time.UTC)); len(rs) != 0 {
		t.Errorf("a reminder due now was planned: %+v", rs)
	}
	c := trAppointment(t, "2026-03-09", "18:00", "America/Chicago", AppointmentCancelled)
	if rs := c.Reminders(DefaultReminderOffsets, now.AddDate(0, 0, -5)); len(rs) != 0 {
		t.Errorf("a cancelled appointment got reminders: %+v", rs)
	}
}

func TestDedupeKeys(t *testing.T) {
	start := time.Date(2026, 3, 9, 23, 0, 0, 0, time.UTC)
	moved := start.Add(24 * time.Hour)
	got := map[string]string{
		ReminderKey(apptID, 1440, start):             "reminder:" + apptID + ":1440:1773097200",
		ReminderKey(apptID, 1440, moved):             "reminder:" + apptID + ":1440:1773183600",
		MovedKey(apptID, moved):                      "moved:" + apptID + ":1773183600",
		CancelledKey(apptID):                         "cancelled:" + apptID,
		CheckInKey(apptID):                           "check_in:" + apptID,
		StatementKey("s1"):                           "statement:s1",
		AtRiskKey("e1", start):                       "at_risk:e1:1773097200",
		AuthorizationKey("a1", "exhausted", 12):      "authorization:a1:exhausted:12",
		ConsentHoldKey("p1", start.Add(2*time.Hour)): "consent_hold:p1:2026-03-10",
		UndeliverableKey("m1"):                       "undeliverable:m1",
		DeadLetterKey("dl:intake--x:INTAKE:7", 99):   "dead_letter:dl:intake--x:INTAKE:7",
		DeadLetterKey("", 99):                        "dead_letter:seq:99",
	}
	for key, want := range got {
		if key != want {
			t.Errorf("key %q, want %q", key, want)
		}
	}
	a := trAppointment(t, "2026-03-09", "18:00", "America/Chicago", AppointmentScheduled)
	b := a
	b.StartsAt = moved
	ka := a.Reminders([]int{120}, start.AddDate(0, 0, -3))[0].DedupeKey
	kb := b.Reminders([]int{120}, start.AddDate(0, 0, -3))[0].DedupeKey
	if ka == kb {
		t.Errorf("a rescheduled appointment kept its reminder key %q", ka)
	}
}

func TestCheckInDueNextMorningLocal(t *testing.T) {
	loc := trChicago(t)
	// A session on Saturday 2026-03-07 (CST): the check-in is Sunday 10:00 CDT = 15:00Z.
	start := time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC) // 18:00 CST on the 7th
	if got, want := CheckInDue("2026-03-07", start, loc), time.Date(2026, 3, 8, 15, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("check-in due %s, want %s", got, want)
	}
	// Without a local date, the session's day in the clinic's zone decides (the 7th, not the 8th).
	if got, want := CheckInDue("", start, loc), time.Date(2026, 3, 8, 15, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("check-in due %s, want %s", got, want)
	}
	if got := SessionDay("2026-03-07", start, loc); got != "Saturday, March 7" {
		t.Errorf("SessionDay = %q", got)
	}
}

func TestTriggerFormatting(t *testing.T) {
	if got := FormatDueDate("2026-03-30"); got != "March 30, 2026" {
		t.Errorf("FormatDueDate = %q", got)
	}
	if got := PatientRef("0190b000-0000-7000-8000-000000000002"); got != "0190b000" {
		t.Errorf("PatientRef = %q", got)
	}
	if got := Clip("héllo", 2); got != "h" {
		t.Errorf("Clip = %q", got)
	}
	a := trAppointment(t, "2026-03-02", "18:00", "America/Chicago", AppointmentScheduled)
	if got := a.FirstWeekLine(); got != "Monday, March 2 at 6:00 PM" {
		t.Errorf("FirstWeekLine = %q", got)
	}
	if _, err := NewAppointment("x", apptID, apptID, "2026-03-02", "18:00", "", time.Now(), "UTC", AppointmentScheduled, time.Now()); err == nil {
		t.Error("a malformed appointment id was accepted")
	}
	if _, err := NewAppointment(apptID, apptID, apptID, "2026-03-02", "18:00", "", time.Now(), "Mars/Olympus", AppointmentScheduled, time.Now()); err == nil {
		t.Error("an unknown zone was accepted")
	}
	if !reflect.DeepEqual(DefaultReminderOffsets, []int{1440, 120}) {
		t.Error("default offsets changed")
	}
}
