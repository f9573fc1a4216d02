package demonet

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/money"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
)

// Report counts what the network holds, as the services answer it (except the attendance
// and sessions, which count what this run recorded).
type Report struct {
	Clinics int
	// Planned is the plan's people by stage.
	Planned map[Stage]int
	// Referrals is the plan's people by their referral status in intake (new, contacted,
	// screened, assessed, admitted, referred_out, closed).
	Referrals map[string]int
	// Enrollments is the plan's admitted patients by scheduling's enrollment status
	// (active, waitlisted; ended once discharged).
	Enrollments map[string]int
	// Tracks is every track of the plan's clinics with its seats taken and its waitlist
	// (everyone's, not only the plan's).
	Tracks []TrackReport
	// Group sessions and individual visits whose attendance this run recorded, and the
	// attendance by status (present, late, left_early, absent, excused).
	GroupSessions, IndividualSessions int
	Attendance                        map[string]int
	// Charges of the plan's patients by status (ready, held, submitted, paid, denied, void,
	// patient_billed), and their amount.
	Charges      map[string]int
	ChargedCents int64
	// Claim files this run wrote, charges held at its claim runs by reason, and the plan's
	// patients' claims by status.
	ClaimFiles     int
	HeldAtClaimRun map[string]int
	Claims         map[string]int
	// The 835 files this run posted.
	Remittances []RemittanceReport
	// Open work items at the plan's clinics, by queue (denial, underpayment, holds...), and
	// what this run's billing staff did with the new ones.
	WorkItems            map[string]int
	WrittenOff, Appealed int
	Warnings             []string
	Elapsed              time.Duration
}

// TrackReport is one track's fill.
type TrackReport struct {
	ClinicID, Clinic, Track string
	Capacity                int
	Enrolled, Waitlisted    int
}

// RemittanceReport is one posted 835.
type RemittanceReport struct {
	Payer, ClinicID, RemittanceID string
	Claims, Lines, MatchedClaims  int
	WorkItems                     int
	PaidCents                     int64
}

func newReport(p Plan) Report {
	return Report{Clinics: len(p.Clinics), Planned: p.Count(), Referrals: map[string]int{}, Enrollments: map[string]int{},
		Attendance: map[string]int{}, Charges: map[string]int{}, HeldAtClaimRun: map[string]int{}, Claims: map[string]int{},
		WorkItems: map[string]int{}}
}

// PaidCents is what the payers paid in this run's 835s.
func (r Report) PaidCents() (n int64) {
	for _, x := range r.Remittances {
		n += x.PaidCents
	}
	return n
}

func enumName(s, prefix string) string { return strings.ToLower(strings.TrimPrefix(s, prefix)) }

// readBack fills the report from what the services answer.
func (g *gen) readBack(ctx context.Context) error {
	r := &g.report
	emails := map[string]bool{}
	for _, p := range g.plan.People {
		emails[p.Email] = true
	}
	mine := g.patients()
	for _, c := range g.plan.Clinics {
		req := &intakev1.ListReferralsRequest{ClinicId: c.ID, PageSize: 500}
		for {
			resp, err := g.intake.ListReferrals(ctx, connect.NewRequest(req))
			if err != nil {
				return fmt.Errorf("list referrals: %w", err)
			}
			for _, ref := range resp.Msg.GetReferrals() {
				if emails[ref.GetEmail()] {
					r.Referrals[enumName(ref.GetStatus().String(), "REFERRAL_STATUS_")]++
				}
			}
			if req.PageToken = resp.Msg.GetNextPageToken(); req.PageToken == "" {
				break
			}
		}
		tracks, err := g.sched.ListTracks(ctx, connect.NewRequest(&schedulingv1.ListTracksRequest{ClinicId: c.ID}))
		if err != nil {
			return fmt.Errorf("list tracks: %w", err)
		}
		for _, t := range tracks.Msg.GetTracks() {
			r.Tracks = append(r.Tracks, TrackReport{ClinicID: c.ID, Clinic: c.Name, Track: t.GetTrack().GetTrackCode(),
				Capacity: int(t.GetTrack().GetCapacity()), Enrolled: int(t.GetEnrolled()), Waitlisted: int(t.GetWaitlisted())})
		}
		charges, err := g.charges(ctx, c.ID, mine)
		if err != nil {
			return err
		}
		for _, ch := range charges {
			r.Charges[enumName(ch.GetStatus().String(), "CHARGE_STATUS_")]++
			if ch.GetStatus() != billingv1.ChargeStatus_CHARGE_STATUS_VOID {
				r.ChargedCents += ch.GetAmountCents()
			}
		}
		claims, err := g.claims.ListClaims(ctx, connect.NewRequest(&billingv1.ListClaimsRequest{ClinicId: c.ID}))
		if err != nil {
			return fmt.Errorf("list claims: %w", err)
		}
		for _, cl := range claims.Msg.GetClaims() {
			if _, ok := mine[cl.GetPatientId()]; ok {
				r.Claims[enumName(cl.GetStatus().String(), "CLAIM_STATUS_")]++
			}
		}
		for _, q := range []string{"denial", "underpayment", "overpayment", "unmatched", "holds"} {
			items, err := g.remitc.ListWorkItems(ctx, connect.NewRequest(&billingv1.ListWorkItemsRequest{Queue: q, ClinicId: c.ID, Status: "open"}))
			if err != nil {
				return fmt.Errorf("list %s work items: %w", q, err)
			}
			r.WorkItems[q] += len(items.Msg.GetItems())
		}
	}
	var admitted []Person
	for _, p := range g.plan.People {
		if p.Stage.Admitted() {
			admitted = append(admitted, p)
		}
	}
	return each(ctx, g.plan.Spec.Parallel, admitted, func(ctx context.Context, p Person) error {
		status := "ended"
		resp, err := g.sched.GetEnrollment(ctx, connect.NewRequest(&schedulingv1.GetEnrollmentRequest{PatientId: g.state[p.Key].patientID}))
		switch {
		case connect.CodeOf(err) == connect.CodeNotFound:
		case err != nil:
			return err
		default:
			status = resp.Msg.GetEnrollment().GetStatus()
		}
		g.mu.Lock()
		r.Enrollments[status]++
		g.mu.Unlock()
		return nil
	})
}

// String is the report for people: what the network holds and where to look.
func (r Report) String() string {
	var b strings.Builder
	count := func(m map[string]int, keys ...string) string {
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%d %s", m[k], strings.ReplaceAll(k, "_", " ")))
		}
		var rest []string
		for k := range m {
			if !slices.Contains(keys, k) {
				rest = append(rest, k)
			}
		}
		slices.Sort(rest)
		for _, k := range rest {
			parts = append(parts, fmt.Sprintf("%d %s", m[k], strings.ReplaceAll(k, "_", " ")))
		}
		return strings.Join(parts, ", ")
	}
	people := 0
	for _, n := range r.Planned {
		people += n
	}
	fmt.Fprintf(&b, "Demo network: %d clinics, %d people.\n", r.Clinics, people)
	fmt.Fprintf(&b, "  referrals: %s\n", count(r.Referrals, "new", "contacted", "screened", "assessed", "admitted", "referred_out", "closed"))
	fmt.Fprintf(&b, "  admitted: %s (discharged: %d completed, %d dropped out)\n", count(r.Enrollments, "active", "waitlisted", "ended"),
		r.Planned[StageCompleted], r.Planned[StageDroppedOut])
	width := 0
	for _, t := range r.Tracks {
		width = max(width, len(t.Clinic))
	}
	for _, t := range r.Tracks {
		fmt.Fprintf(&b, "    %-*s %-21s %2d/%2d seats, %d waiting\n", width, t.Clinic, t.Track, t.Enrolled, t.Capacity, t.Waitlisted)
	}
	fmt.Fprintf(&b, "  attendance of the sessions that have ended: %d group sessions, %d individual visits: %s\n", r.GroupSessions, r.IndividualSessions,
		count(r.Attendance, "present", "late", "left_early", "absent", "excused"))
	fmt.Fprintf(&b, "  charges: %s (%s)\n", count(r.Charges, "ready", "held", "submitted", "paid", "denied", "patient_billed", "void"), money.Cents(r.ChargedCents))
	fmt.Fprintf(&b, "  claims: %d files this run; %s\n", r.ClaimFiles, count(r.Claims, "submitted", "paid", "partially_paid", "denied"))
	lines := 0
	for _, x := range r.Remittances {
		lines += x.Lines
	}
	fmt.Fprintf(&b, "  remittances: %d 835 files posted this run, %d lines, %s paid, no deviations\n", len(r.Remittances), lines, money.Cents(r.PaidCents()))
	fmt.Fprintf(&b, "  open work: %s (this run: %d written off, %d appealed)\n",
		count(r.WorkItems, "denial", "underpayment", "overpayment", "unmatched", "holds"), r.WrittenOff, r.Appealed)
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "  warning: %s\n", w)
	}
	if r.Elapsed > 0 {
		fmt.Fprintf(&b, "  generated in %s\n", r.Elapsed.Round(100*time.Millisecond))
	}
	return b.String()
}
