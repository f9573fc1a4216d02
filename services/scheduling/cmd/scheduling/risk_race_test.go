package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trellis-health/trellis/pkg/bus"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1/schedulingv1connect"
)

// Attendance for one patient recorded at once (eight clinicians, eight sessions, nine rounds)
// used to fail now and then with risk_episodes' check constraint, or to leave episodes that
// overlap: a call read its clock before it waited for the patient's risk lock, then cleared
// (or opened) an episode at a time before what the lock holder had just written. Every call
// must succeed, the episodes must follow one another, and the risk must end as the attendance
// says.
func TestConcurrentAttendanceForOnePatient(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	evening := seatTrack(t, s, clinicA, "adult-evening", 12)
	staffClinic(t, s, evening)
	p := bus.NewID()
	admitOn(t, s, p, "adult-evening", nextMonday(t))
	var enrollment string
	if err := s.Pool.QueryRow(ctx, `SELECT id::text FROM enrollments WHERE patient_id = $1`, p).Scan(&enrollment); err != nil {
		t.Fatal(err)
	}
	// The patient's first eight group places, moved to the last eight days in their order.
	rows, err := s.Pool.Query(ctx, `SELECT a.id::text, a.session_id::text FROM appointments a JOIN sessions s ON s.id = a.session_id
		WHERE a.patient_id = $1 AND s.service_type = 'group' ORDER BY s.starts_at LIMIT 8`, p)
	if err != nil {
		t.Fatal(err)
	}
	var appts, sessions []string
	for rows.Next() {
		var a, ss string
		if err := rows.Scan(&a, &ss); err != nil {
			t.Fatal(err)
		}
		appts, sessions = append(appts, a), append(sessions, ss)
	}
	if err := rows.Err(); err != nil || len(appts) != 8 {
		t.Fatalf("group places: %d, %v", len(appts), err)
	}
	for i, ss := range sessions {
		moveToPast(t, s, ss, 8-i)
	}

	const (
		A = schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT
		P = schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT
	)
	// Recorded in any order, the partial records flag and clear the patient again and again.
	flagged := []schedulingv1.AttendanceStatus{A, A, P, A, A, P, A, A} // ends with two absences: at risk
	fine := []schedulingv1.AttendanceStatus{P, P, A, P, P, A, P, P}    // ends present: not at risk
	client := schedulingv1connect.NewSchedulingServiceClient(http.DefaultClient, s.URL)
	const rounds = 9 // odd: the last round is flagged
	for round := range rounds {
		statuses := flagged
		if round%2 == 1 {
			statuses = fine
		}
		var wg sync.WaitGroup
		errs := make([]error, len(appts))
		for i, id := range appts {
			tok := s.Token(t, fmt.Sprintf("clinician-%d", i), []string{"clinician"}, []string{clinicA})
			wg.Go(func() {
				_, errs[i] = client.RecordAttendance(ctx, call(tok, &schedulingv1.RecordAttendanceRequest{
					IdempotencyKey: fmt.Sprintf("race-%d-%d", round, i),
					Entry:          &schedulingv1.AttendanceEntry{AppointmentId: id, Status: statuses[i]}}))
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, appointment %d: %v", round+1, i, err)
			}
		}
	}

	// Every round changed every appointment: one version each, the last one the last round's.
	for i, id := range appts {
		v := versions(t, s, id)
		want := fmt.Sprintf("%d present", rounds)
		if flagged[i] == A {
			want = fmt.Sprintf("%d absent", rounds)
		}
		if len(v) != rounds || !strings.HasPrefix(v[rounds-1], want+" ") {
			t.Fatalf("appointment %d versions = %v, want %d ending %q", i, v, rounds, want)
		}
	}
	// At risk, for two absences running: one open episode; the episodes follow one another.
	c, err := client.GetPatientCompliance(ctx, call(s.Token(t, "operator-1", []string{"operator"}, []string{clinicA}),
		&schedulingv1.GetPatientComplianceRequest{PatientId: p}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Msg.GetAtRisk() || !slices.Equal(c.Msg.GetRiskReasons(), []schedulingv1.RiskReason{schedulingv1.RiskReason_RISK_REASON_CONSECUTIVE_ABSENCES}) {
		t.Fatalf("compliance: at risk %v, reasons %v", c.Msg.GetAtRisk(), c.Msg.GetRiskReasons())
	}
	eps, err := s.Pool.Query(ctx, `SELECT since, cleared_at FROM risk_episodes WHERE enrollment_id = $1 ORDER BY since, cleared_at NULLS LAST`, enrollment)
	if err != nil {
		t.Fatal(err)
	}
	var open, cleared int
	var last time.Time
	for eps.Next() {
		var since time.Time
		var clearedAt *time.Time
		if err := eps.Scan(&since, &clearedAt); err != nil {
			t.Fatal(err)
		}
		if since.Before(last) {
			t.Errorf("an episode since %v began before the previous one ended (%v)", since, last)
		}
		if clearedAt == nil {
			open++
			continue
		}
		cleared++
		last = *clearedAt
	}
	if err := eps.Err(); err != nil {
		t.Fatal(err)
	}
	if open != 1 {
		t.Fatalf("open risk episodes = %d, want 1", open)
	}
	// Each episode was announced when it opened and when it cleared, once.
	if n := len(atRiskEvents(t, s)); n != open+cleared {
		t.Errorf("PatientAtRisk events = %d, episodes = %d", n, open+cleared)
	}
	if n := len(clearedEvents(t, s)); n != cleared {
		t.Errorf("PatientRiskCleared events = %d, cleared episodes = %d", n, cleared)
	}
}
