package demonet

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // clinic time zones resolve on machines without a zoneinfo database

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/deploy/devstack/stack"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/intake/v1/intakev1connect"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1/schedulingv1connect"
)

// Target is where the services run and the token to call them with: an admin token for
// every clinic (`*`), since payers are network-wide and an 835 upload spans clinics.
type Target struct {
	IntakeURL, SchedulingURL, BillingURL string
	Token                                string
	HTTPClient                           *http.Client // default http.DefaultClient
	// Logf, when set, is told what each phase is doing (ids and counts only, never PHI).
	Logf func(format string, args ...any)
}

// Wait bounds how long the generator waits for the services' consumers (enrollments from
// admissions, charges from attendance).
var Wait = 120 * time.Second

// Settle is how long the charge count may stay still before a claim run goes ahead anyway.
var Settle = 10 * time.Second

// Generate makes the network of spec through the services' APIs and reports what is there.
// A second run on the same data finds everyone it made (by their email in intake's queue)
// and makes only what is missing: new sessions that ended since are recorded, their
// charges claimed and answered.
func Generate(ctx context.Context, t Target, spec Spec) (Report, error) {
	began := time.Now()
	plan, err := NewPlan(spec)
	if err != nil {
		return Report{}, err
	}
	g := newGen(t, plan)
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"configure payers and contracts", g.configure},
		{"configure the clinics in scheduling; wait for intake to learn them", g.clinics},
		{"walk referrals through the funnel", g.funnel},
		{"admit and discharge past patients", g.discharged},
		{"admit current patients", g.admitActive},
		{"read the sessions that have ended", g.attendance},
		{"record attendance and claim the charges, week by week", g.cycles},
		{"answer the claims as the payers", g.remit},
		{"work the denial and underpayment queues as billing staff", g.work},
	}
	for _, s := range steps {
		t0 := time.Now()
		if err := s.fn(ctx); err != nil {
			return g.report, fmt.Errorf("demonet: %s: %w", s.name, err)
		}
		g.logf("demonet: %s (%s)", s.name, time.Since(t0).Round(time.Millisecond))
	}
	if err := g.readBack(ctx); err != nil {
		return g.report, fmt.Errorf("demonet: read back: %w", err)
	}
	g.report.Elapsed = time.Since(began)
	return g.report, nil
}

type gen struct {
	t      Target
	plan   Plan
	intake intakev1connect.IntakeServiceClient
	sched  schedulingv1connect.SchedulingServiceClient
	bill   billingv1connect.BillingServiceClient
	charge billingv1connect.ChargesServiceClient
	claims billingv1connect.ClaimsServiceClient
	remitc billingv1connect.RemittanceServiceClient
	now    time.Time

	mu      sync.Mutex
	state   map[string]*personState // by person key
	report  Report
	entries []attendanceEntry // the sessions to record, oldest first
	locs    []*time.Location
}

type personState struct {
	referral   *intakev1.Referral
	patientID  string
	episodeID  string
	admitted   bool // by this run (an earlier run's patient may be discharged already)
	discharged bool // by this run
}

func newGen(t Target, plan Plan) *gen {
	hc := t.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	opt := connect.WithInterceptors(bearer(t.Token))
	g := &gen{t: t, plan: plan, now: time.Now(),
		intake: intakev1connect.NewIntakeServiceClient(hc, t.IntakeURL, opt),
		sched:  schedulingv1connect.NewSchedulingServiceClient(hc, t.SchedulingURL, opt),
		bill:   billingv1connect.NewBillingServiceClient(hc, t.BillingURL, opt),
		charge: billingv1connect.NewChargesServiceClient(hc, t.BillingURL, opt),
		claims: billingv1connect.NewClaimsServiceClient(hc, t.BillingURL, opt),
		remitc: billingv1connect.NewRemittanceServiceClient(hc, t.BillingURL, opt),
		state:  map[string]*personState{},
		report: newReport(plan)}
	for _, c := range plan.Clinics {
		loc, err := time.LoadLocation(c.TimeZone)
		if err != nil {
			loc = time.UTC
		}
		g.locs = append(g.locs, loc)
	}
	return g
}

func (g *gen) logf(format string, args ...any) {
	if g.t.Logf != nil {
		g.t.Logf(format, args...)
	}
}

// date is the clinic-local date daysAgo days before today.
func (g *gen) date(ci, daysAgo int) string {
	return g.now.In(g.locs[ci]).AddDate(0, 0, -daysAgo).Format(time.DateOnly)
}

func (g *gen) key(p Person, step string) string { return p.Key + "-" + step }

// ---------------------------------------------------------------------------------------
// Configuration: payers, contracts, billing providers.

// ContractID is the fixed id of the contract of payer index pi with the clinic of Number n.
func ContractID(n, pi int) string {
	if n <= 9 && pi < 9 {
		return fmt.Sprintf("0190a000-0000-7000-8004-0000000000%d%d", n, pi+1)
	}
	return fmt.Sprintf("0190a000-0000-7000-8004-1%05d%06d", n, pi+1)
}

// Contract is the contract of payer index pi with clinic cl: what the network's payers pay.
func Contract(cl Clinic, pi int) *billingv1.Contract {
	pp := Payers[pi]
	c := &billingv1.Contract{ContractId: ContractID(cl.Number, pi), PayerId: pp.Code, ClinicId: cl.ID, EffectiveFrom: "2025-01-01"}
	perService := []*billingv1.ServiceCode{
		{Service: billingv1.BillableService_BILLABLE_SERVICE_GROUP, ProcedureCode: "90853", RateCents: 9000},
		{Service: billingv1.BillableService_BILLABLE_SERVICE_INDIVIDUAL, ProcedureCode: "90832", RateCents: 7500, MinMinutes: 16, MaxMinutes: 37},
		{Service: billingv1.BillableService_BILLABLE_SERVICE_INDIVIDUAL, ProcedureCode: "90834", RateCents: 10000, MinMinutes: 38, MaxMinutes: 52},
		{Service: billingv1.BillableService_BILLABLE_SERVICE_INDIVIDUAL, ProcedureCode: "90837", RateCents: 13500, MinMinutes: 53},
		{Service: billingv1.BillableService_BILLABLE_SERVICE_FAMILY, ProcedureCode: "90847", RateCents: 11500},
		{Service: billingv1.BillableService_BILLABLE_SERVICE_MEDICATION_MANAGEMENT, ProcedureCode: "99213", RateCents: 9500},
	}
	switch pp.Code {
	case PayerMedicaid:
		c.BillingMode, c.ClaimType = billingv1.BillingMode_BILLING_MODE_PER_DIEM, billingv1.ClaimType_CLAIM_TYPE_INSTITUTIONAL
		c.PerDiemMinimumMinutes, c.BelowMinimum = 180, billingv1.BelowMinimum_BELOW_MINIMUM_BILL_NOTHING
		c.Codes = []*billingv1.ServiceCode{{Service: billingv1.BillableService_BILLABLE_SERVICE_PER_DIEM, ProcedureCode: "H0015", RevenueCode: "0906", RateCents: 26000}}
		c.TimelyFilingDays, c.RequiresAuthorization = 180, true
	case PayerBluewater:
		c.BillingMode, c.ClaimType = billingv1.BillingMode_BILLING_MODE_PER_DIEM, billingv1.ClaimType_CLAIM_TYPE_INSTITUTIONAL
		c.PerDiemMinimumMinutes, c.BelowMinimum = 180, billingv1.BelowMinimum_BELOW_MINIMUM_BILL_NOTHING
		c.Codes = []*billingv1.ServiceCode{{Service: billingv1.BillableService_BILLABLE_SERVICE_PER_DIEM, ProcedureCode: "H0015", RevenueCode: "0906", RateCents: 31000}}
		c.TimelyFilingDays = 120
	case PayerSummit:
		c.BillingMode, c.ClaimType = billingv1.BillingMode_BILLING_MODE_PER_SERVICE, billingv1.ClaimType_CLAIM_TYPE_PROFESSIONAL
		c.Codes, c.TimelyFilingDays = perService, 90
	default: // self-pay: the clinic's cash prices
		c.BillingMode, c.ClaimType = billingv1.BillingMode_BILLING_MODE_PER_SERVICE, billingv1.ClaimType_CLAIM_TYPE_PROFESSIONAL
		for _, sc := range perService {
			sc.RateCents = sc.RateCents * 12 / 10
		}
		c.Codes, c.TimelyFilingDays = perService, 365
	}
	return c
}

func (g *gen) configure(ctx context.Context) error {
	existing, err := g.bill.ListPayers(ctx, connect.NewRequest(&billingv1.ListPayersRequest{}))
	if err != nil {
		return fmt.Errorf("list payers: %w", err)
	}
	known := map[string]bool{}
	for _, p := range existing.Msg.GetPayers() {
		known[p.GetPayerId()] = true
	}
	kinds := map[string]billingv1.PayerKind{"medicaid": billingv1.PayerKind_PAYER_KIND_MEDICAID,
		"commercial": billingv1.PayerKind_PAYER_KIND_COMMERCIAL, "self_pay": billingv1.PayerKind_PAYER_KIND_SELF_PAY}
	for _, pp := range g.plan.Payers {
		if pp.Code == PayerSelf && known[pp.Code] {
			continue // billing's seeded self-pay payer
		}
		if _, err := g.bill.UpsertPayer(ctx, connect.NewRequest(&billingv1.UpsertPayerRequest{Payer: &billingv1.Payer{
			PayerId: pp.Code, Name: pp.Name, Kind: kinds[pp.Kind], X12PayerId: pp.X12ID}})); err != nil {
			return fmt.Errorf("payer %s: %w", pp.Code, err)
		}
	}
	for _, c := range g.plan.Clinics {
		for pi := range g.plan.Payers {
			if _, err := g.bill.UpsertContract(ctx, connect.NewRequest(&billingv1.UpsertContractRequest{Contract: Contract(c, pi)})); err != nil {
				return fmt.Errorf("contract %s with clinic %s: %w", g.plan.Payers[pi].Code, c.ID, err)
			}
		}
		if _, err := g.claims.GetBillingProvider(ctx, connect.NewRequest(&billingv1.GetBillingProviderRequest{ClinicId: c.ID})); err != nil {
			if connect.CodeOf(err) != connect.CodeNotFound {
				return fmt.Errorf("billing provider of %s: %w", c.ID, err)
			}
			if _, err := g.claims.SetBillingProvider(ctx, connect.NewRequest(&billingv1.SetBillingProviderRequest{Provider: &billingv1.BillingProvider{
				ClinicId: c.ID, Name: c.Name, Npi: "1990000014", TaxId: fmt.Sprintf("99000%04d", c.Number), TaxonomyCode: "261QR0405X",
				AddressLine: "1 Main St", City: "Springfield", State: "IL", PostalCode: "62701"}})); err != nil {
				return fmt.Errorf("billing provider of %s: %w", c.ID, err)
			}
		}
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// Intake: the funnel.

var sourceEnum = map[string]intakev1.ReferralSource{
	"self": intakev1.ReferralSource_REFERRAL_SOURCE_SELF, "hospital": intakev1.ReferralSource_REFERRAL_SOURCE_HOSPITAL,
	"detox_unit": intakev1.ReferralSource_REFERRAL_SOURCE_DETOX_UNIT, "court": intakev1.ReferralSource_REFERRAL_SOURCE_COURT,
	"employer": intakev1.ReferralSource_REFERRAL_SOURCE_EMPLOYER, "family": intakev1.ReferralSource_REFERRAL_SOURCE_FAMILY,
	"other_clinic": intakev1.ReferralSource_REFERRAL_SOURCE_OTHER_CLINIC,
}

// funnel creates every referral (or finds it by email) and walks it to its stage; people to
// admit stop at assessed.
func (g *gen) funnel(ctx context.Context) error {
	byEmail := map[string]*intakev1.Referral{}
	for _, c := range g.plan.Clinics {
		req := &intakev1.ListReferralsRequest{ClinicId: c.ID, PageSize: 500}
		for {
			resp, err := g.intake.ListReferrals(ctx, connect.NewRequest(req))
			if err != nil {
				return fmt.Errorf("list referrals: %w", err)
			}
			for _, r := range resp.Msg.GetReferrals() {
				byEmail[r.GetEmail()] = r
			}
			if req.PageToken = resp.Msg.GetNextPageToken(); req.PageToken == "" {
				break
			}
		}
	}
	for _, p := range g.plan.People {
		g.state[p.Key] = &personState{referral: byEmail[p.Email]}
	}
	return each(ctx, g.plan.Spec.Parallel, g.plan.People, func(ctx context.Context, p Person) error {
		st := g.state[p.Key]
		r, err := g.walk(ctx, p, st.referral)
		if err != nil {
			return fmt.Errorf("referral %s: %w", p.Key, err)
		}
		st.referral = r
		st.patientID = r.GetPatientId()
		return nil
	})
}

// referralRequest is person p's first contact, the same on every run.
func (g *gen) referralRequest(p Person) *intakev1.CreateReferralRequest {
	track := intakev1.TrackTime_TRACK_TIME_DAY
	if p.Track == TrackEvening {
		track = intakev1.TrackTime_TRACK_TIME_EVENING
	}
	return &intakev1.CreateReferralRequest{
		ClinicId: g.plan.Clinics[p.ClinicIndex].ID, Source: sourceEnum[p.Source], GivenName: p.Given, FamilyName: p.Family, DateOfBirth: p.DOB,
		Phone: p.Phone, Email: p.Email, PreferredTrack: track,
		FirstContactAt: timestamppb.New(g.now.Add(-time.Duration(p.FirstContactAgo)*24*time.Hour - 3*time.Hour)),
		IdempotencyKey: g.key(p, "referral")}
}

func (g *gen) walk(ctx context.Context, p Person, r *intakev1.Referral) (*intakev1.Referral, error) {
	if r == nil {
		resp, err := g.intake.CreateReferral(ctx, connect.NewRequest(g.referralRequest(p)))
		if err != nil {
			return nil, fmt.Errorf("create: %w", err)
		}
		r = resp.Msg.GetReferral()
	}
	target := map[Stage]intakev1.ReferralStatus{
		StageNew: statusNew, StageContacted: statusContacted, StageScreened: statusScreened, StageAssessed: statusAssessed,
		StageReferredOut: statusReferredOut, StageClosed: statusClosed,
	}[p.Stage]
	if p.Stage.Admitted() {
		target = statusAssessed
	}
	path := []intakev1.ReferralStatus{statusNew, statusContacted, statusScreened, statusAssessed}
	switch target {
	case statusReferredOut:
		path = append(path, statusReferredOut)
	case statusClosed:
		path = []intakev1.ReferralStatus{statusNew, statusContacted, statusClosed}
	default:
		path = path[:slices.Index(path, target)+1]
	}
	for {
		i := slices.Index(path, r.GetStatus())
		if i < 0 || i == len(path)-1 {
			return r, nil
		}
		next, err := g.move(ctx, p, r, path[i+1])
		if err != nil {
			return nil, fmt.Errorf("move to %s: %w", path[i+1], err)
		}
		r = next
	}
}

const (
	statusNew         = intakev1.ReferralStatus_REFERRAL_STATUS_NEW
	statusContacted   = intakev1.ReferralStatus_REFERRAL_STATUS_CONTACTED
	statusScreened    = intakev1.ReferralStatus_REFERRAL_STATUS_SCREENED
	statusAssessed    = intakev1.ReferralStatus_REFERRAL_STATUS_ASSESSED
	statusAdmitted    = intakev1.ReferralStatus_REFERRAL_STATUS_ADMITTED
	statusReferredOut = intakev1.ReferralStatus_REFERRAL_STATUS_REFERRED_OUT
	statusClosed      = intakev1.ReferralStatus_REFERRAL_STATUS_CLOSED
)

func (g *gen) move(ctx context.Context, p Person, r *intakev1.Referral, to intakev1.ReferralStatus) (*intakev1.Referral, error) {
	id := r.GetReferralId()
	switch to {
	case statusContacted, statusScreened, statusClosed:
		reason := map[intakev1.ReferralStatus]string{
			statusContacted: "Called back; phone screening booked",
			statusScreened:  "Phone screening done; ASAM assessment booked",
			statusClosed:    "No answer after three calls and an email",
		}[to]
		resp, err := g.intake.ChangeReferralStatus(ctx, connect.NewRequest(&intakev1.ChangeReferralStatusRequest{
			ReferralId: id, Status: to, Reason: reason}))
		if err != nil {
			return nil, err
		}
		return resp.Msg.GetReferral(), nil
	case statusAssessed:
		req := &intakev1.RecordAssessmentRequest{ReferralId: id, Population: intakev1.Population_POPULATION_ADULT,
			Withdrawal: intakev1.WithdrawalStatus_WITHDRAWAL_STATUS_NO_DETOX_NEEDED, IdempotencyKey: g.key(p, "assessment")}
		if p.Adolescent {
			req.Population = intakev1.Population_POPULATION_ADOLESCENT
		}
		if p.DetoxFirst {
			req.Withdrawal = intakev1.WithdrawalStatus_WITHDRAWAL_STATUS_DETOX_NEEDED
		}
		for i, rating := range p.Ratings {
			req.Dimensions = append(req.Dimensions, &intakev1.DimensionRating{Dimension: int32(i + 1), Rating: rating})
		}
		if _, err := g.intake.RecordAssessment(ctx, connect.NewRequest(req)); err != nil {
			return nil, err
		}
	case statusReferredOut:
		level, dest, why := "2.5", "Mercy Partial Hospitalization Program", "Needs a more intensive level of care than IOP"
		if p.DetoxFirst {
			level, dest, why = "3.7-WM", "Northshore Withdrawal Management Unit", "Needs medically monitored withdrawal management before IOP"
		}
		resp, err := g.intake.ReferOut(ctx, connect.NewRequest(&intakev1.ReferOutRequest{
			ReferralId: id, Level: level, Destination: dest, Reason: why, IdempotencyKey: g.key(p, "refer-out")}))
		if err != nil {
			return nil, err
		}
		return resp.Msg.GetReferral(), nil
	default:
		return nil, fmt.Errorf("cannot move a referral to %s", to)
	}
	resp, err := g.intake.GetReferral(ctx, connect.NewRequest(&intakev1.GetReferralRequest{ReferralId: id}))
	if err != nil {
		return nil, err
	}
	return resp.Msg.GetReferral(), nil
}

// ---------------------------------------------------------------------------------------
// Admissions, the patients' billing setup, discharges.

// byTrack groups the people of the given stages by clinic and track, each group ordered by
// program start, oldest first: the order they are admitted in.
func (g *gen) byTrack(stages ...Stage) [][]Person {
	groups := map[string][]Person{}
	var keys []string
	for _, p := range g.plan.People {
		if !slices.Contains(stages, p.Stage) {
			continue
		}
		k := fmt.Sprintf("%d/%s", p.ClinicIndex, p.Track)
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], p)
	}
	slices.Sort(keys)
	var out [][]Person
	for _, k := range keys {
		ps := groups[k]
		slices.SortStableFunc(ps, func(a, b Person) int { return cmp.Compare(b.StartAgo, a.StartAgo) })
		out = append(out, ps)
	}
	return out
}

// admitTracks admits each track's people one after the other (so scheduling sees them in the
// planned order and the same people get the seats every time), tracks side by side.
func (g *gen) admitTracks(ctx context.Context, stages ...Stage) ([]Person, error) {
	tracks := g.byTrack(stages...)
	var all []Person
	for _, ps := range tracks {
		all = append(all, ps...)
	}
	err := each(ctx, g.plan.Spec.Parallel, tracks, func(ctx context.Context, ps []Person) error {
		for _, p := range ps {
			if err := g.admit(ctx, p); err != nil {
				return fmt.Errorf("admit %s: %w", p.Key, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Billing setup does not decide seats: side by side.
	err = each(ctx, g.plan.Spec.Parallel, all, func(ctx context.Context, p Person) error {
		if err := g.setup(ctx, p); err != nil {
			return fmt.Errorf("setup %s: %w", p.Key, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return all, g.waitEnrollments(ctx, all)
}

func (g *gen) admit(ctx context.Context, p Person) error {
	st := g.state[p.Key]
	if st.referral.GetStatus() == statusAdmitted {
		return nil
	}
	clinic := g.plan.Clinics[p.ClinicIndex]
	program := "adult-iop"
	if p.Adolescent {
		program = "adolescent-iop"
	}
	resp, err := g.intake.AdmitPatient(ctx, connect.NewRequest(&intakev1.AdmitPatientRequest{
		ReferralId: st.referral.GetReferralId(), GivenName: p.Given, FamilyName: p.Family, DateOfBirth: p.DOB, ContactEmail: p.Email,
		ClinicId: clinic.ID, ProgramTrack: p.Track, Program: program, StartDate: g.date(p.ClinicIndex, p.StartAgo),
		IdempotencyKey: g.key(p, "admission")}))
	if err != nil {
		return err
	}
	st.patientID, st.episodeID, st.admitted = resp.Msg.GetPatientId(), resp.Msg.GetEpisodeId(), true
	st.referral.Status = statusAdmitted
	return nil
}

// setup gives an admitted patient what billing needs: consent to treatment and payment,
// a primary coverage, the diagnoses, and (Medicaid) a prior authorization.
func (g *gen) setup(ctx context.Context, p Person) error {
	st := g.state[p.Key]
	clinic := g.plan.Clinics[p.ClinicIndex]
	consents, err := g.intake.ListConsents(ctx, connect.NewRequest(&intakev1.ListConsentsRequest{PatientId: st.patientID}))
	if err != nil {
		return fmt.Errorf("list consents: %w", err)
	}
	if len(consents.Msg.GetConsents()) == 0 {
		from := g.now.Add(-time.Duration(max(p.StartAgo+1, 0)) * 24 * time.Hour)
		req := &intakev1.GrantConsentRequest{PatientId: st.patientID,
			Scopes:   []intakev1.ConsentScope{intakev1.ConsentScope_CONSENT_SCOPE_TREATMENT, intakev1.ConsentScope_CONSENT_SCOPE_PAYMENT},
			Channels: []intakev1.Channel{intakev1.Channel_CHANNEL_EMAIL}, Language: "en",
			EffectiveFrom: timestamppb.New(from), IdempotencyKey: g.key(p, "consent")}
		if _, err := g.intake.GrantConsent(ctx, connect.NewRequest(req)); err != nil {
			return fmt.Errorf("grant consent: %w", err)
		}
	}
	covs, err := g.intake.ListCoverage(ctx, connect.NewRequest(&intakev1.ListCoverageRequest{PatientId: st.patientID}))
	if err != nil {
		return fmt.Errorf("list coverage: %w", err)
	}
	if len(covs.Msg.GetCoverages()) == 0 {
		var plan string
		for _, pp := range g.plan.Payers {
			if pp.Code == p.Payer {
				plan = pp.Name
			}
		}
		if _, err := g.intake.SetCoverage(ctx, connect.NewRequest(&intakev1.SetCoverageRequest{
			PatientId: st.patientID, PayerId: p.Payer, Plan: plan, MemberId: p.MemberID,
			SubscriberRelationship: intakev1.SubscriberRelationship_SUBSCRIBER_RELATIONSHIP_SELF,
			EffectiveFrom:          "2025-01-01", Eligibility: intakev1.Eligibility_ELIGIBILITY_ELIGIBLE,
			Priority: intakev1.CoveragePriority_COVERAGE_PRIORITY_PRIMARY, IdempotencyKey: g.key(p, "coverage")})); err != nil {
			return fmt.Errorf("set coverage: %w", err)
		}
	}
	if _, err := g.claims.SetPatientDiagnoses(ctx, connect.NewRequest(&billingv1.SetPatientDiagnosesRequest{
		PatientId: st.patientID, ClinicId: clinic.ID, Codes: []string{p.Diagnosis}})); err != nil {
		return fmt.Errorf("set diagnoses: %w", err)
	}
	if p.AuthUnits > 0 {
		auths, err := g.charge.ListAuthorizations(ctx, connect.NewRequest(&billingv1.ListAuthorizationsRequest{ClinicId: clinic.ID, PatientId: st.patientID}))
		if err != nil {
			return fmt.Errorf("list authorizations: %w", err)
		}
		if len(auths.Msg.GetAuthorizations()) == 0 {
			start := g.now.In(g.locs[p.ClinicIndex]).AddDate(0, 0, -p.StartAgo)
			if _, err := g.charge.UpsertAuthorization(ctx, connect.NewRequest(&billingv1.UpsertAuthorizationRequest{Authorization: &billingv1.Authorization{
				PatientId: st.patientID, ClinicId: clinic.ID, PayerId: p.Payer, Service: billingv1.BillableService_BILLABLE_SERVICE_PER_DIEM,
				Number: fmt.Sprintf("PA%s", strings.ToUpper(p.MemberID)), AuthorizedUnits: p.AuthUnits,
				StartsOn: start.Format(time.DateOnly), EndsOn: start.AddDate(0, 0, 89).Format(time.DateOnly)}})); err != nil {
				return fmt.Errorf("authorization: %w", err)
			}
		}
	}
	return nil
}

// waitEnrollments waits until scheduling has enrolled (or waitlisted) every person this run
// admitted.
func (g *gen) waitEnrollments(ctx context.Context, ps []Person) error {
	return each(ctx, g.plan.Spec.Parallel, ps, func(ctx context.Context, p Person) error {
		if !g.state[p.Key].admitted {
			return nil
		}
		return stack.Poll(ctx, Wait, "the enrollment of "+p.Key, func() (bool, error) {
			_, err := g.sched.GetEnrollment(ctx, connect.NewRequest(&schedulingv1.GetEnrollmentRequest{PatientId: g.state[p.Key].patientID}))
			if connect.CodeOf(err) == connect.CodeNotFound {
				return false, nil
			}
			return err == nil, err
		})
	})
}

// discharged admits the people whose episode is over, and discharges them on their date.
// They go first, so the seats they held are free again for today's patients.
func (g *gen) discharged(ctx context.Context) error {
	ps, err := g.admitTracks(ctx, StageCompleted, StageDroppedOut)
	if err != nil {
		return err
	}
	return each(ctx, g.plan.Spec.Parallel, ps, func(ctx context.Context, p Person) error {
		st := g.state[p.Key]
		enr, err := g.sched.GetEnrollment(ctx, connect.NewRequest(&schedulingv1.GetEnrollmentRequest{PatientId: st.patientID}))
		if connect.CodeOf(err) == connect.CodeNotFound {
			return nil // discharged on an earlier run
		}
		if err != nil {
			return err
		}
		if s := enr.Msg.GetEnrollment().GetStatus(); s != "active" && s != "waitlisted" {
			return nil
		}
		if st.episodeID == "" {
			// Admitted on an earlier run that stopped before the discharge: the admission's
			// idempotency key replays the episode.
			if err := g.replayAdmission(ctx, p); err != nil {
				return err
			}
		}
		reason := intakev1.DischargeReason_DISCHARGE_REASON_COMPLETED
		if p.Stage == StageDroppedOut {
			reason = intakev1.DischargeReason_DISCHARGE_REASON_DROPPED_OUT
		}
		if _, err := g.intake.DischargePatient(ctx, connect.NewRequest(&intakev1.DischargePatientRequest{
			EpisodeId: st.episodeID, Reason: reason, DischargeDate: g.date(p.ClinicIndex, p.DischargeAgo),
			IdempotencyKey: g.key(p, "discharge")})); err != nil {
			return fmt.Errorf("discharge %s: %w", p.Key, err)
		}
		st.discharged = true
		return stack.Poll(ctx, Wait, "the discharge of "+p.Key, func() (bool, error) {
			resp, err := g.sched.GetEnrollment(ctx, connect.NewRequest(&schedulingv1.GetEnrollmentRequest{PatientId: st.patientID}))
			if connect.CodeOf(err) == connect.CodeNotFound {
				return true, nil
			}
			if err != nil {
				return false, err
			}
			s := resp.Msg.GetEnrollment().GetStatus()
			return s != "active" && s != "waitlisted", nil
		})
	})
}

func (g *gen) replayAdmission(ctx context.Context, p Person) error {
	st := g.state[p.Key]
	program := "adult-iop"
	if p.Adolescent {
		program = "adolescent-iop"
	}
	resp, err := g.intake.AdmitPatient(ctx, connect.NewRequest(&intakev1.AdmitPatientRequest{
		ReferralId: st.referral.GetReferralId(), GivenName: p.Given, FamilyName: p.Family, DateOfBirth: p.DOB, ContactEmail: p.Email,
		ClinicId: g.plan.Clinics[p.ClinicIndex].ID, ProgramTrack: p.Track, Program: program, StartDate: g.date(p.ClinicIndex, p.StartAgo),
		IdempotencyKey: g.key(p, "admission")}))
	if err != nil {
		return fmt.Errorf("find the episode of %s (its admission key expired?): %w", p.Key, err)
	}
	st.episodeID = resp.Msg.GetEpisodeId()
	return nil
}

func (g *gen) admitActive(ctx context.Context) error {
	_, err := g.admitTracks(ctx, StageActive)
	return err
}

// ---------------------------------------------------------------------------------------
// Attendance.

type attendanceEntry struct {
	person  Person
	appt    *schedulingv1.Appointment
	outcome Outcome
}

var attendanceEnum = map[string]schedulingv1.AttendanceStatus{
	"present": schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT, "late": schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_LATE,
	"left_early": schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_LEFT_EARLY, "absent": schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT,
	"excused": schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_EXCUSED,
}

// attendance records every admitted person's sessions that have ended (up to the discharge
// date), a group session's places in one call.
func (g *gen) attendance(ctx context.Context) error {
	// The plan's dates are days before today: they are the real ones only on the day of the
	// run that admitted. So a patient discharged by an earlier run is left alone (their
	// sessions were recorded then), and a current patient's sessions are all read.
	var admitted []Person
	for _, p := range g.plan.People {
		if p.Stage == StageActive || (p.Stage.Admitted() && g.state[p.Key].discharged) {
			admitted = append(admitted, p)
		}
	}
	var entries []attendanceEntry
	err := each(ctx, g.plan.Spec.Parallel, admitted, func(ctx context.Context, p Person) error {
		req := &schedulingv1.ListPatientScheduleRequest{PatientId: g.state[p.Key].patientID, ToDate: g.date(p.ClinicIndex, 0)}
		if p.Stage != StageActive {
			req.FromDate = g.date(p.ClinicIndex, p.StartAgo)
		}
		resp, err := g.sched.ListPatientSchedule(ctx, connect.NewRequest(req))
		if connect.CodeOf(err) == connect.CodeNotFound {
			return nil // waitlisted: nothing booked
		}
		if err != nil {
			return fmt.Errorf("schedule of %s: %w", p.Key, err)
		}
		start, last := "", g.date(p.ClinicIndex, -1)
		if p.Stage != StageActive {
			start, last = g.date(p.ClinicIndex, p.StartAgo), g.date(p.ClinicIndex, p.DischargeAgo)
		}
		var mine []attendanceEntry
		for _, a := range resp.Msg.GetAppointments() {
			if a.GetStatus() != schedulingv1.AppointmentStatus_APPOINTMENT_STATUS_SCHEDULED || !a.GetEndsAt().AsTime().Before(g.now) ||
				a.GetLocalDate() < start || a.GetLocalDate() > last {
				continue
			}
			scheduled := int(a.GetEndsAt().AsTime().Sub(a.GetStartsAt().AsTime()) / time.Minute)
			after := 0 // days after the start: only a dropout's (discharged this run) matter
			if start != "" {
				d0, _ := time.Parse(time.DateOnly, start)
				d1, _ := time.Parse(time.DateOnly, a.GetLocalDate())
				after = int(d1.Sub(d0).Hours() / 24)
			}
			o := p.Attendance(g.plan.Spec.Seed, a.GetLocalDate()+"/"+a.GetServiceType().String(), after, scheduled)
			mine = append(mine, attendanceEntry{person: p, appt: a, outcome: o})
		}
		g.mu.Lock()
		entries = append(entries, mine...)
		g.mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(entries, func(a, b attendanceEntry) int {
		return cmp.Or(a.appt.GetStartsAt().AsTime().Compare(b.appt.GetStartsAt().AsTime()), strings.Compare(a.appt.GetAppointmentId(), b.appt.GetAppointmentId()))
	})
	g.entries = entries
	for _, e := range entries {
		g.report.Attendance[e.outcome.Status]++
	}
	return nil
}

// recordEntries records the entries' attendance: one call per group session, individual
// visits one by one.
func (g *gen) recordEntries(ctx context.Context, entries []attendanceEntry) error {
	sessions := map[string][]attendanceEntry{}
	var singles []attendanceEntry
	for _, e := range entries {
		if e.appt.GetServiceType() == schedulingv1.ServiceType_SERVICE_TYPE_GROUP && e.appt.GetSessionId() != "" {
			sessions[e.appt.GetSessionId()] = append(sessions[e.appt.GetSessionId()], e)
		} else {
			singles = append(singles, e)
		}
	}
	// A track's sessions are recorded one after the other, oldest first, tracks side by side:
	// each patient is in one track, so no two calls touch one patient's compliance at once
	// (scheduling reads its clock before taking the patient's risk lock, so two concurrent
	// calls for one patient can close a risk episode before it opened: a constraint error).
	byTrack := map[string][]string{}
	for id, es := range sessions {
		byTrack[es[0].appt.GetTrackId()] = append(byTrack[es[0].appt.GetTrackId()], id)
	}
	var tracks [][]string
	for _, ids := range byTrack {
		slices.SortFunc(ids, func(a, b string) int {
			return cmp.Or(strings.Compare(sessions[a][0].appt.GetLocalDate(), sessions[b][0].appt.GetLocalDate()), strings.Compare(a, b))
		})
		tracks = append(tracks, ids)
	}
	slices.SortFunc(tracks, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	err := each(ctx, g.plan.Spec.Parallel, tracks, func(ctx context.Context, ids []string) error {
		for _, id := range ids {
			if err := g.recordSession(ctx, id, sessions[id]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Individual visits after the groups, each patient's one after the other.
	perPatient := map[string][]attendanceEntry{}
	for _, e := range singles {
		perPatient[e.person.Key] = append(perPatient[e.person.Key], e)
	}
	var visits [][]attendanceEntry
	for _, es := range perPatient {
		slices.SortFunc(es, func(a, b attendanceEntry) int {
			return a.appt.GetStartsAt().AsTime().Compare(b.appt.GetStartsAt().AsTime())
		})
		visits = append(visits, es)
	}
	err = each(ctx, g.plan.Spec.Parallel, visits, func(ctx context.Context, es []attendanceEntry) error {
		for _, e := range es {
			key := fmt.Sprintf("%s-att-%s-%s-%d", g.plan.Spec.Prefix, e.appt.GetAppointmentId(), e.outcome.Status, e.outcome.Minutes)
			if _, err := g.sched.RecordAttendance(ctx, connect.NewRequest(&schedulingv1.RecordAttendanceRequest{
				Entry: entryProto(e), IdempotencyKey: key})); err != nil {
				return fmt.Errorf("attendance of appointment %s: %w", e.appt.GetAppointmentId(), err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.report.IndividualSessions += len(singles)
	g.mu.Unlock()
	return nil
}

// expected is how many charges billing should have made at each clinic for the entries: per
// diem, the days of 180 minutes or more; per service, each attended session with a code for
// its minutes.
func expected(entries []attendanceEntry) map[int]int {
	out := map[int]int{}
	type day struct {
		key  string
		date string
	}
	minutes := map[day]int{}
	clinic := map[string]int{}
	for _, e := range entries {
		if e.outcome.Minutes <= 0 {
			continue
		}
		switch e.person.Payer {
		case PayerMedicaid, PayerBluewater:
			minutes[day{e.person.Key, e.appt.GetLocalDate()}] += e.outcome.Minutes
			clinic[e.person.Key] = e.person.ClinicIndex
		default:
			if e.appt.GetServiceType() == schedulingv1.ServiceType_SERVICE_TYPE_GROUP || e.outcome.Minutes >= 16 {
				out[e.person.ClinicIndex]++
			}
		}
	}
	for d, m := range minutes {
		if m >= 180 {
			out[clinic[d.key]]++
		}
	}
	return out
}

// cycles runs the weeks in order, as a billing office does: each week's sessions are
// recorded, then once billing has charged them, a claim run per clinic and insurer.
func (g *gen) cycles(ctx context.Context) error {
	done := 0
	for k := g.plan.Spec.Weeks; k >= 0; k-- {
		// Sessions before the cutoff (the clinic-local date k weeks ago; this week: all).
		n := done
		for n < len(g.entries) {
			e := g.entries[n]
			if k > 0 && e.appt.GetLocalDate() >= g.date(e.person.ClinicIndex, 7*k) {
				break
			}
			n++
		}
		if n == done && k > 0 {
			continue
		}
		if err := g.recordEntries(ctx, g.entries[done:n]); err != nil {
			return err
		}
		done = n
		if err := g.claim(ctx, expected(g.entries[:done])); err != nil {
			return err
		}
	}
	return nil
}

// recordSession records the plan's places in one group session in one call.
func (g *gen) recordSession(ctx context.Context, id string, es []attendanceEntry) error {
	slices.SortFunc(es, func(a, b attendanceEntry) int {
		return strings.Compare(a.appt.GetAppointmentId(), b.appt.GetAppointmentId())
	})
	req := &schedulingv1.RecordGroupAttendanceRequest{SessionId: id}
	h := sha256.New()
	for _, e := range es {
		req.Entries = append(req.Entries, entryProto(e))
		fmt.Fprintf(h, "%s|%s|%d;", e.appt.GetAppointmentId(), e.outcome.Status, e.outcome.Minutes)
	}
	req.IdempotencyKey = g.plan.Spec.Prefix + "-group-" + id + "-" + hex.EncodeToString(h.Sum(nil))[:16]
	if _, err := g.sched.RecordGroupAttendance(ctx, connect.NewRequest(req)); err != nil {
		return fmt.Errorf("group attendance of session %s: %w", id, err)
	}
	g.mu.Lock()
	g.report.GroupSessions++
	g.mu.Unlock()
	return nil
}

func entryProto(e attendanceEntry) *schedulingv1.AttendanceEntry {
	out := &schedulingv1.AttendanceEntry{AppointmentId: e.appt.GetAppointmentId(), Status: attendanceEnum[e.outcome.Status]}
	if e.outcome.Status == "late" || e.outcome.Status == "left_early" {
		out.MinutesAttended = int32(e.outcome.Minutes)
	}
	return out
}

// ---------------------------------------------------------------------------------------
// Claims.

// patientIDs maps the plan's admitted patients' ids to their person.
func (g *gen) patients() map[string]Person {
	out := map[string]Person{}
	for _, p := range g.plan.People {
		if st := g.state[p.Key]; st != nil && st.patientID != "" {
			out[st.patientID] = p
		}
	}
	return out
}

// charges lists a clinic's charges of the plan's patients.
func (g *gen) charges(ctx context.Context, clinicID string, mine map[string]Person) ([]*billingv1.Charge, error) {
	var out []*billingv1.Charge
	req := &billingv1.ListChargesRequest{ClinicId: clinicID, Limit: 500}
	for {
		resp, err := g.charge.ListCharges(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, fmt.Errorf("list charges: %w", err)
		}
		for _, c := range resp.Msg.GetCharges() {
			if _, ok := mine[c.GetPatientId()]; ok {
				out = append(out, c)
			}
		}
		if req.PageToken = resp.Msg.GetNextPageToken(); req.PageToken == "" {
			return out, nil
		}
	}
}

// claim waits until billing has made the charges the attendance calls for, then runs a
// claim run for each clinic and insurer.
func (g *gen) claim(ctx context.Context, expect map[int]int) error {
	mine := g.patients()
	for ci, c := range g.plan.Clinics {
		// Billing makes them from scheduling's events: wait until they are all there, or
		// until their number has not moved for Settle (a miscount here must not stall the
		// run: the charges still left go on the next claim run).
		want, last, moved, n := expect[ci], -1, time.Now(), 0
		err := stack.Poll(ctx, Wait, fmt.Sprintf("%d charges at clinic %s", want, c.ID), func() (bool, error) {
			cs, err := g.charges(ctx, c.ID, mine)
			if err != nil {
				return false, err
			}
			n = 0
			for _, ch := range cs {
				if ch.GetStatus() != billingv1.ChargeStatus_CHARGE_STATUS_VOID && ch.GetProcedureCode() != "" {
					n++
				}
			}
			if n != last {
				last, moved = n, time.Now()
			}
			return n >= want || time.Since(moved) > Settle, nil
		})
		if err == nil && n < want {
			err = fmt.Errorf("%d of the %d charges expected at clinic %s after %s without a new one", n, want, c.ID, Settle)
		}
		if err != nil {
			g.report.Warnings = append(g.report.Warnings, err.Error())
		}
		for _, pp := range g.plan.Payers {
			if pp.Kind == "self_pay" {
				continue
			}
			resp, err := g.claims.CreateClaimFiles(ctx, connect.NewRequest(&billingv1.CreateClaimFilesRequest{ClinicId: c.ID, PayerId: pp.Code}))
			if err != nil {
				return fmt.Errorf("claim run for %s at %s: %w", pp.Code, c.ID, err)
			}
			g.report.ClaimFiles += len(resp.Msg.GetFiles())
			for _, h := range resp.Msg.GetHeld() {
				g.report.HeldAtClaimRun[h.GetReason()] += int(h.GetCharges())
			}
		}
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// The payers' answers.

var carcs = map[string][]string{
	PayerMedicaid:  {"197", "16", "50", "29"},
	PayerSummit:    {"50", "16", "29", "197"},
	PayerBluewater: {"50", "16", "197", "29"},
}

// remit answers every submitted claim of the plan's insurers with an 835 per payer and
// clinic, and posts it.
func (g *gen) remit(ctx context.Context) error {
	mine := g.patients()
	payers := map[string]PayerPlan{}
	for _, pp := range g.plan.Payers {
		payers[pp.Code] = pp
	}
	for ci, c := range g.plan.Clinics {
		resp, err := g.claims.ListClaims(ctx, connect.NewRequest(&billingv1.ListClaimsRequest{ClinicId: c.ID}))
		if err != nil {
			return fmt.Errorf("list claims: %w", err)
		}
		seen := map[string]bool{} // patient|payer with an earlier answered claim (deductible met)
		var open []*billingv1.ClaimInfo
		for _, cl := range resp.Msg.GetClaims() {
			if _, ok := mine[cl.GetPatientId()]; !ok {
				continue
			}
			if cl.GetStatus() == billingv1.ClaimStatus_CLAIM_STATUS_SUBMITTED {
				if (cl.GetFrequencyCode() == "1" || cl.GetFrequencyCode() == "") && cl.GetLastServiceDate() <= g.date(ci, g.plan.Spec.PayerLagDays) {
					open = append(open, cl)
				}
			} else {
				seen[cl.GetPatientId()+"|"+cl.GetPayerId()] = true
			}
		}
		slices.SortFunc(open, func(a, b *billingv1.ClaimInfo) int {
			return cmp.Or(strings.Compare(a.GetFirstServiceDate(), b.GetFirstServiceDate()), strings.Compare(a.GetControlNumber(), b.GetControlNumber()))
		})
		for _, pp := range g.plan.Payers {
			var rc []RemitClaim
			for _, cl := range open {
				if cl.GetPayerId() != pp.Code {
					continue
				}
				k := cl.GetPatientId() + "|" + cl.GetPayerId()
				rc = append(rc, g.answer(pp, cl, mine[cl.GetPatientId()], !seen[k]))
				seen[k] = true
			}
			if len(rc) == 0 {
				continue
			}
			ensureDenial(rc, carcs[pp.Code][0])
			ctrl := int(g.now.Unix()%900_000_000) + ci*10 + len(g.report.Remittances)
			r := Remittance{PayerName: pp.Name, PayerX12ID: pp.X12ID, PayeeName: c.Name, PayeeNPI: "1990000014",
				Control: ctrl, Trace: fmt.Sprintf("%s%d", strings.ToUpper(pp.X12ID), ctrl), Date: g.now, Claims: rc}
			content := Write835(r)
			up, err := g.remitc.UploadRemittance(ctx, connect.NewRequest(&billingv1.UploadRemittanceRequest{
				Content: content, FileName: fmt.Sprintf("835-%s-%d.x12", pp.Code, ctrl)}))
			if err != nil {
				return fmt.Errorf("upload the %s 835 for %s: %w", pp.Code, c.ID, err)
			}
			s := up.Msg.GetSummary()
			if len(s.GetDeviations()) > 0 {
				d := s.GetDeviations()[0]
				return fmt.Errorf("billing read the %s 835 with %d deviation(s), first %s at %s (expected %d, actual %d) %s",
					pp.Code, len(s.GetDeviations()), d.GetRule(), d.GetSegment(), d.GetExpected(), d.GetActual(), d.GetDetail())
			}
			g.report.Remittances = append(g.report.Remittances, RemittanceReport{Payer: pp.Code, ClinicID: c.ID,
				RemittanceID: s.GetRemittanceId(), Claims: int(s.GetClaims()), Lines: int(s.GetServiceLines()),
				PaidCents: s.GetTotalPaidCents(), MatchedClaims: int(s.GetMatchedClaims()), WorkItems: int(s.GetWorkItems())})
		}
	}
	return nil
}

// answer is the payer's adjudication of one claim.
func (g *gen) answer(pp PayerPlan, cl *billingv1.ClaimInfo, p Person, firstClaim bool) RemitClaim {
	out := RemitClaim{Control: cl.GetControlNumber(), Status: "1", FilingIndicator: "12",
		PayerClaimNumber: pp.X12ID + strings.TrimPrefix(cl.GetControlNumber(), "T"),
		FacilityCode:     "11", PatientFamily: p.Family, PatientGiven: p.Given, MemberID: p.MemberID}
	if pp.Kind == "medicaid" {
		out.FilingIndicator = "MC"
	}
	if cl.GetClaimType() == billingv1.ClaimType_CLAIM_TYPE_INSTITUTIONAL {
		out.FacilityCode = "89"
	}
	// Rolls name the person's key, not the ids the services assigned, so another database
	// gets the same answers.
	whole := g.plan.roll("claim", p.Key, cl.GetFirstServiceDate(), pp.Code) < 3
	deductible := int64(0)
	if firstClaim {
		deductible = pp.DeductibleCent
	}
	for _, l := range cl.GetLines() {
		line := RemitLine{Procedure: l.GetProcedureCode(), RevenueCode: l.GetRevenueCode(), Units: l.GetUnits(), Date: l.GetServiceDate(),
			LineControl: l.GetLineControlNumber(), Charged: l.GetChargeCents()}
		roll := g.plan.roll("line", p.Key, l.GetServiceDate(), l.GetProcedureCode())
		switch {
		case whole || roll < 8:
			reason := carcs[pp.Code][roll%len(carcs[pp.Code])]
			if whole {
				reason = carcs[pp.Code][0]
			}
			line.Adjustments = []Adjustment{{"CO", reason, line.Charged}}
		default:
			allowed := line.Charged * pp.AllowedPercent / 100
			adj := []Adjustment{{"CO", "45", line.Charged - allowed}}
			pay := allowed
			if d := min(deductible, pay); d > 0 {
				adj = append(adj, Adjustment{"PR", "1", d})
				deductible -= d
				pay -= d
			}
			if pp.Coinsurance > 0 && pay > 0 {
				co := pay * pp.Coinsurance / 100
				adj = append(adj, Adjustment{"PR", "2", co})
				pay -= co
			}
			if pp.CopayCents > 0 && pay > 0 {
				co := min(pp.CopayCents, pay)
				adj = append(adj, Adjustment{"PR", "3", co})
				pay -= co
			}
			if roll >= 97 && pay > 1000 {
				// The payer paid an old fee schedule: short by $10 with an adjustment the
				// contract does not allow (OA), the underpayment queue's work.
				adj = append(adj, Adjustment{"OA", "45", 1000})
				pay -= 1000
			}
			line.Paid, line.Adjustments = pay, adj
		}
		out.Lines = append(out.Lines, line)
	}
	if whole {
		out.Status = "4"
	}
	return out
}

// work is billing staff's first pass over the new denials and underpayments: a timely-filing
// denial is written off (the limit passed), an authorization denial is written off or
// appealed, a medical-necessity denial appealed (some of those appeals already won),
// missing information left open for someone to fix, and about half of the $10
// underpayments written off as small balances. The rest stays open for the dashboard's users.
func (g *gen) work(ctx context.Context) error {
	type act struct {
		item             *billingv1.WorkItem
		writeOff, appeal string
		won              bool
	}
	var acts []act
	for _, c := range g.plan.Clinics {
		claims, err := g.claims.ListClaims(ctx, connect.NewRequest(&billingv1.ListClaimsRequest{ClinicId: c.ID}))
		if err != nil {
			return fmt.Errorf("list claims: %w", err)
		}
		mine := g.patients()
		owner := map[string]string{} // claim id -> person key
		for _, cl := range claims.Msg.GetClaims() {
			if p, ok := mine[cl.GetPatientId()]; ok {
				owner[cl.GetClaimId()] = p.Key
			}
		}
		for _, q := range []string{"denial", "underpayment"} {
			items, err := g.remitc.ListWorkItems(ctx, connect.NewRequest(&billingv1.ListWorkItemsRequest{Queue: q, ClinicId: c.ID, Status: "open"}))
			if err != nil {
				return fmt.Errorf("list %s items: %w", q, err)
			}
			for _, it := range items.Msg.GetItems() {
				key, ok := owner[it.GetClaimId()]
				if !ok || it.GetAppealStatus() == "appealed" {
					continue
				}
				roll := g.plan.roll("work", key, it.GetReason(), fmt.Sprint(it.GetAmountCents()))
				a := act{item: it}
				switch {
				case q == "underpayment":
					if roll < 50 {
						a.writeOff = "small_balance"
					}
				case strings.Contains(it.GetReason(), "-29"):
					a.writeOff = "timely_filing"
				case strings.Contains(it.GetReason(), "-197"):
					if roll < 50 {
						a.writeOff = "authorization"
					} else {
						a.appeal = "appealed"
					}
				case strings.Contains(it.GetReason(), "-50"):
					a.appeal, a.won = "appealed", roll < 30
				}
				if a.writeOff != "" || a.appeal != "" {
					acts = append(acts, a)
				}
			}
		}
	}
	return each(ctx, g.plan.Spec.Parallel, acts, func(ctx context.Context, a act) error {
		if a.writeOff != "" {
			_, err := g.remitc.WriteOff(ctx, connect.NewRequest(&billingv1.WriteOffRequest{WorkItemId: a.item.GetId(), Reason: a.writeOff,
				Note: "Demo network: written off on the first pass", IdempotencyKey: g.plan.Spec.Prefix + "-write-off-" + a.item.GetId()}))
			if connect.CodeOf(err) == connect.CodeUnimplemented {
				return nil // a billing without write-offs: leave the item open
			}
			if err != nil {
				return fmt.Errorf("write off item %s: %w", a.item.GetId(), err)
			}
			g.mu.Lock()
			g.report.WrittenOff++
			g.mu.Unlock()
			return nil
		}
		if _, err := g.remitc.UpdateWorkItem(ctx, connect.NewRequest(&billingv1.UpdateWorkItemRequest{Id: a.item.GetId(), AppealStatus: "appealed"})); err != nil {
			return fmt.Errorf("appeal item %s: %w", a.item.GetId(), err)
		}
		g.mu.Lock()
		g.report.Appealed++
		g.mu.Unlock()
		if a.won {
			if _, err := g.remitc.UpdateWorkItem(ctx, connect.NewRequest(&billingv1.UpdateWorkItemRequest{Id: a.item.GetId(), AppealStatus: "won", Status: "resolved"})); err != nil {
				return fmt.Errorf("close the appeal of item %s: %w", a.item.GetId(), err)
			}
		}
		return nil
	})
}

// ensureDenial denies one line when a file has none, so every payer's file shows the denial
// queue's work even in a small network.
func ensureDenial(rc []RemitClaim, reason string) {
	lines := 0
	for _, c := range rc {
		lines += len(c.Lines)
	}
	if lines < 2 {
		return
	}
	for _, c := range rc {
		for _, l := range c.Lines {
			if l.Paid == 0 && l.Charged > 0 {
				return
			}
		}
	}
	c := &rc[len(rc)-1]
	l := &c.Lines[len(c.Lines)-1]
	l.Paid, l.Adjustments = 0, []Adjustment{{"CO", reason, l.Charged}}
	if len(c.Lines) == 1 {
		c.Status = "4"
	}
}

// ---------------------------------------------------------------------------------------
// Helpers.

// each runs fn on every item, at most n at once, and returns the first error (the others
// are cancelled).
func each[T any](ctx context.Context, n int, items []T, fn func(context.Context, T) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, it := range items {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(ctx, it); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

func bearer(tok string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+tok)
			return next(ctx, req)
		}
	}
}
