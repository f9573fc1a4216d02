package main

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/pkg/testkit/authztest"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	"github.com/trellis-health/trellis/services/intake"
	"github.com/trellis-health/trellis/services/intake/demo"
)

// TestAuditTrail runs intake as `intake serve` would: an admission, reads of the patient's
// consents and coverage, and a refused read land in intake's audit_log; GET /audit gives them
// to a compliance officer, refuses an operator, and GET /audit/verify finds the chain whole.
func TestAuditTrail(t *testing.T) {
	spec := intake.Spec(nil)
	var cfg Config
	s := servicetest.Start(t, spec, &cfg, map[string]string{"NATS_STREAM_STORAGE": "memory"})
	if err := spec.Commands["seed-demo"](context.Background(), &service.Platform{Pool: s.Pool, Log: s.Log}, nil); err != nil {
		t.Fatal(err)
	}
	clinic := demo.LakeviewClinicID
	coordinator := s.Token(t, "coordinator-9", []string{"intake_coordinator"}, []string{clinic})
	clinician := s.Token(t, "clinician-4", []string{"clinician"}, []string{clinic})
	biller := s.Token(t, "biller-2", []string{"billing"}, []string{clinic})

	start := time.Now().AddDate(0, 0, 3).Format(time.DateOnly)
	code, body := authztest.Call(t, s.URL, "/trellis.intake.v1.IntakeService/AdmitPatient", coordinator,
		`{"givenName":"Audit","familyName":"Trail","dateOfBirth":"1980-01-02","contactEmail":"audit.trail@example.org",
		"clinicId":"`+clinic+`","programTrack":"adult-evening","startDate":"`+start+`","idempotencyKey":"audit-admit-1"}`)
	if code != "ok" {
		t.Fatalf("admit: %s %s", code, body)
	}
	var adm struct {
		PatientID string `json:"patientId"`
	}
	if err := json.Unmarshal(body, &adm); err != nil || adm.PatientID == "" {
		t.Fatalf("admit: %s %v", body, err)
	}
	patient := `{"patientId":"` + adm.PatientID + `"}`
	for _, c := range []struct{ proc, token, want string }{
		{"ListConsents", clinician, "ok"},
		{"ListCoverage", coordinator, "ok"},
		{"ListConsents", biller, "permission_denied"},
	} {
		if code, body := authztest.Call(t, s.URL, "/trellis.intake.v1.IntakeService/"+c.proc, c.token, patient); code != c.want {
			t.Fatalf("%s: %s %s, want %s", c.proc, code, body, c.want)
		}
	}

	get := func(path, token string, status int, into any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != status {
			t.Fatalf("GET %s: %d, want %d", path, resp.StatusCode, status)
		}
		if into != nil {
			if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
				t.Fatal(err)
			}
		}
	}
	officer := s.Token(t, "officer-1", []string{auth.RoleComplianceOfficer}, []string{auth.AllClinics})
	var page struct {
		Rows []struct {
			Subject, Procedure, Outcome, Access, Service string
			PatientIDs                                   []string `json:"patient_ids"`
		}
	}
	get("/audit?patient_id="+adm.PatientID, officer, http.StatusOK, &page)
	var got []string
	for _, r := range page.Rows {
		if r.Service != "intake" || !slices.Contains(r.PatientIDs, adm.PatientID) {
			t.Errorf("row %+v", r)
		}
		got = append(got, strings.Join([]string{r.Subject, r.Procedure[strings.LastIndexByte(r.Procedure, '/')+1:], r.Access, r.Outcome}, " "))
	}
	want := []string{
		"coordinator-9 AdmitPatient change ok",
		"clinician-4 ListConsents read ok",
		"coordinator-9 ListCoverage read ok",
		"biller-2 ListConsents read permission_denied",
		"officer-1 audit read ok", // "GET /audit": this query
	}
	if !slices.Equal(got, want) {
		t.Fatalf("audit rows\n%q\nwant\n%q", got, want)
	}
	// Before admission the person is a referral: asked about by referral_id.
	code, body = authztest.Call(t, s.URL, "/trellis.intake.v1.IntakeService/CreateReferral", coordinator, `{"clinicId":"`+clinic+`",
		"source":"REFERRAL_SOURCE_SELF","givenName":"Audit","familyName":"Lindqvist","email":"audit.referral@example.org","idempotencyKey":"audit-referral-1"}`)
	if code != "ok" {
		t.Fatalf("create referral: %s %s", code, body)
	}
	var ref struct {
		Referral struct {
			ReferralID string `json:"referralId"`
		} `json:"referral"`
	}
	if err := json.Unmarshal(body, &ref); err != nil || ref.Referral.ReferralID == "" {
		t.Fatalf("create referral: %s %v", body, err)
	}
	if code, body := authztest.Call(t, s.URL, "/trellis.intake.v1.IntakeService/GetReferral", clinician, `{"referralId":"`+ref.Referral.ReferralID+`"}`); code != "ok" {
		t.Fatalf("get referral: %s %s", code, body)
	}
	page.Rows = nil
	get("/audit?referral_id="+ref.Referral.ReferralID, officer, http.StatusOK, &page)
	got = nil
	for _, r := range page.Rows {
		got = append(got, r.Subject+" "+r.Procedure[strings.LastIndexByte(r.Procedure, '/')+1:]+" "+r.Outcome)
	}
	if want := []string{"coordinator-9 CreateReferral ok", "clinician-4 GetReferral ok", "officer-1 audit ok"}; !slices.Equal(got, want) {
		t.Fatalf("referral rows %q, want %q", got, want)
	}

	operator := s.Token(t, "operator-1", []string{"operator"}, []string{auth.AllClinics})
	get("/audit?patient_id="+adm.PatientID, operator, http.StatusForbidden, nil)
	var v struct {
		OK   bool  `json:"ok"`
		Rows int64 `json:"rows"`
	}
	get("/audit/verify", officer, http.StatusOK, &v)
	if !v.OK || v.Rows < int64(len(want)+4) {
		t.Fatalf("verify %+v", v)
	}
	// Nothing but ids: the admitted person's name and email are in no row.
	var leaks int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log
		WHERE row_to_json(audit_log)::text ILIKE '%Trail%' OR row_to_json(audit_log)::text ILIKE '%Lindqvist%' OR row_to_json(audit_log)::text ILIKE '%example.org%'`).Scan(&leaks); err != nil || leaks != 0 {
		t.Fatalf("%d rows hold PHI, err %v", leaks, err)
	}
}
