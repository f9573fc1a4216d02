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

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/testkit"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
)

const (
	consumerName     = "billing--enrollments"
	subjectEnrolled  = "trellis.scheduling.enrollment.created.v1"
	subjectOpened    = "trellis.billing.account.opened.v1"
	clinicA, clinicB = "0192f0c0-0000-7000-8000-0000000000c1", "0192f0c0-0000-7000-8000-0000000000c2"
)

func TestMain(m *testing.M) {
	// Real spans, so the test can check that the trace continues through the service.
	otel.SetTracerProvider(sdktrace.NewTracerProvider())
	os.Exit(m.Run())
}

// start runs the whole service in-process (service.Serve) on a fresh database and an embedded
// JetStream server, as `billing serve` would.
func start(t testing.TB) *servicetest.Service {
	t.Helper()
	var cfg Config
	return systemScoped(t, servicetest.Start(t, spec(&cfg), &cfg, nil))
}

// contractsSettled waits until billing has applied its own n ContractConfigured events (the
// billing--contracts consumer re-decides open charges), so that charges a test inserts as
// fixtures afterwards are not re-decided under it.
func contractsSettled(t *testing.T, s *servicetest.Service, n int) {
	t.Helper()
	s.Relayed(t)
	testkit.Eventually(t, 10*time.Second, "contract changes applied to charges", func() bool {
		return s.Processed(t, "billing--contracts", "ok") >= float64(n)
	})
}

// envelope wraps payload as scheduling's relay would.
func envelope(t testing.TB, payload proto.Message, clinicID string) *eventsv1.Envelope {
	return servicetest.Envelope(t, payload, clinicID, "scheduling")
}

func enrolled(patientID, clinicID string) *schedulingv1.EnrollmentCreated {
	return &schedulingv1.EnrollmentCreated{EnrollmentId: bus.NewID(), PatientId: patientID, ClinicId: clinicID,
		ProgramTrack: "adult-evening", StartDate: "2026-03-02"}
}

func TestEnrollmentOpensOneAccount(t *testing.T) {
	e := start(t)
	patient := bus.NewID()
	first := enrolled(patient, clinicA)
	up := envelope(t, first, clinicA)
	traceID := "4bf92f3577b34da6a3ce929d0e0e4736"
	seq := e.Publish(t, subjectEnrolled, up.GetEventId(), up, "00-"+traceID+"-00f067aa0ba902b7-01")

	testkit.Eventually(t, 10*time.Second, "AccountOpened on BILLING", func() bool {
		return e.StreamCount(t, "BILLING", subjectOpened) == 1
	})

	var id, enrollmentID, status, source string
	var balance int64
	if err := e.Pool.QueryRow(context.Background(), `SELECT id::text, enrollment_id::text, balance_cents, status, source_event_id::text
		FROM accounts WHERE patient_id = $1 AND clinic_id = $2`, patient, clinicA).
		Scan(&id, &enrollmentID, &balance, &status, &source); err != nil {
		t.Fatalf("account row: %v", err)
	}
	if enrollmentID != first.GetEnrollmentId() || balance != 0 || status != "open" || source != up.GetEventId() {
		t.Fatalf("row: %s %d %s %s", enrollmentID, balance, status, source)
	}

	s, _ := e.JS.Stream(context.Background(), "BILLING")
	raw, err := s.GetLastMsgForSubject(context.Background(), subjectOpened)
	if err != nil {
		t.Fatal(err)
	}
	down := &eventsv1.Envelope{}
	if err := proto.Unmarshal(raw.Data, down); err != nil {
		t.Fatal(err)
	}
	got := &billingv1.AccountOpened{}
	if err := down.GetPayload().UnmarshalTo(got); err != nil {
		t.Fatal(err)
	}
	want := &billingv1.AccountOpened{AccountId: id, PatientId: patient, ClinicId: clinicA, EnrollmentId: first.GetEnrollmentId()}
	if !proto.Equal(got, want) {
		t.Errorf("payload = %v, want %v", got, want)
	}
	checks := []struct{ what, got, want string }{
		{"correlation id", down.GetCorrelationId(), up.GetCorrelationId()},
		{"causation id", down.GetCausationId(), up.GetEventId()},
		{"event type", down.GetEventType(), "trellis.billing.v1.AccountOpened"},
		{"producer", down.GetProducer(), "billing"},
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

	// The same event again under other Nats-Msg-Ids (so JetStream does not dedup them): the
	// inbox absorbs them. Then a second enrollment at the same clinic (a new event): the
	// patient keeps the one account. Still one account, one AccountOpened.
	seq2 := e.Publish(t, subjectEnrolled, "redelivery-"+up.GetEventId(), up, "")
	seq3 := e.Publish(t, subjectEnrolled, "redelivery-2-"+up.GetEventId(), up, "")
	again := envelope(t, enrolled(patient, clinicA), clinicA)
	seq4 := e.Publish(t, subjectEnrolled, again.GetEventId(), again, "")
	if seq2 <= seq || seq3 <= seq2 || seq4 <= seq3 {
		t.Fatalf("sequences %d %d %d %d", seq, seq2, seq3, seq4)
	}
	e.Settled(t, "SCHEDULING", consumerName, seq4)
	e.Relayed(t)
	if n := e.Count(t, "SELECT count(*) FROM accounts WHERE patient_id = $1", patient); n != 1 {
		t.Fatalf("accounts = %d, want 1", n)
	}
	if n := e.StreamCount(t, "BILLING", subjectOpened); n != 1 {
		t.Fatalf("AccountOpened messages = %d, want 1", n)
	}
	if n := e.Count(t, "SELECT count(*) FROM inbox WHERE consumer = $1", consumerName); n != 2 {
		t.Fatalf("inbox rows = %d, want 2 (two distinct events)", n)
	}
	if got := e.Processed(t, consumerName, "duplicate"); got != 2 {
		t.Errorf("duplicates counted = %v, want 2", got)
	}
}

func TestPoisonEnrollmentIsDeadLettered(t *testing.T) {
	e := start(t)
	marshal := func(t *testing.T, env *eventsv1.Envelope) ([]byte, *eventsv1.Envelope) {
		b, err := proto.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		return b, env
	}
	withPayload := func(mutate func(*schedulingv1.EnrollmentCreated)) func(*testing.T) ([]byte, *eventsv1.Envelope) {
		return func(t *testing.T) ([]byte, *eventsv1.Envelope) {
			m := enrolled(bus.NewID(), clinicA)
			mutate(m)
			return marshal(t, envelope(t, m, m.GetClinicId()))
		}
	}
	cases := []struct {
		name string
		body func(t *testing.T) ([]byte, *eventsv1.Envelope)
	}{
		{"bad patient uuid", withPayload(func(m *schedulingv1.EnrollmentCreated) { m.PatientId = "patient-42" })},
		{"bad enrollment uuid", withPayload(func(m *schedulingv1.EnrollmentCreated) { m.EnrollmentId = "" })},
		{"bad clinic uuid", withPayload(func(m *schedulingv1.EnrollmentCreated) { m.ClinicId = "clinic-a" })},
		{"clinic differs from envelope", func(t *testing.T) ([]byte, *eventsv1.Envelope) {
			return marshal(t, envelope(t, enrolled(bus.NewID(), clinicA), clinicB))
		}},
		{"wrong payload type", func(t *testing.T) ([]byte, *eventsv1.Envelope) {
			return marshal(t, envelope(t, &billingv1.AccountOpened{PatientId: bus.NewID(), ClinicId: clinicA}, clinicA))
		}},
		{"not an envelope", func(t *testing.T) ([]byte, *eventsv1.Envelope) {
			return []byte("\xff\xffnot protobuf"), &eventsv1.Envelope{EventId: bus.NewID()}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body, env := c.body(t)
			seq := e.PublishRaw(t, subjectEnrolled, env.GetEventId(), body, env, "")
			dl := e.DeadLetter(t, consumerName, seq)
			if dl.Header.Get(bus.HeaderDLReason) == "" {
				t.Fatal("dead letter has no reason")
			}
			if got := dl.Header.Get(bus.HeaderDLConsumer); got != consumerName {
				t.Errorf("dead-letter consumer = %q", got)
			}
			if string(dl.Data) != string(body) {
				t.Error("dead letter does not carry the original body")
			}
			t.Logf("reason: %s", dl.Header.Get(bus.HeaderDLReason))
		})
	}
	e.Settled(t, "SCHEDULING", consumerName, uint64(len(cases)))
	e.Relayed(t)
	if n := e.Count(t, "SELECT count(*) FROM accounts"); n != 0 {
		t.Fatalf("accounts = %d, want 0", n)
	}
	if n := e.Count(t, "SELECT count(*) FROM inbox"); n != 0 {
		t.Fatalf("inbox rows = %d, want 0 (poison is rolled back)", n)
	}
	if n := e.StreamCount(t, "BILLING", subjectOpened); n != 0 {
		t.Fatalf("AccountOpened messages = %d, want 0", n)
	}
}

func TestGetAccount(t *testing.T) {
	e := start(t)
	client := billingv1connect.NewBillingServiceClient(http.DefaultClient, e.URL)
	patient := bus.NewID()
	up := envelope(t, enrolled(patient, clinicA), clinicA)
	e.Publish(t, subjectEnrolled, up.GetEventId(), up, "")
	testkit.Eventually(t, 10*time.Second, "account row", func() bool {
		return e.Count(t, "SELECT count(*) FROM accounts WHERE patient_id = $1", patient) == 1
	})
	var accountID string
	if err := e.Pool.QueryRow(context.Background(), "SELECT id::text FROM accounts WHERE patient_id = $1", patient).Scan(&accountID); err != nil {
		t.Fatal(err)
	}
	token := func(roles []string, clinics ...string) string { return e.Token(t, "user-1", roles, clinics) }
	forged, err := auth.MintDev([]byte("another-key"), "trellis-dev", "trellis", "user-1", []string{"admin"}, []string{"*"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := auth.MintDev([]byte(e.DevKey), "trellis-dev", "trellis", "user-1", []string{"admin"}, []string{"*"}, -time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		token   string
		patient string
		want    connect.Code // 0: ok
	}{
		{"billing in the clinic", token([]string{"billing"}, clinicA), patient, 0},
		{"billing of two clinics", token([]string{"billing"}, clinicB, clinicA), patient, 0},
		{"admin of every clinic", token([]string{"admin"}, auth.AllClinics), patient, 0},
		{"unknown patient", token([]string{"admin"}, auth.AllClinics), bus.NewID(), connect.CodeNotFound},
		// Another clinic's patient looks absent: existence is not disclosed (see ports/rpc).
		{"billing of another clinic", token([]string{"billing"}, clinicB), patient, connect.CodeNotFound},
		{"no clinics", token([]string{"billing"}), patient, connect.CodeNotFound},
		{"clinician role", token([]string{"clinician"}, clinicA), patient, connect.CodePermissionDenied},
		{"intake coordinator role", token([]string{"intake_coordinator"}, auth.AllClinics), patient, connect.CodePermissionDenied},
		{"no token", "", patient, connect.CodeUnauthenticated},
		{"token signed with another key", forged, patient, connect.CodeUnauthenticated},
		{"expired token", expired, patient, connect.CodeUnauthenticated},
		{"patient id not a uuid", token([]string{"admin"}, auth.AllClinics), "42", connect.CodeInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := connect.NewRequest(&billingv1.GetAccountRequest{PatientId: tt.patient})
			if tt.token != "" {
				req.Header().Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := client.GetAccount(context.Background(), req)
			if tt.want != 0 {
				if connect.CodeOf(err) != tt.want {
					t.Fatalf("err = %v, want %s", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := &billingv1.Account{AccountId: accountID, PatientId: patient, ClinicId: clinicA, BalanceCents: 0, Status: "open"}
			if !proto.Equal(resp.Msg.GetAccount(), want) {
				t.Fatalf("account = %v, want %v", resp.Msg.GetAccount(), want)
			}
		})
	}
	// The two not_found cases must be indistinguishable to the caller.
	call := func(patientID string) error {
		req := connect.NewRequest(&billingv1.GetAccountRequest{PatientId: patientID})
		req.Header().Set("Authorization", "Bearer "+token([]string{"billing"}, clinicB))
		_, err := client.GetAccount(context.Background(), req)
		return err
	}
	errAbsent, errHidden := call(bus.NewID()), call(patient)
	var ca, ch *connect.Error
	if !errors.As(errAbsent, &ca) || !errors.As(errHidden, &ch) || ca.Code() != ch.Code() || ca.Message() != ch.Message() {
		t.Fatalf("absent %v and hidden %v differ", errAbsent, errHidden)
	}
}
