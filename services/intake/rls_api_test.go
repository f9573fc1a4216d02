package intake_test

import (
	"context"
	"testing"

	"connectrpc.com/connect"

	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/services/intake/demo"
)

// Through the API, with row-level security on (migration 00008): a Riverside token guessing
// a Lakeview referral's id gets not_found, a listing of every clinic it sees holds none of
// Lakeview's referrals, and the Lakeview referral is untouched. (That the database, not only
// the app's check, withholds the row is TestRowLevelSecurityStopsGuessedIDs in
// internal/adapters/postgres, which calls the repository with a Riverside scope directly.)
func TestRowLevelSecurityGuessedReferralID(t *testing.T) {
	e := start(t)
	tok := e.rfTokens(t)
	ctx := context.Background()
	m := rfPerson("rls-guess-l", 61)
	m.ClinicId = demo.LakeviewClinicID
	lake := e.rfCreate(t, tok.lakeview, m)
	e.rfCreate(t, tok.coordinator, rfPerson("rls-guess-r", 62))

	_, err := e.rfGet(tok.coordinator, lake.GetReferralId())
	rfCode(t, err, connect.CodeNotFound)
	_, err = e.client.ChangeReferralStatus(ctx, rfReq(tok.coordinator, &intakev1.ChangeReferralStatusRequest{
		ReferralId: lake.GetReferralId(), Status: intakev1.ReferralStatus_REFERRAL_STATUS_CONTACTED}))
	rfCode(t, err, connect.CodeNotFound)

	list, err := e.client.ListReferrals(ctx, rfReq(tok.coordinator, &intakev1.ListReferralsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Msg.GetReferrals()) == 0 {
		t.Fatal("the Riverside caller lists no referral: the probe would prove nothing")
	}
	for _, r := range list.Msg.GetReferrals() {
		if r.GetClinicId() != demo.RiversideClinicID {
			t.Errorf("a Riverside-only caller listed referral %s of clinic %s", r.GetReferralId(), r.GetClinicId())
		}
	}
	got, err := e.rfGet(tok.lakeview, lake.GetReferralId())
	if err != nil {
		t.Fatal(err)
	}
	if got.GetStatus() != intakev1.ReferralStatus_REFERRAL_STATUS_NEW {
		t.Errorf("the Lakeview referral is %v after the guesses, want new", got.GetStatus())
	}
}
