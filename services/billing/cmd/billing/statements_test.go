package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/bus"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
)

// Self-pay care is owed by the patient: a charge billed to the patient posts to the account
// (opened on the way if the enrollment's event has not arrived), its void takes it back, and
// the statement cycle issues at most one statement per account and cycle, only for accounts
// that owe something and had activity since their last statement.
func TestSelfPayLedgerAndStatementCycle(t *testing.T) {
	e := startCharges(t, false)
	ctx := context.Background()
	remit := billingv1connect.NewRemittanceServiceClient(http.DefaultClient, e.URL)
	biller := e.Token(t, "biller-1", []string{"billing"}, []string{"*"})
	patient := bus.NewID()
	balance := func() int64 {
		t.Helper()
		r, err := remit.GetPatientBalance(ctx, req(biller, &billingv1.GetPatientBalanceRequest{PatientId: patient, ClinicId: clinicA}))
		if err != nil {
			t.Fatal(err)
		}
		return r.Msg.GetBalanceCents()
	}
	issue := func() int32 {
		t.Helper()
		r, err := remit.IssueStatements(ctx, req(biller, &billingv1.IssueStatementsRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		return r.Msg.GetIssued()
	}

	e.coverage(t, patient, "self-pay", time.Now())
	e.attend(t, session{patient: patient, date: "2026-03-02", appointment: appt("5e01"), minutes: 180})
	wantRows(t, e.rows(t, patient), "day 2026-03-02 H0015 25000 patient_billed")
	if b := balance(); b != 25000 {
		t.Fatalf("balance %d after a self-pay day, want 25000", b)
	}
	e.wantEvents(t, subjectOpened, 1) // opened by the charge: no enrollment event came first

	if n := issue(); n != 1 {
		t.Fatalf("first cycle issued %d statements, want 1", n)
	}
	e.wantEvents(t, subjectStatementReady, 1)
	if n := issue(); n != 0 {
		t.Fatalf("a cycle with nothing new issued %d statements", n)
	}

	// The day is corrected to absent: the charge is voided and taken back off the account.
	e.attend(t, session{patient: patient, date: "2026-03-02", appointment: appt("5e01"), minutes: 0, version: 2,
		status: schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT})
	wantRows(t, e.rows(t, patient))
	if b := balance(); b != 0 {
		t.Fatalf("balance %d after the void, want 0", b)
	}
	// A second self-pay day: owed again, but a statement went out within the cycle.
	e.attend(t, session{patient: patient, date: "2026-03-03", appointment: appt("5e02"), minutes: 200})
	if b := balance(); b != 25000 {
		t.Fatalf("balance %d after the second day, want 25000", b)
	}
	if n := issue(); n != 0 {
		t.Fatalf("issued %d statements within the cycle, want 0", n)
	}
	if n := e.Count(t, `SELECT count(*) FROM ledger_entries WHERE kind = 'self_pay_charge'`); n != 3 {
		t.Errorf("%d self-pay ledger entries, want 3 (billed, voided, billed)", n)
	}

	// The cycle is network-wide: a biller of one clinic may not run it.
	_, err := remit.IssueStatements(ctx, req(e.Token(t, "b", []string{"billing"}, []string{clinicA}), &billingv1.IssueStatementsRequest{}))
	wantCode(t, err, connect.CodePermissionDenied)
}
