package main

import (
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/testkit/authztest"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
	rpcport "github.com/trellis-health/trellis/services/scheduling/internal/ports/rpc"
)

// authzMatrix is scheduling's part of the role x RPC matrix (docs/security.md).
func authzMatrix() authztest.Matrix {
	return authztest.Matrix{Service: "scheduling", Policy: spec().Policy, APIs: []string{"trellis.scheduling.v1.SchedulingService"}}
}

// TestAuthzMatrix: every scheduling RPC has a policy entry, the policy names only RPCs and
// known roles, the service runs with it, and docs/security.md shows it.
func TestAuthzMatrix(t *testing.T) {
	if len(spec().Policy) != len(rpcport.Policy) {
		t.Fatal("the service does not run with rpcport.Policy")
	}
	authztest.CheckPolicy(t, authzMatrix())
	authztest.CheckDoc(t, authzMatrix())
}

// TestAuthzEveryRoleEveryRPC calls every scheduling RPC with a token of every role, then asks
// about clinic B's data with a token for clinic A only.
func TestAuthzEveryRoleEveryRPC(t *testing.T) {
	e := startConfig(t, nil)
	m := authzMatrix()
	token := func(roles, clinics []string) string { return e.Token(t, "authz-user", roles, clinics) }
	n := authztest.EveryRoleEveryRPC(t, e.URL, m, token)
	t.Logf("%d calls", n)

	// Clinic B's data: a room, a track with a patient enrolled.
	_, roomB := e.configure(t)
	trackB := seatTrack(t, e.Service, clinicB, "adult-evening", 12)
	patient := bus.NewID()
	admit(t, e.Service, patient, clinicB, "adult-evening")
	var enrollment string
	if err := e.Pool.QueryRow(t.Context(), `SELECT id::text FROM enrollments WHERE patient_id = $1`, patient).Scan(&enrollment); err != nil {
		t.Fatalf("enrollment at clinic B: %v", err)
	}
	room, _ := protojson.Marshal(&schedulingv1.UpsertRoomRequest{Room: &schedulingv1.Room{ClinicId: clinicB, Name: "Room 2", Seats: 10}})
	track := eveningTrack(clinicB, roomB)
	track.TrackCode = "adult-evening-2"
	trackReq, _ := protojson.Marshal(&schedulingv1.UpsertTrackRequest{Track: track})
	clinician, _ := protojson.Marshal(&schedulingv1.UpsertClinicianRequest{Clinician: &schedulingv1.Clinician{
		ClinicId: clinicB, DisplayName: "Counselor B", Role: schedulingv1.ClinicianRole_CLINICIAN_ROLE_COUNSELOR}})
	b, p := `"`+clinicB+`"`, `"`+patient+`"`
	cases := []authztest.Case{
		{Procedure: "/trellis.scheduling.v1.SchedulingService/UpsertRoom", Request: string(room)},
		{Procedure: "/trellis.scheduling.v1.SchedulingService/UpsertTrack", Request: string(trackReq)},
		{Procedure: "/trellis.scheduling.v1.SchedulingService/UpsertClinician", Request: string(clinician)},
		{Procedure: "/trellis.scheduling.v1.SchedulingService/ListClinicians", Request: `{"clinicId":` + b + `}`},
		{Procedure: "/trellis.scheduling.v1.SchedulingService/ListTracks", Request: `{"clinicId":` + b + `}`},
		{Procedure: "/trellis.scheduling.v1.SchedulingService/ListClinicDay", Request: `{"clinicId":` + b + `,"localDate":"2026-03-02"}`},
		{Procedure: "/trellis.scheduling.v1.SchedulingService/ListWaitlist", Request: `{"trackId":"` + trackB + `"}`},
		{Procedure: "/trellis.scheduling.v1.SchedulingService/GetEnrollment", Request: `{"patientId":` + p + `}`},
		{Procedure: "/trellis.scheduling.v1.SchedulingService/ListPatientSchedule", Request: `{"patientId":` + p + `}`},
		{Procedure: "/trellis.scheduling.v1.SchedulingService/GetPatientCompliance", Request: `{"patientId":` + p + `}`},
		{Procedure: "/trellis.scheduling.v1.SchedulingService/SwitchTrack", Request: `{"enrollmentId":"` + enrollment +
			`","trackCode":"adult-evening-2","reason":"authz probe","idempotencyKey":"authz-probe-1"}`, Role: "scheduler"},
	}
	authztest.OtherClinic(t, e.URL, m, token, clinicA, clinicB, cases, nil)
}
