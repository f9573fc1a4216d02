package main

import (
	"context"
	"slices"
	"testing"

	"github.com/trellis-health/trellis/pkg/bus"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
)

// An 835 upload discloses the records of the patients whose claims it pays or denies: the
// response names them (patient_ids), so the audit trail records the upload against each; a
// file posted before names nobody (issue 10).
func TestRemittanceUploadIsAudited(t *testing.T) {
	e := startRemit(t)
	lines := func() []fixtureLine { return []fixtureLine{{Code: "H0015", Date: "2026-03-02", Cents: 15000}} }
	c1 := &fixtureClaim{Control: "AUDIT1", Clinic: clinicA, Patient: bus.NewID(), Lines: lines()}
	c2 := &fixtureClaim{Control: "AUDIT2", Clinic: clinicA, Patient: bus.NewID(), Lines: lines()}
	e.claimFixture(t, 20, c1, c2)
	content := era835("AUDITED",
		eraClaim{Control: c1.Control, Status: "1", Lines: []eraLine{paidLine(c1.Lines[0], eraAdj{"CO", "45", 1000})}},
		eraClaim{Control: c2.Control, Status: "4", Lines: []eraLine{{Code: "H0015", Date: c2.Lines[0].Date,
			LineControl: c2.Lines[0].LineControl, Charged: 15000, Adjs: []eraAdj{{"CO", "197", 15000}}}}},
		eraClaim{Control: "NOSUCHCLAIM", Status: "1", Lines: []eraLine{{Code: "H0015", Date: "2026-03-02", Charged: 100, Paid: 100}}})
	upload := func() []string {
		resp, err := e.client.UploadRemittance(context.Background(), req(e.admin, &billingv1.UploadRemittanceRequest{
			FileName: "audited.835", Content: []byte(content)}))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Msg.GetPatientIds()
	}
	want := []string{c1.Patient, c2.Patient}
	slices.Sort(want)
	if got := upload(); !slices.Equal(got, want) {
		t.Errorf("patient_ids = %v, want the matched claims' patients %v", got, want)
	}
	for _, p := range want {
		if !audited(t, e.Service, p, "admin-1", "/trellis.billing.v1.RemittanceService/UploadRemittance", "change") {
			t.Errorf("no audit row of the upload for patient %s", p)
		}
	}
	if got := upload(); len(got) != 0 {
		t.Errorf("a file posted before names %v", got)
	}
}
