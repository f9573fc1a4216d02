package main

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/audit"
	"github.com/trellis-health/trellis/pkg/bus"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
)

// auditRow is a row of GET /audit as the compliance officer reads it.
type auditRow struct {
	Subject    string   `json:"subject"`
	Roles      []string `json:"roles"`
	Procedure  string   `json:"procedure"`
	Access     string   `json:"access"`
	Outcome    string   `json:"outcome"`
	PatientIDs []string `json:"patient_ids"`
	RecordIDs  []string `json:"record_ids"`
	UserAgent  string   `json:"user_agent"`
	ClientIP   string   `json:"client_ip"`
}

// audit queries the dashboard's GET /audit as a compliance officer of every clinic: the rows
// the pages wrote.
func (e *env) audit(query string) []auditRow {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.URL+"/audit?"+query, nil)
	req.Header.Set("Authorization", "Bearer "+e.Token(e.t, "officer-1", []string{"compliance_officer"}, []string{"*"}))
	code, _, body := e.do(req)
	if code != http.StatusOK {
		e.t.Fatalf("GET /audit?%s: %d %s", query, code, body)
	}
	var out struct{ Rows []auditRow }
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		e.t.Fatal(err)
	}
	// The officer's own queries are on record too (with the id they asked about): leave them out.
	return slices.DeleteFunc(out.Rows, func(r auditRow) bool { return r.Procedure == audit.QueryProcedure })
}

// pageRows counts the audit rows the pages wrote (not the queries of /audit itself).
func (e *env) pageRows() int {
	return e.Count(e.t, `SELECT count(*) FROM audit_log WHERE procedure LIKE 'GET /%' OR procedure LIKE 'POST /%'`)
}

// The clinic page's at-risk list names patients: viewing it (page or JSON) leaves a row naming
// the patients shown and their enrollments, with who, roles, what, from where and ok, which
// the compliance officer finds by patient in the dashboard's /audit. Pages of aggregates only
// (overview, billing figures, health) leave none.
func TestAuditClinicPageNamesThePatientsShown(t *testing.T) {
	e := start(t)
	n := e.feed(time.Now().UTC())
	var patient string
	if err := e.Pool.QueryRow(context.Background(), `SELECT patient_id::text FROM risks WHERE cleared_at IS NULL AND enrollment_id = $1`, n.e1).Scan(&patient); err != nil {
		t.Fatal(err)
	}
	nurse := e.Token(t, "nurse-7", []string{"operator"}, []string{clinicA})
	for _, p := range []string{"/overview", "/billing", "/health", "/api/overview.json", "/api/billing.json"} {
		if code, _, _ := e.get(p, nurse); code != http.StatusOK {
			t.Fatalf("GET %s: %d", p, code)
		}
	}
	if got := e.pageRows(); got != 0 {
		t.Errorf("pages of aggregates wrote %d audit rows, want none", got)
	}

	page := e.page("/clinics/"+clinicA, nurse)
	if !containsAll(page, patient) {
		t.Fatal("the clinic page does not show the patient at risk")
	}
	rows := e.audit("patient_id=" + patient)
	if len(rows) != 1 {
		t.Fatalf("%d rows name the patient, want 1: %+v", len(rows), rows)
	}
	r := rows[0]
	if r.Subject != "nurse-7" || !slices.Equal(r.Roles, []string{"operator"}) || r.Procedure != "GET /clinics/"+clinicA ||
		r.Access != "read" || r.Outcome != "ok" || !slices.Equal(r.PatientIDs, []string{patient}) ||
		!slices.Contains(r.RecordIDs, "enrollment_id="+n.e1) || r.ClientIP == "" || r.UserAgent == "" {
		t.Errorf("the page's row: %+v", r)
	}
	e.json("/api/clinics/"+clinicA+".json", nurse, &struct{}{})
	if rows := e.audit("patient_id=" + patient); len(rows) != 2 || rows[1].Procedure != "GET /api/clinics/"+clinicA+".json" {
		t.Errorf("after the JSON: %+v", rows)
	}
	// A user of another clinic is not shown the page (404), and nothing of it is on record.
	other := e.Token(t, "nurse-8", []string{"operator"}, []string{clinicB})
	if code, _, _ := e.get("/clinics/"+clinicA, other); code != http.StatusNotFound {
		t.Errorf("a user of B: %d, want 404", code)
	}
	if rows := e.audit("patient_id=" + patient); len(rows) != 2 {
		t.Errorf("%d rows after a refused view, want 2", len(rows))
	}
	// Fail closed: when the row cannot be written, the patients are not shown.
	if _, err := e.Pool.Exec(context.Background(), `ALTER TABLE audit_log ADD CONSTRAINT refuse_all CHECK (false) NOT VALID`); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/clinics/" + clinicA, "/api/clinics/" + clinicA + ".json"} {
		if code, _, body := e.get(p, nurse); code != http.StatusInternalServerError || strings.Contains(body, patient) {
			t.Errorf("GET %s without an audit trail: %d (patient shown: %v), want 500 without the patient", p, code, strings.Contains(body, patient))
		}
	}
	// Aggregates need no row: still shown.
	if code, _, _ := e.get("/overview", nurse); code != http.StatusOK {
		t.Errorf("the overview without an audit trail: %d", code)
	}
}

// The billing page's work queues list claims of patients (billing's work items name the claim):
// viewing them leaves a row naming each item and its claim, found by the claim in /audit.
func TestAuditWorkQueueView(t *testing.T) {
	now := time.Now().UTC()
	claim, item, held := bus.NewID(), bus.NewID(), bus.NewID()
	e, _ := startWithBilling(t, map[string][]*billingv1.WorkItem{
		"denial": {{Id: item, Queue: "denial", ClinicId: clinicA, PayerId: "acme", ClaimId: claim, AmountCents: 8500,
			Status: "open", AppealStatus: "none", Reason: "CO-50", CreatedAt: timestamppb.New(now)}},
		"holds": {{Id: held, Queue: "holds", ClinicId: clinicA, AmountCents: 2500, Status: "open", Reason: "no_auth",
			CreatedAt: timestamppb.New(now)}},
	})
	biller := e.Token(t, "biller-3", []string{"billing"}, []string{clinicA})
	if page := e.page("/billing", biller); !containsAll(page, claim, held) {
		t.Fatal("the billing page does not list the work items")
	}
	rows := e.audit("record_id=" + claim)
	if len(rows) != 1 {
		t.Fatalf("%d rows name the claim, want 1: %+v", len(rows), rows)
	}
	r := rows[0]
	if r.Subject != "biller-3" || r.Procedure != "GET /billing" || r.Access != "read" || r.Outcome != "ok" ||
		!slices.Contains(r.RecordIDs, "work_item_id="+item) || !slices.Contains(r.RecordIDs, "claim_id="+claim) ||
		!slices.Contains(r.RecordIDs, "charge_id="+held) {
		t.Errorf("the work queue's row: %+v", r)
	}
	// The JSON endpoint, which leaves the items out, writes none.
	before := e.pageRows()
	e.json("/api/billing.json", biller, &struct{}{})
	if got := e.pageRows(); got != before {
		t.Errorf("billing.json wrote %d audit rows", got-before)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
