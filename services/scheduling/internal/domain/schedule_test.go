package domain

import (
	"strings"
	"testing"
	"time"
)

func TestPlanScheduleDST(t *testing.T) {
	chicago, err := LoadZone("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	date := func(s string) time.Time { d, _ := time.Parse(DateLayout, s); return d }
	utc := func(s string) time.Time { d, _ := time.Parse(time.RFC3339, s); return d }
	track := Track{ID: "t", Weekdays: []int{1, 3, 4}, Start: "18:00", End: "21:00", RoomID: "room"}
	counselor := Clinician{ID: "co", Role: ClinicianCounselor, Active: true, Availability: []Window{{1, "17:00", "22:00"}, {3, "17:00", "22:00"}, {4, "17:00", "22:00"}}}
	therapist := Clinician{ID: "th", Role: ClinicianTherapist, Active: true, Availability: []Window{{1, "09:00", "10:00"}, {2, "09:00", "12:00"}}}
	prescriber := Clinician{ID: "pr", Role: ClinicianPrescriber, Active: true, Availability: []Window{{5, "13:00", "14:00"}}}
	inactive := therapist
	inactive.Active = false
	all := []Clinician{counselor, therapist, prescriber}

	// Each visit as "type date start-end startsAt clinician".
	groups := []string{
		"group 2026-03-02 18:00-21:00 2026-03-03T00:00:00Z co", // CST: 18:00 is 00:00Z the next day
		"group 2026-03-04 18:00-21:00 2026-03-05T00:00:00Z co",
		"group 2026-03-05 18:00-21:00 2026-03-06T00:00:00Z co",
		"group 2026-03-09 18:00-21:00 2026-03-09T23:00:00Z co", // CDT from 2026-03-08: 23:00Z the same day
		"group 2026-03-11 18:00-21:00 2026-03-11T23:00:00Z co",
		"group 2026-03-12 18:00-21:00 2026-03-12T23:00:00Z co",
	}
	cases := []struct {
		name      string
		in        func(*PlanInput)
		want      []string
		wantSkips int
	}{
		{
			name: "two weeks across the DST change",
			want: append(groups[:6:6],
				"individual 2026-03-03 09:00-09:50 2026-03-03T15:00:00Z th", // Tuesday: not a group day
				"medication_management 2026-03-06 13:00-13:30 2026-03-06T19:00:00Z pr",
				"individual 2026-03-10 09:00-09:50 2026-03-10T14:00:00Z th"), // same local time, CDT
		},
		{
			name: "a booked therapist moves the slot on the 30-minute grid",
			in: func(p *PlanInput) {
				p.Busy = map[string][]Interval{"th": {{utc("2026-03-03T15:00:00Z"), utc("2026-03-03T16:00:00Z")}}}
			},
			want: append(groups[:6:6],
				"individual 2026-03-03 10:00-10:50 2026-03-03T16:00:00Z th",
				"medication_management 2026-03-06 13:00-13:30 2026-03-06T19:00:00Z pr",
				"individual 2026-03-10 09:00-09:50 2026-03-10T14:00:00Z th"),
		},
		{
			name: "no active therapist or prescriber: weeks skipped, no medication visits",
			in:   func(p *PlanInput) { p.Clinicians = []Clinician{counselor, inactive} },
			want: groups, wantSkips: 2,
		},
		{
			name: "an existing group session keeps its clinician; no counselor leaves none",
			in: func(p *PlanInput) {
				p.Clinicians = []Clinician{therapist}
				p.GroupExists = map[string]bool{"2026-03-02": true}
			},
			want: []string{
				"group 2026-03-02 18:00-21:00 2026-03-03T00:00:00Z -", "group 2026-03-04 18:00-21:00 2026-03-05T00:00:00Z -",
				"group 2026-03-05 18:00-21:00 2026-03-06T00:00:00Z -", "group 2026-03-09 18:00-21:00 2026-03-09T23:00:00Z -",
				"group 2026-03-11 18:00-21:00 2026-03-11T23:00:00Z -", "group 2026-03-12 18:00-21:00 2026-03-12T23:00:00Z -",
				"individual 2026-03-03 09:00-09:50 2026-03-03T15:00:00Z th", "individual 2026-03-10 09:00-09:50 2026-03-10T14:00:00Z th",
			},
		},
		{
			name: "started earlier (promotion): only from today, the week's remaining days",
			in: func(p *PlanInput) {
				p.Today, p.Now = date("2026-03-05"), utc("2026-03-05T12:00:00Z")
			},
			want: append(groups[2:6:6],
				"medication_management 2026-03-06 13:00-13:30 2026-03-06T19:00:00Z pr",
				"individual 2026-03-10 09:00-09:50 2026-03-10T14:00:00Z th"),
			wantSkips: 1, // week 1's individual: no therapist slot Thu-Sun
		},
		{
			name: "admitted late (start date in the past): places in the past groups too, weekly visits from now",
			in: func(p *PlanInput) {
				p.Today, p.Now, p.PastGroups = date("2026-03-05"), utc("2026-03-05T12:00:00Z"), true
			},
			want: append(groups[:6:6],
				"medication_management 2026-03-06 13:00-13:30 2026-03-06T19:00:00Z pr",
				"individual 2026-03-10 09:00-09:50 2026-03-10T14:00:00Z th"),
			wantSkips: 1, // week 1's individual: no therapist slot Thu-Sun
		},
		{
			name: "the patient's own group is never overlapped (group-day fallback)",
			in: func(p *PlanInput) {
				th := Clinician{ID: "th", Role: ClinicianTherapist, Active: true, Availability: []Window{{1, "17:00", "20:00"}, {3, "17:30", "20:00"}}}
				p.Clinicians, p.Weeks = []Clinician{counselor, th}, 1
			},
			// 17:00-17:50 on the Monday is the only slot that ends before the group starts.
			want: append(groups[:3:3], "individual 2026-03-02 17:00-17:50 2026-03-02T23:00:00Z th"),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := PlanInput{Policy: DefaultSchedulePolicy, Zone: chicago, Track: track, Weeks: 2,
				StartDate: date("2026-03-02"), Today: date("2026-03-02"), Now: utc("2026-03-02T06:00:00Z"), Clinicians: all}
			if c.in != nil {
				c.in(&in)
			}
			p := PlanSchedule(in)
			var got []string
			for _, v := range p.Visits {
				cl := v.ClinicianID
				if cl == "" {
					cl = "-"
				}
				if v.ServiceType == ServiceGroup && v.RoomID != "room" {
					t.Errorf("group room = %q", v.RoomID)
				}
				got = append(got, strings.Join([]string{v.ServiceType, v.Date.Format(DateLayout), string(v.Start) + "-" + string(v.End),
					v.StartsAt.Format(time.RFC3339), cl}, " "))
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("visits:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
			if len(p.Skipped) != c.wantSkips {
				t.Errorf("skipped = %v, want %d", p.Skipped, c.wantSkips)
			}
		})
	}
}

func TestCheckReschedule(t *testing.T) {
	d, _ := time.Parse(DateLayout, "2026-03-10") // Tuesday
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	th := Clinician{ID: "th", Role: ClinicianTherapist, Active: true, Availability: []Window{{2, "09:00", "12:00"}}}
	a := Appointment{Status: AppointmentScheduled, Visit: NewVisit(ServiceIndividual, d, "09:00", 50, time.UTC)}
	a.ClinicianID = "th"
	at := func(c Clock) Visit { return NewVisit(ServiceIndividual, d, c, 50, time.UTC) }
	busy := []Interval{at("11:00").Interval()}
	mine := []Interval{{at("09:30").StartsAt, at("09:30").StartsAt.Add(20 * time.Minute)}}
	cases := []struct {
		name string
		a    Appointment
		v    Visit
		rule string
	}{
		{"ok", a, at("10:00"), ""},
		{"patient busy", a, at("09:00"), RuleSlotPatientFree},
		{"group", func() Appointment { g := a; g.ServiceType = ServiceGroup; return g }(), at("10:00"), RuleAppointmentGroup},
		{"cancelled", func() Appointment { g := a; g.Status = AppointmentCancelled; return g }(), at("10:00"), RuleAppointmentScheduled},
		{"outside availability", a, at("11:30"), RuleSlotAvailability},
		{"other weekday", a, NewVisit(ServiceIndividual, d.AddDate(0, 0, 1), "10:00", 50, time.UTC), RuleSlotAvailability},
		{"booked", a, at("10:30"), RuleSlotFree},
		{"past", a, NewVisit(ServiceIndividual, d.AddDate(0, 0, -14), "10:00", 50, time.UTC), RuleAppointmentFuture},
	}
	for _, c := range cases {
		err := CheckReschedule(c.a, th, c.v, now, busy, mine)
		pe, _ := err.(*PreconditionError)
		switch {
		case c.rule == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.rule != "" && (pe == nil || pe.Rule != c.rule):
			t.Errorf("%s: err = %v, want rule %s", c.name, err, c.rule)
		}
	}
	if err := CheckCancel(Appointment{Status: AppointmentCancelled}, now); err == nil {
		t.Error("cancelling a cancelled appointment passes")
	}
}
