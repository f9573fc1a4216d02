package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/rpc"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
)

const (
	costsConsumer              = "billing--costs"
	chargesAttendanceConsumer  = "billing--attendance"
	coverageConsumer           = "billing--coverage"
	subjectAttendanceRecorded  = "trellis.scheduling.attendance.recorded.v1"
	subjectAttendanceCorrected = "trellis.scheduling.attendance.corrected.v1"
	subjectProgramCompleted    = "trellis.scheduling.program.completed.v1"
	subjectCoverageChanged     = "trellis.intake.coverage.changed.v1"
)

type costsEnv struct {
	*servicetest.Service
	billing billingv1connect.BillingServiceClient
	costs   billingv1connect.CostsServiceClient
}

func startCosts(t *testing.T) *costsEnv {
	e := start(t)
	return &costsEnv{Service: e, billing: billingv1connect.NewBillingServiceClient(http.DefaultClient, e.URL),
		costs: billingv1connect.NewCostsServiceClient(http.DefaultClient, e.URL)}
}

func (e *costsEnv) tok(t *testing.T, roles []string, clinics ...string) string {
	return e.Token(t, "user-1", roles, clinics)
}

// wantFields fails unless err is invalid_argument naming exactly these fields (protovalidate
// rule ids are protovalidate's business).
func wantFields(t *testing.T, err error, fields ...string) {
	t.Helper()
	wantCode(t, err, connect.CodeInvalidArgument)
	var got []string
	for _, v := range rpc.Violations(err) {
		got = append(got, v.Field)
	}
	if len(got) != len(fields) {
		t.Fatalf("violations = %q, want fields %q", got, fields)
	}
	for i := range got {
		if got[i] != fields[i] {
			t.Fatalf("violations = %q, want fields %q", got, fields)
		}
	}
}

// attendance is one AttendanceRecorded version of a group session of the sud-iop program.
type attendance struct {
	appointment, patient, session, clinician, program, date string
	status                                                  schedulingv1.AttendanceStatus
	attended, scheduled, version                            int32
}

func (a attendance) event() *schedulingv1.AttendanceRecorded {
	starts, _ := time.Parse(time.DateOnly, a.date)
	return &schedulingv1.AttendanceRecorded{AppointmentId: a.appointment, PatientId: a.patient, ClinicId: clinicA,
		EnrollmentId: "0192f0c0-0000-7000-8000-00000000e000", ProgramCode: a.program, ServiceType: schedulingv1.ServiceType_SERVICE_TYPE_GROUP,
		ClinicianId: a.clinician, SessionId: a.session, LocalDate: a.date, StartsAt: timestamppb.New(starts.Add(14 * time.Hour)),
		Status: a.status, MinutesAttended: a.attended, ScheduledMinutes: a.scheduled, Version: a.version,
		RecordedAt: timestamppb.New(starts.Add(18 * time.Hour))}
}

func (e *costsEnv) publishAttendance(t *testing.T, a attendance) uint64 {
	env := envelope(t, a.event(), clinicA)
	subject := subjectAttendanceRecorded
	if a.version > 1 {
		subject = subjectAttendanceCorrected
	}
	return e.Publish(t, subject, env.GetEventId(), env, "")
}

// TestCostReport: attendance (with a correction, a redelivery and an out-of-order older
// version) and a completed program feed the cost report; charges come from the charges
// consumer (a Medicaid per-diem contract for one patient, none for the others).
func TestCostReport(t *testing.T) {
	e := startCosts(t)
	ctx := context.Background()
	admin := e.tok(t, []string{"billing"}, auth.AllClinics)

	// Configuration: Medicaid per diem $250.00 from 180 minutes; patient 1 covered by it.
	if _, err := e.billing.UpsertPayer(ctx, req(admin, &billingv1.UpsertPayerRequest{Payer: medicaid()})); err != nil {
		t.Fatal(err)
	}
	contract, err := e.billing.UpsertContract(ctx, req(admin, &billingv1.UpsertContractRequest{Contract: perDiemContract(clinicA)}))
	if err != nil {
		t.Fatal(err)
	}
	p1, p2, p3 := bus.NewID(), bus.NewID(), bus.NewID()
	cov := &intakev1.CoverageChanged{Coverage: &intakev1.Coverage{CoverageId: bus.NewID(), PatientId: p1, ClinicId: clinicA,
		PayerId: "medicaid-il", MemberId: "M1", EffectiveFrom: "2026-01-01", Priority: intakev1.CoveragePriority_COVERAGE_PRIORITY_PRIMARY,
		UpdatedAt: timestamppb.New(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))}}
	covEnv := servicetest.Envelope(t, cov, clinicA, "intake")
	e.Settled(t, "INTAKE", coverageConsumer, e.Publish(t, subjectCoverageChanged, covEnv.GetEventId(), covEnv, ""))

	// Rates: $60.00/h clinic default, $90.00/h for clinician-1; rent $3,000.00 in April.
	for _, r := range []*billingv1.SetCostRateRequest{
		{ClinicId: clinicA, HourlyCostCents: 6000},
		{ClinicId: clinicA, ClinicianId: "clinician-1", HourlyCostCents: 9000},
	} {
		if _, err := e.costs.SetCostRate(ctx, req(admin, r)); err != nil {
			t.Fatal(err)
		}
	}
	fixed, err := e.costs.SetFixedCost(ctx, req(admin, &billingv1.SetFixedCostRequest{ClinicId: clinicA, Month: "2026-04", Label: "rent", AmountCents: 300000}))
	if err != nil || fixed.Msg.GetMonth() != "2026-04" {
		t.Fatalf("fixed cost = %v, %v", fixed, err)
	}

	const mon, tue = "2026-04-06", "2026-04-07"
	s1, s2, s3 := "session-1", "session-2", "session-3"
	present := schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT
	p1Tue := attendance{bus.NewID(), p1, s2, "clinician-2", "sud-iop", tue, present, 180, 180, 1}
	events := []attendance{
		// Monday: session 1 (clinician-1, 180 min) with patients 1 and 2; session 3 (clinician-2,
		// 120 min, mh-iop) with patient 3.
		{bus.NewID(), p1, s1, "clinician-1", "sud-iop", mon, present, 180, 180, 1},
		{bus.NewID(), p2, s1, "clinician-1", "sud-iop", mon, present, 180, 180, 1},
		{bus.NewID(), p3, s3, "clinician-2", "mh-iop", mon, present, 120, 120, 1},
		// Tuesday: session 2 (clinician-2 at the default rate) with patients 1 and 2, and an
		// individual appointment of patient 2 without a session id (its own session).
		p1Tue,
		{bus.NewID(), p2, s2, "clinician-2", "sud-iop", tue, present, 180, 180, 1},
		{bus.NewID(), p2, "", "clinician-1", "sud-iop", tue, schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_LATE, 50, 60, 1},
	}
	for _, a := range events {
		e.publishAttendance(t, a)
	}
	// Patient 1 was in fact absent on Tuesday (version 2)...
	corrected := p1Tue
	corrected.status, corrected.attended, corrected.version = schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT, 0, 2
	e.publishAttendance(t, corrected)
	// ...then version 1 arrives again: redelivered as is (the inbox absorbs it) and re-sent
	// as a new event (older than the kept version: nothing changes).
	v1 := envelope(t, p1Tue.event(), clinicA)
	e.Publish(t, subjectAttendanceRecorded, v1.GetEventId(), v1, "")
	e.Publish(t, subjectAttendanceRecorded, "redelivery-"+v1.GetEventId(), v1, "")
	last := e.Publish(t, subjectAttendanceRecorded, bus.NewID(), envelope(t, p1Tue.event(), clinicA), "")
	e.Settled(t, "SCHEDULING", chargesAttendanceConsumer, last)

	// Patient 1 completes the program (delivered twice, as two events).
	done := &schedulingv1.ProgramCompleted{PatientId: p1, EnrollmentId: bus.NewID(), ClinicId: clinicA, ProgramCode: "sud-iop",
		CompletedOn: tue, Weeks: 6, WeeksMeetingMinimum: 6}
	for range 2 {
		d := envelope(t, done, clinicA)
		last = e.Publish(t, subjectProgramCompleted, d.GetEventId(), d, "")
	}
	e.Settled(t, "SCHEDULING", costsConsumer, last)

	if n := e.Count(t, "SELECT count(*) FROM delivered_sessions"); n != 4 {
		t.Fatalf("delivered sessions = %d, want 4", n)
	}
	if n := e.Count(t, "SELECT count(*) FROM patient_days"); n != 4 {
		t.Fatalf("patient-days = %d, want 4 (patient 1's Tuesday corrected to absent)", n)
	}
	if n := e.Count(t, "SELECT count(*) FROM patient_days WHERE patient_id = $1 AND local_date = $2", p1, tue); n != 0 {
		t.Fatal("patient 1's Tuesday is still an attended day")
	}
	if n := e.Count(t, "SELECT count(*) FROM patient_days WHERE patient_id = $1 AND local_date = $2 AND attended_minutes = 230", p2, tue); n != 1 {
		t.Fatal("patient 2's Tuesday should sum 180 + 50 minutes")
	}
	if n := e.Count(t, "SELECT count(*) FROM completed_episodes"); n != 1 {
		t.Fatalf("completed episodes = %d, want 1", n)
	}
	if got := e.Processed(t, costsConsumer, "duplicate"); got != 1 {
		t.Errorf("duplicates = %v, want 1", got)
	}

	// Medicaid paid $210.00 of patient 1's Monday (a claim fixture standing for 837 + 835).
	insertPaidClaimFixture(t, e, contract.Msg.GetContract().GetContractId(), p1, mon, 21000)

	// Sessions: 180 min x $90 = $270; 180 x $60 = $180; 120 x $60 = $120; 60 x $90 = $90.
	// Rent: all of April. Charges: patient 1's Monday at $250 (the others have no contract).
	operator := e.tok(t, []string{"operator"}, clinicA)
	report := func(group billingv1.CostGroupBy, clinic string) *billingv1.GetCostReportResponse {
		t.Helper()
		resp, err := e.costs.GetCostReport(ctx, req(operator, &billingv1.GetCostReportRequest{From: "2026-04-01", To: "2026-04-30",
			ClinicId: clinic, GroupBy: group}))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Msg
	}
	clinicRow := &billingv1.CostReportRow{Key: clinicA, AttendedPatientDays: 4, CompletedEpisodes: 1, ClinicianMinutes: 540,
		ClinicianCostCents: 66000, FixedCostCents: 300000, TotalCostCents: 366000, CostPerPatientDayCents: 91500,
		CostPerCompletedEpisodeCents: 366000, ChargedCents: 25000, PaidCents: 21000, MarginCents: 25000 - 366000, PaidMarginCents: 21000 - 366000}
	byClinic := report(billingv1.CostGroupBy_COST_GROUP_BY_CLINIC, clinicA)
	if len(byClinic.GetRows()) != 1 || !proto.Equal(byClinic.GetRows()[0], clinicRow) {
		t.Fatalf("by clinic = %v\nwant %v", byClinic.GetRows(), clinicRow)
	}
	total := proto.Clone(clinicRow).(*billingv1.CostReportRow)
	total.Key = "total"
	for _, r := range []*billingv1.GetCostReportResponse{byClinic, report(billingv1.CostGroupBy_COST_GROUP_BY_PROGRAM, ""),
		report(billingv1.CostGroupBy_COST_GROUP_BY_PAYER, clinicA)} {
		if !proto.Equal(r.GetTotal(), total) {
			t.Errorf("total = %v, want %v", r.GetTotal(), total)
		}
	}

	// By program: rent shared 3:1 by sud-iop's and mh-iop's attended days.
	byProgram := report(billingv1.CostGroupBy_COST_GROUP_BY_PROGRAM, clinicA).GetRows()
	wantProgram := map[string][4]int64{ // days, clinician, fixed, charged
		"mh-iop":  {1, 12000, 75000, 0},
		"sud-iop": {3, 54000, 225000, 25000},
	}
	if len(byProgram) != 2 {
		t.Fatalf("by program = %v", byProgram)
	}
	for _, r := range byProgram {
		w := wantProgram[r.GetKey()]
		if r.GetAttendedPatientDays() != w[0] || r.GetClinicianCostCents() != w[1] || r.GetFixedCostCents() != w[2] || r.GetChargedCents() != w[3] {
			t.Errorf("%s = %v, want %v", r.GetKey(), r, w)
		}
	}
	// By payer: Medicaid has 1 of sud-iop's 3 days and 1 of the clinic's 4.
	byPayer := report(billingv1.CostGroupBy_COST_GROUP_BY_PAYER, clinicA).GetRows()
	wantPayer := map[string][6]int64{ // days, episodes, clinician, fixed, charged, paid
		"medicaid-il": {1, 1, 18000, 75000, 25000, 21000},
		"unbilled":    {3, 0, 36000 + 12000, 225000, 0, 0},
	}
	if len(byPayer) != 2 {
		t.Fatalf("by payer = %v", byPayer)
	}
	for _, r := range byPayer {
		w := wantPayer[r.GetKey()]
		if r.GetAttendedPatientDays() != w[0] || r.GetCompletedEpisodes() != w[1] || r.GetClinicianCostCents() != w[2] ||
			r.GetFixedCostCents() != w[3] || r.GetChargedCents() != w[4] || r.GetPaidCents() != w[5] || r.GetTotalCostCents() != w[2]+w[3] {
			t.Errorf("%s = %v, want %v", r.GetKey(), r, w)
		}
	}

	// Half of April: half the rent; clinician time of the 6th and 7th as before.
	half, err := e.costs.GetCostReport(ctx, req(operator, &billingv1.GetCostReportRequest{From: "2026-04-01", To: "2026-04-15",
		GroupBy: billingv1.CostGroupBy_COST_GROUP_BY_CLINIC}))
	if err != nil || half.Msg.GetTotal().GetFixedCostCents() != 150000 || half.Msg.GetTotal().GetClinicianCostCents() != 66000 {
		t.Fatalf("half of April = %v, %v", half, err)
	}

	// Access: another clinic sees nothing of clinic A; roles; bad input.
	other := e.tok(t, []string{"operator"}, clinicB)
	_, err = e.costs.GetCostReport(ctx, req(other, &billingv1.GetCostReportRequest{From: "2026-04-01", To: "2026-04-30", ClinicId: clinicA,
		GroupBy: billingv1.CostGroupBy_COST_GROUP_BY_CLINIC}))
	wantCode(t, err, connect.CodePermissionDenied)
	mine, err := e.costs.GetCostReport(ctx, req(other, &billingv1.GetCostReportRequest{From: "2026-04-01", To: "2026-04-30",
		GroupBy: billingv1.CostGroupBy_COST_GROUP_BY_CLINIC}))
	if err != nil || len(mine.Msg.GetRows()) != 0 || mine.Msg.GetTotal().GetTotalCostCents() != 0 {
		t.Fatalf("clinic B's report = %v, %v", mine, err)
	}
	_, err = e.costs.SetCostRate(ctx, req(operator, &billingv1.SetCostRateRequest{ClinicId: clinicA, HourlyCostCents: 1}))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = e.costs.SetCostRate(ctx, req(e.tok(t, []string{"billing"}, clinicB), &billingv1.SetCostRateRequest{ClinicId: clinicA, HourlyCostCents: 1}))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = e.costs.GetCostReport(ctx, req(e.tok(t, []string{"clinician"}, clinicA), &billingv1.GetCostReportRequest{From: "2026-04-01",
		To: "2026-04-30", GroupBy: billingv1.CostGroupBy_COST_GROUP_BY_CLINIC}))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = e.costs.SetFixedCost(ctx, req(admin, &billingv1.SetFixedCostRequest{ClinicId: clinicA, Month: "2026-13", Label: "rent", AmountCents: 1}))
	wantFields(t, err, "month")
	_, err = e.costs.GetCostReport(ctx, req(operator, &billingv1.GetCostReportRequest{From: "2026-04-30", To: "2026-04-01",
		GroupBy: billingv1.CostGroupBy_COST_GROUP_BY_CLINIC}))
	wantViolations(t, err, "to to.after_from")
	_, err = e.costs.GetCostReport(ctx, req(operator, &billingv1.GetCostReportRequest{From: "2026-04-01", To: "2026-04-30"}))
	wantFields(t, err, "group_by")

	// An attendance without a real date can never be applied: dead-lettered, nothing changes.
	poison := attendance{bus.NewID(), p1, "session-x", "clinician-1", "sud-iop", "2026-13-01", present, 60, 60, 1}
	e.DeadLetter(t, costsConsumer, e.publishAttendance(t, poison))
	if n := e.Count(t, "SELECT count(*) FROM cost_attendance WHERE appointment_id = $1", poison.appointment); n != 0 {
		t.Fatal("poison attendance stored")
	}

	// Removing the rent (0 cents) leaves clinician time only.
	if _, err := e.costs.SetFixedCost(ctx, req(admin, &billingv1.SetFixedCostRequest{ClinicId: clinicA, Month: "2026-04", Label: "rent"})); err != nil {
		t.Fatal(err)
	}
	if got := report(billingv1.CostGroupBy_COST_GROUP_BY_CLINIC, clinicA).GetTotal().GetTotalCostCents(); got != 66000 {
		t.Fatalf("total without rent = %d, want 66000", got)
	}
}

// insertPaidClaimFixture writes a claim file and a claim paid paidCents over the patient's
// charge of date (a test fixture standing for an 837 sent and an 835 posted).
func insertPaidClaimFixture(t *testing.T, e *costsEnv, contractID, patient, date string, paidCents int64) {
	t.Helper()
	ctx := context.Background()
	var chargeID string
	var amount int64
	if err := e.Pool.QueryRow(ctx, `SELECT id::text, amount_cents FROM charges WHERE patient_id = $1 AND service_date = $2 AND status <> 'void'`,
		patient, date).Scan(&chargeID, &amount); err != nil {
		t.Fatalf("charge of %s: %v", date, err)
	}
	file, claim := bus.NewID(), bus.NewID()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO claim_files (id, clinic_id, payer_id, claim_type, interchange_control_number, claim_count, total_cents, content)
			VALUES ($1, $2, 'medicaid-il', '837I', 990001, 1, $3, 'fixture')`, []any{file, clinicA, amount}},
		{`INSERT INTO claims (id, file_id, control_number, clinic_id, patient_id, payer_id, contract_id, claim_type, total_cents,
			status, paid_cents, first_service_date, last_service_date)
			VALUES ($1, $2, 'FIXTURE1', $3, $4, 'medicaid-il', $5, '837I', $6, 'paid', $7, $8, $8)`,
			[]any{claim, file, clinicA, patient, contractID, amount, paidCents, date}},
		{`INSERT INTO claim_lines (claim_id, line_number, charge_id, line_control_number, procedure_code, units, charge_cents, service_date, clinic_id)
			VALUES ($1, 1, $2, 'FIXTURE1-1', 'H0015', 1, $3, $4, $5)`, []any{claim, chargeID, amount, date, clinicA}},
	} {
		if _, err := e.Pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
}

// insertChargeFixture writes a charge row directly (a test fixture standing for what the
// charges consumer and claims would produce), for comparing an estimate with actuals.
func insertChargeFixture(t *testing.T, e *costsEnv, patient, clinic, date string, amount int64, status string) {
	t.Helper()
	id := bus.NewID()
	hold := ""
	if status == "held" {
		hold = "consent"
	}
	if _, err := e.Pool.Exec(context.Background(), `
		INSERT INTO charges (id, billable_unit, patient_id, clinic_id, enrollment_id, payer_id, service_date, service,
			rate_cents, amount_cents, status, hold_reason, source_event_ids, appointment_ids)
		VALUES ($1, $9, $2, $3, $4, 'self-pay', $5, 'per_diem', $6, $6, $7, $8, ARRAY[$4::uuid], ARRAY[$4::uuid])`,
		id, patient, clinic, bus.NewID(), date, amount, status, hold, "fixture:"+id); err != nil {
		t.Fatal(err)
	}
}

// TestPatientCostEstimates: an insured estimate (deductible, coinsurance, out-of-pocket cap),
// a self-pay good-faith estimate on the sliding scale, an uninsured one at the clinic's
// highest rate, and the comparison of a good-faith estimate with actual charges.
func TestPatientCostEstimates(t *testing.T) {
	e := startCosts(t)
	ctx := context.Background()
	admin := e.tok(t, []string{"billing"}, auth.AllClinics)
	selfPay := &billingv1.Payer{PayerId: "self-pay", Name: "Self-pay", Kind: billingv1.PayerKind_PAYER_KIND_SELF_PAY}
	for _, p := range []*billingv1.Payer{medicaid(), selfPay} {
		if _, err := e.billing.UpsertPayer(ctx, req(admin, &billingv1.UpsertPayerRequest{Payer: p})); err != nil {
			t.Fatal(err)
		}
	}
	selfPayContract := perDiemContract(clinicA)
	selfPayContract.PayerId, selfPayContract.ClaimType = "self-pay", billingv1.ClaimType_CLAIM_TYPE_PROFESSIONAL
	selfPayContract.Codes[0].RateCents, selfPayContract.Codes[0].RevenueCode = 20000, ""
	for _, c := range []*billingv1.Contract{perDiemContract(clinicA), selfPayContract, perDiemContract(clinicB)} {
		if _, err := e.billing.UpsertContract(ctx, req(admin, &billingv1.UpsertContractRequest{Contract: c})); err != nil {
			t.Fatal(err)
		}
	}
	tiers := []*billingv1.SlidingScaleTier{{MaxFplPercent: 100, DiscountPercent: 75}, {MaxFplPercent: 200, DiscountPercent: 50}, {MaxFplPercent: 300, DiscountPercent: 25}}
	if _, err := e.billing.SetSlidingScale(ctx, req(admin, &billingv1.SetSlidingScaleRequest{Tiers: tiers})); err != nil {
		t.Fatal(err)
	}
	coordinator := e.tok(t, []string{"intake_coordinator"}, clinicA, clinicB)
	estimate := func(m *billingv1.EstimatePatientCostRequest) *billingv1.Estimate {
		t.Helper()
		resp, err := e.costs.EstimatePatientCost(ctx, req(coordinator, m))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Msg.GetEstimate()
	}
	plan := func(clinic, payer string) *billingv1.EstimatePatientCostRequest {
		return &billingv1.EstimatePatientCostRequest{ClinicId: clinic, PayerId: payer, StartDate: "2026-05-04",
			ProgramWeeks: 6, DaysPerWeek: 3, MinutesPerDay: 180}
	}

	// Insured: 18 days x $250 = $4,500; $1,000 deductible, 20% of the rest ($700), capped at
	// $1,500 out of pocket.
	in := plan(clinicA, "medicaid-il")
	in.DeductibleRemainingCents, in.CoinsurancePercent, in.OutOfPocketMaxRemainingCents = 100000, 20, proto.Int64(150000)
	got := estimate(in)
	if got.GetGoodFaith() || got.GetTotalChargesCents() != 450000 || got.GetDeductibleCents() != 100000 || got.GetCoinsuranceCents() != 70000 ||
		got.GetOutOfPocketCapCents() != 20000 || got.GetPatientCents() != 150000 || got.GetPayerCents() != 300000 || got.GetProgramDays() != 18 ||
		len(got.GetLines()) != 1 || got.GetLines()[0].GetProcedureCode() != "H0015" || got.GetLines()[0].GetUnits() != 18 {
		t.Fatalf("insured = %v", got)
	}
	if n := e.Count(t, "SELECT count(*) FROM estimates WHERE id = $1 AND patient_cents = 150000 AND NOT good_faith", got.GetEstimateId()); n != 1 {
		t.Fatal("insured estimate not stored")
	}

	// Self-pay at 150% of the poverty level: the self-pay contract's $200 a day, 50% off.
	patient := bus.NewID()
	in = plan(clinicA, "self-pay")
	in.PatientId, in.HouseholdIncomeFplPercent = patient, proto.Int32(150)
	gfe := estimate(in)
	if !gfe.GetGoodFaith() || gfe.GetTotalChargesCents() != 360000 || gfe.GetDiscountPercent() != 50 || gfe.GetDiscountCents() != 180000 ||
		gfe.GetPatientCents() != 180000 || gfe.GetPayerCents() != 0 || gfe.GetContractId() == "" {
		t.Fatalf("self-pay = %v", gfe)
	}
	// Uninsured at clinic B (no self-pay contract there): the highest rate, $250, 25% off at 250%.
	in = plan(clinicB, "")
	in.HouseholdIncomeFplPercent = proto.Int32(250)
	un := estimate(in)
	if !un.GetGoodFaith() || un.GetTotalChargesCents() != 450000 || un.GetDiscountCents() != 112500 || un.GetPatientCents() != 337500 ||
		un.GetContractId() != "" || len(un.GetNotes()) == 0 {
		t.Fatalf("uninsured = %v", un)
	}

	// Refusals.
	bad := plan(clinicA, "nobody")
	_, err := e.costs.EstimatePatientCost(ctx, req(coordinator, bad))
	wantViolations(t, err, "payer_id payer_id.exists")
	bad = plan(clinicA, "medicaid-il")
	bad.ProgramWeeks, bad.MinutesPerDay = 0, 0
	_, err = e.costs.EstimatePatientCost(ctx, req(coordinator, bad))
	wantFields(t, err, "program_weeks")
	bad = plan(clinicA, "medicaid-il")
	bad.MinutesPerDay = 0
	_, err = e.costs.EstimatePatientCost(ctx, req(coordinator, bad))
	wantViolations(t, err, "minutes_per_day minutes_per_day.or_sessions")
	bad = plan(clinicA, "medicaid-il")
	bad.StartDate = "2025-05-04" // before the contract
	_, err = e.costs.EstimatePatientCost(ctx, req(coordinator, bad))
	wantCode(t, err, connect.CodeFailedPrecondition)
	_, err = e.costs.EstimatePatientCost(ctx, req(e.tok(t, []string{"intake_coordinator"}, clinicB), plan(clinicA, "medicaid-il")))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = e.costs.EstimatePatientCost(ctx, req(e.tok(t, []string{"operator"}, clinicA), plan(clinicA, "medicaid-il")))
	wantCode(t, err, connect.CodePermissionDenied)
	if n := e.Count(t, "SELECT count(*) FROM estimates"); n != 3 {
		t.Fatalf("estimates = %d, want 3: a refused request stores nothing", n)
	}

	// Actuals: 19 days billed to the patient at $200 ($3,800: $200 over the estimate), plus a
	// void charge and one before the start date that do not count.
	for i := range 19 {
		insertChargeFixture(t, e, patient, clinicA, time.Date(2026, 5, 4+i, 0, 0, 0, 0, time.UTC).Format(time.DateOnly), 20000, "patient_billed")
	}
	insertChargeFixture(t, e, patient, clinicA, "2026-05-05", 20000, "void")
	insertChargeFixture(t, e, patient, clinicA, "2026-05-01", 20000, "patient_billed")
	compare := func(token, estimateID, patientID string) (*billingv1.CompareEstimateResponse, error) {
		resp, err := e.costs.CompareEstimate(ctx, req(token, &billingv1.CompareEstimateRequest{EstimateId: estimateID, PatientId: patientID}))
		if err != nil {
			return nil, err
		}
		return resp.Msg, nil
	}
	cmp, err := compare(coordinator, gfe.GetEstimateId(), "")
	if err != nil || cmp.GetPatientId() != patient || cmp.GetChargedCents() != 380000 || cmp.GetChargedDifferenceCents() != 20000 ||
		cmp.GetPatientResponsibilityCents() != 380000 || cmp.GetPatientDifferenceCents() != 200000 || cmp.GetExceedsGoodFaithThreshold() {
		t.Fatalf("compare = %v, %v", cmp, err)
	}
	// One more day: $400 over the good-faith estimate, the dispute threshold.
	insertChargeFixture(t, e, patient, clinicA, "2026-05-23", 20000, "patient_billed")
	cmp, err = compare(admin, gfe.GetEstimateId(), patient)
	if err != nil || cmp.GetChargedDifferenceCents() != 40000 || !cmp.GetExceedsGoodFaithThreshold() {
		t.Fatalf("compare = %v, %v", cmp, err)
	}
	_, err = compare(coordinator, got.GetEstimateId(), "")
	wantViolations(t, err, "patient_id patient_id.required")
	_, err = compare(e.tok(t, []string{"billing"}, clinicB), gfe.GetEstimateId(), "")
	wantCode(t, err, connect.CodeNotFound)
	_, err = compare(coordinator, bus.NewID(), "")
	wantCode(t, err, connect.CodeNotFound)
}
