package main

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/bus"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
	"github.com/trellis-health/trellis/services/dashboard/internal/web"
)

// The share meeting the weekly minimum: programs from ProgramConfigured (an older configuration
// arriving late changes nothing), complete program weeks of each enrollment in the range, the
// latest attendance version's minutes, an ended enrollment's later weeks and a program whose
// minimum is unknown left out.
func TestMeetingWeeklyMinimum(t *testing.T) {
	e := start(t)
	now := time.Now().UTC()
	chicago, _ := time.LoadLocation("America/Chicago")
	y, m, dd := now.In(chicago).Date()
	today := time.Date(y, m, dd, 0, 0, 0, 0, time.UTC)
	startDay := today.AddDate(0, 0, -20) // weeks end on today-14, today-7 (complete) and today (not yet)
	on := func(k int) string { return day(startDay.AddDate(0, 0, k)) }

	e.publish("trellis.scheduling.clinic.configured.v1", clinicA, now.AddDate(0, 0, -60), &schedulingv1.ClinicConfigured{
		Clinic: &schedulingv1.Clinic{ClinicId: clinicA, Name: "Lakeview", TimeZone: "America/Chicago"}})
	e.publish("trellis.scheduling.program.configured.v1", "", now.AddDate(0, 0, -30), &schedulingv1.ProgramConfigured{
		Program: &schedulingv1.Program{ProgramCode: "adult-iop", LengthWeeks: 12, WeeklyMinimumMinutes: 540}})
	// An older configuration arriving late: 100 minutes would make week 1 met.
	e.publish("trellis.scheduling.program.configured.v1", "", now.AddDate(0, 0, -40), &schedulingv1.ProgramConfigured{
		Program: &schedulingv1.Program{ProgramCode: "adult-iop", LengthWeeks: 12, WeeklyMinimumMinutes: 100}})
	adult, teen := bus.NewID(), bus.NewID()
	for id, program := range map[string]string{adult: "adult-iop", teen: "teen-unknown"} {
		e.publish("trellis.scheduling.track.configured.v1", clinicA, now.AddDate(0, 0, -30), &schedulingv1.TrackConfigured{Track: &schedulingv1.Track{
			TrackId: id, ClinicId: clinicA, ProgramCode: program, TrackCode: program, Capacity: 10}})
	}
	e1, e2, e3 := bus.NewID(), bus.NewID(), bus.NewID()
	for id, track := range map[string]string{e1: adult, e2: teen, e3: adult} {
		e.publish("trellis.scheduling.enrollment.created.v1", clinicA, now.AddDate(0, 0, -21), &schedulingv1.EnrollmentCreated{
			EnrollmentId: id, PatientId: bus.NewID(), ClinicId: clinicA, TrackId: track, StartDate: on(0)})
	}
	// e3 ended in its second week: only its first (0 minutes: not met) counts.
	e.publish("trellis.scheduling.enrollment.ended.v1", clinicA, now.AddDate(0, 0, -10), &schedulingv1.EnrollmentEnded{
		EnrollmentId: e3, PatientId: bus.NewID(), ClinicId: clinicA, TrackId: adult, Reason: "discharged",
		EndedAt: timestamppb.New(time.Date(startDay.Year(), startDay.Month(), startDay.Day()+10, 18, 0, 0, 0, chicago))})
	att := func(enr, appt string, k int, v int32, minutes int32, st schedulingv1.AttendanceStatus) {
		e.publish("trellis.scheduling.attendance.recorded.v1", clinicA, now.AddDate(0, 0, -1), &schedulingv1.AttendanceRecorded{
			AppointmentId: appt, PatientId: bus.NewID(), ClinicId: clinicA, EnrollmentId: enr, LocalDate: on(k),
			Status: st, MinutesAttended: minutes, ScheduledMinutes: 180, Version: v})
	}
	present, absent := schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT, schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT
	// e1, week 0: 3 x 180 = 540, met. Week 1: 180 corrected to absent (0) + 120: not met.
	att(e1, bus.NewID(), 0, 1, 180, present)
	att(e1, bus.NewID(), 2, 1, 180, present)
	att(e1, bus.NewID(), 6, 1, 180, present)
	corrected := bus.NewID()
	att(e1, corrected, 8, 2, 0, absent)
	att(e1, corrected, 8, 1, 180, present) // the older version arrives late
	att(e1, bus.NewID(), 9, 1, 120, present)
	// e2's program minimum is unknown: its weeks are left out whatever it attended.
	att(e2, bus.NewID(), 1, 1, 600, present)
	att(e2, bus.NewID(), 8, 1, 600, present)
	e.settle()

	cookie := e.signIn("operator", clinicA)
	get := func(from, to time.Time) string {
		t.Helper()
		var o web.Overview
		e.json("/api/overview.json?from="+day(from)+"&to="+day(to), cookie, &o)
		if len(o.Clinics) != 1 || o.Clinics[0].KPIs["meeting_minimum"] != o.Total.KPIs["meeting_minimum"] {
			t.Fatalf("overview: %+v total %+v", o.Clinics, o.Total)
		}
		return o.Clinics[0].KPIs["meeting_minimum"]
	}
	// e1 week 0 met, e1 week 1 not, e3 week 0 not: 1 of 3.
	if got := get(today.AddDate(0, 0, -27), today); got != "33.3%" {
		t.Errorf("last 28 days: %s, want 33.3%%", got)
	}
	// Only the weeks ending on or before today-14: e1 and e3 week 0, 1 of 2.
	if got := get(today.AddDate(0, 0, -27), today.AddDate(0, 0, -14)); got != "50.0%" {
		t.Errorf("to today-14: %s, want 50.0%%", got)
	}
	// Only week 1 (e3 had ended): e1's, not met.
	if got := get(today.AddDate(0, 0, -8), today); got != "0.0%" {
		t.Errorf("from today-8: %s, want 0.0%%", got)
	}
	// No complete week ends in the range.
	if got := get(today.AddDate(0, 0, -3), today); got != "—" {
		t.Errorf("last 4 days: %s, want —", got)
	}
	page := e.page("/overview?from="+day(today.AddDate(0, 0, -27))+"&to="+day(today), cookie)
	if got := cells(t, page, "network", "data-clinic-id", clinicA, "data-kpi"); got["meeting_minimum"] != "33.3%" {
		t.Errorf("overview row shows %v", got)
	}
}
