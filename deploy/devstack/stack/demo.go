package stack

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/auth"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/intake/v1/intakev1connect"
)

// Token mints a dev token for the stack (issuer trellis-dev, audience trellis).
func (s *Stack) Token(subject string, roles, clinics []string, ttl time.Duration) (string, error) {
	return auth.MintDev([]byte(s.Opts.DevKey), "trellis-dev", "trellis", subject, roles, clinics, ttl)
}

// The demo clinics that `intake seed-demo` upserts (ids as in services/intake/demo).
const (
	riverside   = "0190a000-0000-7000-8000-000000000001" // America/Chicago
	lakeview    = "0190a000-0000-7000-8000-000000000002" // America/New_York
	desertBloom = "0190a000-0000-7000-8000-000000000003" // America/Phoenix
)

// Short names of the referral statuses, in funnel order.
const (
	statusNew         = intakev1.ReferralStatus_REFERRAL_STATUS_NEW
	statusContacted   = intakev1.ReferralStatus_REFERRAL_STATUS_CONTACTED
	statusScreened    = intakev1.ReferralStatus_REFERRAL_STATUS_SCREENED
	statusAssessed    = intakev1.ReferralStatus_REFERRAL_STATUS_ASSESSED
	statusAdmitted    = intakev1.ReferralStatus_REFERRAL_STATUS_ADMITTED
	statusReferredOut = intakev1.ReferralStatus_REFERRAL_STATUS_REFERRED_OUT
	statusClosed      = intakev1.ReferralStatus_REFERRAL_STATUS_CLOSED
)

// DemoPerson is a fictional person in the demo referral queue, and the stage the demo walks
// their referral to.
type DemoPerson struct {
	Key                  string // stable slug; the idempotency keys are derived from it
	Given, Family        string
	DOB                  string // "YYYY-MM-DD"; may be empty before an assessment
	Email, Phone         string // at least one
	ClinicID             string
	Source               intakev1.ReferralSource
	Track                string // program track code: "adult-day" or "adult-evening"
	DaysAgo              int    // first contact, in days before the run that creates the referral
	Target               intakev1.ReferralStatus
	Level                string // the ASAM level their assessment comes to: "2.1" or "3.7-WM"
	ReferOutDestination  string // for Target referred out: where to, and why
	ReferOutReason       string
	CloseReason          string // for Target closed
	MedicaidMemberNumber string // for Target admitted: their primary coverage
	StartDaysAgo         int    // for Target admitted: the program started this many days before the first run (0: in 3 days)
}

// DemoPeople are the fixed demo referrals: four admitted (with consent and coverage; one of
// them started two weeks before the first run, for the revenue-cycle demo) and one at each
// other stage, so the queue has something in every column. They are created once per
// database; later runs find them (by clinic, name, email and phone) and change nothing.
var DemoPeople = []DemoPerson{
	{Key: "alex-rivera", Given: "Alex", Family: "Rivera", DOB: "1988-04-12", Email: "alex.rivera@example.com", Phone: "+13125550101",
		ClinicID: riverside, Source: intakev1.ReferralSource_REFERRAL_SOURCE_SELF, Track: "adult-evening", DaysAgo: 5,
		Target: statusAdmitted, Level: "2.1", MedicaidMemberNumber: "IL-4410-2201"},
	{Key: "sam-okafor", Given: "Sam", Family: "Okafor", DOB: "1995-09-30", Email: "sam.okafor@example.com",
		ClinicID: lakeview, Source: intakev1.ReferralSource_REFERRAL_SOURCE_HOSPITAL, Track: "adult-day", DaysAgo: 4,
		Target: statusAdmitted, Level: "2.1", MedicaidMemberNumber: "IL-4410-2202"},
	{Key: "jordan-lee", Given: "Jordan", Family: "Lee", DOB: "1979-01-05", Email: "jordan.lee@example.com", Phone: "+16025550103",
		ClinicID: desertBloom, Source: intakev1.ReferralSource_REFERRAL_SOURCE_COURT, Track: "adult-evening", DaysAgo: 3,
		Target: statusAdmitted, Level: "2.1", MedicaidMemberNumber: "IL-4410-2203"},
	{Key: billingDemoKey, Given: "Morgan", Family: "Ellis", DOB: "1986-05-19", Email: "morgan.ellis@example.com",
		ClinicID: riverside, Source: intakev1.ReferralSource_REFERRAL_SOURCE_SELF, Track: "adult-day", DaysAgo: 20,
		Target: statusAdmitted, Level: "2.1", MedicaidMemberNumber: "IL-4410-2204", StartDaysAgo: 14},
	{Key: "taylor-brooks", Given: "Taylor", Family: "Brooks", DOB: "1991-11-21", Email: "taylor.brooks@example.com",
		ClinicID: riverside, Source: intakev1.ReferralSource_REFERRAL_SOURCE_FAMILY, Track: "adult-day", DaysAgo: 2,
		Target: statusAssessed, Level: "2.1"},
	{Key: "riley-chen", Given: "Riley", Family: "Chen", DOB: "1984-07-08", Phone: "+13125550105",
		ClinicID: riverside, Source: intakev1.ReferralSource_REFERRAL_SOURCE_HOSPITAL, Track: "adult-evening", DaysAgo: 3,
		Target: statusReferredOut, Level: "3.7-WM",
		ReferOutDestination: "Northshore Withdrawal Management Unit", ReferOutReason: "Needs medically monitored withdrawal management before IOP"},
	{Key: "jamie-novak", Given: "Jamie", Family: "Novak", DOB: "1999-02-14", Email: "jamie.novak@example.com",
		ClinicID: desertBloom, Source: intakev1.ReferralSource_REFERRAL_SOURCE_EMPLOYER, Track: "adult-day", DaysAgo: 1,
		Target: statusScreened},
	{Key: "drew-patel", Given: "Drew", Family: "Patel", Email: "drew.patel@example.com", Phone: "+12125550107",
		ClinicID: lakeview, Source: intakev1.ReferralSource_REFERRAL_SOURCE_OTHER_CLINIC, Track: "adult-evening", DaysAgo: 2,
		Target: statusContacted},
	{Key: "quinn-harper", Given: "Quinn", Family: "Harper", Phone: "+13125550108",
		ClinicID: riverside, Source: intakev1.ReferralSource_REFERRAL_SOURCE_SELF, Track: "adult-evening", DaysAgo: 1,
		Target: statusNew},
	{Key: "avery-walsh", Given: "Avery", Family: "Walsh", Email: "avery.walsh@example.com",
		ClinicID: desertBloom, Source: intakev1.ReferralSource_REFERRAL_SOURCE_OTHER, Track: "adult-day", DaysAgo: 5,
		Target: statusClosed, CloseReason: "No answer after three calls and an email"},
}

// startDate is the first day of p's program: in 3 days, or StartDaysAgo days ago.
func (p DemoPerson) startDate(now time.Time) string {
	if p.StartDaysAgo > 0 {
		return now.AddDate(0, 0, -p.StartDaysAgo).Format(time.DateOnly)
	}
	return now.AddDate(0, 0, 3).Format(time.DateOnly)
}

// walkInPerson is the person who walks in on this run: admitted through the whole funnel, so
// every `make run` shows a fresh trace across the services and a new welcome email. The name
// and date of birth vary, so the walk-ins are not flagged as duplicates of each other.
func walkInPerson(now time.Time) DemoPerson {
	names := [][2]string{{"Casey", "Morgan"}, {"Robin", "Alvarez"}, {"Kai", "Nguyen"}, {"Dana", "Fischer"}, {"Emery", "Shah"}, {"Parker", "Kowalski"}}
	n := now.Unix()
	name := names[now.Nanosecond()/1000%len(names)]
	stamp := now.Format("20060102-150405")
	return DemoPerson{
		Key: "walk-in-" + now.Format("20060102-150405.000000"), Given: name[0], Family: name[1],
		DOB:   time.Date(1965+int(n%40), time.Month(1+n%12), 1+int(n%28), 0, 0, 0, 0, time.UTC).Format(time.DateOnly),
		Email: "walk-in-" + stamp + "@example.com", ClinicID: riverside, Source: intakev1.ReferralSource_REFERRAL_SOURCE_SELF,
		Track: "adult-evening", Target: statusAdmitted, Level: "2.1", MedicaidMemberNumber: "IL-9" + stamp[len(stamp)-6:],
	}
}

// demoAssessments are ASAM ratings (dimensions 1 to 6) that the intake rules turn into the
// level named: moderate risks a person can manage at home are intensive outpatient (2.1); a
// withdrawal risk of 3 with detox needed is medically monitored withdrawal management first.
var demoAssessments = map[string]struct {
	ratings    [6]int32
	withdrawal intakev1.WithdrawalStatus
}{
	"2.1":    {[6]int32{1, 1, 2, 2, 2, 2}, intakev1.WithdrawalStatus_WITHDRAWAL_STATUS_NO_DETOX_NEEDED},
	"3.7-WM": {[6]int32{3, 1, 2, 2, 3, 2}, intakev1.WithdrawalStatus_WITHDRAWAL_STATUS_DETOX_NEEDED},
}

// funnelPath is the way a referral goes to each target status, from new.
func funnelPath(target intakev1.ReferralStatus) []intakev1.ReferralStatus {
	switch target {
	case statusAdmitted, statusReferredOut:
		return []intakev1.ReferralStatus{statusNew, statusContacted, statusScreened, statusAssessed, target}
	case statusClosed:
		return []intakev1.ReferralStatus{statusNew, statusContacted, statusClosed}
	default:
		path := []intakev1.ReferralStatus{statusNew, statusContacted, statusScreened, statusAssessed}
		return path[:slices.Index(path, target)+1]
	}
}

// DemoSummary is what the demo left in intake.
type DemoSummary struct {
	WalkIn   string                          // the walk-in's referral id
	ByStatus map[intakev1.ReferralStatus]int // every referral in intake, by status
}

// Open is the number of referrals still being worked (new to assessed).
func (d DemoSummary) Open() int {
	return d.ByStatus[statusNew] + d.ByStatus[statusContacted] + d.ByStatus[statusScreened] + d.ByStatus[statusAssessed]
}

// SeedDemo walks the demo people to their stage and a new walk-in to admission, through
// intake's API with an admin dev token. It is idempotent across runs and days: it reads each
// referral's status first and makes only the moves still missing, with fixed idempotency keys.
func (s *Stack) SeedDemo(ctx context.Context) (DemoSummary, error) {
	tok, err := s.Token("devstack-demo", []string{"admin"}, []string{auth.AllClinics}, time.Hour)
	if err != nil {
		return DemoSummary{}, err
	}
	d := demo{client: intakev1connect.NewIntakeServiceClient(http.DefaultClient, s.URL("intake"),
		connect.WithInterceptors(bearer(tok))), now: time.Now().UTC()}
	existing, err := d.referrals(ctx)
	if err != nil {
		return DemoSummary{}, err
	}
	for _, p := range DemoPeople {
		if _, err := d.walk(ctx, p, findReferral(existing, p)); err != nil {
			return DemoSummary{}, fmt.Errorf("demo referral %s: %w", p.Key, err)
		}
	}
	walkIn, err := d.walk(ctx, walkInPerson(d.now), nil)
	if err != nil {
		return DemoSummary{}, fmt.Errorf("demo walk-in: %w", err)
	}
	all, err := d.referrals(ctx)
	if err != nil {
		return DemoSummary{}, err
	}
	sum := DemoSummary{WalkIn: walkIn.GetReferralId(), ByStatus: map[intakev1.ReferralStatus]int{}}
	for _, r := range all {
		sum.ByStatus[r.GetStatus()]++
	}
	return sum, nil
}

type demo struct {
	client intakev1connect.IntakeServiceClient
	now    time.Time
}

// walk takes p's referral (r, or a new one when r is nil) to p.Target one move at a time,
// starting from the status it has now; an admitted person then gets a consent and a coverage.
// A referral that is past its target, or off the way to it (an operator moved it by hand), is
// left as it is.
func (d demo) walk(ctx context.Context, p DemoPerson, r *intakev1.Referral) (*intakev1.Referral, error) {
	var err error
	if r == nil {
		if r, err = d.createReferral(ctx, p); err != nil {
			return nil, err
		}
	}
	path := funnelPath(p.Target)
	for {
		i := slices.Index(path, r.GetStatus())
		if i < 0 || i == len(path)-1 {
			break
		}
		next, err := d.move(ctx, p, r, path[i+1])
		if err != nil {
			return nil, fmt.Errorf("move referral %s to %s: %w", r.GetReferralId(), path[i+1], err)
		}
		r = next
	}
	if p.Target == statusAdmitted && r.GetStatus() == statusAdmitted {
		if err := d.consent(ctx, p, r.GetPatientId()); err != nil {
			return nil, err
		}
		if err := d.coverage(ctx, p, r.GetPatientId()); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (d demo) createReferral(ctx context.Context, p DemoPerson) (*intakev1.Referral, error) {
	track := intakev1.TrackTime_TRACK_TIME_EVENING
	if strings.HasSuffix(p.Track, "-day") {
		track = intakev1.TrackTime_TRACK_TIME_DAY
	}
	req := &intakev1.CreateReferralRequest{
		ClinicId: p.ClinicID, Source: p.Source, GivenName: p.Given, FamilyName: p.Family, DateOfBirth: p.DOB,
		Phone: p.Phone, Email: p.Email, PreferredTrack: track, IdempotencyKey: key(p, "referral"),
	}
	if p.DaysAgo > 0 {
		req.FirstContactAt = timestamppb.New(d.now.Add(-time.Duration(p.DaysAgo) * 24 * time.Hour))
	}
	resp, err := d.client.CreateReferral(ctx, connect.NewRequest(req))
	if err != nil {
		return nil, fmt.Errorf("create referral: %w", err)
	}
	return resp.Msg.GetReferral(), nil
}

// move makes one move of the funnel and returns the referral as it is after it.
func (d demo) move(ctx context.Context, p DemoPerson, r *intakev1.Referral, to intakev1.ReferralStatus) (*intakev1.Referral, error) {
	id := r.GetReferralId()
	switch to {
	case statusContacted, statusScreened, statusClosed:
		reason := map[intakev1.ReferralStatus]string{
			statusContacted: "Called back; phone screening booked",
			statusScreened:  "Phone screening done; ASAM assessment booked",
			statusClosed:    p.CloseReason,
		}[to]
		resp, err := d.client.ChangeReferralStatus(ctx, connect.NewRequest(&intakev1.ChangeReferralStatusRequest{
			ReferralId: id, Status: to, Reason: reason}))
		if err != nil {
			return nil, err
		}
		return resp.Msg.GetReferral(), nil
	case statusAssessed:
		a, ok := demoAssessments[p.Level]
		if !ok {
			return nil, fmt.Errorf("no demo assessment for level %q", p.Level)
		}
		req := &intakev1.RecordAssessmentRequest{ReferralId: id, Population: intakev1.Population_POPULATION_ADULT,
			Withdrawal: a.withdrawal, IdempotencyKey: key(p, "assessment")}
		for i, rating := range a.ratings {
			req.Dimensions = append(req.Dimensions, &intakev1.DimensionRating{Dimension: int32(i + 1), Rating: rating})
		}
		resp, err := d.client.RecordAssessment(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, err
		}
		if got := resp.Msg.GetAssessment().GetFinalLevel(); got != p.Level {
			return nil, fmt.Errorf("the assessment came to level %s, the demo expects %s (did the ASAM rules change?)", got, p.Level)
		}
	case statusAdmitted:
		_, err := d.client.AdmitPatient(ctx, connect.NewRequest(&intakev1.AdmitPatientRequest{
			ReferralId: id, GivenName: p.Given, FamilyName: p.Family, DateOfBirth: p.DOB, ContactEmail: p.Email,
			ClinicId: p.ClinicID, ProgramTrack: p.Track, StartDate: p.startDate(d.now),
			IdempotencyKey: key(p, "admission")}))
		if err != nil {
			return nil, err
		}
	case statusReferredOut:
		resp, err := d.client.ReferOut(ctx, connect.NewRequest(&intakev1.ReferOutRequest{
			ReferralId: id, Level: p.Level, Destination: p.ReferOutDestination, Reason: p.ReferOutReason,
			IdempotencyKey: key(p, "refer-out")}))
		if err != nil {
			return nil, err
		}
		return resp.Msg.GetReferral(), nil
	default:
		return nil, fmt.Errorf("the demo cannot move a referral to %s", to)
	}
	resp, err := d.client.GetReferral(ctx, connect.NewRequest(&intakev1.GetReferralRequest{ReferralId: id}))
	if err != nil {
		return nil, err
	}
	return resp.Msg.GetReferral(), nil
}

// consent grants treatment and payment with email notifications, unless the patient has a
// consent already (even a revoked one: that was someone's decision).
func (d demo) consent(ctx context.Context, p DemoPerson, patientID string) error {
	list, err := d.client.ListConsents(ctx, connect.NewRequest(&intakev1.ListConsentsRequest{PatientId: patientID}))
	if err != nil {
		return fmt.Errorf("list consents: %w", err)
	}
	if len(list.Msg.GetConsents()) > 0 {
		return nil
	}
	_, err = d.client.GrantConsent(ctx, connect.NewRequest(&intakev1.GrantConsentRequest{
		PatientId: patientID,
		Scopes:    []intakev1.ConsentScope{intakev1.ConsentScope_CONSENT_SCOPE_TREATMENT, intakev1.ConsentScope_CONSENT_SCOPE_PAYMENT},
		Channels:  channels(p),
		// Texting needs the number to text (intake asks for it with the SMS channel).
		ConfidentialPhone: p.Phone,
		Language:          "en",
		IdempotencyKey:    key(p, "consent"),
	}))
	if err != nil {
		return fmt.Errorf("grant consent: %w", err)
	}
	return nil
}

// channels are the ones a demo person agrees to: email, and texts to the number they gave.
func channels(p DemoPerson) []intakev1.Channel {
	if p.Phone != "" {
		return []intakev1.Channel{intakev1.Channel_CHANNEL_EMAIL, intakev1.Channel_CHANNEL_SMS}
	}
	return []intakev1.Channel{intakev1.Channel_CHANNEL_EMAIL}
}

// coverage adds an eligible primary Medicaid coverage from the start of the year, unless the
// patient has a primary coverage already.
func (d demo) coverage(ctx context.Context, p DemoPerson, patientID string) error {
	list, err := d.client.ListCoverage(ctx, connect.NewRequest(&intakev1.ListCoverageRequest{PatientId: patientID}))
	if err != nil {
		return fmt.Errorf("list coverage: %w", err)
	}
	for _, c := range list.Msg.GetCoverages() {
		if c.GetPriority() == intakev1.CoveragePriority_COVERAGE_PRIORITY_PRIMARY {
			return nil
		}
	}
	_, err = d.client.SetCoverage(ctx, connect.NewRequest(&intakev1.SetCoverageRequest{
		PatientId: patientID, PayerId: "medicaid-il", Plan: "Illinois Medicaid", MemberId: p.MedicaidMemberNumber,
		SubscriberRelationship: intakev1.SubscriberRelationship_SUBSCRIBER_RELATIONSHIP_SELF,
		EffectiveFrom:          time.Date(d.now.Year(), time.January, 1, 0, 0, 0, 0, time.UTC).Format(time.DateOnly),
		Eligibility:            intakev1.Eligibility_ELIGIBILITY_ELIGIBLE,
		Priority:               intakev1.CoveragePriority_COVERAGE_PRIORITY_PRIMARY,
		IdempotencyKey:         key(p, "coverage"),
	}))
	if err != nil {
		return fmt.Errorf("set coverage: %w", err)
	}
	return nil
}

// referrals lists every referral in intake, oldest first contact first.
func (d demo) referrals(ctx context.Context) ([]*intakev1.Referral, error) {
	var out []*intakev1.Referral
	req := &intakev1.ListReferralsRequest{PageSize: 500}
	for {
		resp, err := d.client.ListReferrals(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, fmt.Errorf("list referrals: %w", err)
		}
		out = append(out, resp.Msg.GetReferrals()...)
		if req.PageToken = resp.Msg.GetNextPageToken(); req.PageToken == "" {
			return out, nil
		}
	}
}

// findReferral returns p's referral among rs (same clinic, name, email and phone), or nil.
func findReferral(rs []*intakev1.Referral, p DemoPerson) *intakev1.Referral {
	for _, r := range rs {
		if r.GetClinicId() == p.ClinicID && r.GetGivenName() == p.Given && r.GetFamilyName() == p.Family &&
			r.GetEmail() == p.Email && r.GetPhone() == p.Phone {
			return r
		}
	}
	return nil
}

// key is the idempotency key of one step of p's funnel (the subject devstack-demo scopes it).
func key(p DemoPerson, step string) string { return "devstack-demo-" + p.Key + "-" + step }

// bearer sets the Authorization header on every call.
func bearer(tok string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+tok)
			return next(ctx, req)
		}
	}
}
