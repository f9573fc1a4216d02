package intake_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
)

// Concurrent calls on one referral: each decision is taken once, whatever the timing.

// race runs the calls at once and returns their errors, in order.
func race(calls ...func() error) []error {
	errs := make([]error, len(calls))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Go(func() {
			<-start
			errs[i] = call()
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// oneWinner fails unless exactly one of errs is nil and every other is failed_precondition;
// it returns the winner's index.
func oneWinner(t *testing.T, errs []error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("calls %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case connect.CodeOf(err) != connect.CodeFailedPrecondition:
			t.Fatalf("call %d: %v, want failed_precondition", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no call succeeded: %v", errs)
	}
	return winner
}

// history counts the referral's status history rows moving it to status.
func (e *env) history(t *testing.T, referralID, status string) int {
	return e.Count(t, "SELECT count(*) FROM referral_status_history WHERE referral_id = $1 AND to_status = $2", referralID, status)
}

// outboxCount counts the outbox rows on subject.
func (e *env) outboxCount(t *testing.T, subject string) int {
	return e.Count(t, "SELECT count(*) FROM outbox WHERE subject = $1", subject)
}

func TestConcurrentCalls(t *testing.T) {
	e := start(t)
	t.Run("admissions of one referral", func(t *testing.T) { testConcurrentAdmissions(t, e) })
	t.Run("assessments of one referral", func(t *testing.T) { testConcurrentAssessments(t, e) })
	t.Run("admission and refer-out of one referral", func(t *testing.T) { testConcurrentAdmissionAndReferOut(t, e) })
	t.Run("referrals of one person", func(t *testing.T) { testConcurrentReferralsOfOnePerson(t, e) })
}

func testConcurrentAdmissions(t *testing.T, e *env) {
	tok := e.rfTokens(t)
	r, _ := e.rfAssessed(t, tok.coordinator, 61, rfAssessment("", "race-admit-assess"))
	statusEvents, admittedEvents := e.outboxCount(t, rfSubjectStatusChanged), e.outboxCount(t, rfSubjectAdmitted)
	const n = 6
	calls := make([]func() error, n)
	for i := range calls {
		calls[i] = func() error {
			m := validRequest(fmt.Sprintf("race-admit-%04d", i))
			m.ReferralId = r.GetReferralId()
			_, err := e.admit(tok.coordinator, m)
			return err
		}
	}
	oneWinner(t, race(calls...))
	if n := e.Count(t, "SELECT count(*) FROM episodes WHERE referral_id = $1", r.GetReferralId()); n != 1 {
		t.Errorf("%d episodes, want 1", n)
	}
	if n := e.Count(t, "SELECT count(*) FROM patients WHERE phone_hash = $1", phoneHash(t, r.GetPhone())); n != 1 { // the referral's phone
		t.Errorf("%d patients, want 1", n)
	}
	if n := e.history(t, r.GetReferralId(), "admitted"); n != 1 {
		t.Errorf("%d moves to admitted, want 1", n)
	}
	if got := e.outboxCount(t, rfSubjectStatusChanged) - statusEvents; got != 1 {
		t.Errorf("%d ReferralStatusChanged, want 1", got)
	}
	if got := e.outboxCount(t, rfSubjectAdmitted) - admittedEvents; got != 1 {
		t.Errorf("%d PatientAdmitted, want 1", got)
	}
	if got := e.Count(t, "SELECT count(*) FROM idempotency_keys WHERE key LIKE 'race-admit-0%'"); got != 1 {
		t.Errorf("%d admission keys kept, want 1 (a failed call leaves none)", got)
	}
}

func testConcurrentAssessments(t *testing.T, e *env) {
	tok := e.rfTokens(t)
	r := e.rfScreened(t, tok.coordinator, rfPerson("race-assess-ref", 62))
	statusEvents, assessedEvents := e.outboxCount(t, rfSubjectStatusChanged), e.outboxCount(t, rfSubjectAssessed)
	assess := func(key string) func() error {
		return func() error { _, err := e.rfAssess(tok.clinician, rfAssessment(r.GetReferralId(), key)); return err }
	}
	oneWinner(t, race(assess("race-assess-0001"), assess("race-assess-0002")))
	if n := e.Count(t, "SELECT count(*) FROM assessments WHERE referral_id = $1", r.GetReferralId()); n != 1 {
		t.Errorf("%d assessments, want 1", n)
	}
	if n := e.history(t, r.GetReferralId(), "assessed"); n != 1 {
		t.Errorf("%d moves to assessed, want 1", n)
	}
	if got := e.outboxCount(t, rfSubjectStatusChanged) - statusEvents; got != 1 {
		t.Errorf("%d ReferralStatusChanged, want 1", got)
	}
	if got := e.outboxCount(t, rfSubjectAssessed) - assessedEvents; got != 1 {
		t.Errorf("%d AssessmentRecorded, want 1", got)
	}
}

func testConcurrentAdmissionAndReferOut(t *testing.T, e *env) {
	tok := e.rfTokens(t)
	for round := range 4 {
		r, _ := e.rfAssessed(t, tok.coordinator, 70+round, rfAssessment("", fmt.Sprintf("race-decide-assess-%d", round)))
		statusEvents := e.outboxCount(t, rfSubjectStatusChanged)
		admitted, referred := e.outboxCount(t, rfSubjectAdmitted), e.outboxCount(t, rfSubjectReferredOut)
		admit := func() error {
			m := validRequest(fmt.Sprintf("race-decide-admit-%d", round))
			m.ReferralId = r.GetReferralId()
			_, err := e.admit(tok.coordinator, m)
			return err
		}
		referOut := func() error {
			_, err := e.rfReferOut(tok.coordinator, &intakev1.ReferOutRequest{ReferralId: r.GetReferralId(), Level: "2.5",
				Destination: "Lakeshore PHP", Reason: "needs more structure", IdempotencyKey: fmt.Sprintf("race-decide-out-%d", round)})
			return err
		}
		calls := []func() error{admit, referOut}
		if round%2 == 1 {
			calls = []func() error{referOut, admit}
		}
		winner := oneWinner(t, race(calls...))
		wantStatus, wantAdmitted, wantReferred := "referred_out", 0, 1
		if (winner == 0) == (round%2 == 0) {
			wantStatus, wantAdmitted, wantReferred = "admitted", 1, 0
		}
		got, err := e.rfGet(tok.coordinator, r.GetReferralId())
		if err != nil {
			t.Fatal(err)
		}
		if st := statusName[got.GetStatus()]; st != wantStatus {
			t.Errorf("round %d: status %s, want %s (the winner's)", round, st, wantStatus)
		}
		if n := e.Count(t, "SELECT count(*) FROM episodes WHERE referral_id = $1", r.GetReferralId()); n != wantAdmitted {
			t.Errorf("round %d: %d episodes, want %d", round, n, wantAdmitted)
		}
		var level *string
		if err := e.Pool.QueryRow(context.Background(), `SELECT referred_out_level FROM referrals WHERE id = $1`, r.GetReferralId()).Scan(&level); err != nil {
			t.Fatal(err)
		}
		if (level != nil) != (wantReferred == 1) {
			t.Errorf("round %d: referred_out_level %v", round, level)
		}
		if n := e.history(t, r.GetReferralId(), "admitted") + e.history(t, r.GetReferralId(), "referred_out"); n != 1 {
			t.Errorf("round %d: %d decisions in the history, want 1", round, n)
		}
		if got := e.outboxCount(t, rfSubjectStatusChanged) - statusEvents; got != 1 {
			t.Errorf("round %d: %d ReferralStatusChanged, want 1", round, got)
		}
		if a, o := e.outboxCount(t, rfSubjectAdmitted)-admitted, e.outboxCount(t, rfSubjectReferredOut)-referred; a != wantAdmitted || o != wantReferred {
			t.Errorf("round %d: %d PatientAdmitted and %d PatientReferredOut, want %d and %d", round, a, o, wantAdmitted, wantReferred)
		}
	}
}

var statusName = map[intakev1.ReferralStatus]string{
	intakev1.ReferralStatus_REFERRAL_STATUS_ADMITTED:     "admitted",
	intakev1.ReferralStatus_REFERRAL_STATUS_REFERRED_OUT: "referred_out",
	intakev1.ReferralStatus_REFERRAL_STATUS_ASSESSED:     "assessed",
}

// Referrals of one person created at the same time are all flagged against each other: each
// pair is stored once, on the later one.
func testConcurrentReferralsOfOnePerson(t *testing.T, e *env) {
	tok := e.rfTokens(t)
	const n = 8
	calls := make([]func() error, n)
	for i := range calls {
		calls[i] = func() error {
			m := rfPerson(fmt.Sprintf("race-dup-%04d", i), 90)
			m.Email = "Race.Dup@Example.org"
			_, err := e.client.CreateReferral(context.Background(), rfReq(tok.coordinator, m))
			return err
		}
	}
	for i, err := range race(calls...) {
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
	}
	emailHash, err := fieldcrypt.Dev().Hash(fieldcrypt.KindEmail, "Race.Dup@Example.org")
	if err != nil {
		t.Fatal(err)
	}
	pairs := `FROM referral_duplicates d JOIN referrals r ON r.id = d.referral_id WHERE r.email_hash = '\x` + hex.EncodeToString(emailHash) + `'`
	if got, want := e.Count(t, "SELECT count(*) "+pairs), n*(n-1)/2; got != want {
		t.Errorf("%d pairs flagged, want %d (every pair once)", got, want)
	}
	if got := e.Count(t, "SELECT count(*) "+pairs+" AND d.matched_on = ARRAY['phone', 'email']"); got != n*(n-1)/2 {
		t.Errorf("%d pairs matched on phone and email, want all", got)
	}
	// Every referral but the first lists all the earlier ones.
	rows, err := e.Pool.Query(context.Background(), "SELECT count(*) "+pairs+" GROUP BY d.referral_id ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	var counts []int
	for rows.Next() {
		var c int
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		counts = append(counts, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for i, c := range counts {
		if c != i+1 {
			t.Errorf("referrals flag %v earlier ones, want 1 to %d", counts, n-1)
			break
		}
	}
}
