package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1/schedulingv1connect"
)

const (
	subjectApptScheduled   = "trellis.scheduling.appointment.scheduled.v1"
	subjectApptRescheduled = "trellis.scheduling.appointment.rescheduled.v1"
	subjectApptCancelled   = "trellis.scheduling.appointment.cancelled.v1"
)

// staffClinic gives clinicA (America/Chicago) a room for trackID and three clinicians: a
// counselor for the evening groups, a therapist on Tuesdays and Fridays 09:00-17:00 and a
// prescriber on Fridays 13:00-15:00.
func staffClinic(t *testing.T, s *servicetest.Service, trackID string) (room, counselor, therapist, prescriber string) {
	t.Helper()
	ctx := context.Background()
	room, counselor, therapist, prescriber = bus.NewID(), bus.NewID(), bus.NewID(), bus.NewID()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO rooms (id, clinic_id, name, seats) VALUES ($1, $2, 'Group Room', 14)`, []any{room, clinicA}},
		{`UPDATE tracks SET room_id = $1 WHERE clinic_id = $2`, []any{room, clinicA}},
		{`INSERT INTO clinicians (id, clinic_id, display_name, role) VALUES ($1, $4, 'C', 'counselor'),
			($2, $4, 'T', 'therapist'), ($3, $4, 'P', 'prescriber')`, []any{counselor, therapist, prescriber, clinicA}},
		{`INSERT INTO clinician_availability (clinician_id, clinic_id, weekday, start_time, end_time) VALUES
			($1, $4, 1, '08:00', '22:00'), ($1, $4, 3, '08:00', '22:00'), ($1, $4, 4, '08:00', '22:00'),
			($2, $4, 2, '09:00', '17:00'), ($2, $4, 5, '09:00', '17:00'), ($3, $4, 5, '13:00', '15:00')`, []any{counselor, therapist, prescriber, clinicA}},
	} {
		if _, err := s.Pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("staff clinic: %v", err)
		}
	}
	return room, counselor, therapist, prescriber
}

// nextMonday is the first Monday after today in Chicago.
func nextMonday(t *testing.T) time.Time {
	loc, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	y, m, d := time.Now().In(loc).Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1)
	for day.Weekday() != time.Monday {
		day = day.AddDate(0, 0, 1)
	}
	return day
}

// admitOn admits a patient to clinicA's track starting on start; it returns the episode id
// and how long the admission took to be handled.
func admitOn(t *testing.T, s *servicetest.Service, patientID, track string, start time.Time) (string, time.Duration) {
	t.Helper()
	m := admitted(patientID, clinicA)
	m.ProgramTrack, m.StartDate = track, start.Format(time.DateOnly)
	env := envelope(t, m, clinicA)
	began := time.Now()
	seq := s.Publish(t, subjectAdmitted, env.GetEventId(), env, "")
	s.Settled(t, "INTAKE", consumerName, seq)
	took := time.Since(began)
	s.Relayed(t)
	return m.GetEpisodeId(), took
}

// kinds counts a patient's appointments by "service_type status".
func kinds(t *testing.T, s *servicetest.Service, patientID string) map[string]int {
	t.Helper()
	rows, err := s.Pool.Query(context.Background(), `SELECT s.service_type || ' ' || a.status || COALESCE(' ' || a.cancelled_by, ''), count(*)
		FROM appointments a JOIN sessions s ON s.id = a.session_id WHERE a.patient_id = $1 GROUP BY 1`, patientID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		out[k] = n
	}
	return out
}

func wantKinds(t *testing.T, s *servicetest.Service, what, patientID string, want map[string]int) {
	t.Helper()
	got := kinds(t, s, patientID)
	if len(got) != len(want) {
		t.Fatalf("%s: appointments %v, want %v", what, got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Fatalf("%s: appointments %v, want %v", what, got, want)
		}
	}
}

func TestAppointmentsGeneratedAndCancelledOnDischarge(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	evening := seatTrack(t, s, clinicA, "adult-evening", 12)
	room, counselor, therapist, prescriber := staffClinic(t, s, evening)
	monday := nextMonday(t)
	p1, p2 := bus.NewID(), bus.NewID()

	ep1, took := admitOn(t, s, p1, "adult-evening", monday)
	t.Logf("admission with its schedule handled in %s", took)
	// 12 weeks: 3 group places a week, a weekly individual session, medication visits in weeks 1, 5 and 9.
	wantKinds(t, s, "admitted", p1, map[string]int{"group scheduled": 36, "individual scheduled": 12, "medication_management scheduled": 3})
	if n := s.Count(t, `SELECT count(*) FROM sessions WHERE service_type = 'group' AND track_id = $1 AND clinician_id = $2
		AND room_id = $3 AND start_time = '18:00' AND end_time = '21:00' AND extract(isodow FROM local_date) IN (1, 3, 4)
		AND local_date >= $4 AND local_date < $4::date + 84`, evening, counselor, room, monday); n != 36 {
		t.Fatalf("group sessions = %d, want 36 with the counselor, the room, Mon/Wed/Thu 18:00", n)
	}
	// Local 18:00 Chicago is the UTC instant of that wall-clock time in the zone.
	if n := s.Count(t, `SELECT count(*) FROM sessions WHERE track_id = $1
		AND starts_at <> (local_date + start_time) AT TIME ZONE 'America/Chicago'`, evening); n != 0 {
		t.Fatalf("%d sessions whose starts_at is not the local time in the clinic's zone", n)
	}
	// Individual sessions on Tuesdays (no group), 09:00-09:50, with the therapist; medication on Fridays.
	if n := s.Count(t, `SELECT count(*) FROM sessions WHERE service_type = 'individual' AND clinician_id = $1
		AND extract(isodow FROM local_date) = 2 AND start_time = '09:00' AND end_time = '09:50'`, therapist); n != 12 {
		t.Fatalf("individual sessions on Tuesday 09:00 = %d, want 12", n)
	}
	if n := s.Count(t, `SELECT count(*) FROM sessions WHERE service_type = 'medication_management' AND clinician_id = $1
		AND local_date IN ($2::date + 4, $2::date + 32, $2::date + 60) AND start_time = '13:00' AND end_time = '13:30'`, prescriber, monday); n != 3 {
		t.Fatalf("medication sessions = %d, want Fridays of weeks 1, 5, 9 at 13:00", n)
	}
	scheduled := published(t, s, subjectApptScheduled, func() *schedulingv1.AppointmentScheduled { return &schedulingv1.AppointmentScheduled{} })
	if len(scheduled) != 51 {
		t.Fatalf("AppointmentScheduled = %d, want 51", len(scheduled))
	}
	first := scheduled[0]
	if first.GetClinicTimeZone() != "America/Chicago" || first.GetAppointment().GetPatientId() != p1 ||
		first.GetAppointment().GetStatus() != schedulingv1.AppointmentStatus_APPOINTMENT_STATUS_SCHEDULED ||
		first.GetAppointment().GetStartsAt() == nil || first.GetAppointment().GetLocalDate() == "" {
		t.Fatalf("AppointmentScheduled = %v", first)
	}

	// A second patient joins the same group sessions and gets the next free therapist slot.
	_, took = admitOn(t, s, p2, "adult-evening", monday)
	t.Logf("second admission handled in %s", took)
	if n := s.Count(t, `SELECT count(*) FROM sessions WHERE service_type = 'group'`); n != 36 {
		t.Fatalf("group sessions = %d after a second admission, want the same 36", n)
	}
	if n := s.Count(t, `SELECT count(*) FROM appointments a JOIN sessions s ON s.id = a.session_id WHERE a.patient_id = $1
		AND s.service_type = 'individual' AND s.start_time = '10:00'`, p2); n != 12 {
		t.Fatalf("second patient's individual sessions at 10:00 = %d, want 12 (09:00 is taken)", n)
	}

	// Discharge: every future appointment of the first patient is cancelled, with events.
	discharge(t, s, p1, ep1, clinicA)
	wantKinds(t, s, "discharged", p1, map[string]int{"group cancelled discharged": 36, "individual cancelled discharged": 12,
		"medication_management cancelled discharged": 3})
	cancelled := published(t, s, subjectApptCancelled, func() *schedulingv1.AppointmentCancelled { return &schedulingv1.AppointmentCancelled{} })
	if len(cancelled) != 51 {
		t.Fatalf("AppointmentCancelled = %d, want 51", len(cancelled))
	}
	for _, c := range cancelled {
		if c.GetReasonCode() != "discharged" || c.GetAppointment().GetPatientId() != p1 ||
			c.GetAppointment().GetStatus() != schedulingv1.AppointmentStatus_APPOINTMENT_STATUS_CANCELLED {
			t.Fatalf("AppointmentCancelled = %v", c)
		}
	}
	if n := s.Count(t, `SELECT count(*) FROM appointment_history h JOIN appointments a ON a.id = h.appointment_id
		WHERE a.patient_id = $1 AND h.change = 'cancelled' AND h.actor LIKE 'event:%'`, p1); n != 51 {
		t.Fatalf("history rows = %d, want 51", n)
	}
	// The freed therapist hours are free again: the individual sessions were cancelled, the group sessions stay.
	if n := s.Count(t, `SELECT count(*) FROM sessions WHERE service_type = 'individual' AND status = 'scheduled'`); n != 12 {
		t.Fatalf("scheduled individual sessions = %d, want the second patient's 12", n)
	}
	wantKinds(t, s, "other patient", p2, map[string]int{"group scheduled": 36, "individual scheduled": 12, "medication_management scheduled": 3})

	// A switch cancels the old track's future appointments ("clinic") and schedules the new track's.
	day := seatTrack(t, s, clinicA, "adult-day", 12)
	if _, err := s.Pool.Exec(ctx, `UPDATE tracks SET start_time = '09:00', end_time = '12:00', time_of_day = 'day', room_id = $2 WHERE id = $1`, day, room); err != nil {
		t.Fatal(err)
	}
	client := schedulingv1connect.NewSchedulingServiceClient(http.DefaultClient, s.URL)
	scheduler := s.Token(t, "scheduler-1", []string{"scheduler"}, []string{clinicA})
	var enrollmentID string
	if err := s.Pool.QueryRow(ctx, `SELECT id::text FROM enrollments WHERE patient_id = $1`, p2).Scan(&enrollmentID); err != nil {
		t.Fatal(err)
	}
	switchReq := func() *schedulingv1.SwitchTrackRequest {
		return &schedulingv1.SwitchTrackRequest{EnrollmentId: enrollmentID, TrackCode: "adult-day", Reason: "works evenings now",
			IdempotencyKey: "switch-key-1"}
	}
	if _, err := client.SwitchTrack(ctx, call(scheduler, switchReq())); err != nil {
		t.Fatal(err)
	}
	// A replay by the same caller is replayed; after losing the clinic it is not found, and
	// the stored response is not handed out (the clinic is checked before the idempotency key).
	if again, err := client.SwitchTrack(ctx, call(scheduler, switchReq())); err != nil || !again.Msg.GetReplayed() {
		t.Fatalf("switch replay = %v, %v", again, err)
	}
	_, err := client.SwitchTrack(ctx, call(s.Token(t, "scheduler-1", []string{"scheduler"}, []string{clinicB}), switchReq()))
	wantCode(t, err, connect.CodeNotFound)
	s.Relayed(t)
	got := kinds(t, s, p2)
	if got["group cancelled clinic"] != 36 || got["individual cancelled clinic"] != 12 || got["group scheduled"] == 0 ||
		got["group scheduled"] > 36 || got["individual scheduled"] == 0 {
		t.Fatalf("after the switch: %v", got)
	}
	if n := s.Count(t, `SELECT count(*) FROM appointments a JOIN sessions s ON s.id = a.session_id
		WHERE a.patient_id = $1 AND a.status = 'scheduled' AND s.service_type = 'group' AND s.track_id <> $2`, p2, day); n != 0 {
		t.Fatalf("%d scheduled places left in the old track", n)
	}
}

func TestAppointmentRPCs(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	evening := seatTrack(t, s, clinicA, "adult-evening", 12)
	seatTrack(t, s, clinicB, "adult-evening", 12)
	_, _, therapist, _ := staffClinic(t, s, evening)
	monday := nextMonday(t)
	tuesday := monday.AddDate(0, 0, 1).Format(time.DateOnly)
	p1, p2 := bus.NewID(), bus.NewID()
	admitOn(t, s, p1, "adult-evening", monday)
	admitOn(t, s, p2, "adult-evening", monday)
	client := schedulingv1connect.NewSchedulingServiceClient(http.DefaultClient, s.URL)
	tok := func(subject string, roles []string, clinics ...string) string {
		return s.Token(t, subject, roles, clinics)
	}
	scheduler := tok("scheduler-1", []string{"scheduler"}, clinicA)
	otherClinic := tok("scheduler-2", []string{"scheduler"}, clinicB)
	clinician := tok("clinician-1", []string{"clinician"}, clinicA)
	intake := tok("intake-1", []string{"intake_coordinator"}, clinicA)
	operator := tok("operator-1", []string{"operator"}, clinicA)

	// ListPatientSchedule.
	sched, err := client.ListPatientSchedule(ctx, call(scheduler, &schedulingv1.ListPatientScheduleRequest{PatientId: p1}))
	if err != nil || len(sched.Msg.GetAppointments()) != 51 {
		t.Fatalf("schedule = %d, %v", len(sched.Msg.GetAppointments()), err)
	}
	week1, err := client.ListPatientSchedule(ctx, call(intake, &schedulingv1.ListPatientScheduleRequest{PatientId: p1,
		FromDate: monday.Format(time.DateOnly), ToDate: monday.AddDate(0, 0, 6).Format(time.DateOnly)}))
	if err != nil || len(week1.Msg.GetAppointments()) != 5 { // 3 groups, 1 individual, 1 medication
		t.Fatalf("week 1 = %d, %v", len(week1.Msg.GetAppointments()), err)
	}
	if as := week1.Msg.GetAppointments(); !slices.IsSortedFunc(as, func(a, b *schedulingv1.Appointment) int {
		return a.GetStartsAt().AsTime().Compare(b.GetStartsAt().AsTime())
	}) {
		t.Fatal("schedule not ordered by start")
	}
	_, err = client.ListPatientSchedule(ctx, call(otherClinic, &schedulingv1.ListPatientScheduleRequest{PatientId: p1}))
	wantCode(t, err, connect.CodeNotFound)
	_, err = client.ListPatientSchedule(ctx, call(scheduler, &schedulingv1.ListPatientScheduleRequest{PatientId: bus.NewID()}))
	wantCode(t, err, connect.CodeNotFound)
	_, err = client.ListPatientSchedule(ctx, call(operator, &schedulingv1.ListPatientScheduleRequest{PatientId: p1}))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = client.ListPatientSchedule(ctx, call(scheduler, &schedulingv1.ListPatientScheduleRequest{PatientId: p1, FromDate: "2026-02-30"}))
	wantCode(t, err, connect.CodeInvalidArgument)

	// ListClinicDay: the Tuesday has both patients' individual sessions with the therapist.
	dayList, err := client.ListClinicDay(ctx, call(clinician, &schedulingv1.ListClinicDayRequest{ClinicId: clinicA, LocalDate: tuesday, ClinicianId: therapist}))
	if err != nil || len(dayList.Msg.GetAppointments()) != 2 {
		t.Fatalf("clinic day = %v, %v", dayList.Msg.GetAppointments(), err)
	}
	ind1, ind2 := dayList.Msg.GetAppointments()[0], dayList.Msg.GetAppointments()[1]
	if ind1.GetPatientId() != p1 || ind1.GetStartTime() != "09:00" || ind2.GetStartTime() != "10:00" ||
		ind1.GetServiceType() != schedulingv1.ServiceType_SERVICE_TYPE_INDIVIDUAL {
		t.Fatalf("clinic day = %v", dayList.Msg.GetAppointments())
	}
	_, err = client.ListClinicDay(ctx, call(otherClinic, &schedulingv1.ListClinicDayRequest{ClinicId: clinicA, LocalDate: tuesday}))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = client.ListClinicDay(ctx, call(intake, &schedulingv1.ListClinicDayRequest{ClinicId: clinicA, LocalDate: tuesday}))
	wantCode(t, err, connect.CodePermissionDenied)

	// RescheduleAppointment.
	var group string
	for _, a := range week1.Msg.GetAppointments() {
		if a.GetServiceType() == schedulingv1.ServiceType_SERVICE_TYPE_GROUP {
			group = a.GetAppointmentId()
		}
	}
	move := func(id, date, start, key string) *schedulingv1.RescheduleAppointmentRequest {
		return &schedulingv1.RescheduleAppointmentRequest{AppointmentId: id, LocalDate: date, StartTime: start, Reason: "dentist", IdempotencyKey: key}
	}
	refused := []struct {
		name  string
		token string
		req   *schedulingv1.RescheduleAppointmentRequest
		code  connect.Code
		rule  string // in the message of a failed_precondition
	}{
		{"group place", scheduler, move(group, tuesday, "11:00", "key-res-1"), connect.CodeFailedPrecondition, "appointment.not_group"},
		{"clinician booked", scheduler, move(ind1.GetAppointmentId(), tuesday, "10:30", "key-res-2"), connect.CodeFailedPrecondition, "slot.clinician_free"},
		{"outside availability", scheduler, move(ind1.GetAppointmentId(), tuesday, "16:30", "key-res-3"), connect.CodeFailedPrecondition, "slot.clinician_available"},
		{"day without availability", scheduler, move(ind1.GetAppointmentId(), monday.Format(time.DateOnly), "11:00", "key-res-4"), connect.CodeFailedPrecondition, "slot.clinician_available"},
		{"patient busy", scheduler, move(ind1.GetAppointmentId(), monday.AddDate(0, 0, 4).Format(time.DateOnly), "13:00", "key-res-11"), connect.CodeFailedPrecondition, "slot.patient_free"},
		{"in the past", scheduler, move(ind1.GetAppointmentId(), "2026-01-06", "11:00", "key-res-5"), connect.CodeFailedPrecondition, "appointment.future"},
		{"bad time", scheduler, move(ind1.GetAppointmentId(), tuesday, "25:00", "key-res-6"), connect.CodeInvalidArgument, ""},
		{"bad date", scheduler, move(ind1.GetAppointmentId(), "2026-02-30", "10:00", "key-res-10"), connect.CodeInvalidArgument, ""},
		{"other clinic", otherClinic, move(ind1.GetAppointmentId(), tuesday, "11:00", "key-res-7"), connect.CodeNotFound, ""},
		{"unknown", scheduler, move(bus.NewID(), tuesday, "11:00", "key-res-8"), connect.CodeNotFound, ""},
		{"wrong role", intake, move(ind1.GetAppointmentId(), tuesday, "11:00", "key-res-9"), connect.CodePermissionDenied, ""},
	}
	for _, tt := range refused {
		t.Run("reschedule "+tt.name, func(t *testing.T) {
			_, err := client.RescheduleAppointment(ctx, call(tt.token, tt.req))
			wantCode(t, err, tt.code)
			if tt.rule != "" && !strings.Contains(err.Error(), tt.rule) {
				t.Fatalf("err = %v, want rule %s", err, tt.rule)
			}
		})
	}
	moved, err := client.RescheduleAppointment(ctx, call(clinician, move(ind1.GetAppointmentId(), tuesday, "11:00", "key-move-1")))
	if err != nil || moved.Msg.GetReplayed() || moved.Msg.GetAppointment().GetStartTime() != "11:00" ||
		moved.Msg.GetAppointment().GetEndTime() != "11:50" || moved.Msg.GetAppointment().GetRescheduleCount() != 1 {
		t.Fatalf("reschedule = %v, %v", moved, err)
	}
	again, err := client.RescheduleAppointment(ctx, call(clinician, move(ind1.GetAppointmentId(), tuesday, "11:00", "key-move-1")))
	if err != nil || !again.Msg.GetReplayed() || !proto.Equal(again.Msg.GetAppointment(), moved.Msg.GetAppointment()) {
		t.Fatalf("replay = %v, %v", again, err)
	}
	// The same caller after losing the clinic: the appointment is not found, and the stored
	// response is not replayed (the clinic is checked before the idempotency key).
	lost := tok("clinician-1", []string{"clinician"}, clinicB)
	_, err = client.RescheduleAppointment(ctx, call(lost, move(ind1.GetAppointmentId(), tuesday, "11:00", "key-move-1")))
	wantCode(t, err, connect.CodeNotFound)
	_, err = client.RescheduleAppointment(ctx, call(clinician, move(ind1.GetAppointmentId(), tuesday, "12:00", "key-move-1")))
	wantCode(t, err, connect.CodeFailedPrecondition) // the key with another request
	s.Relayed(t)
	rescheduled := published(t, s, subjectApptRescheduled, func() *schedulingv1.AppointmentRescheduled { return &schedulingv1.AppointmentRescheduled{} })
	if len(rescheduled) != 1 || rescheduled[0].GetClinicTimeZone() != "America/Chicago" ||
		!rescheduled[0].GetPreviousStartsAt().AsTime().Equal(ind1.GetStartsAt().AsTime()) ||
		!proto.Equal(rescheduled[0].GetAppointment(), moved.Msg.GetAppointment()) {
		t.Fatalf("AppointmentRescheduled = %v", rescheduled)
	}
	if n := s.Count(t, `SELECT count(*) FROM appointment_history WHERE appointment_id = $1 AND change = 'rescheduled'
		AND reason = 'dentist' AND actor = 'clinician-1' AND previous_start IS NOT NULL`, ind1.GetAppointmentId()); n != 1 {
		t.Fatalf("reschedule history rows = %d", n)
	}
	// 09:00 is free again for the therapist: the second patient may move there.
	if _, err := client.RescheduleAppointment(ctx, call(scheduler, move(ind2.GetAppointmentId(), tuesday, "09:00", "key-move-2"))); err != nil {
		t.Fatal(err)
	}

	// CancelAppointment.
	cancel := func(id string) *schedulingv1.CancelAppointmentRequest {
		return &schedulingv1.CancelAppointmentRequest{AppointmentId: id, CancelledBy: schedulingv1.CancelledBy_CANCELLED_BY_PATIENT, Reason: "sick"}
	}
	_, err = client.CancelAppointment(ctx, call(otherClinic, cancel(ind2.GetAppointmentId())))
	wantCode(t, err, connect.CodeNotFound)
	_, err = client.CancelAppointment(ctx, call(operator, cancel(ind2.GetAppointmentId())))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = client.CancelAppointment(ctx, call(scheduler, &schedulingv1.CancelAppointmentRequest{AppointmentId: ind2.GetAppointmentId(), Reason: "x"}))
	wantCode(t, err, connect.CodeInvalidArgument)
	c, err := client.CancelAppointment(ctx, call(scheduler, cancel(ind2.GetAppointmentId())))
	if err != nil || c.Msg.GetAppointment().GetStatus() != schedulingv1.AppointmentStatus_APPOINTMENT_STATUS_CANCELLED ||
		c.Msg.GetAppointment().GetCancelledBy() != schedulingv1.CancelledBy_CANCELLED_BY_PATIENT {
		t.Fatalf("cancel = %v, %v", c, err)
	}
	_, err = client.CancelAppointment(ctx, call(scheduler, cancel(ind2.GetAppointmentId())))
	wantCode(t, err, connect.CodeFailedPrecondition)
	_, err = client.RescheduleAppointment(ctx, call(scheduler, move(ind2.GetAppointmentId(), tuesday, "13:00", "key-move-3")))
	wantCode(t, err, connect.CodeFailedPrecondition)
	// Cancelling a group place leaves the group session to the others.
	if _, err := client.CancelAppointment(ctx, call(clinician, cancel(group))); err != nil {
		t.Fatal(err)
	}
	if n := s.Count(t, `SELECT count(*) FROM sessions s JOIN appointments a ON a.session_id = s.id WHERE a.id = $1 AND s.status = 'scheduled'`, group); n != 1 {
		t.Fatal("group session cancelled with one place")
	}
	s.Relayed(t)
	cancelled := published(t, s, subjectApptCancelled, func() *schedulingv1.AppointmentCancelled { return &schedulingv1.AppointmentCancelled{} })
	if len(cancelled) != 2 || cancelled[0].GetReasonCode() != "patient" || cancelled[0].GetAppointment().GetAppointmentId() != ind2.GetAppointmentId() {
		t.Fatalf("AppointmentCancelled = %v", cancelled)
	}
	if n := s.Count(t, `SELECT count(*) FROM appointment_history WHERE appointment_id = $1 AND change = 'cancelled' AND reason = 'sick'`, ind2.GetAppointmentId()); n != 1 {
		t.Fatalf("cancel history rows = %d", n)
	}
}

// An admission entered late (its start date two weeks past) gets its places in the group
// sessions it already attended, so attendance can be recorded after the fact and billed; the
// weekly individual and medication visits are still planned from now on only.
func TestLateAdmissionGetsPastGroupPlaces(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	evening := seatTrack(t, s, clinicA, "adult-evening", 12)
	staffClinic(t, s, evening)
	start := nextMonday(t).AddDate(0, 0, -14) // the Monday two weeks before next Monday's week
	patient := bus.NewID()
	admitOn(t, s, patient, "adult-evening", start)

	now := time.Now()
	past := s.Count(t, `SELECT count(*) FROM appointments a JOIN sessions ss ON ss.id = a.session_id
		WHERE a.patient_id = $1 AND ss.service_type = 'group' AND ss.local_date >= $2 AND ss.ends_at < $3`, patient, start, now)
	// Mon/Wed/Thu 18:00-21:00 from start to now: at least the first week's three sessions.
	if past < 3 {
		t.Fatalf("%d past group places, want every group session since %s", past, start.Format(time.DateOnly))
	}
	if n := s.Count(t, `SELECT count(*) FROM appointments a JOIN sessions ss ON ss.id = a.session_id
		WHERE a.patient_id = $1 AND ss.service_type <> 'group' AND ss.starts_at < $2`, patient, now); n != 0 {
		t.Fatalf("%d weekly visits planned in the past, want none", n)
	}

	// Attendance is recorded for a past session.
	var apptID string
	if err := s.Pool.QueryRow(ctx, `SELECT a.id::text FROM appointments a JOIN sessions ss ON ss.id = a.session_id
		WHERE a.patient_id = $1 AND ss.service_type = 'group' ORDER BY ss.starts_at LIMIT 1`, patient).Scan(&apptID); err != nil {
		t.Fatal(err)
	}
	client := schedulingv1connect.NewSchedulingServiceClient(http.DefaultClient, s.URL)
	clinician := s.Token(t, "clinician-1", []string{"clinician"}, []string{clinicA})
	if _, err := client.RecordAttendance(ctx, call(clinician, &schedulingv1.RecordAttendanceRequest{IdempotencyKey: "late-admission-1",
		Entry: &schedulingv1.AttendanceEntry{AppointmentId: apptID, Status: schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT}})); err != nil {
		t.Fatalf("attendance of a past session: %v", err)
	}
}
