package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/pkg/telemetry"
	"github.com/trellis-health/trellis/pkg/testkit"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	notificationv1 "github.com/trellis-health/trellis/proto/gen/trellis/notification/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/notification/v1/notificationv1connect"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
	"github.com/trellis-health/trellis/services/notification/internal/notifytest"
	"github.com/trellis-health/trellis/services/notification/internal/smtptest"
)

var spans = tracetest.NewSpanRecorder()

func TestMain(m *testing.M) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	otel.SetTracerProvider(tp)
	code := m.Run()
	_ = tp.Shutdown(context.Background())
	os.Exit(code)
}

var (
	clinicA = "0190a000-0000-7000-8000-00000000000a"
	clinicB = "0190a000-0000-7000-8000-00000000000b"
)

// env is one notification service running in-process on real Postgres, JetStream and SMTP.
type env struct {
	*servicetest.Service
	t *testing.T
}

// start runs the service with smtpAddr as its SMTP server; extra overrides the test defaults.
func start(t *testing.T, smtpAddr string, extra map[string]string) *env {
	t.Helper()
	vars := map[string]string{
		"SMTP_ADDR":            smtpAddr,
		"SMTP_TIMEOUT":         "5s",
		"NOTIFY_POLL_INTERVAL": "50ms",
		"NOTIFY_RETRY_BASE":    "100ms",
		"NOTIFY_RETRY_MAX":     "300ms",
		"LOG_LEVEL":            "debug",
	}
	maps.Copy(vars, extra)
	var cfg Config
	s := servicetest.Start(t, newSpec(&cfg), &cfg, vars)
	// The service connects as the role that owns its tables, so the row-level security
	// policies (migration 00005) bind it; the test's own pool (s.Pool, which s.Count uses)
	// reads and writes every clinic's rows.
	s.Pool.Close()
	s.Pool = notifytest.Open(t, notifytest.SystemURL(t, s.DatabaseURL), 4)
	return &env{Service: s, t: t}
}

// downAddr returns a local address nothing listens on.
func downAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// publish sends an event onto its stream the way the outbox relay does, with Nats-Msg-Id =
// event id unless msgID overrides it, and returns its stream sequence. A repeated message id is
// published all the same (and dropped by JetStream's duplicate window): tests repeat them on
// purpose.
func (e *env) publish(subject, producer, clinicID, eventID, msgID, traceparent string, payload proto.Message) uint64 {
	e.t.Helper()
	return e.publishAt(time.Time{}, subject, producer, clinicID, eventID, msgID, traceparent, payload)
}

// publishAt is publish with the envelope's occurred_at set to at (now when zero).
func (e *env) publishAt(at time.Time, subject, producer, clinicID, eventID, msgID, traceparent string, payload proto.Message) uint64 {
	e.t.Helper()
	envl := servicetest.Envelope(e.t, payload, clinicID, producer)
	envl.EventId, envl.CorrelationId = eventID, "corr-"+eventID
	if !at.IsZero() {
		envl.OccurredAt = timestamppb.New(at)
	}
	data, err := proto.Marshal(envl)
	if err != nil {
		e.t.Fatal(err)
	}
	if msgID == "" {
		msgID = eventID
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := e.JS.PublishMsg(ctx, servicetest.Message(subject, msgID, data, envl, traceparent))
	if err != nil {
		e.t.Fatalf("publish %s: %v", subject, err)
	}
	return ack.Sequence
}

type patient struct {
	id, clinic, name, email string
}

func newPatient(clinic, name, email string) patient {
	return patient{id: bus.NewID(), clinic: clinic, name: name, email: email}
}

// admit publishes intake's PatientAdmitted, which no longer carries contact details.
func (e *env) admit(p patient) {
	e.t.Helper()
	e.publish("trellis.intake.patient.admitted.v1", "intake", p.clinic, bus.NewID(), "", "", &intakev1.PatientAdmitted{
		PatientId: p.id, EpisodeId: bus.NewID(), ClinicId: p.clinic, ProgramTrack: "adult-evening",
		StartDate: "2026-03-02", AdmittedAt: timestamppb.Now(), ClinicTimeZone: "America/Chicago",
	})
}

// recordContact publishes intake's PatientContactRecorded for p, occurring at at (now when
// zero), and returns its INTAKE stream sequence.
func (e *env) recordContact(p patient, at time.Time) uint64 {
	e.t.Helper()
	return e.publishAt(at, "trellis.intake.patient.contact_recorded.v1", "intake", p.clinic, bus.NewID(), "", "",
		&intakev1.PatientContactRecorded{
			PatientId: p.id, ClinicId: p.clinic, PreferredName: p.name, Email: p.email, Phone: "+13125550100",
			ClinicTimeZone: "America/Chicago", RecordedAt: timestamppb.Now(),
		})
}

// admitWithContact publishes what intake emits when it admits a patient: PatientAdmitted, then
// PatientContactRecorded.
func (e *env) admitWithContact(p patient) {
	e.t.Helper()
	e.admit(p)
	e.recordContact(p, time.Time{})
}

func (e *env) openAccount(p patient, eventID, msgID, traceparent string) uint64 {
	e.t.Helper()
	return e.publish("trellis.billing.account.opened.v1", "billing", p.clinic, eventID, msgID, traceparent, &billingv1.AccountOpened{
		AccountId: bus.NewID(), PatientId: p.id, ClinicId: p.clinic, EnrollmentId: bus.NewID(),
	})
}

type messageRow struct {
	id, status, code, traceparent string
	attempts                      int
	sentAt                        *time.Time
}

func (e *env) messages(patientID string) []messageRow {
	e.t.Helper()
	rows, err := e.Pool.Query(context.Background(), `SELECT id::text, status, last_error_code, traceparent, attempts, sent_at
		FROM messages WHERE patient_id = $1`, patientID)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []messageRow
	for rows.Next() {
		var m messageRow
		if err := rows.Scan(&m.id, &m.status, &m.code, &m.traceparent, &m.attempts, &m.sentAt); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// waitStatus waits for the patient's single message to reach status, and returns it.
func (e *env) waitStatus(patientID, status string, timeout time.Duration) messageRow {
	e.t.Helper()
	var last []messageRow
	testkit.Eventually(e.t, timeout, "message status "+status, func() bool {
		last = e.messages(patientID)
		return len(last) == 1 && last[0].status == status
	})
	return last[0]
}

// emailsTo returns the emails the sink received for addr.
func emailsTo(sink *smtptest.Sink, addr string) []smtptest.Message {
	var out []smtptest.Message
	for _, m := range sink.Messages() {
		if slices.Contains(m.To, addr) {
			out = append(out, m)
		}
	}
	return out
}

// waitRecipient waits until the patient's recipient copy satisfies cond (SQL over recipients).
func (e *env) waitRecipient(patientID, cond string) {
	e.t.Helper()
	testkit.Eventually(e.t, 10*time.Second, "recipient copy with "+cond, func() bool {
		return e.Count(e.t, `SELECT count(*) FROM recipients WHERE patient_id = $1 AND `+cond, patientID) == 1
	})
}

// messageSent returns the MessageSent events on the NOTIFICATION stream with their headers.
func (e *env) messageSent() ([]*notificationv1.MessageSent, []nats.Header) {
	e.t.Helper()
	ctx := context.Background()
	st, err := e.JS.Stream(ctx, "NOTIFICATION")
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var evs []*notificationv1.MessageSent
	var hdrs []nats.Header
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		raw, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if raw.Subject != "trellis.notification.message.sent.v1" {
			continue // delivered and failed events
		}
		var envl eventsv1.Envelope
		var ev notificationv1.MessageSent
		if err := proto.Unmarshal(raw.Data, &envl); err != nil {
			e.t.Fatal(err)
		}
		if err := envl.GetPayload().UnmarshalTo(&ev); err != nil {
			e.t.Fatal(err)
		}
		evs = append(evs, &ev)
		hdrs = append(hdrs, raw.Header)
	}
	return evs, hdrs
}

func (e *env) client() notificationv1connect.NotificationServiceClient {
	return notificationv1connect.NewNotificationServiceClient(http.DefaultClient, e.URL)
}

// assertNoPHIInLogs checks that nothing the service logged names the patients.
func (e *env) assertNoPHIInLogs(ps ...patient) {
	e.t.Helper()
	logs := strings.ToLower(e.Logs.String())
	for _, p := range ps {
		for _, s := range []string{p.email, p.name} {
			if s != "" && strings.Contains(logs, strings.ToLower(s)) {
				e.t.Errorf("logs contain PHI %q", s)
			}
		}
	}
}

func TestWelcomeWhenAccountOpensBeforeAdmission(t *testing.T) {
	sink := smtptest.Start(t, smtptest.Options{})
	e := start(t, sink.Addr, nil)
	p := newPatient(clinicA, "Rosalind", "rosalind.q@example.org")
	traceID := trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	traceparent := "00-" + traceID.String() + "-00f067aa0ba902b7-01"

	// AccountOpened first: the recipient copy is missing, so the consumer retries.
	e.openAccount(p, bus.NewID(), "", traceparent)
	testkit.Eventually(t, 10*time.Second, "AccountOpened retried", func() bool {
		return e.Processed(t, "notification--accounts", "retry") >= 1
	})
	if got := e.messages(p.id); len(got) != 0 {
		t.Fatalf("message queued before the admission was seen: %+v", got)
	}
	e.admitWithContact(p)

	m := e.waitStatus(p.id, "sent", 15*time.Second)
	if m.sentAt == nil || m.attempts != 1 || m.code != "" {
		t.Errorf("sent message row = %+v; want sent_at set, 1 attempt, no error", m)
	}
	testkit.Eventually(t, 5*time.Second, "one email", func() bool { return len(sink.Messages()) >= 1 })
	msgs := sink.Messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d emails, want 1", len(msgs))
	}
	got := msgs[0]
	if len(got.To) != 1 || got.To[0] != p.email || got.Header.Get("To") != "<"+p.email+">" {
		t.Errorf("email went to %v (To: %q), want %s", got.To, got.Header.Get("To"), p.email)
	}
	if got.From != "care@trellis.local" || !strings.Contains(got.Header.Get("From"), "Care Team") {
		t.Errorf("sender = %q / %q", got.From, got.Header.Get("From"))
	}
	if want := "<" + m.id + "@trellis.local>"; got.Header.Get("Message-ID") != want {
		t.Errorf("Message-ID = %q, want %q", got.Header.Get("Message-ID"), want)
	}
	if got.Subject != "Welcome — your first visit" {
		t.Errorf("subject = %q", got.Subject)
	}
	for _, want := range []string{"Hello Rosalind,", "Monday, March 2, 2026"} {
		if !strings.Contains(got.Body, want) {
			t.Errorf("body lacks %q:\n%s", want, got.Body)
		}
	}
	whole := strings.Join([]string{got.Subject, got.Header.Get("From"), got.Body}, "\n")
	if found := domain.SensitiveTermsIn(whole); len(found) > 0 {
		t.Errorf("email reveals the kind of care: %v\n%s", found, whole)
	}
	if strings.Contains(string(got.Raw), "adult-evening") {
		t.Error("email mentions the program track")
	}

	// MessageSent on the NOTIFICATION stream, without content, continuing the trace.
	var evs []*notificationv1.MessageSent
	var hdrs []nats.Header
	testkit.Eventually(t, 10*time.Second, "MessageSent published", func() bool {
		evs, hdrs = e.messageSent()
		return len(evs) >= 1
	})
	if len(evs) != 1 {
		t.Fatalf("got %d MessageSent, want 1", len(evs))
	}
	want := &notificationv1.MessageSent{MessageId: m.id, PatientId: p.id, ClinicId: p.clinic, Kind: "welcome", Channel: "email"}
	if !proto.Equal(evs[0], want) {
		t.Errorf("MessageSent = %v, want %v", evs[0], want)
	}
	if tp := telemetry.HeaderCarrier(hdrs[0]).Get("traceparent"); !strings.Contains(tp, traceID.String()) {
		t.Errorf("MessageSent traceparent %q does not continue trace %s", tp, traceID)
	}

	// The send span is a CLIENT child in the trace that opened the account, with no PHI.
	var send sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		if s.Name() == "smtp send" && s.SpanContext().TraceID() == traceID {
			send = s
		}
	}
	if send == nil {
		t.Fatal("no \"smtp send\" span in the account's trace")
	}
	if send.SpanKind() != trace.SpanKindClient || !send.Parent().IsValid() {
		t.Errorf("smtp send span kind %v, parent %v", send.SpanKind(), send.Parent())
	}
	for _, a := range send.Attributes() {
		v := a.Value.String()
		if strings.Contains(v, p.email) || strings.Contains(v, p.name) {
			t.Errorf("span attribute %s carries PHI", a.Key)
		}
	}
	e.assertNoPHIInLogs(p)
}

func TestDuplicateAccountOpenedSendsOneEmail(t *testing.T) {
	sink := smtptest.Start(t, smtptest.Options{})
	e := start(t, sink.Addr, nil)
	p := newPatient(clinicA, "Jun", "jun@example.org")
	e.admitWithContact(p)
	first := bus.NewID()
	e.openAccount(p, first, "", "")
	m := e.waitStatus(p.id, "sent", 15*time.Second)

	e.openAccount(p, first, "", "")                  // same message: JetStream's duplicate window
	e.openAccount(p, first, "redelivery-"+first, "") // same event, new message id: the inbox
	e.openAccount(p, bus.NewID(), "", "")            // a second AccountOpened: one welcome per patient
	testkit.Eventually(t, 10*time.Second, "duplicates consumed", func() bool {
		return e.Processed(t, "notification--accounts", "duplicate") >= 1 && e.Processed(t, "notification--accounts", "ok") >= 2
	})
	time.Sleep(300 * time.Millisecond) // several dispatcher polls

	if rows := e.messages(p.id); len(rows) != 1 || rows[0].id != m.id || rows[0].attempts != 1 {
		t.Errorf("messages = %+v; want the one first message, sent once", rows)
	}
	if n := len(sink.Messages()); n != 1 {
		t.Errorf("got %d emails, want 1", n)
	}
	testkit.Eventually(t, 10*time.Second, "MessageSent published", func() bool {
		evs, _ := e.messageSent()
		return len(evs) >= 1
	})
	time.Sleep(100 * time.Millisecond)
	if evs, _ := e.messageSent(); len(evs) != 1 {
		t.Errorf("got %d MessageSent, want 1", len(evs))
	}
}

func TestSinkDownThenUpSendsAfterRetry(t *testing.T) {
	addr := downAddr(t)
	e := start(t, addr, nil)
	p := newPatient(clinicA, "Mika", "mika@example.org")
	e.admitWithContact(p)
	e.openAccount(p, bus.NewID(), "", "")

	// A claim counts its attempt before sending, so attempts = 2 can be the second attempt still
	// in flight (it could then reach the sink started below). The third claimed means the second
	// has ended, failed: the sink was down for both.
	testkit.Eventually(t, 15*time.Second, "two failed attempts", func() bool {
		rows := e.messages(p.id)
		return len(rows) == 1 && rows[0].attempts >= 3
	})
	if rows := e.messages(p.id); rows[0].status != "queued" || rows[0].code != "smtp_unavailable" {
		t.Fatalf("while the sink is down: %+v; want queued with smtp_unavailable", rows[0])
	}
	if evs, _ := e.messageSent(); len(evs) != 0 {
		t.Fatalf("MessageSent published while nothing was sent: %v", evs)
	}

	sink := smtptest.StartAt(t, addr, smtptest.Options{})
	m := e.waitStatus(p.id, "sent", 15*time.Second)
	if m.attempts < 3 || m.code != "" {
		t.Errorf("sent row = %+v; want at least 3 attempts and the error cleared", m)
	}
	testkit.Eventually(t, 5*time.Second, "the email", func() bool { return len(sink.Messages()) >= 1 })
	if msgs := sink.Messages(); len(msgs) != 1 || msgs[0].To[0] != p.email {
		t.Errorf("emails = %d, want exactly one to %s", len(msgs), p.email)
	}
	if !strings.Contains(e.Logs.String(), `"error_code":"smtp_unavailable"`) {
		t.Error("the failed attempts were not logged with their error class")
	}
	e.assertNoPHIInLogs(p)
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	e := start(t, downAddr(t), map[string]string{"NOTIFY_MAX_ATTEMPTS": "3"})
	p := newPatient(clinicA, "Odalys", "odalys@example.org")
	e.admitWithContact(p)
	e.openAccount(p, bus.NewID(), "", "")
	m := e.waitStatus(p.id, "failed", 15*time.Second)
	if m.attempts != 3 || m.code != "smtp_unavailable" || m.sentAt != nil {
		t.Errorf("failed row = %+v; want 3 attempts, smtp_unavailable, no sent_at", m)
	}
	time.Sleep(300 * time.Millisecond)
	if rows := e.messages(p.id); rows[0].attempts != 3 {
		t.Errorf("a failed message was attempted again: %+v", rows[0])
	}
	if evs, _ := e.messageSent(); len(evs) != 0 {
		t.Errorf("MessageSent published for a failed message")
	}
	e.assertNoPHIInLogs(p)
}

func TestAuthenticatedSMTPAndPermanentRejection(t *testing.T) {
	sink := smtptest.Start(t, smtptest.Options{
		Username: "notifier", Password: "s3cret",
		RejectRcpt: func(addr string) error {
			if strings.HasPrefix(addr, "gone@") {
				return smtptest.MailboxUnavailable
			}
			return nil
		},
	})
	e := start(t, sink.Addr, map[string]string{"SMTP_USERNAME": "notifier", "SMTP_PASSWORD": "s3cret"})
	ok := newPatient(clinicA, "Ines", "ines@example.org")
	gone := newPatient(clinicA, "Pasquale", "gone@example.org")
	noAddr := newPatient(clinicA, "Louisa", "") // intake has no email address for her
	for _, p := range []patient{ok, gone, noAddr} {
		e.admitWithContact(p)
		e.openAccount(p, bus.NewID(), "", "")
	}
	e.waitStatus(ok.id, "sent", 15*time.Second)
	for _, c := range []struct {
		p    patient
		code string
	}{{gone, "smtp_recipient_rejected"}, {noAddr, "invalid_address"}} {
		m := e.waitStatus(c.p.id, "failed", 15*time.Second)
		if m.attempts != 1 || m.code != c.code {
			t.Errorf("%s: row = %+v; want failed at the first attempt with %s", c.p.name, m, c.code)
		}
	}
	var toPatients []smtptest.Message // the care team is also alerted of the two failures
	for _, m := range sink.Messages() {
		if !strings.HasPrefix(m.To[0], "care-team@") {
			toPatients = append(toPatients, m)
		}
	}
	if len(toPatients) != 1 || toPatients[0].To[0] != ok.email {
		t.Errorf("emails = %+v; want only the one to %s", toPatients, ok.email)
	}
	if strings.Contains(e.Logs.String(), "s3cret") {
		t.Error("the SMTP password was logged")
	}
	e.assertNoPHIInLogs(ok, gone)
}

func TestListMessagesAuthorization(t *testing.T) {
	sink := smtptest.Start(t, smtptest.Options{})
	e := start(t, sink.Addr, nil)
	p := newPatient(clinicA, "Noor", "noor@example.org")
	e.admitWithContact(p)
	e.openAccount(p, bus.NewID(), "", "")
	m := e.waitStatus(p.id, "sent", 15*time.Second)

	call := func(tok, patientID string) (*notificationv1.ListMessagesResponse, error) {
		req := connect.NewRequest(&notificationv1.ListMessagesRequest{PatientId: patientID})
		if tok != "" {
			req.Header().Set("Authorization", "Bearer "+tok)
		}
		resp, err := e.client().ListMessages(context.Background(), req)
		if err != nil {
			return nil, err
		}
		return resp.Msg, nil
	}
	cases := []struct {
		name      string
		tok       string
		patientID string
		wantCode  connect.Code // 0: success
		wantMsgs  int
	}{
		{"clinician of the clinic", e.Token(t, "user-1", []string{"clinician"}, []string{clinicA}), p.id, 0, 1},
		{"intake coordinator of the clinic", e.Token(t, "user-1", []string{"intake_coordinator"}, []string{clinicA}), p.id, 0, 1},
		{"admin of every clinic", e.Token(t, "user-1", []string{"admin"}, []string{auth.AllClinics}), p.id, 0, 1},
		// Another clinic's patient looks like an unknown one: no messages, no hint they exist.
		{"clinician of another clinic", e.Token(t, "user-1", []string{"clinician"}, []string{clinicB}), p.id, 0, 0},
		{"billing role", e.Token(t, "user-1", []string{"billing"}, []string{clinicA}), p.id, connect.CodePermissionDenied, 0},
		{"no token", "", p.id, connect.CodeUnauthenticated, 0},
		{"forged token", "eyJhbGciOiJIUzI1NiJ9.e30.bad", p.id, connect.CodeUnauthenticated, 0},
		{"not a uuid", e.Token(t, "user-1", []string{"clinician"}, []string{clinicA}), "patient-1", connect.CodeInvalidArgument, 0},
		{"unknown patient", e.Token(t, "user-1", []string{"clinician"}, []string{clinicA}), bus.NewID(), 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := call(tc.tok, tc.patientID)
			if tc.wantCode != 0 {
				if connect.CodeOf(err) != tc.wantCode {
					t.Fatalf("err = %v, want %s", err, tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.GetMessages()) != tc.wantMsgs {
				t.Fatalf("got %d messages, want %d", len(resp.GetMessages()), tc.wantMsgs)
			}
			if tc.wantMsgs == 1 {
				got := resp.GetMessages()[0]
				if got.GetMessageId() != m.id || got.GetPatientId() != p.id || got.GetKind() != "welcome" ||
					got.GetChannel() != "email" || got.GetStatus() != "sent" || !got.GetSentAt().IsValid() {
					t.Errorf("message = %v", got)
				}
			}
		})
	}
}

// Events that can never make a recipient copy (an unknown zone, an id or email that is not one,
// a phone that is not E.164) are dead-lettered, not retried forever, and their reasons name
// neither the patient nor the address; the service keeps going.
func TestMalformedEventsAreDeadLettered(t *testing.T) {
	sink := smtptest.Start(t, smtptest.Options{})
	e := start(t, sink.Addr, nil)
	badZone := newPatient(clinicA, "Valentina", "valentina@example.org")
	e.publish("trellis.intake.patient.admitted.v1", "intake", badZone.clinic, bus.NewID(), "", "", &intakev1.PatientAdmitted{
		PatientId: badZone.id, ClinicId: badZone.clinic, StartDate: "2026-03-02", ClinicTimeZone: "Mars/Olympus",
	})
	badEmail := newPatient(clinicA, "Ottoline", "ottoline.at.example.org")
	badPhone := newPatient(clinicA, "Cosimo", "cosimo@example.org")
	badID := newPatient(clinicA, "Imogen", "imogen@example.org")
	for _, c := range []struct {
		p         patient
		patientID string
		phone     string
	}{{badEmail, badEmail.id, ""}, {badPhone, badPhone.id, "555-0100"}, {badID, "patient-7", ""}} {
		e.publish("trellis.intake.patient.contact_recorded.v1", "intake", c.p.clinic, bus.NewID(), "", "", &intakev1.PatientContactRecorded{
			PatientId: c.patientID, ClinicId: c.p.clinic, PreferredName: c.p.name, Email: c.p.email, Phone: c.phone,
			ClinicTimeZone: "America/Chicago",
		})
	}
	deadLetters := func(consumer string) uint64 {
		return e.StreamCount(t, bus.DeadLetterStream, bus.DeadLetterSubject(consumer))
	}
	testkit.Eventually(t, 10*time.Second, "dead letters", func() bool {
		return deadLetters("notification--admissions") == 1 && deadLetters("notification--contacts") == 3
	})
	var n int
	if err := e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM recipients`).Scan(&n); err != nil || n != 0 {
		t.Errorf("recipients = %d, %v; want none", n, err)
	}
	good := newPatient(clinicA, "Benedikt", "benedikt@example.org")
	e.admitWithContact(good)
	e.openAccount(good, bus.NewID(), "", "")
	e.waitStatus(good.id, "sent", 15*time.Second)
	e.assertNoPHIInLogs(badZone, badEmail, badPhone, badID, good)
	if logs := e.Logs.String(); strings.Contains(logs, "555-0100") || strings.Contains(logs, "ottoline") {
		t.Error("logs quote the malformed contact details")
	}
}

// eventOrders are the six orders in which the three events a welcome needs can arrive.
var eventOrders = [][3]string{
	{"admission", "contact", "account"},
	{"admission", "account", "contact"},
	{"contact", "admission", "account"},
	{"contact", "account", "admission"},
	{"account", "admission", "contact"},
	{"account", "contact", "admission"},
}

// Whatever the order of PatientAdmitted, PatientContactRecorded and AccountOpened, the patient
// gets exactly one welcome, at the address from the contact details, with their name and start
// date; each event is applied (or, for an early AccountOpened, retried) before the next is sent.
func TestWelcomeWhateverTheOrderOfEvents(t *testing.T) {
	sink := smtptest.Start(t, smtptest.Options{})
	e := start(t, sink.Addr, nil)
	var all []patient
	t.Run("orders", func(t *testing.T) {
		for i, order := range eventOrders {
			p := newPatient(clinicA, fmt.Sprintf("Pat%d", i), fmt.Sprintf("order%d@example.org", i))
			all = append(all, p)
			t.Run(strings.Join(order[:], "-"), func(t *testing.T) {
				t.Parallel()
				welcomeAfter(t, e, sink, p, order)
			})
		}
	})
	if n := len(sink.Messages()); n != len(eventOrders) {
		t.Errorf("%d emails in all, want %d", n, len(eventOrders))
	}
	e.assertNoPHIInLogs(all...)
}

// welcomeAfter publishes p's events in order, each applied (or, for an early AccountOpened,
// retried) before the next is sent, and checks p's one welcome.
func welcomeAfter(t *testing.T, e *env, sink *smtptest.Sink, p patient, order [3]string) {
	se := &env{Service: e.Service, t: t}
	for _, ev := range order {
		switch ev {
		case "admission":
			se.admit(p)
			se.waitRecipient(p.id, "start_date IS NOT NULL")
		case "contact":
			se.recordContact(p, time.Time{})
			se.waitRecipient(p.id, "email IS NOT NULL")
		case "account":
			id := bus.NewID()
			se.openAccount(p, id, "", "")
			// Retried while the copy is incomplete, queued once it is complete.
			testkit.Eventually(t, 10*time.Second, "AccountOpened handled", func() bool {
				return strings.Contains(se.Logs.String(), `"event_id":"`+id+`"`) || len(se.messages(p.id)) > 0
			})
		}
	}
	m := se.waitStatus(p.id, "sent", 20*time.Second)
	if m.attempts != 1 {
		t.Errorf("message = %+v; want sent at the first attempt", m)
	}
	got := emailsTo(sink, p.email)
	if len(got) != 1 {
		t.Fatalf("%d emails to %s, want 1", len(got), p.email)
	}
	for _, want := range []string{"Hello " + p.name + ",", "Monday, March 2, 2026"} {
		if !strings.Contains(got[0].Body, want) {
			t.Errorf("body lacks %q:\n%s", want, got[0].Body)
		}
	}
}

// A message still waiting to be sent goes to the newest contact details: a newer
// PatientContactRecorded replaces the address, an older one arriving late does not.
func TestContactChangesReachTheQueuedMessage(t *testing.T) {
	addr := downAddr(t)
	e := start(t, addr, map[string]string{"NOTIFY_MAX_ATTEMPTS": "1000"})
	t0 := time.Now()
	first := newPatient(clinicA, "Rosa", "rosa.first@example.org")
	e.admit(first)
	e.recordContact(first, t0)
	e.openAccount(first, bus.NewID(), "", "")
	testkit.Eventually(t, 10*time.Second, "a failed attempt", func() bool {
		rows := e.messages(first.id)
		return len(rows) == 1 && rows[0].attempts >= 1 && rows[0].code == "smtp_unavailable"
	})

	changed := first
	changed.name, changed.email = "Rosie", "rosie.new@example.org"
	e.recordContact(changed, t0.Add(time.Hour))
	e.waitRecipient(first.id, "preferred_name = 'Rosie'") // the e-mail is sealed: the same event's name
	stale := first
	stale.name, stale.email = "Rosalba", "rosalba.stale@example.org"
	seq := e.recordContact(stale, t0.Add(-time.Hour)) // published late, happened first
	e.Settled(t, "INTAKE", "notification--contacts", seq)
	if e.Processed(t, "notification--contacts", "ok") != 3 {
		t.Fatalf("contact events applied = %v, want 3", e.Processed(t, "notification--contacts", "ok"))
	}

	sink := smtptest.StartAt(t, addr, smtptest.Options{})
	e.waitStatus(first.id, "sent", 15*time.Second)
	testkit.Eventually(t, 5*time.Second, "the email", func() bool { return len(sink.Messages()) >= 1 })
	msgs := sink.Messages()
	if len(msgs) != 1 || len(msgs[0].To) != 1 || msgs[0].To[0] != changed.email {
		t.Fatalf("emails = %+v; want exactly one, to %s", msgs, changed.email)
	}
	if !strings.Contains(msgs[0].Body, "Hello Rosie,") {
		t.Errorf("body does not greet the newest name:\n%s", msgs[0].Body)
	}
	e.assertNoPHIInLogs(first, changed, stale)
}

// TestHelpListsConfig checks `notification --help` documents the SMTP settings and masks nothing
// it should print.
func TestHelpListsConfig(t *testing.T) {
	var cfg Config
	var out bytes.Buffer
	if code := service.Run(context.Background(), newSpec(&cfg), &cfg, []string{"--help"}, &out, &out); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"SMTP_ADDR", "127.0.0.1:1025", "SMTP_FROM", "SMTP_PASSWORD", ":8084", "NOTIFY_MAX_ATTEMPTS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

func TestSenderMustBeNeutral(t *testing.T) {
	for from, ok := range map[string]bool{
		"Care Team <care@trellis.local>":                  true,
		"Riverside Recovery <hello@riverside.example>":    false,
		"Care Team <care@oak-addiction-services.example>": false,
		"Evening IOP Program <evening@clinic.example>":    false,
	} {
		cfg := Config{SMTPFrom: from}
		if err := cfg.check(); (err == nil) != ok {
			t.Errorf("check(%q) = %v, want ok=%v", from, err, ok)
		}
	}
}
