package main

import (
	"context"
	"net/http"
	"testing"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/bus"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1/schedulingv1connect"
)

// Through the API, with row-level security on (migration 00009): a clinic A token naming
// clinic B's patient, track, session or appointment by id gets not_found, lists none of B's
// clinics or appointments, and B's records are unchanged. (That the database, not only the
// app's checks, withholds the rows is TestRowLevelSecurityStopsGuessedIDs in
// internal/adapters/postgres, which calls the repositories with clinic A's scope directly.)
func TestRowLevelSecurityGuessedIDs(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	seatTrack(t, s, clinicA, "adult-evening", 12)
	trackB := seatTrack(t, s, clinicB, "adult-evening", 12)
	patientA, patientB := bus.NewID(), bus.NewID()
	admit(t, s, patientA, clinicA, "adult-evening")
	admit(t, s, patientB, clinicB, "adult-evening")
	// An individual visit of B's patient (in the tests' system scope; clinic B has no staff
	// for the generated sessions).
	apptB, sessionB := bus.NewID(), bus.NewID()
	if _, err := s.Pool.Exec(ctx, `WITH ss AS (
			INSERT INTO sessions (id, clinic_id, service_type, local_date, start_time, end_time, starts_at, ends_at)
			VALUES ($2, $3, 'individual', '2026-03-02', '10:00', '11:00', '2026-03-02 16:00Z', '2026-03-02 17:00Z'))
		INSERT INTO appointments (id, session_id, enrollment_id, patient_id, clinic_id)
		SELECT $1, $2, e.id, e.patient_id, e.clinic_id FROM enrollments e WHERE e.patient_id = $4`,
		apptB, sessionB, clinicB, patientB); err != nil {
		t.Fatalf("clinic B's appointment: %v", err)
	}
	client := schedulingv1connect.NewSchedulingServiceClient(http.DefaultClient, s.URL)
	tokA := s.Token(t, "scheduler-a", []string{"scheduler"}, []string{clinicA})
	tokB := s.Token(t, "scheduler-b", []string{"scheduler"}, []string{clinicB})
	notFound := func(what string, err error) {
		t.Helper()
		if connect.CodeOf(err) != connect.CodeNotFound {
			t.Errorf("%s with a clinic A token: %v, want not_found", what, err)
		}
	}

	_, err := client.GetEnrollment(ctx, call(tokA, &schedulingv1.GetEnrollmentRequest{PatientId: patientB}))
	notFound("GetEnrollment of B's patient", err)
	_, err = client.ListWaitlist(ctx, call(tokA, &schedulingv1.ListWaitlistRequest{TrackId: trackB}))
	notFound("ListWaitlist of B's track", err)
	_, err = client.GetSessionRoster(ctx, call(tokA, &schedulingv1.GetSessionRosterRequest{SessionId: sessionB}))
	notFound("GetSessionRoster of B's session", err)
	_, err = client.CancelAppointment(ctx, call(tokA, &schedulingv1.CancelAppointmentRequest{AppointmentId: apptB,
		CancelledBy: schedulingv1.CancelledBy_CANCELLED_BY_CLINIC, Reason: "rls probe"}))
	notFound("CancelAppointment of B's appointment", err)
	_, err = client.RecordAttendance(ctx, call(tokA, &schedulingv1.RecordAttendanceRequest{IdempotencyKey: "rls-probe-1",
		Entry: &schedulingv1.AttendanceEntry{AppointmentId: apptB, Status: schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT}}))
	notFound("RecordAttendance of B's appointment", err)

	// Listings hold none of B's rows.
	sched, err := client.ListPatientSchedule(ctx, call(tokA, &schedulingv1.ListPatientScheduleRequest{PatientId: patientB}))
	if err != nil && connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatal(err)
	}
	if err == nil && len(sched.Msg.GetAppointments()) != 0 {
		t.Errorf("clinic A lists %d of B's patient's appointments", len(sched.Msg.GetAppointments()))
	}
	clinics, err := client.ListClinics(ctx, call(tokA, &schedulingv1.ListClinicsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(clinics.Msg.GetClinics()) != 1 || clinics.Msg.GetClinics()[0].GetClinicId() != clinicA {
		t.Errorf("a clinic A token lists clinics %v, want only A", clinics.Msg.GetClinics())
	}

	// B's records are untouched, and B's own token sees them.
	if n := s.Count(t, `SELECT count(*) FROM appointments WHERE id = $1 AND status = 'scheduled'`, apptB); n != 1 {
		t.Errorf("B's appointment is no longer scheduled (%d)", n)
	}
	if n := s.Count(t, `SELECT count(*) FROM attendance WHERE appointment_id = $1`, apptB); n != 0 {
		t.Errorf("B's appointment has %d attendance versions, want 0", n)
	}
	if _, err := client.GetEnrollment(ctx, call(tokB, &schedulingv1.GetEnrollmentRequest{PatientId: patientB})); err != nil {
		t.Errorf("GetEnrollment with B's token: %v", err)
	}
	roster, err := client.GetSessionRoster(ctx, call(tokB, &schedulingv1.GetSessionRosterRequest{SessionId: sessionB}))
	if err != nil || len(roster.Msg.GetEntries()) == 0 {
		t.Errorf("GetSessionRoster with B's token: %v, %v", roster, err)
	}
}
