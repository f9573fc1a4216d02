package rpc

import (
	"fmt"
	"testing"

	"github.com/trellis-health/trellis/pkg/audit"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
)

func TestNamedInFindsIDsAtAnyDepthAndCapsThem(t *testing.T) {
	resp := &intakev1.ListReferralsResponse{}
	for i := range 1500 {
		resp.Referrals = append(resp.Referrals, &intakev1.Referral{ReferralId: fmt.Sprintf("r%d", i), PatientId: fmt.Sprintf("p%d", i),
			GivenName: "Name", PossibleDuplicates: []*intakev1.PossibleDuplicate{{Kind: "referral", Id: fmt.Sprintf("d%d", i)}, {Kind: "other", Id: "x"}}})
	}
	var n named
	namedIn(resp, &n)
	if len(n.patients) != maxIDsPerCall || len(n.referrals) != maxIDsPerCall || n.patients[0] != "p0" || n.referrals[1] != "d0" {
		t.Fatalf("%d patients, %d referrals (%v...)", len(n.patients), len(n.referrals), n.referrals[:2])
	}
	var dup named
	namedIn(&intakev1.Referral{PossibleDuplicates: []*intakev1.PossibleDuplicate{{Kind: "patient", Id: "p9"}}}, &dup)
	if len(dup.patients) != 1 || dup.patients[0] != "p9" || len(dup.referrals) != 0 {
		t.Fatalf("%+v", dup)
	}
	var none named
	namedIn(&intakev1.ListCareLevelsRequest{}, &none)
	namedIn(nil, &none)
	if !none.empty() {
		t.Fatalf("%+v", none)
	}
}

func TestAccessOf(t *testing.T) {
	for proc, want := range map[string]audit.Access{
		"/trellis.intake.v1.IntakeService/ListConsents":        audit.Read,
		"/trellis.intake.v1.IntakeService/GetReferral":         audit.Read,
		"/trellis.billing.v1.ClaimsService/DownloadClaimFile":  audit.Read,
		"/trellis.billing.v1.CostsService/CompareEstimate":     audit.Read,
		"/trellis.intake.v1.IntakeService/AdmitPatient":        audit.Change,
		"/trellis.billing.v1.RemittanceService/WriteOff":       audit.Change,
		"/trellis.scheduling.v1.SchedulingService/SwitchTrack": audit.Change,
	} {
		if got := accessOf(proc); got != want {
			t.Errorf("%s: %s, want %s", proc, got, want)
		}
	}
}
