package intake_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/services/intake/demo"
)

// A call naming a record checks that the caller may see it before it claims (or replays) its
// idempotency key, in every creating call: an unknown or hidden record is not_found whatever
// the key, and a replay never hands a record to a caller who can no longer see it.

func TestAccessCheckedBeforeTheKey(t *testing.T) {
	e := start(t)
	t.Run("admission from a hidden referral", func(t *testing.T) { testAdmitFromHiddenReferral(t, e) })
	t.Run("discharge replayed to a caller who lost access", func(t *testing.T) { testDischargeReplayNeedsAccess(t, e) })
	t.Run("referral replayed with fewer clinics", func(t *testing.T) { testCreateReferralReplayDuplicates(t, e) })
}

func testAdmitFromHiddenReferral(t *testing.T, e *env) {
	tok := e.rfTokens(t)
	lakeM := rfPerson("hidden-ref-l", 51)
	lakeM.ClinicId = demo.LakeviewClinicID
	lake := e.rfCreate(t, tok.network, lakeM)
	// The key is taken by a direct admission.
	if _, err := e.admit(tok.coordinator, validRequest("hidden-ref-key-1")); err != nil {
		t.Fatal(err)
	}
	rows, episodes := e.rfRows(t), e.Count(t, "SELECT count(*) FROM episodes")
	for _, id := range []string{lake.GetReferralId(), "0190a000-0000-7000-8000-00000000beef"} {
		m := validRequest("hidden-ref-key-1")
		m.ReferralId = id
		_, err := e.admit(tok.coordinator, m)
		rfCode(t, err, connect.CodeNotFound) // not failed_precondition (the key's other request)
	}
	if got := e.rfRows(t); got != rows {
		t.Errorf("rows = %v, want %v", got, rows)
	}
	if n := e.Count(t, "SELECT count(*) FROM episodes"); n != episodes {
		t.Errorf("%d episodes, want %d", n, episodes)
	}
}

func testDischargeReplayNeedsAccess(t *testing.T, e *env) {
	episodeID, _, _ := admitForDischarge(t, e, "replay-access-admit")
	date := riversideToday(t).Format(time.DateOnly)
	riverside := e.Token(t, "clinician-7", []string{"clinician"}, []string{demo.RiversideClinicID})
	first, err := dischargeCall(e, riverside, dischargeRequest(episodeID, date, "replay-access-0001"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := dischargeCall(e, riverside, dischargeRequest(episodeID, date, "replay-access-0001"))
	if err != nil || !again.Msg.GetReplayed() || again.Msg.GetEpisode().GetEpisodeId() != first.Msg.GetEpisode().GetEpisodeId() {
		t.Fatalf("replay = %v, %v", again, err)
	}
	before := episodeState(t, e, episodeID)

	// The same caller (token subject), now at Lakeview only: the episode is not found, and
	// the stored response (the episode) is not replayed to them.
	moved := e.Token(t, "clinician-7", []string{"clinician"}, []string{demo.LakeviewClinicID})
	_, err = dischargeCall(e, moved, dischargeRequest(episodeID, date, "replay-access-0001"))
	rfCode(t, err, connect.CodeNotFound)
	// An episode that does not exist, with a key already used for another request.
	_, err = dischargeCall(e, riverside, dischargeRequest("0190a000-0000-7000-8000-00000000beef", date, "replay-access-0001"))
	rfCode(t, err, connect.CodeNotFound)
	if got := episodeState(t, e, episodeID); got != before {
		t.Errorf("state = %s, want %s", got, before)
	}
}

func testCreateReferralReplayDuplicates(t *testing.T, e *env) {
	tok := e.rfTokens(t)
	ctx := context.Background()
	lakeM := rfPerson("replay-dups-l", 52)
	lakeM.ClinicId = demo.LakeviewClinicID
	lake := e.rfCreate(t, tok.network, lakeM)
	// The same person at Riverside, created by a caller who sees every clinic: the Lakeview
	// referral is shown.
	m := rfPerson("replay-dups-r", 52)
	first, err := e.client.CreateReferral(ctx, rfReq(tok.network, m))
	if err != nil {
		t.Fatal(err)
	}
	if d := first.Msg.GetReferral().GetPossibleDuplicates(); len(d) != 1 || d[0].GetId() != lake.GetReferralId() {
		t.Fatalf("possible duplicates = %v, want the Lakeview referral", d)
	}
	// The same caller replays the call with a token naming Riverside only.
	narrow := e.Token(t, "coordinator-network", []string{"intake_coordinator"}, []string{demo.RiversideClinicID})
	again, err := e.client.CreateReferral(ctx, rfReq(narrow, rfPerson("replay-dups-r", 52)))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Msg.GetReplayed() || again.Msg.GetReferral().GetReferralId() != first.Msg.GetReferral().GetReferralId() {
		t.Fatalf("replay = %v", again.Msg)
	}
	if d := again.Msg.GetReferral().GetPossibleDuplicates(); len(d) != 0 {
		t.Errorf("the replay showed a Lakeview record to a Riverside-only caller: %v", d)
	}
	// With every clinic again, the replay shows it again.
	wide := e.Token(t, "coordinator-network", []string{"intake_coordinator"}, []string{auth.AllClinics})
	third, err := e.client.CreateReferral(ctx, rfReq(wide, rfPerson("replay-dups-r", 52)))
	if err != nil {
		t.Fatal(err)
	}
	if d := third.Msg.GetReferral().GetPossibleDuplicates(); !third.Msg.GetReplayed() || len(d) != 1 || d[0].GetId() != lake.GetReferralId() {
		t.Errorf("replay with every clinic = %v", third.Msg)
	}
}
