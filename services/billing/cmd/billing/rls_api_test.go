package main

import (
	"context"
	"net/http"
	"testing"

	"connectrpc.com/connect"

	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"
)

// Through the API, a token of clinic A gets not_found for clinic B's records by their ids
// (a work item to change or write off, a claim file to download, a patient's account) and
// lists none of B's (work items, write-offs), nor the work item of an 835 claim that matched
// no claim, which belongs to no clinic; those rows are unchanged. The app checks the clinics too; the row-level security
// policies (migration 00011, TestRowLevelSecurityIsolatesClinics) make the database refuse
// them as well.
func TestRowLevelSecurityGuessedIDs(t *testing.T) {
	w := startWriteOffs(t)
	ctx := context.Background()
	onlyA := w.Token(t, "biller-a", []string{"admin"}, []string{clinicA})
	claims := billingv1connect.NewClaimsServiceClient(http.DefaultClient, w.URL)
	accounts := billingv1connect.NewBillingServiceClient(http.DefaultClient, w.URL)
	if _, err := w.writeOff(w.admin, &billingv1.WriteOffRequest{WorkItemId: w.denialB.GetId(), Reason: "small_balance", AmountCents: 100}); err != nil {
		t.Fatal(err)
	}
	// An 835 paying a claim billing never sent: its unmatched work item has no clinic.
	w.upload(t, w.admin, era835("RLS1", eraClaim{Control: "NOSUCH1", Status: "1",
		Lines: []eraLine{{Code: "H0015", Date: "2026-03-09", Charged: 9000, Paid: 9000}}}))
	var noClinic string
	for _, it := range w.items(t, w.admin, "unmatched", "", "open") {
		if it.GetClinicId() == "" {
			noClinic = it.GetId()
		}
	}
	if noClinic == "" {
		t.Fatal("no unmatched work item without a clinic")
	}
	var fileB string
	if err := w.Pool.QueryRow(ctx, `SELECT file_id::text FROM claims WHERE control_number = 'W3'`).Scan(&fileB); err != nil {
		t.Fatal(err)
	}
	// B's work item and the unmatched one, as stored, before and after the probes.
	snapshot := func() string {
		t.Helper()
		var s string
		if err := w.Pool.QueryRow(ctx, `SELECT string_agg(concat_ws('|', id, status, appeal_status, written_off_cents, updated_at), ',' ORDER BY id)
			FROM work_items WHERE id = ANY($1::uuid[])`, []string{w.denialB.GetId(), noClinic}).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := snapshot()

	for _, id := range []string{w.denialB.GetId(), noClinic} {
		_, err := w.client.UpdateWorkItem(ctx, req(onlyA, &billingv1.UpdateWorkItemRequest{Id: id, Status: "resolved"}))
		wantCode(t, err, connect.CodeNotFound)
	}
	_, err := w.writeOff(onlyA, &billingv1.WriteOffRequest{WorkItemId: w.denialB.GetId(), Reason: "small_balance"})
	wantCode(t, err, connect.CodeNotFound)
	_, err = claims.DownloadClaimFile(ctx, req(onlyA, &billingv1.DownloadClaimFileRequest{FileId: fileB}))
	wantCode(t, err, connect.CodeNotFound)
	_, err = accounts.GetAccount(ctx, req(onlyA, &billingv1.GetAccountRequest{PatientId: w.deniedB.Patient}))
	wantCode(t, err, connect.CodeNotFound)
	// A's own records answer, so the not_found above is about the clinic.
	if _, err := accounts.GetAccount(ctx, req(onlyA, &billingv1.GetAccountRequest{PatientId: w.denied.Patient})); err != nil {
		t.Fatalf("clinic A's own account: %v", err)
	}

	denials := w.items(t, onlyA, "denial", "", "")
	if len(denials) != 1 || denials[0].GetId() != w.denial.GetId() {
		t.Errorf("clinic A's denial queue: %v, want A's item only", denials)
	}
	for _, it := range w.items(t, onlyA, "unmatched", "", "") {
		if it.GetClinicId() != clinicA {
			t.Errorf("clinic A's unmatched queue holds %v, want A's items only", it)
		}
	}
	offs, err := w.client.ListWriteOffs(ctx, req(onlyA, &billingv1.ListWriteOffsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range offs.Msg.GetWriteOffs() {
		if o.GetClinicId() != clinicA {
			t.Errorf("clinic A lists a write-off of clinic %s", o.GetClinicId())
		}
	}
	if after := snapshot(); after != before {
		t.Errorf("B's rows changed:\nbefore %s\nafter  %s", before, after)
	}
}
