// Package e2e runs the whole Trellis network (the same stack `make run` starts, on free ports
// and a fresh database) and follows one patient from admission to welcome email.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/deploy/devstack/stack"
	"github.com/trellis-health/trellis/deploy/devstack/stack/stacktest"
	"github.com/trellis-health/trellis/deploy/devstack/tracesink"
	"github.com/trellis-health/trellis/pkg/rpc"
	"github.com/trellis-health/trellis/pkg/testkit"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/intake/v1/intakev1connect"
	notificationv1 "github.com/trellis-health/trellis/proto/gen/trellis/notification/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/notification/v1/notificationv1connect"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1/schedulingv1connect"
)

const clinicID = "0190a000-0000-7000-8000-000000000001" // Riverside, seeded by `intake seed-demo`

func TestAdmissionFlowsThroughEveryService(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := startStack(ctx, t)

	admin := bearer(t, s, []string{"admin"}, []string{"*"})
	intake := intakev1connect.NewIntakeServiceClient(http.DefaultClient, s.URL("intake"))

	t.Run("bad input is refused and changes nothing", func(t *testing.T) {
		_, err := intake.AdmitPatient(ctx, withToken(connect.NewRequest(&intakev1.AdmitPatientRequest{
			GivenName: "", FamilyName: "Doe", DateOfBirth: "1990-13-01", ContactEmail: "not-an-email",
			ClinicId: clinicID, ProgramTrack: "adult-evening", StartDate: "2026-12-01", IdempotencyKey: "e2e-bad-input-1",
		}), admin))
		if connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Fatalf("want invalid_argument, got %v", err)
		}
		var fields []string
		for _, v := range rpc.Violations(err) {
			fields = append(fields, v.Field)
		}
		for _, want := range []string{"given_name", "contact_email"} {
			if !slices.Contains(fields, want) {
				t.Errorf("violations %v do not name %s", fields, want)
			}
		}
		_, err = intake.AdmitPatient(ctx, connect.NewRequest(&intakev1.AdmitPatientRequest{}))
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Fatalf("without a token: want unauthenticated, got %v", err)
		}
		if n := count(ctx, t, s, "SELECT count(*) FROM intake.patients"); n != 0 {
			t.Fatalf("refused calls stored %d patients", n)
		}
	})

	email := fmt.Sprintf("e2e-%d@example.com", time.Now().UnixNano())
	start := time.Now().AddDate(0, 0, 7).Format(time.DateOnly)
	resp, err := intake.AdmitPatient(ctx, withToken(connect.NewRequest(&intakev1.AdmitPatientRequest{
		GivenName: "Robin", FamilyName: "Quinn", DateOfBirth: "1991-03-14", ContactEmail: email,
		ClinicId: clinicID, ProgramTrack: "adult-evening", StartDate: start, IdempotencyKey: "e2e-admit-robin-1",
	}), admin))
	if err != nil {
		t.Fatalf("admit: %v", err)
	}
	patientID := resp.Msg.GetPatientId()

	clinician := bearer(t, s, []string{"clinician"}, []string{clinicID})
	sched := schedulingv1connect.NewSchedulingServiceClient(http.DefaultClient, s.URL("scheduling"))
	testkit.Eventually(t, 30*time.Second, "enrollment in scheduling", func() bool {
		r, err := sched.GetEnrollment(ctx, withToken(connect.NewRequest(&schedulingv1.GetEnrollmentRequest{PatientId: patientID}), clinician))
		return err == nil && r.Msg.GetEnrollment().GetStartDate() == start
	})
	billing := billingv1connect.NewBillingServiceClient(http.DefaultClient, s.URL("billing"))
	biller := bearer(t, s, []string{"billing"}, []string{clinicID})
	testkit.Eventually(t, 30*time.Second, "account in billing", func() bool {
		r, err := billing.GetAccount(ctx, withToken(connect.NewRequest(&billingv1.GetAccountRequest{PatientId: patientID}), biller))
		return err == nil && r.Msg.GetAccount().GetBalanceCents() == 0
	})
	notif := notificationv1connect.NewNotificationServiceClient(http.DefaultClient, s.URL("notification"))
	// The welcome is sent; each appointment scheduling booked has its reminders waiting.
	testkit.Eventually(t, 30*time.Second, "welcome sent and reminders queued", func() bool {
		r, err := notif.ListMessages(ctx, withToken(connect.NewRequest(&notificationv1.ListMessagesRequest{PatientId: patientID}), clinician))
		if err != nil {
			return false
		}
		welcome, reminders := 0, 0
		for _, m := range r.Msg.GetMessages() {
			switch {
			case m.GetKind() == "welcome" && m.GetStatus() == "sent":
				welcome++
			case m.GetKind() == "reminder" && m.GetStatus() == "queued":
				reminders++
			}
		}
		return welcome == 1 && reminders > 0
	})

	// Each service left rows in its own schema.
	for _, q := range []string{
		"SELECT count(*) FROM intake.patients WHERE id = $1",
		"SELECT count(*) FROM scheduling.enrollments WHERE patient_id = $1",
		"SELECT count(*) FROM billing.accounts WHERE patient_id = $1",
		"SELECT count(*) FROM notification.messages WHERE patient_id = $1 AND status = 'sent'",
	} {
		if n := count(ctx, t, s, q, patientID); n != 1 {
			t.Errorf("%s: got %d rows, want 1", q, n)
		}
	}

	// The welcome email reached the SMTP sink, and says nothing about the kind of care.
	body := mailTo(ctx, t, s, email)
	for _, word := range []string{"addiction", "substance", "iop", "intensive outpatient", "recovery", "treatment", "rehab"} {
		if strings.Contains(strings.ToLower(body), word) {
			t.Errorf("welcome email mentions %q", word)
		}
	}

	// One continuous trace: the API call and every hop after it share one trace id. Each
	// service exports its spans in its own batches, so wait until the trace is whole; if it
	// never is, report what is missing from the most complete candidate.
	var missing []string
	testkit.Eventually(t, 30*time.Second, "one whole trace spanning all five services", func() bool {
		missing = []string{"no trace with the AdmitPatient call"}
		for _, tr := range s.Traces.Traces() {
			if !hasSpan(tr, "intake", "trellis.intake.v1.IntakeService/AdmitPatient") {
				continue
			}
			if m := traceProblems(tr); len(m) < len(missing) || missing[0] == "no trace with the AdmitPatient call" {
				missing = m
			}
			if len(missing) == 0 {
				return true
			}
		}
		return false
	})
	if len(missing) > 0 {
		t.Errorf("trace problems: %v", missing)
	}
}

// traceProblems lists what keeps tr from being the whole admission flow: a span in each
// service of the right kinds, the SMTP send, and no span whose parent is outside the trace.
func traceProblems(tr tracesink.Trace) []string {
	var out []string
	if len(tr.Services) != 5 {
		out = append(out, fmt.Sprintf("services %v, want all five", tr.Services))
	}
	for _, svc := range []string{"scheduling", "billing", "notification", "dashboard"} {
		if !hasKind(tr, svc, "SPAN_KIND_CONSUMER") {
			out = append(out, "no consumer span in "+svc)
		}
	}
	for _, svc := range []string{"intake", "scheduling", "billing"} {
		if !hasKind(tr, svc, "SPAN_KIND_PRODUCER") {
			out = append(out, "no producer span in "+svc)
		}
	}
	if !hasKind(tr, "notification", "SPAN_KIND_CLIENT") {
		out = append(out, "no SMTP send span in notification")
	}
	ids := map[string]bool{}
	for _, sp := range tr.Spans {
		ids[sp.SpanID] = true
	}
	for _, sp := range tr.Spans {
		if sp.ParentID != "" && !ids[sp.ParentID] {
			out = append(out, fmt.Sprintf("span %s (%s %s) has a parent outside the trace", sp.SpanID, sp.Service, sp.Name))
		}
	}
	return out
}

func startStack(ctx context.Context, t *testing.T) *stack.Stack {
	t.Helper()
	return stacktest.Start(ctx, t, stacktest.Options{Prefix: "e2e", LogLevel: "info"})
}

func bearer(t *testing.T, s *stack.Stack, roles, clinics []string) string {
	t.Helper()
	tok, err := s.Token("e2e", roles, clinics, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func withToken[T any](r *connect.Request[T], tok string) *connect.Request[T] {
	r.Header().Set("Authorization", "Bearer "+tok)
	return r
}

func count(ctx context.Context, t *testing.T, s *stack.Stack, q string, args ...any) int {
	t.Helper()
	conn, err := pgx.Connect(ctx, s.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// mailTo waits for a message to addr in Mailpit and returns its text body.
func mailTo(ctx context.Context, t *testing.T, s *stack.Stack, addr string) string {
	t.Helper()
	var id string
	testkit.Eventually(t, 30*time.Second, "welcome email in Mailpit", func() bool {
		var list struct {
			Messages []struct {
				ID string
				To []struct{ Address string }
			}
		}
		if err := getJSON(ctx, s.URL("mailui")+"/api/v1/messages", &list); err != nil {
			return false
		}
		for _, m := range list.Messages {
			for _, to := range m.To {
				if to.Address == addr {
					id = m.ID
					return true
				}
			}
		}
		return false
	})
	var msg struct{ Text, Subject string }
	if err := getJSON(ctx, s.URL("mailui")+"/api/v1/message/"+id, &msg); err != nil {
		t.Fatal(err)
	}
	return msg.Subject + "\n" + msg.Text
}

func getJSON(ctx context.Context, url string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func hasSpan(tr tracesink.Trace, service, nameContains string) bool {
	for _, sp := range tr.Spans {
		if sp.Service == service && strings.Contains(sp.Name, nameContains) {
			return true
		}
	}
	return false
}

func hasKind(tr tracesink.Trace, service, kind string) bool {
	for _, sp := range tr.Spans {
		if sp.Service == service && sp.Kind == kind {
			return true
		}
	}
	return false
}
