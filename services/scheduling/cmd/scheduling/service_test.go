package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/testkit"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1/schedulingv1connect"

	"github.com/trellis-health/trellis/services/scheduling/internal/testscope"
)

const (
	consumerName     = "scheduling--admissions"
	subjectAdmitted  = "trellis.intake.patient.admitted.v1"
	subjectEnrolled  = "trellis.scheduling.enrollment.created.v1"
	clinicA, clinicB = "0192f0c0-0000-7000-8000-0000000000c1", "0192f0c0-0000-7000-8000-0000000000c2"
)

func TestMain(m *testing.M) {
	// Real spans, so the test can check that the trace continues through the service.
	otel.SetTracerProvider(sdktrace.NewTracerProvider())
	os.Exit(m.Run())
}

// start runs the whole service in-process (service.Serve) on a fresh database and an embedded
// JetStream server, as `scheduling serve` would.
func start(t *testing.T) *servicetest.Service {
	t.Helper()
	var cfg Config
	s := servicetest.Start(t, spec(), &cfg, nil)
	testscope.SystemScoped(t, s)
	return s
}

// envelope wraps payload as intake's relay would.
func envelope(t *testing.T, payload proto.Message, clinicID string) *eventsv1.Envelope {
	return servicetest.Envelope(t, payload, clinicID, "intake")
}

func admitted(patientID, clinicID string) *intakev1.PatientAdmitted {
	return &intakev1.PatientAdmitted{
		PatientId: patientID, EpisodeId: bus.NewID(), ClinicId: clinicID, ProgramTrack: "adult-evening",
		StartDate: "2026-03-02", AdmittedAt: timestamppb.Now(), ClinicTimeZone: "America/Chicago",
	}
}

func TestAdmissionCreatesOneEnrollment(t *testing.T) {
	e := start(t)
	trackID := seatTrack(t, e, clinicA, "adult-evening", 12)
	patient := bus.NewID()
	up := envelope(t, admitted(patient, clinicA), clinicA)
	traceID := "4bf92f3577b34da6a3ce929d0e0e4736"
	seq := e.Publish(t, subjectAdmitted, up.GetEventId(), up, "00-"+traceID+"-00f067aa0ba902b7-01")

	testkit.Eventually(t, 10*time.Second, "EnrollmentCreated on SCHEDULING", func() bool {
		return e.StreamCount(t, "SCHEDULING", subjectEnrolled) == 1
	})

	var id, track, status, source string
	var start time.Time
	if err := e.Pool.QueryRow(context.Background(), `SELECT id::text, program_track, start_date, status, source_event_id::text
		FROM enrollments WHERE patient_id = $1 AND clinic_id = $2`, patient, clinicA).
		Scan(&id, &track, &start, &status, &source); err != nil {
		t.Fatalf("enrollment row: %v", err)
	}
	if track != "adult-evening" || start.Format(time.DateOnly) != "2026-03-02" || status != "active" || source != up.GetEventId() {
		t.Fatalf("row: %s %s %s %s", track, start.Format(time.DateOnly), status, source)
	}

	s, _ := e.JS.Stream(context.Background(), "SCHEDULING")
	raw, err := s.GetLastMsgForSubject(context.Background(), subjectEnrolled)
	if err != nil {
		t.Fatal(err)
	}
	down := &eventsv1.Envelope{}
	if err := proto.Unmarshal(raw.Data, down); err != nil {
		t.Fatal(err)
	}
	got := &schedulingv1.EnrollmentCreated{}
	if err := down.GetPayload().UnmarshalTo(got); err != nil {
		t.Fatal(err)
	}
	want := &schedulingv1.EnrollmentCreated{EnrollmentId: id, PatientId: patient, ClinicId: clinicA,
		ProgramTrack: "adult-evening", StartDate: "2026-03-02", TrackId: trackID, ProgramCode: "adult-iop"}
	if !proto.Equal(got, want) {
		t.Errorf("payload = %v, want %v", got, want)
	}
	checks := []struct{ what, got, want string }{
		{"correlation id", down.GetCorrelationId(), up.GetCorrelationId()},
		{"causation id", down.GetCausationId(), up.GetEventId()},
		{"event type", down.GetEventType(), "trellis.scheduling.v1.EnrollmentCreated"},
		{"producer", down.GetProducer(), "scheduling"},
		{"clinic id", down.GetClinicId(), clinicA},
		{"Nats-Msg-Id", raw.Header.Get(bus.HeaderMsgID), down.GetEventId()},
		{"correlation-id header", raw.Header.Get(bus.HeaderCorrelationID), up.GetCorrelationId()},
		{"causation-id header", raw.Header.Get(bus.HeaderCausationID), up.GetEventId()},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
	if tp := raw.Header.Get("traceparent"); !strings.HasPrefix(tp, "00-"+traceID+"-") || strings.Contains(tp, "00f067aa0ba902b7") {
		t.Errorf("traceparent = %q, want the upstream trace continued in a new span", tp)
	}

	// The same event again under another Nats-Msg-Id (so JetStream does not dedup it): the
	// inbox absorbs it. Then once more: still one enrollment, one event.
	seq2 := e.Publish(t, subjectAdmitted, "redelivery-"+up.GetEventId(), up, "")
	seq3 := e.Publish(t, subjectAdmitted, "redelivery-2-"+up.GetEventId(), up, "")
	if seq2 <= seq || seq3 <= seq2 {
		t.Fatalf("sequences %d %d %d", seq, seq2, seq3)
	}
	e.Settled(t, "INTAKE", consumerName, seq3)
	e.Relayed(t)
	if n := e.Count(t, "SELECT count(*) FROM enrollments WHERE patient_id = $1", patient); n != 1 {
		t.Fatalf("enrollments = %d, want 1", n)
	}
	if n := e.StreamCount(t, "SCHEDULING", subjectEnrolled); n != 1 {
		t.Fatalf("EnrollmentCreated messages = %d, want 1", n)
	}
	if n := e.Count(t, "SELECT count(*) FROM inbox WHERE consumer = $1", consumerName); n != 1 {
		t.Fatalf("inbox rows = %d, want 1", n)
	}
	if got := e.Processed(t, consumerName, "duplicate"); got != 2 {
		t.Errorf("duplicates counted = %v, want 2", got)
	}
}

func TestPoisonAdmissionIsDeadLettered(t *testing.T) {
	e := start(t)
	seatTrack(t, e, clinicA, "adult-evening", 12) // so that only the poison is refused
	type poison struct {
		name string
		body func(t *testing.T) ([]byte, *eventsv1.Envelope)
	}
	marshal := func(t *testing.T, env *eventsv1.Envelope) ([]byte, *eventsv1.Envelope) {
		b, err := proto.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		return b, env
	}
	withPayload := func(mutate func(*intakev1.PatientAdmitted)) func(*testing.T) ([]byte, *eventsv1.Envelope) {
		return func(t *testing.T) ([]byte, *eventsv1.Envelope) {
			m := admitted(bus.NewID(), clinicA)
			mutate(m)
			return marshal(t, envelope(t, m, m.GetClinicId()))
		}
	}
	cases := []poison{
		{"bad patient uuid", withPayload(func(m *intakev1.PatientAdmitted) { m.PatientId = "patient-42" })},
		{"bad start date", withPayload(func(m *intakev1.PatientAdmitted) { m.StartDate = "2026-02-30" })},
		{"bad clinic uuid", withPayload(func(m *intakev1.PatientAdmitted) { m.ClinicId = "clinic-a" })},
		{"no episode", withPayload(func(m *intakev1.PatientAdmitted) { m.EpisodeId = "" })},
		{"bad track code", withPayload(func(m *intakev1.PatientAdmitted) { m.ProgramTrack = "Adult Evening" })},
		{"clinic differs from envelope", func(t *testing.T) ([]byte, *eventsv1.Envelope) {
			return marshal(t, envelope(t, admitted(bus.NewID(), clinicA), clinicB))
		}},
		{"wrong payload type", func(t *testing.T) ([]byte, *eventsv1.Envelope) {
			return marshal(t, envelope(t, &schedulingv1.EnrollmentCreated{PatientId: bus.NewID(), ClinicId: clinicA}, clinicA))
		}},
		{"not an envelope", func(t *testing.T) ([]byte, *eventsv1.Envelope) {
			return []byte("\xff\xffnot protobuf"), &eventsv1.Envelope{EventId: bus.NewID()}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body, env := c.body(t)
			seq := e.PublishRaw(t, subjectAdmitted, env.GetEventId(), body, env, "")
			dl := e.DeadLetter(t, consumerName, seq)
			reason := dl.Header.Get(bus.HeaderDLReason)
			if reason == "" {
				t.Fatal("dead letter has no reason")
			}
			if strings.Contains(reason, "Alex") || strings.Contains(reason, "example.org") {
				t.Errorf("dead-letter reason quotes PHI: %q", reason)
			}
			if got := dl.Header.Get(bus.HeaderDLConsumer); got != consumerName {
				t.Errorf("dead-letter consumer = %q", got)
			}
			if string(dl.Data) != string(body) {
				t.Error("dead letter does not carry the original body")
			}
			t.Logf("reason: %s", reason)
		})
	}
	e.Settled(t, "INTAKE", consumerName, uint64(len(cases)))
	e.Relayed(t)
	if n := e.Count(t, "SELECT count(*) FROM enrollments"); n != 0 {
		t.Fatalf("enrollments = %d, want 0", n)
	}
	if n := e.Count(t, "SELECT count(*) FROM inbox"); n != 0 {
		t.Fatalf("inbox rows = %d, want 0 (poison is rolled back)", n)
	}
	if n := e.StreamCount(t, "SCHEDULING", subjectEnrolled); n != 0 {
		t.Fatalf("EnrollmentCreated messages = %d, want 0", n)
	}
}

func TestGetEnrollment(t *testing.T) {
	e := start(t)
	trackID := seatTrack(t, e, clinicA, "adult-evening", 12)
	client := schedulingv1connect.NewSchedulingServiceClient(http.DefaultClient, e.URL)
	patient := bus.NewID()
	up := envelope(t, admitted(patient, clinicA), clinicA)
	e.Publish(t, subjectAdmitted, up.GetEventId(), up, "")
	testkit.Eventually(t, 10*time.Second, "enrollment row", func() bool {
		return e.Count(t, "SELECT count(*) FROM enrollments WHERE patient_id = $1", patient) == 1
	})
	var enrollmentID string
	var enrolledAt time.Time
	if err := e.Pool.QueryRow(context.Background(), "SELECT id::text, enrolled_at FROM enrollments WHERE patient_id = $1", patient).
		Scan(&enrollmentID, &enrolledAt); err != nil {
		t.Fatal(err)
	}
	token := func(roles []string, clinics ...string) string { return e.Token(t, "user-1", roles, clinics) }
	forged, err := auth.MintDev([]byte("another-key"), "trellis-dev", "trellis", "user-1", []string{"admin"}, []string{"*"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		token   string
		patient string
		want    connect.Code // 0: ok
	}{
		{"clinician in the clinic", token([]string{"clinician"}, clinicA), patient, 0},
		{"intake coordinator in the clinic", token([]string{"intake_coordinator"}, clinicB, clinicA), patient, 0},
		{"admin of every clinic", token([]string{"admin"}, auth.AllClinics), patient, 0},
		{"unknown patient", token([]string{"admin"}, auth.AllClinics), bus.NewID(), connect.CodeNotFound},
		// Another clinic's patient looks absent: existence is not disclosed (see ports/rpc).
		{"clinician of another clinic", token([]string{"clinician"}, clinicB), patient, connect.CodeNotFound},
		{"no clinics", token([]string{"clinician"}), patient, connect.CodeNotFound},
		{"billing role", token([]string{"billing"}, clinicA), patient, connect.CodePermissionDenied},
		{"no role", token(nil, clinicA), patient, connect.CodePermissionDenied},
		{"no token", "", patient, connect.CodeUnauthenticated},
		{"token signed with another key", forged, patient, connect.CodeUnauthenticated},
		{"patient id not a uuid", token([]string{"admin"}, auth.AllClinics), "42", connect.CodeInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := connect.NewRequest(&schedulingv1.GetEnrollmentRequest{PatientId: tt.patient})
			if tt.token != "" {
				req.Header().Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := client.GetEnrollment(context.Background(), req)
			if tt.want != 0 {
				if connect.CodeOf(err) != tt.want {
					t.Fatalf("err = %v, want %s", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := &schedulingv1.Enrollment{EnrollmentId: enrollmentID, PatientId: patient, ClinicId: clinicA,
				ProgramTrack: "adult-evening", StartDate: "2026-03-02", Status: "active", TrackId: trackID,
				ProgramCode: "adult-iop", EnrolledAt: timestamppb.New(enrolledAt)}
			if !proto.Equal(resp.Msg.GetEnrollment(), want) {
				t.Fatalf("enrollment = %v, want %v", resp.Msg.GetEnrollment(), want)
			}
		})
	}
	// The two not_found cases must be indistinguishable to the caller.
	absent := connect.NewRequest(&schedulingv1.GetEnrollmentRequest{PatientId: bus.NewID()})
	absent.Header().Set("Authorization", "Bearer "+token([]string{"clinician"}, clinicB))
	hidden := connect.NewRequest(&schedulingv1.GetEnrollmentRequest{PatientId: patient})
	hidden.Header().Set("Authorization", "Bearer "+token([]string{"clinician"}, clinicB))
	_, errAbsent := client.GetEnrollment(context.Background(), absent)
	_, errHidden := client.GetEnrollment(context.Background(), hidden)
	var ca, ch *connect.Error
	if !errors.As(errAbsent, &ca) || !errors.As(errHidden, &ch) || ca.Code() != ch.Code() || ca.Message() != ch.Message() {
		t.Fatalf("absent %v and hidden %v differ", errAbsent, errHidden)
	}
}
