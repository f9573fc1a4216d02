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
	subjectAttendanceRecorded  = "trellis.scheduling.attendance.recorded.v1"
	subjectAttendanceCorrected = "trellis.scheduling.attendance.corrected.v1"
)

// placeOn returns a patient's appointment of serviceType on a local date ("YYYY-MM-DD") and its session.
func placeOn(t *testing.T, s *servicetest.Service, patientID, serviceType, date string) (appointmentID, sessionID string) {
	t.Helper()
	err := s.Pool.QueryRow(context.Background(), `SELECT a.id::text, a.session_id::text FROM appointments a
		JOIN sessions s ON s.id = a.session_id WHERE a.patient_id = $1 AND s.service_type = $2 AND s.local_date = $3`,
		patientID, serviceType, date).Scan(&appointmentID, &sessionID)
	if err != nil {
		t.Fatalf("%s appointment on %s: %v", serviceType, date, err)
	}
	return appointmentID, sessionID
}

// moveToPast moves a session daysAgo days back from now, keeping its length: its session has
// started and attendance may be recorded.
func moveToPast(t *testing.T, s *servicetest.Service, sessionID string, daysAgo int) {
	t.Helper()
	if _, err := s.Pool.Exec(context.Background(), `UPDATE sessions SET
		ends_at = date_trunc('minute', now()) - make_interval(days => $2) + (ends_at - starts_at),
		starts_at = date_trunc('minute', now()) - make_interval(days => $2),
		local_date = ((now() - make_interval(days => $2)) AT TIME ZONE 'America/Chicago')::date
		WHERE id = $1`, sessionID, daysAgo); err != nil {
		t.Fatalf("move session to the past: %v", err)
	}
}

// versions lists an appointment's attendance versions as "version status minutes".
func versions(t *testing.T, s *servicetest.Service, appointmentID string) []string {
	t.Helper()
	rows, err := s.Pool.Query(context.Background(), `SELECT version || ' ' || status || ' ' || minutes_attended
		FROM attendance WHERE appointment_id = $1 ORDER BY version`, appointmentID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func attendanceEvents(t *testing.T, s *servicetest.Service, subject string) []*schedulingv1.AttendanceRecorded {
	t.Helper()
	s.Relayed(t)
	return published(t, s, subject, func() *schedulingv1.AttendanceRecorded { return &schedulingv1.AttendanceRecorded{} })
}

func TestAttendance(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	evening := seatTrack(t, s, clinicA, "adult-evening", 12)
	seatTrack(t, s, clinicB, "adult-evening", 12)
	_, counselor, therapist, _ := staffClinic(t, s, evening)
	monday := nextMonday(t)
	mon, tue := monday.Format("2006-01-02"), monday.AddDate(0, 0, 1).Format("2006-01-02")
	wed, thu := monday.AddDate(0, 0, 2).Format("2006-01-02"), monday.AddDate(0, 0, 3).Format("2006-01-02")
	p1, p2, p3 := bus.NewID(), bus.NewID(), bus.NewID()
	for _, p := range []string{p1, p2, p3} {
		admitOn(t, s, p, "adult-evening", monday)
	}
	client := schedulingv1connect.NewSchedulingServiceClient(http.DefaultClient, s.URL)
	clinician := s.Token(t, "clinician-1", []string{"clinician"}, []string{clinicA})
	clinician2 := s.Token(t, "clinician-2", []string{"clinician"}, []string{clinicA})
	otherClinic := s.Token(t, "scheduler-2", []string{"scheduler"}, []string{clinicB})
	intake := s.Token(t, "intake-1", []string{"intake_coordinator"}, []string{clinicA})
	operator := s.Token(t, "operator-1", []string{"operator"}, []string{clinicA})

	ind1, indSession := placeOn(t, s, p1, "individual", tue)
	g1, monSession := placeOn(t, s, p1, "group", mon)
	g2, _ := placeOn(t, s, p2, "group", mon)
	g3, _ := placeOn(t, s, p3, "group", mon)
	w3, wedSession := placeOn(t, s, p3, "group", wed)
	thu1, thuSession := placeOn(t, s, p1, "group", thu)
	// p3 cancels Wednesday while it is ahead; then Monday, Tuesday and Wednesday are moved into the past.
	if _, err := client.CancelAppointment(ctx, call(clinician, &schedulingv1.CancelAppointmentRequest{AppointmentId: w3,
		CancelledBy: schedulingv1.CancelledBy_CANCELLED_BY_PATIENT, Reason: "sick"})); err != nil {
		t.Fatal(err)
	}
	moveToPast(t, s, monSession, 3)
	moveToPast(t, s, indSession, 2)
	moveToPast(t, s, wedSession, 1)
	entry := func(id string, st schedulingv1.AttendanceStatus, minutes int32) *schedulingv1.AttendanceEntry {
		return &schedulingv1.AttendanceEntry{AppointmentId: id, Status: st, MinutesAttended: minutes}
	}
	const (
		present   = schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT
		late      = schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_LATE
		leftEarly = schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_LEFT_EARLY
		absent    = schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT
	)
	record := func(tok, key string, e *schedulingv1.AttendanceEntry) (*connect.Response[schedulingv1.RecordAttendanceResponse], error) {
		return client.RecordAttendance(ctx, call(tok, &schedulingv1.RecordAttendanceRequest{Entry: e, IdempotencyKey: key}))
	}
	group := func(tok, key, session string, es ...*schedulingv1.AttendanceEntry) (*connect.Response[schedulingv1.RecordGroupAttendanceResponse], error) {
		return client.RecordGroupAttendance(ctx, call(tok, &schedulingv1.RecordGroupAttendanceRequest{SessionId: session, Entries: es, IdempotencyKey: key}))
	}

	// One appointment: present counts the scheduled length, whatever minutes were given.
	one, err := record(clinician, "key-att-1", entry(ind1, present, 5))
	if a := one.Msg.GetAttendance(); err != nil || one.Msg.GetReplayed() || a.GetMinutesAttended() != 50 ||
		a.GetScheduledMinutes() != 50 || a.GetVersion() != 1 || a.GetRecordedBy() != "clinician-1" || a.GetStatus() != present {
		t.Fatalf("record = %v, %v", one, err)
	}
	// The same key and request: the first answer, nothing new.
	again, err := record(clinician, "key-att-1", entry(ind1, present, 5))
	if err != nil || !again.Msg.GetReplayed() || !proto.Equal(again.Msg.GetAttendance(), one.Msg.GetAttendance()) {
		t.Fatalf("replay = %v, %v", again, err)
	}
	// The same caller after losing the clinic: not found, and the stored attendance is not
	// replayed (the clinic is checked before the idempotency key); the same for a group call.
	lost := s.Token(t, "clinician-1", []string{"clinician"}, []string{clinicB})
	_, err = record(lost, "key-att-1", entry(ind1, present, 5))
	wantCode(t, err, connect.CodeNotFound)
	_, err = record(clinician, "key-att-1", entry(ind1, absent, 0))
	wantCode(t, err, connect.CodeFailedPrecondition) // the key with another request
	rec := attendanceEvents(t, s, subjectAttendanceRecorded)
	if len(rec) != 1 || rec[0].GetAppointmentId() != ind1 || rec[0].GetServiceType() != schedulingv1.ServiceType_SERVICE_TYPE_INDIVIDUAL ||
		rec[0].GetClinicianId() != therapist || rec[0].GetTrackId() != evening || rec[0].GetProgramCode() != "adult-iop" ||
		rec[0].GetMinutesAttended() != 50 || rec[0].GetSessionId() != indSession {
		t.Fatalf("AttendanceRecorded = %v", rec)
	}

	// A group of three in one call.
	g, err := group(clinician, "key-att-2", monSession, entry(g1, present, 0), entry(g2, late, 150), entry(g3, absent, 30))
	if err != nil || len(g.Msg.GetAttendance()) != 3 {
		t.Fatalf("group = %v, %v", g, err)
	}
	if again, err := group(clinician, "key-att-2", monSession, entry(g1, present, 0), entry(g2, late, 150), entry(g3, absent, 30)); err != nil ||
		!again.Msg.GetReplayed() || !proto.Equal(again.Msg, &schedulingv1.RecordGroupAttendanceResponse{Attendance: g.Msg.GetAttendance(), Replayed: true}) {
		t.Fatalf("group replay = %v, %v", again, err)
	}
	_, err = group(lost, "key-att-2", monSession, entry(g1, present, 0), entry(g2, late, 150), entry(g3, absent, 30))
	wantCode(t, err, connect.CodeNotFound)
	if got := g.Msg.GetAttendance(); got[0].GetMinutesAttended() != 180 || got[1].GetMinutesAttended() != 150 || got[2].GetMinutesAttended() != 0 ||
		got[1].GetAppointmentId() != g2 {
		t.Fatalf("group attendance = %v", got)
	}
	rec = attendanceEvents(t, s, subjectAttendanceRecorded)
	if len(rec) != 4 {
		t.Fatalf("AttendanceRecorded events = %d, want 4", len(rec))
	}
	var enrollment2, monDate string
	var monStart time.Time
	if err := s.Pool.QueryRow(ctx, `SELECT a.enrollment_id::text, s.local_date::text, s.starts_at FROM appointments a
		JOIN sessions s ON s.id = a.session_id WHERE a.id = $1`, g2).Scan(&enrollment2, &monDate, &monStart); err != nil {
		t.Fatal(err)
	}
	for _, ev := range rec[1:] {
		if ev.GetServiceType() != schedulingv1.ServiceType_SERVICE_TYPE_GROUP || ev.GetClinicId() != clinicA ||
			ev.GetClinicianId() != counselor || ev.GetTrackId() != evening || ev.GetProgramCode() != "adult-iop" ||
			ev.GetSessionId() != monSession || ev.GetScheduledMinutes() != 180 || ev.GetVersion() != 1 ||
			ev.GetLocalDate() != monDate || !ev.GetStartsAt().AsTime().Equal(monStart) || ev.GetEnrollmentId() == "" ||
			ev.GetRecordedAt() == nil {
			t.Fatalf("group AttendanceRecorded = %v", ev)
		}
	}
	if e := rec[2]; e.GetAppointmentId() != g2 || e.GetPatientId() != p2 || e.GetEnrollmentId() != enrollment2 ||
		e.GetStatus() != late || e.GetMinutesAttended() != 150 {
		t.Fatalf("p2's AttendanceRecorded = %v", e)
	}

	// A correction: version 2 on the corrected subject, with the previous values.
	c, err := record(clinician2, "key-att-3", entry(g2, leftEarly, 120))
	if err != nil || c.Msg.GetAttendance().GetVersion() != 2 || c.Msg.GetAttendance().GetMinutesAttended() != 120 {
		t.Fatalf("correction = %v, %v", c, err)
	}
	corr := attendanceEvents(t, s, subjectAttendanceCorrected)
	if len(corr) != 1 || corr[0].GetAppointmentId() != g2 || corr[0].GetVersion() != 2 || corr[0].GetStatus() != leftEarly ||
		corr[0].GetPreviousStatus() != late || corr[0].GetPreviousMinutesAttended() != 150 || corr[0].GetMinutesAttended() != 120 {
		t.Fatalf("AttendanceCorrected = %v", corr)
	}
	// The same values again (a new key): no new version, no event.
	same, err := record(clinician, "key-att-4", entry(g2, leftEarly, 120))
	if err != nil || same.Msg.GetAttendance().GetVersion() != 2 || same.Msg.GetReplayed() {
		t.Fatalf("same values = %v, %v", same, err)
	}
	if _, err := group(clinician, "key-att-5", monSession, entry(g1, present, 0), entry(g3, absent, 0)); err != nil {
		t.Fatal(err)
	}
	if got := versions(t, s, g2); !slices.Equal(got, []string{"1 late 150", "2 left_early 120"}) {
		t.Fatalf("versions of p2's place = %q", got)
	}
	if got := versions(t, s, g1); !slices.Equal(got, []string{"1 present 180"}) {
		t.Fatalf("versions of p1's place = %q", got)
	}
	if n := len(attendanceEvents(t, s, subjectAttendanceRecorded)) + len(attendanceEvents(t, s, subjectAttendanceCorrected)); n != 5 {
		t.Fatalf("attendance events = %d, want 5", n)
	}

	// Refusals.
	refused := []struct {
		name string
		err  func() error
		code connect.Code
		want string // a rule in the message, or a "field rule" violation
	}{
		{"future session", func() error { _, err := record(clinician, "key-att-r1", entry(thu1, present, 0)); return err },
			connect.CodeFailedPrecondition, "appointment.started"},
		{"cancelled appointment", func() error { _, err := record(clinician, "key-att-r2", entry(w3, present, 0)); return err },
			connect.CodeFailedPrecondition, "appointment.scheduled"},
		{"late without minutes", func() error { _, err := record(clinician, "key-att-r3", entry(g1, late, 0)); return err },
			connect.CodeInvalidArgument, "entry.minutes_attended minutes.range"},
		{"late for the whole session", func() error { _, err := record(clinician, "key-att-r4", entry(g1, late, 180)); return err },
			connect.CodeInvalidArgument, "entry.minutes_attended minutes.range"},
		{"group entry of another session", func() error {
			_, err := group(clinician, "key-att-r5", monSession, entry(g1, present, 0), entry(w3, present, 0))
			return err
		}, connect.CodeInvalidArgument, "entries[1].appointment_id entry.session"},
		{"group entry named twice", func() error {
			_, err := group(clinician, "key-att-r6", monSession, entry(g1, present, 0), entry(g1, absent, 0))
			return err
		}, connect.CodeInvalidArgument, "entries[1].appointment_id entry.unique"},
		{"group late without minutes", func() error {
			_, err := group(clinician, "key-att-r7", monSession, entry(g1, absent, 0), entry(g3, late, 0))
			return err
		}, connect.CodeInvalidArgument, "entries[1].minutes_attended minutes.range"},
		{"group with a cancelled place", func() error {
			_, err := group(clinician, "key-att-r8", wedSession, entry(w3, present, 0))
			return err
		}, connect.CodeFailedPrecondition, "appointment.scheduled"},
		{"group session in the future", func() error {
			_, err := group(clinician, "key-att-r16", thuSession, entry(thu1, present, 0))
			return err
		}, connect.CodeFailedPrecondition, "appointment.started"},
		{"no status", func() error { _, err := record(clinician, "key-att-r9", entry(g1, 0, 0)); return err },
			connect.CodeInvalidArgument, ""},
		{"wrong role", func() error { _, err := record(intake, "key-att-r10", entry(g1, absent, 0)); return err },
			connect.CodePermissionDenied, ""},
		{"operator records", func() error { _, err := group(operator, "key-att-r11", monSession, entry(g1, absent, 0)); return err },
			connect.CodePermissionDenied, ""},
		{"other clinic", func() error { _, err := record(otherClinic, "key-att-r12", entry(g1, absent, 0)); return err },
			connect.CodeNotFound, ""},
		{"other clinic's session", func() error {
			_, err := group(otherClinic, "key-att-r13", monSession, entry(g1, absent, 0))
			return err
		},
			connect.CodeNotFound, ""},
		{"unknown appointment", func() error { _, err := record(clinician, "key-att-r14", entry(bus.NewID(), absent, 0)); return err },
			connect.CodeNotFound, ""},
		{"unknown session", func() error { _, err := group(clinician, "key-att-r15", bus.NewID(), entry(g1, absent, 0)); return err },
			connect.CodeNotFound, ""},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err()
			wantCode(t, err, tt.code)
			if tt.want == "" {
				return
			}
			if tt.code == connect.CodeInvalidArgument {
				if !slices.Contains(violations(err), tt.want) {
					t.Fatalf("violations = %q, want %q", violations(err), tt.want)
				}
			} else if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %s", err, tt.want)
			}
		})
	}
	// A refused group changed nothing (all or nothing).
	if got := versions(t, s, g3); !slices.Equal(got, []string{"1 absent 0"}) {
		t.Fatalf("versions of p3's place after refusals = %q", got)
	}

	// Two clinicians correcting the session at once: the session's lock serialises them, so
	// both succeed with consecutive versions.
	errs := make(chan error, 2)
	for i, st := range []schedulingv1.AttendanceStatus{present, schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_EXCUSED} {
		go func() {
			_, err := group([]string{clinician, clinician2}[i], "key-att-race", monSession, entry(g1, st, 0), entry(g3, st, 0))
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent group record: %v", err)
		}
	}
	if got := versions(t, s, g3); len(got) != 3 || !strings.HasPrefix(got[1], "2 ") || !strings.HasPrefix(got[2], "3 ") {
		t.Fatalf("versions of p3's place after concurrent records = %q", got)
	}

	// The roster: every place with its current attendance; cancelled places too.
	roster, err := client.GetSessionRoster(ctx, call(operator, &schedulingv1.GetSessionRosterRequest{SessionId: monSession}))
	if err != nil || len(roster.Msg.GetEntries()) != 3 {
		t.Fatalf("roster = %v, %v", roster, err)
	}
	for _, e := range roster.Msg.GetEntries() {
		if e.GetAppointment().GetAppointmentId() == g2 && (e.GetAttendance().GetVersion() != 2 || e.GetAttendance().GetStatus() != leftEarly) {
			t.Fatalf("roster entry = %v", e)
		}
	}
	wr, err := client.GetSessionRoster(ctx, call(clinician, &schedulingv1.GetSessionRosterRequest{SessionId: wedSession}))
	if err != nil || len(wr.Msg.GetEntries()) != 3 {
		t.Fatalf("Wednesday roster = %v, %v", wr, err)
	}
	for _, e := range wr.Msg.GetEntries() {
		if e.GetAttendance() != nil || (e.GetAppointment().GetAppointmentId() == w3) !=
			(e.GetAppointment().GetStatus() == schedulingv1.AppointmentStatus_APPOINTMENT_STATUS_CANCELLED) {
			t.Fatalf("Wednesday roster entry = %v", e)
		}
	}
	_, err = client.GetSessionRoster(ctx, call(otherClinic, &schedulingv1.GetSessionRosterRequest{SessionId: monSession}))
	wantCode(t, err, connect.CodeNotFound)
	_, err = client.GetSessionRoster(ctx, call(intake, &schedulingv1.GetSessionRosterRequest{SessionId: monSession}))
	wantCode(t, err, connect.CodePermissionDenied)
}
