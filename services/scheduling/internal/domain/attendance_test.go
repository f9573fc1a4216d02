package domain

import (
	"testing"
	"time"
)

func TestAttendedMinutes(t *testing.T) {
	const f = "entry.minutes_attended"
	tests := []struct {
		name      string
		status    string
		given     int
		scheduled int
		want      int
		wantErr   []string
	}{
		{"present takes the scheduled length", AttendancePresent, 0, 180, 180, nil},
		{"present ignores given minutes", AttendancePresent, 42, 180, 180, nil},
		{"absent is zero", AttendanceAbsent, 90, 180, 0, nil},
		{"excused is zero", AttendanceExcused, 0, 50, 0, nil},
		{"late within range", AttendanceLate, 150, 180, 150, nil},
		{"late one minute", AttendanceLate, 1, 180, 1, nil},
		{"late scheduled minus one", AttendanceLate, 179, 180, 179, nil},
		{"late without minutes", AttendanceLate, 0, 180, 0, []string{f + " " + RuleMinutesRange}},
		{"late full length", AttendanceLate, 180, 180, 0, []string{f + " " + RuleMinutesRange}},
		{"late over the length", AttendanceLate, 181, 180, 0, []string{f + " " + RuleMinutesRange}},
		{"left early within range", AttendanceLeftEarly, 30, 50, 30, nil},
		{"left early without minutes", AttendanceLeftEarly, 0, 50, 0, []string{f + " " + RuleMinutesRange}},
		{"left early negative", AttendanceLeftEarly, -5, 50, 0, []string{f + " " + RuleMinutesRange}},
		{"unknown status", "asleep", 10, 50, 0, []string{f + " " + RuleAttendanceStatus}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AttendedMinutes(f, tt.status, tt.given, tt.scheduled)
			checkViolations(t, err, tt.wantErr...)
			if err == nil && got != tt.want {
				t.Fatalf("minutes = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestCheckAttendable(t *testing.T) {
	now := time.Date(2026, 3, 2, 20, 0, 0, 0, time.UTC)
	at := func(start time.Time, status string) Appointment {
		return Appointment{Status: status, Visit: Visit{StartsAt: start, EndsAt: start.Add(3 * time.Hour)}}
	}
	tests := []struct {
		name string
		a    Appointment
		rule string // "" when allowed
	}{
		{"started", at(now.Add(-time.Hour), AppointmentScheduled), ""},
		{"starts now", at(now, AppointmentScheduled), ""},
		{"ended", at(now.Add(-24*time.Hour), AppointmentScheduled), ""},
		{"not started", at(now.Add(time.Minute), AppointmentScheduled), RuleAppointmentStarted},
		{"cancelled", at(now.Add(-time.Hour), AppointmentCancelled), RuleAppointmentScheduled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckAttendable(tt.a, now)
			pe, _ := err.(*PreconditionError)
			switch {
			case tt.rule == "" && err != nil:
				t.Fatalf("err = %v, want nil", err)
			case tt.rule != "" && (pe == nil || pe.Rule != tt.rule):
				t.Fatalf("err = %v, want rule %s", err, tt.rule)
			}
		})
	}
}

func TestNextAttendance(t *testing.T) {
	cur := &AttendanceRecord{Status: AttendanceLate, MinutesAttended: 150, Version: 2}
	tests := []struct {
		name        string
		current     *AttendanceRecord
		status      string
		minutes     int
		wantVersion int
		wantChanged bool
	}{
		{"first record", nil, AttendancePresent, 180, 1, true},
		{"same values", cur, AttendanceLate, 150, 2, false},
		{"other minutes", cur, AttendanceLate, 120, 3, true},
		{"other status", cur, AttendancePresent, 180, 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, changed := NextAttendance(tt.current, tt.status, tt.minutes)
			if v != tt.wantVersion || changed != tt.wantChanged {
				t.Fatalf("NextAttendance = %d, %v, want %d, %v", v, changed, tt.wantVersion, tt.wantChanged)
			}
		})
	}
}

func TestScheduledMinutes(t *testing.T) {
	s := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	if got := ScheduledMinutes(Appointment{Visit: Visit{StartsAt: s, EndsAt: s.Add(50 * time.Minute)}}); got != 50 {
		t.Fatalf("ScheduledMinutes = %d, want 50", got)
	}
}
