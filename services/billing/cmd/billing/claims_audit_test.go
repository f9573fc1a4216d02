package main

import (
	"context"
	"slices"
	"testing"

	"github.com/trellis-health/trellis/pkg/bus"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
)

// A claim file's download discloses every patient whose claims it holds: the response names
// them (patient_ids), so the audit trail records the download against each of them and a
// compliance officer finds it with GET /audit?patient_id= (issue 10, finding 5).
func TestClaimFileDownloadIsAudited(t *testing.T) {
	e := startClaims(t)
	p1, p2 := bus.NewID(), bus.NewID()
	cov1, cov2 := e.claimable(t, p1, "medicaid-il", true), e.claimable(t, p2, "medicaid-il", true)
	e.readyChargeFixture(t, p1, "medicaid-il", cov1, 10, "")
	e.readyChargeFixture(t, p2, "medicaid-il", cov2, 9, "")
	run := e.run(t, e.admin)
	if len(run.GetFiles()) != 1 {
		t.Fatalf("files = %v, want one", run.GetFiles())
	}
	biller := e.Token(t, "biller-dl", []string{"billing"}, []string{clinicA})
	resp, err := e.claims.DownloadClaimFile(context.Background(), req(biller, &billingv1.DownloadClaimFileRequest{FileId: run.GetFiles()[0].GetFileId()}))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{p1, p2}
	slices.Sort(want)
	if got := resp.Msg.GetPatientIds(); !slices.Equal(got, want) {
		t.Errorf("patient_ids = %v, want %v", got, want)
	}

	for _, p := range want {
		if !audited(t, e.Service, p, "biller-dl", "/trellis.billing.v1.ClaimsService/DownloadClaimFile", "read") {
			t.Errorf("no audit row of the download for patient %s", p)
		}
	}
}
