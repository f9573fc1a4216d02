package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/testkit"
	"github.com/trellis-health/trellis/pkg/testkit/authztest"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
)

// authzMatrix is billing's part of the role x RPC matrix (docs/security.md).
func authzMatrix() authztest.Matrix {
	return authztest.Matrix{Service: "billing", Policy: policy(), APIs: []string{
		"trellis.billing.v1.BillingService", "trellis.billing.v1.ChargesService", "trellis.billing.v1.ClaimsService",
		"trellis.billing.v1.RemittanceService", "trellis.billing.v1.CostsService"}}
}

// TestAuthzMatrix: every billing RPC has a policy entry, the policy names only RPCs and known
// roles, and docs/security.md shows it.
func TestAuthzMatrix(t *testing.T) {
	authztest.CheckPolicy(t, authzMatrix())
	authztest.CheckDoc(t, authzMatrix())
}

// TestAuthzEveryRoleEveryRPC calls every billing RPC with a token of every role, then asks
// about clinic B's data with a token for clinic A only.
func TestAuthzEveryRoleEveryRPC(t *testing.T) {
	e := start(t)
	m := authzMatrix()
	token := func(roles, clinics []string) string { return e.Token(t, "authz-user", roles, clinics) }
	n := authztest.EveryRoleEveryRPC(t, e.URL, m, token)
	t.Logf("%d calls", n)

	// Clinic B's data: a patient enrolled there (an account), a payer and a contract.
	patient := bus.NewID()
	env := envelope(t, enrolled(patient, clinicB), clinicB)
	e.Publish(t, subjectEnrolled, env.GetEventId(), env, "")
	testkit.Eventually(t, 10*time.Second, "the account at clinic B", func() bool {
		return e.Count(t, "SELECT count(*) FROM accounts WHERE patient_id = $1", patient) == 1
	})
	payer, _ := protojson.Marshal(&billingv1.UpsertPayerRequest{Payer: medicaid()})
	if code, body := authztest.Call(t, e.URL, "/trellis.billing.v1.BillingService/UpsertPayer", token([]string{"admin"}, []string{"*"}), string(payer)); code != "ok" {
		t.Fatalf("upsert payer: %s %s", code, body)
	}
	contract, _ := protojson.Marshal(&billingv1.UpsertContractRequest{Contract: perDiemContract(clinicB)})
	b := `"` + clinicB + `"`
	p := `"` + patient + `"`
	cases := []authztest.Case{
		{Procedure: "/trellis.billing.v1.BillingService/UpsertContract", Request: string(contract)},
		{Procedure: "/trellis.billing.v1.BillingService/GetAccount", Request: `{"patientId":` + p + `}`},
		{Procedure: "/trellis.billing.v1.BillingService/ListContracts", Request: `{"clinicId":` + b + `}`},
		{Procedure: "/trellis.billing.v1.ChargesService/ListAuthorizations", Request: `{"clinicId":` + b + `}`},
		{Procedure: "/trellis.billing.v1.ChargesService/ListCharges", Request: `{"clinicId":` + b + `}`},
		{Procedure: "/trellis.billing.v1.ClaimsService/SetPatientDiagnoses", Request: `{"clinicId":` + b + `,"patientId":` + p + `,"codes":["F1020"]}`},
		{Procedure: "/trellis.billing.v1.ClaimsService/GetBillingProvider", Request: `{"clinicId":` + b + `}`, NotOK: true},
		{Procedure: "/trellis.billing.v1.ClaimsService/CreateClaimFiles", Request: `{"clinicId":` + b + `}`, NotOK: true}, // B has no billing provider: failed_precondition
		{Procedure: "/trellis.billing.v1.ClaimsService/ListClaimFiles", Request: `{"clinicId":` + b + `}`},
		{Procedure: "/trellis.billing.v1.ClaimsService/ListClaims", Request: `{"clinicId":` + b + `}`},
		{Procedure: "/trellis.billing.v1.ClaimsService/ListDisclosures", Request: `{"clinicId":` + b + `,"patientId":` + p + `}`},
		{Procedure: "/trellis.billing.v1.CostsService/SetCostRate", Request: `{"clinicId":` + b + `,"hourlyCostCents":6000}`},
		{Procedure: "/trellis.billing.v1.CostsService/SetFixedCost", Request: `{"clinicId":` + b + `,"month":"2026-03","label":"rent","amountCents":100000}`},
		{Procedure: "/trellis.billing.v1.CostsService/GetCostReport", Request: `{"clinicId":` + b + `,"from":"2026-03-01","to":"2026-03-31","groupBy":"COST_GROUP_BY_CLINIC"}`},
		{Procedure: "/trellis.billing.v1.CostsService/GetCostReport", Request: `{"from":"2026-03-01","to":"2026-03-31","groupBy":"COST_GROUP_BY_CLINIC"}`, Unscoped: true},
		{Procedure: "/trellis.billing.v1.CostsService/EstimatePatientCost", Request: `{"clinicId":` + b + `,"payerId":"medicaid-il","startDate":"2026-03-02","programWeeks":4,"daysPerWeek":3,"minutesPerDay":180}`},
		{Procedure: "/trellis.billing.v1.RemittanceService/GetPatientBalance", Request: `{"clinicId":` + b + `,"patientId":` + p + `}`},
		{Procedure: "/trellis.billing.v1.RemittanceService/GetReceivablesAging", Request: `{"clinicId":` + b + `}`},
		{Procedure: "/trellis.billing.v1.RemittanceService/ListWorkItems", Request: `{"queue":"denial","clinicId":` + b + `}`},
		{Procedure: "/trellis.billing.v1.RemittanceService/ListWriteOffs", Request: `{"clinicId":` + b + `}`},
		// Lists over every clinic the caller sees (clinic B has nothing in them here: these check
		// only that clinic A's answer holds nothing of B's).
		{Procedure: "/trellis.billing.v1.RemittanceService/GetReceivablesAging", Request: `{}`, Unscoped: true, NotOK: true},
		{Procedure: "/trellis.billing.v1.RemittanceService/ListWorkItems", Request: `{"queue":"holds"}`, Unscoped: true, NotOK: true},
		{Procedure: "/trellis.billing.v1.RemittanceService/ListWriteOffs", Request: `{}`, Unscoped: true, NotOK: true},
	}
	authztest.OtherClinic(t, e.URL, m, token, clinicA, clinicB, cases, nil)
}

// TestUploadIsRateLimited: 835 uploads are limited per caller (BILLING_UPLOAD_RATE_PER_MINUTE,
// BILLING_UPLOAD_BURST): past the burst the answer is resource_exhausted (HTTP 429) with
// Retry-After; another caller, and the caller's other calls, are not affected.
func TestUploadIsRateLimited(t *testing.T) {
	var cfg Config
	e := servicetest.Start(t, spec(&cfg), &cfg, map[string]string{"BILLING_UPLOAD_RATE_PER_MINUTE": "1", "BILLING_UPLOAD_BURST": "2"})
	upload := func(subject string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.URL+"/trellis.billing.v1.RemittanceService/UploadRemittance",
			strings.NewReader(`{"fileName":"x.835","content":"SVNBKm5vdCBhbiA4MzV+"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+e.Token(t, subject, []string{"billing"}, []string{"*"}))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After"), b.String()
	}
	for i := range 2 {
		if code, _, body := upload("clerk-1"); code == http.StatusTooManyRequests {
			t.Fatalf("upload %d of the burst: 429 %s", i+1, body)
		}
	}
	code, retry, body := upload("clerk-1")
	if code != http.StatusTooManyRequests || retry == "" || !strings.Contains(body, "resource_exhausted") {
		t.Fatalf("third upload in a minute: %d, Retry-After %q, %s; want 429 resource_exhausted with Retry-After", code, retry, body)
	}
	if code, _, body := upload("clerk-2"); code == http.StatusTooManyRequests {
		t.Fatalf("another caller: 429 %s", body)
	}
	if code, _ := authztest.Call(t, e.URL, "/trellis.billing.v1.RemittanceService/ListRemittances",
		e.Token(t, "clerk-1", []string{"billing"}, []string{"*"}), "{}"); code != "ok" {
		t.Fatalf("the limited caller's other calls: %s, want ok", code)
	}
}
