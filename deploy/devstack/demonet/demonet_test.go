package demonet_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/deploy/devstack/demonet"
	"github.com/trellis-health/trellis/deploy/devstack/stack"
	"github.com/trellis-health/trellis/deploy/devstack/stack/stacktest"
	"github.com/trellis-health/trellis/pkg/auth"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/intake/v1/intakev1connect"
)

func TestPlanIsDeterministic(t *testing.T) {
	for _, spec := range []demonet.Spec{demonet.Small(), demonet.Default()} {
		a, err := demonet.NewPlan(spec)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := demonet.NewPlan(spec)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("two plans of the same spec differ")
		}
		other := spec
		other.Seed++
		c, _ := demonet.NewPlan(other)
		if reflect.DeepEqual(a.People, c.People) {
			t.Fatalf("another seed gave the same people")
		}
		p, q := a.People[0], b.People[0]
		if p.Attendance(spec.Seed, "2026-03-02", 3, 180) != q.Attendance(spec.Seed, "2026-03-02", 3, 180) {
			t.Fatal("attendance outcome is not deterministic")
		}
	}
}

func TestDefaultPlanShape(t *testing.T) {
	big := demonet.Default()
	big.Weeks, big.PatientsPerClinic = 12, 300
	if p, err := demonet.NewPlan(big); err != nil {
		t.Fatal(err)
	} else {
		for _, per := range p.People {
			if per.StartAgo > 89 || per.FirstContactAgo > 89 || per.FirstContactAgo < per.StartAgo {
				t.Fatalf("12 weeks: %s starts %d days ago, first contact %d days ago (intake takes 90 at most)", per.Key, per.StartAgo, per.FirstContactAgo)
			}
		}
	}
	p, err := demonet.NewPlan(demonet.Default())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.People) != 150 || len(p.Clinics) != 5 {
		t.Fatalf("people %d clinics %d", len(p.People), len(p.Clinics))
	}
	// 5 clinics in 2 time zones; day and evening tracks in each.
	perZone, dayEvening := map[string]int{}, map[string]map[string]bool{}
	for _, c := range p.Clinics {
		perZone[c.TimeZone]++
		dayEvening[c.ID] = map[string]bool{}
	}
	if len(perZone) != 2 || perZone["America/Chicago"] != 3 || perZone["America/Los_Angeles"] != 2 {
		t.Errorf("clinics per zone = %v", perZone)
	}
	n := p.Count()
	for _, st := range demonet.Stages {
		if n[st] == 0 {
			t.Errorf("nobody at stage %s: %v", st, n)
		}
	}
	payers, tracks, zones, waiting := map[string]int{}, map[string]int{}, map[string]bool{}, 0
	emails := map[string]bool{}
	for _, per := range p.People {
		if emails[per.Email] {
			t.Errorf("email %s twice", per.Email)
		}
		emails[per.Email] = true
		zones[p.Clinics[per.ClinicIndex].TimeZone] = true
		if !per.Stage.Admitted() {
			continue
		}
		dayEvening[p.Clinics[per.ClinicIndex].ID][per.Track] = true
		payers[per.Payer]++
		tracks[per.Track]++
		if per.StartAgo < 0 {
			waiting++
		}
		if per.StartAgo > 89 || per.FirstContactAgo > 89 || per.FirstContactAgo < per.StartAgo ||
			(per.Stage != demonet.StageActive && per.DischargeAgo > per.StartAgo) {
			t.Errorf("%s: start %d days ago, discharge %d days ago", per.Key, per.StartAgo, per.DischargeAgo)
		}
	}
	if len(payers) != 4 || len(tracks) != 3 || len(zones) < 2 || waiting == 0 {
		t.Errorf("payers %v tracks %v zones %v waiting %d", payers, tracks, zones, waiting)
	}
	for id, tracks := range dayEvening {
		if !tracks[demonet.TrackDay] || !tracks[demonet.TrackEvening] {
			t.Errorf("clinic %s: admitted to tracks %v, want day and evening", id, tracks)
		}
	}
	if err := (demonet.Spec{Clinics: demonet.MaxClinics + 1}).Validate(); err == nil || !strings.Contains(err.Error(), "Clinics") {
		t.Errorf("%d clinics: %v", demonet.MaxClinics+1, err)
	}
	// Every clinic, named or numbered, has its own id, number and fixed contract ids.
	ids, contracts := map[string]bool{}, map[string]bool{}
	for _, c := range demonet.Clinics(demonet.MaxClinics) {
		if ids[c.ID] || c.Number < 1 || (c.TimeZone != "America/Chicago" && c.TimeZone != "America/Los_Angeles" && !c.Seeded) {
			t.Fatalf("clinic %+v", c)
		}
		ids[c.ID] = true
		for pi := range demonet.Payers {
			id := demonet.ContractID(c.Number, pi)
			if contracts[id] || len(id) != 36 {
				t.Fatalf("contract id %q of clinic %d", id, c.Number)
			}
			contracts[id] = true
		}
	}
	if err := (demonet.Spec{Weeks: 20}).Validate(); err == nil || !strings.Contains(err.Error(), "Weeks") {
		t.Errorf("20 weeks: %v", err)
	}
}

// TestWrite835Balances checks the writer's arithmetic: BPR = sum of CLP04, CLP05 = PR, and
// SE counts its segments (billing's reader checks the same in TestGenerateSmall).
func TestWrite835Balances(t *testing.T) {
	r := demonet.Remittance{PayerName: "Summit Health", PayerX12ID: "SUMM1", PayeeName: "Riverside", PayeeNPI: "1990000014",
		Control: 42, Trace: "T42", Date: time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC),
		Claims: []demonet.RemitClaim{{Control: "T0000000000000000001", Status: "1", FilingIndicator: "12", PayerClaimNumber: "P1",
			FacilityCode: "11", PatientFamily: "Doe", PatientGiven: "Alex", MemberID: "SH1",
			Lines: []demonet.RemitLine{
				{Procedure: "90853", Units: 1, Date: "2026-03-02", LineControl: "T1-1", Charged: 9000, Paid: 5200,
					Adjustments: []demonet.Adjustment{{Group: "CO", Reason: "45", Cents: 1800}, {Group: "PR", Reason: "3", Cents: 2000}}},
				{Procedure: "90853", Units: 1, Date: "2026-03-04", LineControl: "T1-2", Charged: 9000,
					Adjustments: []demonet.Adjustment{{Group: "CO", Reason: "50", Cents: 9000}}},
			}}}}
	out := string(demonet.Write835(r))
	for _, want := range []string{"BPR*I*52.00*C*", "CLP*T0000000000000000001*1*180.00*52.00*20.00*12*P1*11*1", "CAS*CO*45*18.00",
		"CAS*PR*3*20.00", "CAS*CO*50*90.00", "REF*6R*T1-2", "GE*1*42", "IEA*1*000000042"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	segs := strings.Split(strings.TrimSpace(out), "~\n")
	st, se := -1, -1
	for i, s := range segs {
		if strings.HasPrefix(s, "ST*") {
			st = i
		}
		if strings.HasPrefix(s, "SE*") {
			se = i
		}
	}
	if want := fmt.Sprintf("SE*%d*0001", se-st+1); segs[se] != want {
		t.Errorf("SE %q, want %q", segs[se], want)
	}
	if isa := segs[0]; len(isa) != 105 {
		t.Errorf("ISA is %d characters, want 105: %q", len(isa), isa)
	}
}

// TestGenerateSmall brings the whole network up and generates Small through the APIs, then
// checks the report against what the services answer, and that a second run duplicates
// nothing.
func TestGenerateSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("brings the whole stack up")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := startStack(ctx, t)
	tok, err := s.Token("demonet-test", []string{"admin"}, []string{auth.AllClinics}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	target := demonet.Target{IntakeURL: s.URL("intake"), SchedulingURL: s.URL("scheduling"), BillingURL: s.URL("billing"), Token: tok, Logf: t.Logf}
	// On a busy machine billing's consumers may pause: the test waits for every charge.
	demonet.Settle = demonet.Wait
	spec := demonet.Small()
	plan, _ := demonet.NewPlan(spec)
	rep, err := demonet.Generate(ctx, target, spec)
	if err != nil {
		t.Fatalf("generate: %v\nreport so far:\n%s", err, rep)
	}
	t.Logf("first run:\n%s", rep)

	n := plan.Count()
	admitted := n[demonet.StageActive] + n[demonet.StageCompleted] + n[demonet.StageDroppedOut]
	if rep.Referrals["admitted"] != admitted || rep.Referrals["referred_out"] != n[demonet.StageReferredOut] ||
		rep.Referrals["new"] != n[demonet.StageNew] || rep.Referrals["assessed"] != n[demonet.StageAssessed] {
		t.Errorf("referrals %v, plan %v", rep.Referrals, n)
	}
	// Scheduling's tracks hold exactly the admitted patients who are not discharged (nobody
	// else is admitted in this stack).
	enrolled, waiting := 0, 0
	for _, tr := range rep.Tracks {
		enrolled += tr.Enrolled
		waiting += tr.Waitlisted
	}
	if enrolled != rep.Enrollments["active"] || waiting != rep.Enrollments["waitlisted"] ||
		rep.Enrollments["active"]+rep.Enrollments["waitlisted"] != n[demonet.StageActive] ||
		rep.Enrollments["ended"] != n[demonet.StageCompleted]+n[demonet.StageDroppedOut] {
		t.Errorf("tracks hold %d (+%d waiting), enrollments %v, plan %v", enrolled, waiting, rep.Enrollments, n)
	}
	attended := rep.Attendance["present"] + rep.Attendance["late"] + rep.Attendance["left_early"]
	if rep.GroupSessions == 0 || attended == 0 {
		t.Errorf("no attendance: %d sessions, %v", rep.GroupSessions, rep.Attendance)
	}
	// Billing charged the attended days, claimed them, and posted the payers' 835s (Generate
	// fails on any deviation), whose denials wait in the denial queue.
	if rep.Charges["paid"]+rep.Charges["denied"] == 0 || rep.ClaimFiles == 0 || len(rep.Remittances) == 0 || rep.PaidCents() <= 0 {
		t.Errorf("revenue cycle: charges %v, %d claim files, %d remittances", rep.Charges, rep.ClaimFiles, len(rep.Remittances))
	}
	// Every charge the attendance calls for was made (per diem: each day of 180 minutes or
	// more; per service: each attended session), else the report warns.
	if len(rep.Warnings) > 0 {
		t.Errorf("warnings: %v", rep.Warnings)
	}
	if rep.WorkItems["denial"]+rep.Appealed+rep.WrittenOff == 0 || rep.Claims["paid"]+rep.Claims["partially_paid"] == 0 {
		t.Errorf("work items %v claims %v", rep.WorkItems, rep.Claims)
	}
	hc := connectOpts(tok)
	remit := billingv1connect.NewRemittanceServiceClient(httpClient, s.URL("billing"), hc)
	list, err := remit.ListRemittances(ctx, connect.NewRequest(&billingv1.ListRemittancesRequest{Limit: 100}))
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Msg.GetRemittances()) != len(rep.Remittances) {
		t.Errorf("billing lists %d remittances, the report %d", len(list.Msg.GetRemittances()), len(rep.Remittances))
	}
	for _, r := range list.Msg.GetRemittances() {
		if len(r.GetDeviations()) > 0 || r.GetMatchedClaims() != r.GetClaims() {
			t.Errorf("remittance %s: %d deviations, %d of %d claims matched", r.GetRemittanceId(), len(r.GetDeviations()), r.GetMatchedClaims(), r.GetClaims())
		}
	}

	// A second run finds everyone: no referral, patient or remittance twice.
	again, err := demonet.Generate(ctx, target, spec)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	t.Logf("second run:\n%s", again)
	intake := intakev1connect.NewIntakeServiceClient(httpClient, s.URL("intake"), hc)
	refs, err := intake.ListReferrals(ctx, connect.NewRequest(&intakev1.ListReferralsRequest{PageSize: 500}))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(refs.Msg.GetReferrals()); got != len(plan.People) {
		t.Errorf("%d referrals after two runs, plan has %d people", got, len(plan.People))
	}
	// The second clinic is no seeded one: the generator configured it through scheduling's
	// API, and intake learnt it from scheduling's ClinicConfigured (it took its referrals).
	made := plan.Clinics[1]
	if made.Seeded || made.TimeZone == plan.Clinics[0].TimeZone {
		t.Fatalf("Small's second clinic %+v: want one the generator makes, in another zone", made)
	}
	byClinic := map[string]int{}
	for _, r := range refs.Msg.GetReferrals() {
		byClinic[r.GetClinicId()]++
	}
	tracks := 0
	for _, tr := range rep.Tracks {
		if tr.ClinicID == made.ID {
			tracks++
		}
	}
	if byClinic[made.ID] == 0 || tracks < 2 {
		t.Errorf("clinic %s: %d referrals, %d tracks", made.ID, byClinic[made.ID], tracks)
	}
	if !reflect.DeepEqual(again.Referrals, rep.Referrals) || !reflect.DeepEqual(again.Enrollments, rep.Enrollments) {
		t.Errorf("second run changed the people: %v %v, first %v %v", again.Referrals, again.Enrollments, rep.Referrals, rep.Enrollments)
	}
	// Nothing new to claim or answer on the same day: no claim file or 835 twice.
	if again.ClaimFiles != 0 || len(again.Remittances) != 0 || !reflect.DeepEqual(again.Claims, rep.Claims) {
		t.Errorf("second run: %d claim files, %d remittances, claims %v (first %v)", again.ClaimFiles, len(again.Remittances), again.Claims, rep.Claims)
	}
}

func startStack(ctx context.Context, t *testing.T) *stack.Stack {
	t.Helper()
	return stacktest.Start(ctx, t, stacktest.Options{Prefix: "demonet", LogLevel: "warn"})
}

var httpClient = http.DefaultClient

func connectOpts(tok string) connect.ClientOption {
	return connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+tok)
			return next(ctx, req)
		}
	}))
}

// TestGenerateDefault generates the network `make run` shows, on a stack of its own, and
// logs the report and the time it took (DEMONET_DEFAULT=1: it takes about a minute).
func TestGenerateDefault(t *testing.T) {
	if os.Getenv("DEMONET_DEFAULT") == "" {
		t.Skip("set DEMONET_DEFAULT=1 to generate the default network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s := startStack(ctx, t)
	tok, err := s.Token("demonet-test", []string{"admin"}, []string{auth.AllClinics}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	target := demonet.Target{IntakeURL: s.URL("intake"), SchedulingURL: s.URL("scheduling"), BillingURL: s.URL("billing"), Token: tok, Logf: t.Logf}
	rep, err := demonet.Generate(ctx, target, demonet.Default())
	if err != nil {
		t.Fatalf("generate: %v\n%s", err, rep)
	}
	t.Logf("default network:\n%s", rep)
	if rep.Enrollments["waitlisted"] == 0 || rep.WorkItems["denial"] == 0 || rep.WorkItems["underpayment"] == 0 {
		t.Errorf("no waitlist, denial or underpayment: %v %v", rep.Enrollments, rep.WorkItems)
	}
}
