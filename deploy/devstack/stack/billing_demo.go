package stack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/auth"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/intake/v1/intakev1connect"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1/schedulingv1connect"
)

// billingDemoKey is the demo person whose program started two weeks before the first run:
// the revenue-cycle demo records their attendance and claims it.
const billingDemoKey = "morgan-ellis"

// perDiemMinimum is the demo Medicaid contract's per-diem minimum (billing seed-demo).
const perDiemMinimum = 180 * time.Minute

// BillingDemo is what the revenue-cycle demo left in billing.
type BillingDemo struct {
	PatientID string
	ClinicID  string
	// Sessions attended so far, on how many days, and how many of those days reach the
	// per-diem minimum (3 hours).
	Sessions, Days, BillableDays int
	// Charges that are not void: one per billable day under the demo's Medicaid per-diem
	// contract (a day below the minimum is billed nothing).
	Charges int
	// The claim files written by this run (none when nothing new was ready).
	Files []*billingv1.ClaimFileInfo
}

// SeedBillingDemo takes the demo patient whose program started two weeks ago through the
// revenue cycle up to the claim, through the services' APIs: scheduling records every session
// of theirs that has ended as attended; billing (which learns of it by events) turns each day
// into a Medicaid per-diem charge; the patient's diagnosis is coded; and a claim run writes
// the 837I file. Run after SeedDemo; every step is idempotent, so each run claims only the
// sessions that ended since the last one.
func (s *Stack) SeedBillingDemo(ctx context.Context) (BillingDemo, error) {
	tok, err := s.Token("devstack-demo", []string{"admin"}, []string{auth.AllClinics}, time.Hour)
	if err != nil {
		return BillingDemo{}, err
	}
	opts := connect.WithInterceptors(bearer(tok))
	intake := intakev1connect.NewIntakeServiceClient(http.DefaultClient, s.URL("intake"), opts)
	sched := schedulingv1connect.NewSchedulingServiceClient(http.DefaultClient, s.URL("scheduling"), opts)
	charges := billingv1connect.NewChargesServiceClient(http.DefaultClient, s.URL("billing"), opts)
	claims := billingv1connect.NewClaimsServiceClient(http.DefaultClient, s.URL("billing"), opts)

	var person DemoPerson
	for _, p := range DemoPeople {
		if p.Key == billingDemoKey {
			person = p
		}
	}
	refs, err := demo{client: intake}.referrals(ctx)
	if err != nil {
		return BillingDemo{}, err
	}
	r := findReferral(refs, person)
	if r == nil || r.GetStatus() != intakev1.ReferralStatus_REFERRAL_STATUS_ADMITTED || r.GetPatientId() == "" {
		return BillingDemo{}, errors.New("the revenue-cycle demo patient is not admitted (run SeedDemo first)")
	}
	out := BillingDemo{PatientID: r.GetPatientId(), ClinicID: person.ClinicID}

	// Scheduling enrolls the patient from PatientAdmitted: wait for the appointments.
	var appts []*schedulingv1.Appointment
	err = Poll(ctx, 30*time.Second, "the demo patient's appointments", func() (bool, error) {
		resp, err := sched.ListPatientSchedule(ctx, connect.NewRequest(&schedulingv1.ListPatientScheduleRequest{PatientId: out.PatientID}))
		if connect.CodeOf(err) == connect.CodeNotFound {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		appts = resp.Msg.GetAppointments()
		return len(appts) > 0, nil
	})
	if err != nil {
		return out, err
	}
	now := time.Now()
	minutes := map[string]time.Duration{} // attended, by clinic-local date
	for _, a := range appts {
		if a.GetStatus() != schedulingv1.AppointmentStatus_APPOINTMENT_STATUS_SCHEDULED || !a.GetEndsAt().AsTime().Before(now) {
			continue
		}
		_, err := sched.RecordAttendance(ctx, connect.NewRequest(&schedulingv1.RecordAttendanceRequest{
			Entry: &schedulingv1.AttendanceEntry{AppointmentId: a.GetAppointmentId(),
				Status: schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT},
			IdempotencyKey: key(person, "attended-"+a.GetAppointmentId()),
		}))
		if err != nil {
			return out, fmt.Errorf("record attendance: %w", err)
		}
		out.Sessions++
		minutes[a.GetLocalDate()] += a.GetEndsAt().AsTime().Sub(a.GetStartsAt().AsTime())
	}
	for _, m := range minutes {
		out.Days++
		if m >= perDiemMinimum {
			out.BillableDays++
		}
	}

	if _, err := claims.SetPatientDiagnoses(ctx, connect.NewRequest(&billingv1.SetPatientDiagnosesRequest{
		PatientId: out.PatientID, ClinicId: out.ClinicID, Codes: []string{"F1020"}})); err != nil {
		return out, fmt.Errorf("set diagnoses: %w", err)
	}
	// Billing makes the charges from scheduling's events, and decides them with its copies of
	// the coverage and consent intake announced: wait until every billable day has a charge
	// past those gates (ready, or already claimed on an earlier run).
	err = Poll(ctx, 30*time.Second, "a charge per billable day, ready to claim", func() (bool, error) {
		resp, err := charges.ListCharges(ctx, connect.NewRequest(&billingv1.ListChargesRequest{
			ClinicId: out.ClinicID, PatientId: out.PatientID, Limit: 500}))
		if err != nil {
			return false, err
		}
		out.Charges = 0
		for _, c := range resp.Msg.GetCharges() {
			switch c.GetStatus() {
			case billingv1.ChargeStatus_CHARGE_STATUS_VOID, billingv1.ChargeStatus_CHARGE_STATUS_HELD:
			default:
				out.Charges++
			}
		}
		return out.Charges >= out.BillableDays, nil
	})
	if err != nil {
		return out, err
	}
	run, err := claims.CreateClaimFiles(ctx, connect.NewRequest(&billingv1.CreateClaimFilesRequest{ClinicId: out.ClinicID}))
	if err != nil {
		return out, fmt.Errorf("claim run: %w", err)
	}
	out.Files = run.Msg.GetFiles()
	return out, nil
}

// Poll calls done every 200 ms until it reports true, fails, or timeout passes (then an error
// naming what it waited for).
func Poll(ctx context.Context, timeout time.Duration, what string, done func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
