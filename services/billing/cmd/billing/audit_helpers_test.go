package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
)

// auditRow is a row of GET /audit, as much of it as these tests read.
type auditRow struct {
	Subject, Procedure, Outcome, Access string
	PatientIDs                          []string `json:"patient_ids"`
}

// audited reports whether billing's audit trail, read by a compliance officer with GET
// /audit?patient_id=, holds an ok row of procedure by subject (access "read" or "change")
// naming patient.
func audited(t *testing.T, s *servicetest.Service, patient, subject, procedure, access string) bool {
	t.Helper()
	officer := s.Token(t, "officer-"+subject, []string{auth.RoleComplianceOfficer}, []string{auth.AllClinics})
	hreq, _ := http.NewRequest(http.MethodGet, s.URL+"/audit?patient_id="+patient, nil)
	hreq.Header.Set("Authorization", "Bearer "+officer)
	hresp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	defer hresp.Body.Close()
	var page struct{ Rows []auditRow }
	if err := json.NewDecoder(hresp.Body).Decode(&page); err != nil || hresp.StatusCode != http.StatusOK {
		t.Fatalf("GET /audit: %d %v", hresp.StatusCode, err)
	}
	return slices.ContainsFunc(page.Rows, func(r auditRow) bool {
		return r.Subject == subject && r.Procedure == procedure && r.Access == access && r.Outcome == "ok" &&
			slices.Contains(r.PatientIDs, patient)
	})
}
