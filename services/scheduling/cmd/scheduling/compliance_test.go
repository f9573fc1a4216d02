package main

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1/schedulingv1connect"

	"github.com/trellis-health/trellis/services/scheduling/internal/app"
	"github.com/trellis-health/trellis/services/scheduling/internal/testscope"
)

const (
	subjectAtRisk      = "trellis.scheduling.patient.at_risk.v1"
	subjectRiskCleared = "trellis.scheduling.patient.risk_cleared.v1"
	subjectCompleted   = "trellis.scheduling.program.completed.v1"
)

// startWithApp runs the service like start and returns the app it runs, to sweep compliance
// as of a chosen time.
func startWithApp(t *testing.T) (*servicetest.Service, *app.App) {
	t.Helper()
	var cfg Config
	var a *app.App
	s := servicetest.Start(t, specWith(&cfg, func(x *app.App) { a = x }), &cfg, nil)
	testscope.SystemScoped(t, s)
	if a == nil {
		t.Fatal("no app")
	}
	return s, a
}

func atRiskEvents(t *testing.T, s *servicetest.Service) []*schedulingv1.PatientAtRisk {
	t.Helper()
	s.Relayed(t)
	return published(t, s, subjectAtRisk, func() *schedulingv1.PatientAtRisk { return &schedulingv1.PatientAtRisk{} })
}

func clearedEvents(t *testing.T, s *servicetest.Service) []*schedulingv1.PatientRiskCleared {
	t.Helper()
	s.Relayed(t)
	return published(t, s, subjectRiskCleared, func() *schedulingv1.PatientRiskCleared { return &schedulingv1.PatientRiskCleared{} })
}

func completedEvents(t *testing.T, s *servicetest.Service) []*schedulingv1.ProgramCompleted {
	t.Helper()
	s.Relayed(t)
	return published(t, s, subjectCompleted, func() *schedulingv1.ProgramCompleted { return &schedulingv1.ProgramCompleted{} })
}

func TestComplianceAndRisk(t *testing.T) {
	s, a := startWithApp(t)
	ctx := context.Background()
	evening := seatTrack(t, s, clinicA, "adult-evening", 12) // adult-iop: 12 weeks, 540 minutes a week
	staffClinic(t, s, evening)
	monday := nextMonday(t)
	mon, wed, thu := monday.Format(time.DateOnly), monday.AddDate(0, 0, 2).Format(time.DateOnly), monday.AddDate(0, 0, 3).Format(time.DateOnly)
	p1 := bus.NewID()
	admitOn(t, s, p1, "adult-evening", monday)
	var enrollment string
	if err := s.Pool.QueryRow(ctx, `SELECT id::text FROM enrollments WHERE patient_id = $1`, p1).Scan(&enrollment); err != nil {
		t.Fatal(err)
	}
	client := schedulingv1connect.NewSchedulingServiceClient(http.DefaultClient, s.URL)
	clinician := s.Token(t, "clinician-1", []string{"clinician"}, []string{clinicA})
	operator := s.Token(t, "operator-1", []string{"operator"}, []string{clinicA})
	otherClinic := s.Token(t, "scheduler-2", []string{"scheduler"}, []string{clinicB})
	intake := s.Token(t, "intake-1", []string{"intake_coordinator"}, []string{clinicA})

	a1, s1 := placeOn(t, s, p1, "group", mon)
	a2, s2 := placeOn(t, s, p1, "group", wed)
	a3, s3 := placeOn(t, s, p1, "group", thu)
	moveToPast(t, s, s1, 3)
	moveToPast(t, s, s2, 2)
	moveToPast(t, s, s3, 1)
	const (
		present = schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT
		absent  = schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT
	)
	record := func(key, id string, st schedulingv1.AttendanceStatus) {
		t.Helper()
		if _, err := client.RecordAttendance(ctx, call(clinician, &schedulingv1.RecordAttendanceRequest{IdempotencyKey: key,
			Entry: &schedulingv1.AttendanceEntry{AppointmentId: id, Status: st}})); err != nil {
			t.Fatalf("record %s: %v", key, err)
		}
	}
	compliance := func(tok string) (*schedulingv1.GetPatientComplianceResponse, error) {
		r, err := client.GetPatientCompliance(ctx, call(tok, &schedulingv1.GetPatientComplianceRequest{PatientId: p1}))
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	}

	// One absence: not yet at risk. Two running: at risk, announced once.
	record("key-risk-1", a1, absent)
	if ev := atRiskEvents(t, s); len(ev) != 0 {
		t.Fatalf("at risk after one absence: %v", ev)
	}
	record("key-risk-2", a2, absent)
	ev := atRiskEvents(t, s)
	if len(ev) != 1 || ev[0].GetPatientId() != p1 || ev[0].GetEnrollmentId() != enrollment || ev[0].GetClinicId() != clinicA ||
		!slices.Equal(ev[0].GetReasons(), []schedulingv1.RiskReason{schedulingv1.RiskReason_RISK_REASON_CONSECUTIVE_ABSENCES}) ||
		ev[0].GetSince() == nil {
		t.Fatalf("PatientAtRisk = %v", ev)
	}
	since := ev[0].GetSince().AsTime()
	// A third absence: still the same episode, nothing announced.
	record("key-risk-3", a3, absent)
	if ev := atRiskEvents(t, s); len(ev) != 1 {
		t.Fatalf("PatientAtRisk events = %d after a third absence, want 1", len(ev))
	}
	if n := s.Count(t, `SELECT count(*) FROM risk_episodes WHERE enrollment_id = $1`, enrollment); n != 1 {
		t.Fatalf("risk episodes = %d, want 1", n)
	}

	// GetPatientCompliance: weeks, history, risk.
	c, err := compliance(operator)
	if err != nil {
		t.Fatal(err)
	}
	if c.GetEnrollmentId() != enrollment || c.GetProgramCode() != "adult-iop" || len(c.GetWeeks()) != 12 || !c.GetAtRisk() ||
		!slices.Equal(c.GetRiskReasons(), []schedulingv1.RiskReason{schedulingv1.RiskReason_RISK_REASON_CONSECUTIVE_ABSENCES}) ||
		!c.GetAtRiskSince().AsTime().Equal(since) {
		t.Fatalf("compliance = %v", c)
	}
	if w := c.GetWeeks()[0]; w.GetWeek() != 1 || w.GetFromDate() != mon || w.GetToDate() != monday.AddDate(0, 0, 6).Format(time.DateOnly) ||
		w.GetMinimumMinutes() != 540 || w.GetAttendedMinutes() != 0 || w.GetComplete() || w.GetStepDown() || w.GetMeetsMinimum() {
		t.Fatalf("week 1 = %v", w)
	}
	if w := c.GetWeeks()[11]; !w.GetStepDown() || !w.GetMeetsMinimum() || c.GetWeeks()[9].GetStepDown() {
		t.Fatalf("weeks 10-12 = %v", c.GetWeeks()[9:])
	}
	h := c.GetHistory()
	if len(h) != 3 || h[0].GetAppointment().GetAppointmentId() != a1 || h[2].GetAppointment().GetAppointmentId() != a3 ||
		h[1].GetAttendance().GetStatus() != absent {
		t.Fatalf("history = %v", h)
	}
	_, err = compliance(intake)
	wantCode(t, err, connect.CodePermissionDenied) // the role may not
	_, err = compliance(otherClinic)
	wantCode(t, err, connect.CodeNotFound) // another clinic's patient
	if _, err := client.GetPatientCompliance(ctx, call(operator, &schedulingv1.GetPatientComplianceRequest{PatientId: bus.NewID()})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("unknown patient: %v", err)
	}

	// A present (a correction of the last absence) clears the risk.
	record("key-risk-4", a3, present)
	cl := clearedEvents(t, s)
	if len(cl) != 1 || cl[0].GetEnrollmentId() != enrollment || cl[0].GetPatientId() != p1 ||
		!cl[0].GetAtRiskSince().AsTime().Equal(since) || cl[0].GetClearedAt() == nil {
		t.Fatalf("PatientRiskCleared = %v", cl)
	}
	if c, err := compliance(operator); err != nil || c.GetAtRisk() || len(c.GetRiskReasons()) != 0 {
		t.Fatalf("compliance after clearing = %v, %v", c, err)
	}

	// Two complete weeks under the minimum (the recorded sessions were moved before the
	// program started): the sweep flags the patient, once.
	at := func(days int) time.Time { return monday.AddDate(0, 0, days).Add(18 * time.Hour) } // 12:00 or 13:00 in Chicago
	if err := a.SweepCompliance(auth.WithSystemScope(ctx), at(13)); err != nil {
		t.Fatal(err)
	}
	if ev := atRiskEvents(t, s); len(ev) != 1 {
		t.Fatalf("PatientAtRisk events = %d with one complete week, want 1", len(ev))
	}
	for range 2 {
		if err := a.SweepCompliance(auth.WithSystemScope(ctx), at(14)); err != nil {
			t.Fatal(err)
		}
	}
	ev = atRiskEvents(t, s)
	if len(ev) != 2 || !slices.Equal(ev[1].GetReasons(), []schedulingv1.RiskReason{schedulingv1.RiskReason_RISK_REASON_UNDER_WEEKLY_MINIMUM}) ||
		!ev[1].GetSince().AsTime().Equal(at(14)) {
		t.Fatalf("PatientAtRisk = %v", ev)
	}

	// The program's last day passed: completed, announced once; the step-down weeks clear the risk.
	if err := a.SweepCompliance(auth.WithSystemScope(ctx), at(83)); err != nil {
		t.Fatal(err)
	}
	if ev := completedEvents(t, s); len(ev) != 0 {
		t.Fatalf("completed on its last day: %v", ev)
	}
	for range 2 {
		if err := a.SweepCompliance(auth.WithSystemScope(ctx), at(84)); err != nil {
			t.Fatal(err)
		}
	}
	done := completedEvents(t, s)
	if len(done) != 1 || done[0].GetEnrollmentId() != enrollment || done[0].GetPatientId() != p1 || done[0].GetClinicId() != clinicA ||
		done[0].GetProgramCode() != "adult-iop" || done[0].GetCompletedOn() != monday.AddDate(0, 0, 83).Format(time.DateOnly) ||
		done[0].GetWeeks() != 12 || done[0].GetWeeksMeetingMinimum() != 2 {
		t.Fatalf("ProgramCompleted = %v", done)
	}
	if n := s.Count(t, `SELECT count(*) FROM program_completions WHERE enrollment_id = $1`, enrollment); n != 1 {
		t.Fatalf("completions = %d, want 1", n)
	}
	if cl := clearedEvents(t, s); len(cl) != 2 {
		t.Fatalf("PatientRiskCleared events = %d, want 2", len(cl))
	}
	if n := s.Count(t, `SELECT count(*) FROM risk_episodes WHERE enrollment_id = $1 AND cleared_at IS NULL`, enrollment); n != 0 {
		t.Fatalf("open risk episodes = %d, want 0", n)
	}
}
