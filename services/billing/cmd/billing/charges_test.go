package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/testkit"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
)

const (
	subjAttendanceRecorded  = "trellis.scheduling.attendance.recorded.v1"
	subjAttendanceCorrected = "trellis.scheduling.attendance.corrected.v1"
	subjCoverageChanged     = "trellis.intake.coverage.changed.v1"
	subjConsentGranted      = "trellis.intake.consent.granted.v1"
	subjConsentRevoked      = "trellis.intake.consent.revoked.v1"
	subjChargeCreated       = "trellis.billing.charge.created.v1"
	subjChargeStatus        = "trellis.billing.charge.status_changed.v1"
	subjAuthNearlyUsed      = "trellis.billing.authorization.nearly_used.v1"
	subjAuthExhausted       = "trellis.billing.authorization.exhausted.v1"
)

type chargesEnv struct {
	*servicetest.Service
	cfg     billingv1connect.BillingServiceClient
	charges billingv1connect.ChargesServiceClient
	admin   string
}

// startCharges runs billing with the payers medicaid-il (per diem, 180 minutes, H0015 $250;
// authorization required when auth is true), acme-health (per service) and self-pay
// contracted at clinic A, configured through the configuration API.
func startCharges(t testing.TB, auth bool) *chargesEnv {
	s := start(t)
	e := &chargesEnv{Service: s, cfg: billingv1connect.NewBillingServiceClient(http.DefaultClient, s.URL),
		charges: billingv1connect.NewChargesServiceClient(http.DefaultClient, s.URL)}
	e.admin = s.Token(t, "admin-1", []string{"admin"}, []string{"*"})
	ctx := context.Background()
	for _, p := range []*billingv1.Payer{medicaid(),
		{PayerId: "acme-health", Name: "Acme Health", Kind: billingv1.PayerKind_PAYER_KIND_COMMERCIAL, X12PayerId: "ACME1"},
		{PayerId: "self-pay", Name: "Self-pay", Kind: billingv1.PayerKind_PAYER_KIND_SELF_PAY},
		{PayerId: "no-contract", Name: "No contract", Kind: billingv1.PayerKind_PAYER_KIND_COMMERCIAL, X12PayerId: "NOC1"},
	} {
		if _, err := e.cfg.UpsertPayer(ctx, req(e.admin, &billingv1.UpsertPayerRequest{Payer: p})); err != nil {
			t.Fatal(err)
		}
	}
	pd := perDiemContract(clinicA)
	pd.RequiresAuthorization = auth
	acme := &billingv1.Contract{PayerId: "acme-health", ClinicId: clinicA,
		BillingMode: billingv1.BillingMode_BILLING_MODE_PER_SERVICE, ClaimType: billingv1.ClaimType_CLAIM_TYPE_PROFESSIONAL,
		EffectiveFrom: "2026-01-01", Codes: []*billingv1.ServiceCode{
			{Service: billingv1.BillableService_BILLABLE_SERVICE_GROUP, ProcedureCode: "90853", RateCents: 8500},
			{Service: billingv1.BillableService_BILLABLE_SERVICE_INDIVIDUAL, ProcedureCode: "90832", RateCents: 7000, MinMinutes: 16, MaxMinutes: 37},
			{Service: billingv1.BillableService_BILLABLE_SERVICE_INDIVIDUAL, ProcedureCode: "90834", RateCents: 9500, MinMinutes: 38, MaxMinutes: 52},
			{Service: billingv1.BillableService_BILLABLE_SERVICE_INDIVIDUAL, ProcedureCode: "90837", RateCents: 13000, MinMinutes: 53},
			{Service: billingv1.BillableService_BILLABLE_SERVICE_FAMILY, ProcedureCode: "90847", RateCents: 11000},
		}}
	self := proto.Clone(pd).(*billingv1.Contract)
	self.PayerId, self.RequiresAuthorization = "self-pay", false
	for _, c := range []*billingv1.Contract{pd, acme, self} {
		if _, err := e.cfg.UpsertContract(ctx, req(e.admin, &billingv1.UpsertContractRequest{Contract: c})); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// session is one attendance event: appointment n of the patient on date.
type session struct {
	patient, date string
	appointment   string
	service       schedulingv1.ServiceType
	status        schedulingv1.AttendanceStatus
	minutes       int32
	version       int32
	hour          int
}

func (e *chargesEnv) attend(t testing.TB, s session) (*eventsv1.Envelope, uint64) {
	t.Helper()
	if s.status == 0 {
		s.status = schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT
	}
	if s.service == 0 {
		s.service = schedulingv1.ServiceType_SERVICE_TYPE_GROUP
	}
	if s.version == 0 {
		s.version = 1
	}
	day, err := time.Parse(time.DateOnly, s.date)
	if err != nil {
		t.Fatal(err)
	}
	m := &schedulingv1.AttendanceRecorded{AppointmentId: s.appointment, PatientId: s.patient, ClinicId: clinicA,
		EnrollmentId: enrollmentOf(s.patient), ProgramCode: "iop", ServiceType: s.service, LocalDate: s.date,
		StartsAt: timestamppb.New(day.Add(time.Duration(14+s.hour) * time.Hour)), Status: s.status,
		MinutesAttended: s.minutes, ScheduledMinutes: 60, Version: s.version, RecordedAt: timestamppb.Now()}
	subject := subjAttendanceRecorded
	if s.version > 1 {
		subject = subjAttendanceCorrected
	}
	env := envelope(t, m, clinicA)
	seq := e.Publish(t, subject, env.GetEventId(), env, "")
	e.Settled(t, "SCHEDULING", "billing--attendance", seq)
	return env, seq
}

// enrollmentOf: one enrollment per patient, derived from its id.
func enrollmentOf(patient string) string { return patient[:24] + "eeeeeeeeeeee" }

func (e *chargesEnv) intake(t testing.TB, subject, consumer string, m proto.Message) {
	t.Helper()
	env := servicetest.Envelope(t, m, clinicA, "intake")
	seq := e.Publish(t, subject, env.GetEventId(), env, "")
	e.Settled(t, "INTAKE", consumer, seq)
}

func (e *chargesEnv) coverage(t testing.TB, patient, payer string, updated time.Time) string {
	id := bus.NewID()
	e.coverageID(t, id, patient, payer, updated)
	return id
}

func (e *chargesEnv) coverageID(t testing.TB, id, patient, payer string, updated time.Time) {
	e.intake(t, subjCoverageChanged, "billing--coverage", &intakev1.CoverageChanged{Coverage: &intakev1.Coverage{
		CoverageId: id, PatientId: patient, ClinicId: clinicA, PayerId: payer, MemberId: "M123",
		EffectiveFrom: "2026-01-01", Priority: intakev1.CoveragePriority_COVERAGE_PRIORITY_PRIMARY,
		Eligibility: intakev1.Eligibility_ELIGIBILITY_ELIGIBLE, UpdatedAt: timestamppb.New(updated)}})
}

func (e *chargesEnv) consent(t testing.TB, patient string) string {
	id := bus.NewID()
	e.intake(t, subjConsentGranted, "billing--consent", &intakev1.ConsentGranted{ConsentId: id, PatientId: patient,
		ClinicId: clinicA, Version: 1, Scopes: []intakev1.ConsentScope{intakev1.ConsentScope_CONSENT_SCOPE_TREATMENT,
			intakev1.ConsentScope_CONSENT_SCOPE_PAYMENT}, EffectiveFrom: timestamppb.New(time.Now().Add(-time.Hour))})
	return id
}

// rows renders the patient's charges that are not void as "unit-suffix code amount status reason",
// by service date and unit; the unit is shortened to "day <date>" or "session <appointment>".
func (e *chargesEnv) rows(t *testing.T, patient string) []string {
	t.Helper()
	rows, err := e.Pool.Query(context.Background(), `SELECT billable_unit, procedure_code, amount_cents, status, hold_reason
		FROM charges WHERE patient_id = $1 AND status <> 'void' ORDER BY service_date, billable_unit`, patient)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var unit, code, status, reason string
		var amount int64
		if err := rows.Scan(&unit, &code, &amount, &status, &reason); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(unit, "day:") {
			unit = "day " + unit[len(unit)-10:]
		} else {
			unit = "session " + unit[len(unit)-4:]
		}
		out = append(out, strings.Join(strings.Fields(fmt.Sprintf("%s %s %d %s %s", unit, code, amount, status, reason)), " "))
	}
	return out
}

func wantRows(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("charges =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// wantEvents waits for the outbox to drain and checks how many messages BILLING holds on subject.
func (e *chargesEnv) wantEvents(t *testing.T, subject string, n int) {
	t.Helper()
	e.Relayed(t)
	testkit.Eventually(t, 10*time.Second, subject, func() bool { return e.StreamCount(t, "BILLING", subject) >= uint64(n) })
	if got := e.StreamCount(t, "BILLING", subject); got != uint64(n) {
		t.Fatalf("%s messages = %d, want %d", subject, got, n)
	}
}

// appt returns an appointment id ending in the 4 characters of tag.
func appt(tag string) string { return "0192f0c0-0000-7000-8000-00000000" + tag }

func TestChargesPerDiemDayCorrectionsAndRedelivery(t *testing.T) {
	e := startCharges(t, false)
	patient := bus.NewID()
	e.coverage(t, patient, "medicaid-il", time.Now())
	e.consent(t, patient)
	day := "2026-03-02"

	// Three one-hour sessions: nothing until the third reaches 180 minutes; then one charge.
	first, _ := e.attend(t, session{patient: patient, date: day, appointment: appt("0a01"), minutes: 60, hour: 0})
	e.attend(t, session{patient: patient, date: day, appointment: appt("0a02"), minutes: 60, hour: 1})
	wantRows(t, e.rows(t, patient))
	third, _ := e.attend(t, session{patient: patient, date: day, appointment: appt("0a03"), minutes: 60, hour: 2,
		service: schedulingv1.ServiceType_SERVICE_TYPE_INDIVIDUAL})
	wantRows(t, e.rows(t, patient), "day 2026-03-02 H0015 25000 ready")
	var sources, appts []string
	var minutes int
	if err := e.Pool.QueryRow(context.Background(), `SELECT source_event_ids::text[], appointment_ids::text[], minutes
		FROM charges WHERE patient_id = $1`, patient).Scan(&sources, &appts, &minutes); err != nil {
		t.Fatal(err)
	}
	if len(sources) != 3 || sources[0] != first.GetEventId() || sources[2] != third.GetEventId() || minutes != 180 ||
		!slices.Equal(appts, []string{appt("0a01"), appt("0a02"), appt("0a03")}) {
		t.Fatalf("sources %v appointments %v minutes %d", sources, appts, minutes)
	}

	// Redelivery: the same event again (the inbox), and the same version as a new event.
	seq := e.Publish(t, subjAttendanceRecorded, bus.NewID(), third, "")
	e.Settled(t, "SCHEDULING", "billing--attendance", seq)
	e.attend(t, session{patient: patient, date: day, appointment: appt("0a03"), minutes: 60, hour: 2,
		service: schedulingv1.ServiceType_SERVICE_TYPE_INDIVIDUAL})
	if n := e.Count(t, "SELECT count(*) FROM charges WHERE patient_id = $1", patient); n != 1 {
		t.Fatalf("charges = %d, want 1", n)
	}

	// A correction (version 2: 90 minutes) voids the day's charge and creates another.
	corrected, _ := e.attend(t, session{patient: patient, date: day, appointment: appt("0a03"), minutes: 90, hour: 2, version: 2,
		service: schedulingv1.ServiceType_SERVICE_TYPE_INDIVIDUAL})
	wantRows(t, e.rows(t, patient), "day 2026-03-02 H0015 25000 ready")
	if n := e.Count(t, "SELECT count(*) FROM charges WHERE patient_id = $1 AND status = 'void'", patient); n != 1 {
		t.Fatalf("void charges = %d, want 1", n)
	}
	if n := e.Count(t, `SELECT count(*) FROM charges WHERE patient_id = $1 AND status = 'ready' AND minutes = 210
		AND replaces_charge_id IS NULL AND $2 = ANY(source_event_ids)`, patient, corrected.GetEventId()); n != 1 {
		t.Fatal("the new charge does not carry the correction")
	}
	// Out of order: version 1 again as a new event, after version 2, changes nothing.
	e.attend(t, session{patient: patient, date: day, appointment: appt("0a03"), minutes: 60, hour: 2,
		service: schedulingv1.ServiceType_SERVICE_TYPE_INDIVIDUAL})
	if n := e.Count(t, "SELECT count(*) FROM charges WHERE patient_id = $1", patient); n != 2 {
		t.Fatalf("charges = %d, want 2", n)
	}

	// Once submitted (as claims would mark it), a correction's new charge names what it replaces.
	if _, err := e.Pool.Exec(context.Background(), `UPDATE charges SET status = 'submitted' WHERE patient_id = $1 AND status = 'ready'`, patient); err != nil {
		t.Fatal(err)
	}
	e.attend(t, session{patient: patient, date: day, appointment: appt("0a02"), minutes: 45, hour: 1, version: 2,
		status: schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_LEFT_EARLY})
	if n := e.Count(t, `SELECT count(*) FROM charges c WHERE patient_id = $1 AND status = 'ready' AND minutes = 195
		AND replaces_charge_id = (SELECT id FROM charges WHERE patient_id = $1 AND status = 'void' AND minutes = 210)`, patient); n != 1 {
		t.Fatalf("no replacement charge: %v", e.rows(t, patient))
	}
	// Below the minimum after a correction: the day is no longer billable.
	e.attend(t, session{patient: patient, date: day, appointment: appt("0a01"), minutes: 0, hour: 0, version: 2,
		status: schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT})
	wantRows(t, e.rows(t, patient))
	e.wantEvents(t, subjChargeCreated, 3)
	e.wantEvents(t, subjChargeStatus, 3)

	// Malformed attendance is dead-lettered.
	bad := envelope(t, &schedulingv1.AttendanceRecorded{AppointmentId: appt("0a09"), PatientId: patient, ClinicId: clinicA,
		EnrollmentId: enrollmentOf(patient), LocalDate: "2026-02-30", Version: 1}, clinicA)
	seq = e.Publish(t, subjAttendanceRecorded, bad.GetEventId(), bad, "")
	e.DeadLetter(t, "billing--attendance", seq)
}

func TestChargesPerServiceCodesAndListing(t *testing.T) {
	e := startCharges(t, false)
	patient := bus.NewID()
	e.coverage(t, patient, "acme-health", time.Now())
	e.consent(t, patient)
	ind := schedulingv1.ServiceType_SERVICE_TYPE_INDIVIDUAL
	e.attend(t, session{patient: patient, date: "2026-03-02", appointment: appt("0b01"), minutes: 30, service: ind})
	e.attend(t, session{patient: patient, date: "2026-03-02", appointment: appt("0b02"), minutes: 45, service: ind, hour: 1})
	e.attend(t, session{patient: patient, date: "2026-03-03", appointment: appt("0b03"), minutes: 60, service: ind})
	e.attend(t, session{patient: patient, date: "2026-03-03", appointment: appt("0b04"), minutes: 10, service: ind, hour: 1})
	e.attend(t, session{patient: patient, date: "2026-03-04", appointment: appt("0b05"), minutes: 50, hour: 1,
		service: schedulingv1.ServiceType_SERVICE_TYPE_FAMILY})
	wantRows(t, e.rows(t, patient),
		"session 0b01 90832 7000 ready",
		"session 0b02 90834 9500 ready",
		"session 0b03 90837 13000 ready",
		"session 0b05 90847 11000 ready")
	// A correction of minutes changes the code.
	e.attend(t, session{patient: patient, date: "2026-03-02", appointment: appt("0b01"), minutes: 40, service: ind, version: 2})
	wantRows(t, e.rows(t, patient),
		"session 0b01 90834 9500 ready",
		"session 0b02 90834 9500 ready",
		"session 0b03 90837 13000 ready",
		"session 0b05 90847 11000 ready")

	// Listing: paged, filtered, for the clinic's callers only.
	ctx := context.Background()
	op := e.Token(t, "op-1", []string{"operator"}, []string{clinicA})
	var all []*billingv1.Charge
	token := ""
	for page := 0; page < 5; page++ {
		resp, err := e.charges.ListCharges(ctx, req(op, &billingv1.ListChargesRequest{ClinicId: clinicA, PatientId: patient, Limit: 3, PageToken: token}))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, resp.Msg.GetCharges()...)
		if token = resp.Msg.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(all) != 5 || all[0].GetServiceDate() != "2026-03-02" || all[4].GetServiceDate() != "2026-03-04" {
		t.Fatalf("listed %d charges", len(all))
	}
	resp, err := e.charges.ListCharges(ctx, req(op, &billingv1.ListChargesRequest{ClinicId: clinicA,
		Status: billingv1.ChargeStatus_CHARGE_STATUS_READY, ServiceDateFrom: "2026-03-03", ServiceDateTo: "2026-03-04"}))
	if err != nil {
		t.Fatal(err)
	}
	got := resp.Msg.GetCharges()
	if len(got) != 2 || got[0].GetProcedureCode() != "90837" || got[0].GetStatus() != billingv1.ChargeStatus_CHARGE_STATUS_READY ||
		got[0].GetPayerId() != "acme-health" || len(got[0].GetSourceEventIds()) != 1 || got[1].GetAmountCents() != 11000 {
		t.Fatalf("charges = %v", got)
	}
	_, err = e.charges.ListCharges(ctx, req(op, &billingv1.ListChargesRequest{ClinicId: clinicB}))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = e.charges.ListCharges(ctx, req(e.Token(t, "c-1", []string{"clinician"}, []string{clinicA}), &billingv1.ListChargesRequest{ClinicId: clinicA}))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = e.charges.ListCharges(ctx, req(op, &billingv1.ListChargesRequest{ClinicId: clinicA, ServiceDateFrom: "2026-03-05", ServiceDateTo: "2026-03-01"}))
	wantViolations(t, err, "service_date_to service_date_to.after_from")
	_, err = e.charges.ListCharges(ctx, req(op, &billingv1.ListChargesRequest{ClinicId: clinicA, PageToken: "nonsense"}))
	wantViolations(t, err, "page_token page_token.valid")
	_, err = e.charges.ListCharges(ctx, req(op, &billingv1.ListChargesRequest{ClinicId: "x"}))
	wantCode(t, err, connect.CodeInvalidArgument)
}

func TestChargesAuthorizationExhaustion(t *testing.T) {
	e := startCharges(t, true)
	ctx := context.Background()
	patient := bus.NewID()
	e.coverage(t, patient, "medicaid-il", time.Now())
	e.consent(t, patient)
	day := func(d int, tag string) {
		e.attend(t, session{patient: patient, date: fmt.Sprintf("2026-03-%02d", d), appointment: appt(tag), minutes: 180})
	}
	day(2, "0c02")
	wantRows(t, e.rows(t, patient), "day 2026-03-02 H0015 25000 held authorization: none")

	// Recording an authorization releases the held day.
	billing := e.Token(t, "b-1", []string{"billing"}, []string{clinicA})
	auth := &billingv1.Authorization{PatientId: patient, ClinicId: clinicA, PayerId: "medicaid-il",
		Service: billingv1.BillableService_BILLABLE_SERVICE_PER_DIEM, Number: "PA-1", AuthorizedUnits: 5,
		StartsOn: "2026-03-01", EndsOn: "2026-03-31"}
	resp, err := e.charges.UpsertAuthorization(ctx, req(billing, &billingv1.UpsertAuthorizationRequest{Authorization: auth}))
	if err != nil {
		t.Fatal(err)
	}
	auth = resp.Msg.GetAuthorization()
	if auth.GetUsedUnits() != 1 {
		t.Fatalf("used = %d, want 1", auth.GetUsedUnits())
	}
	wantRows(t, e.rows(t, patient), "day 2026-03-02 H0015 25000 ready")
	for d := 3; d <= 7; d++ {
		day(d, fmt.Sprintf("0c%02d", d))
	}
	day(15, "0c15")                                                                                     // the window's days are used up
	day(1, "0c01")                                                                                      // no units either (the window starts on the 1st)
	e.attend(t, session{patient: patient, date: "2026-04-01", appointment: appt("0d01"), minutes: 180}) // outside the window
	wantRows(t, e.rows(t, patient),
		"day 2026-03-01 H0015 25000 held authorization: units exhausted",
		"day 2026-03-02 H0015 25000 ready",
		"day 2026-03-03 H0015 25000 ready",
		"day 2026-03-04 H0015 25000 ready",
		"day 2026-03-05 H0015 25000 ready",
		"day 2026-03-06 H0015 25000 ready",
		"day 2026-03-07 H0015 25000 held authorization: units exhausted",
		"day 2026-03-15 H0015 25000 held authorization: units exhausted",
		"day 2026-04-01 H0015 25000 held authorization: outside window")
	e.wantEvents(t, subjAuthNearlyUsed, 1)
	e.wantEvents(t, subjAuthExhausted, 1)

	// A voided charge gives its unit back, and the oldest day waiting for units takes it at
	// once; more units release the other held days, oldest first.
	e.attend(t, session{patient: patient, date: "2026-03-06", appointment: appt("0c06"), minutes: 0, version: 2,
		status: schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT})
	list, err := e.charges.ListAuthorizations(ctx, req(billing, &billingv1.ListAuthorizationsRequest{ClinicId: clinicA, PatientId: patient}))
	if err != nil || len(list.Msg.GetAuthorizations()) != 1 || list.Msg.GetAuthorizations()[0].GetUsedUnits() != 5 {
		t.Fatalf("authorizations = %v, %v", list, err)
	}
	wantRows(t, e.rows(t, patient),
		"day 2026-03-01 H0015 25000 ready",
		"day 2026-03-02 H0015 25000 ready",
		"day 2026-03-03 H0015 25000 ready",
		"day 2026-03-04 H0015 25000 ready",
		"day 2026-03-05 H0015 25000 ready",
		"day 2026-03-07 H0015 25000 held authorization: units exhausted",
		"day 2026-03-15 H0015 25000 held authorization: units exhausted",
		"day 2026-04-01 H0015 25000 held authorization: outside window")
	auth.AuthorizedUnits = 6
	if _, err := e.charges.UpsertAuthorization(ctx, req(billing, &billingv1.UpsertAuthorizationRequest{Authorization: auth})); err != nil {
		t.Fatal(err)
	}
	wantRows(t, e.rows(t, patient),
		"day 2026-03-01 H0015 25000 ready",
		"day 2026-03-02 H0015 25000 ready",
		"day 2026-03-03 H0015 25000 ready",
		"day 2026-03-04 H0015 25000 ready",
		"day 2026-03-05 H0015 25000 ready",
		"day 2026-03-07 H0015 25000 ready",
		"day 2026-03-15 H0015 25000 held authorization: units exhausted",
		"day 2026-04-01 H0015 25000 held authorization: outside window")
	// 6 of 6 used: a second crossing of 100% (5 of 6 in between), while usage never fell below
	// 80% (the void's unit was taken again in the same transaction): no second 80% notice.
	e.wantEvents(t, subjAuthExhausted, 2)
	e.wantEvents(t, subjAuthNearlyUsed, 1)

	// Bad input and access.
	bad := proto.Clone(auth).(*billingv1.Authorization)
	bad.AuthorizationId, bad.PayerId, bad.AuthorizedUnits, bad.EndsOn = "", "nobody", 0, "2026-02-01"
	_, err = e.charges.UpsertAuthorization(ctx, req(billing, &billingv1.UpsertAuthorizationRequest{Authorization: bad}))
	wantViolations(t, err, "authorization.payer_id payer_id.exists", "authorization.authorized_units authorized_units.range",
		"authorization.ends_on ends_on.after_starts_on")
	other := proto.Clone(auth).(*billingv1.Authorization)
	other.AuthorizationId, other.ClinicId = "", clinicB
	_, err = e.charges.UpsertAuthorization(ctx, req(billing, &billingv1.UpsertAuthorizationRequest{Authorization: other}))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = e.charges.UpsertAuthorization(ctx, req(e.Token(t, "op-1", []string{"operator"}, []string{auth.GetClinicId()}),
		&billingv1.UpsertAuthorizationRequest{Authorization: auth}))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = e.charges.ListAuthorizations(ctx, req(billing, &billingv1.ListAuthorizationsRequest{ClinicId: clinicB}))
	wantCode(t, err, connect.CodePermissionDenied)
}

func TestChargesConsentAndCoverageGates(t *testing.T) {
	e := startCharges(t, false)
	patient := bus.NewID()
	e.coverage(t, patient, "medicaid-il", time.Now())
	e.attend(t, session{patient: patient, date: "2026-03-02", appointment: appt("0e02"), minutes: 180})
	e.attend(t, session{patient: patient, date: "2026-03-03", appointment: appt("0e03"), minutes: 200})
	wantRows(t, e.rows(t, patient),
		"day 2026-03-02 H0015 25000 held consent",
		"day 2026-03-03 H0015 25000 held consent")

	// ConsentGranted with the payment scope releases the holds.
	consentID := e.consent(t, patient)
	wantRows(t, e.rows(t, patient),
		"day 2026-03-02 H0015 25000 ready",
		"day 2026-03-03 H0015 25000 ready")
	e.wantEvents(t, subjChargeStatus, 2)

	// Revoked: ready charges are held again; a submitted one stays submitted.
	if _, err := e.Pool.Exec(context.Background(), `UPDATE charges SET status = 'submitted' WHERE patient_id = $1 AND service_date = '2026-03-02'`, patient); err != nil {
		t.Fatal(err)
	}
	e.intake(t, subjConsentRevoked, "billing--consent", &intakev1.ConsentRevoked{ConsentId: consentID, PatientId: patient,
		ClinicId: clinicA, Scopes: []intakev1.ConsentScope{intakev1.ConsentScope_CONSENT_SCOPE_PAYMENT},
		EffectiveAt: timestamppb.New(time.Now().Add(-time.Minute))})
	wantRows(t, e.rows(t, patient),
		"day 2026-03-02 H0015 25000 submitted",
		"day 2026-03-03 H0015 25000 held consent")
	e.wantEvents(t, subjChargeStatus, 3)

	// No coverage: the day waits as "coverage"; a coverage whose payer has no contract turns it
	// into "contract"; an older copy of the coverage changes nothing; self-pay bills the patient.
	other := bus.NewID()
	e.consent(t, other)
	e.attend(t, session{patient: other, date: "2026-03-02", appointment: appt("0f02"), minutes: 60})
	wantRows(t, e.rows(t, other), "day 2026-03-02 0 held coverage")
	now := time.Now()
	covID := e.coverage(t, other, "no-contract", now)
	wantRows(t, e.rows(t, other), "day 2026-03-02 0 held contract")
	e.coverageID(t, covID, other, "medicaid-il", now.Add(-time.Hour))
	wantRows(t, e.rows(t, other), "day 2026-03-02 0 held contract")
	e.coverageID(t, covID, other, "self-pay", now.Add(time.Hour))
	// 60 minutes is below the per-diem minimum: nothing is billed, the placeholder is void.
	wantRows(t, e.rows(t, other))
	e.attend(t, session{patient: other, date: "2026-03-02", appointment: appt("0f03"), minutes: 120, hour: 1})
	wantRows(t, e.rows(t, other), "day 2026-03-02 H0015 25000 patient_billed")

	// A ConsentGranted without a patient id is dead-lettered.
	bad := servicetest.Envelope(t, &intakev1.ConsentGranted{ConsentId: bus.NewID(), ClinicId: clinicA, Version: 1}, clinicA, "intake")
	seq := e.Publish(t, subjConsentGranted, bad.GetEventId(), bad, "")
	e.DeadLetter(t, "billing--consent", seq)

	// ListCharges needs the clinic: a token for every clinic sees it too.
	resp, err := e.charges.ListCharges(context.Background(), req(e.Token(t, "b", []string{"billing"}, []string{auth.AllClinics}),
		&billingv1.ListChargesRequest{ClinicId: clinicA, PatientId: patient, Status: billingv1.ChargeStatus_CHARGE_STATUS_HELD}))
	if err != nil || len(resp.Msg.GetCharges()) != 1 || resp.Msg.GetCharges()[0].GetHoldReason() != "consent" {
		t.Fatalf("held = %v, %v", resp, err)
	}
}

// A contract change re-decides the open charges it affects: a charge held for a missing
// contract is priced once the contract exists, and a ready charge follows a new rate (the old
// one is voided and replaced). Billing consumes its own ContractConfigured for this.
func TestChargesFollowContractChanges(t *testing.T) {
	e := startCharges(t, false)
	ctx := context.Background()
	waitRows := func(patient string, want ...string) {
		t.Helper()
		testkit.Eventually(t, 10*time.Second, "charges "+strings.Join(want, ", "), func() bool {
			return slices.Equal(e.rows(t, patient), want)
		})
	}
	uncontracted, medicaidPatient := bus.NewID(), bus.NewID()
	for _, p := range []struct{ patient, payer string }{{uncontracted, "no-contract"}, {medicaidPatient, "medicaid-il"}} {
		e.consent(t, p.patient)
		e.coverage(t, p.patient, p.payer, time.Now())
		e.attend(t, session{patient: p.patient, date: "2026-03-02", appointment: appt(p.patient[len(p.patient)-4:]), minutes: 180})
	}
	wantRows(t, e.rows(t, uncontracted), "day 2026-03-02 0 held contract")
	wantRows(t, e.rows(t, medicaidPatient), "day 2026-03-02 H0015 25000 ready")

	nc := perDiemContract(clinicA)
	nc.PayerId, nc.Codes[0].RateCents = "no-contract", 30000
	if _, err := e.cfg.UpsertContract(ctx, req(e.admin, &billingv1.UpsertContractRequest{Contract: nc})); err != nil {
		t.Fatal(err)
	}
	waitRows(uncontracted, "day 2026-03-02 H0015 30000 ready")

	list, err := e.cfg.ListContracts(ctx, req(e.admin, &billingv1.ListContractsRequest{ClinicId: clinicA}))
	if err != nil {
		t.Fatal(err)
	}
	var medicaidContract *billingv1.Contract
	for _, c := range list.Msg.GetContracts() {
		if c.GetPayerId() == "medicaid-il" {
			medicaidContract = c
		}
	}
	medicaidContract.Codes[0].RateCents = 26000
	if _, err := e.cfg.UpsertContract(ctx, req(e.admin, &billingv1.UpsertContractRequest{Contract: medicaidContract})); err != nil {
		t.Fatal(err)
	}
	waitRows(medicaidPatient, "day 2026-03-02 H0015 26000 ready")
	if n := e.Count(t, `SELECT count(*) FROM charges WHERE patient_id = $1 AND status = 'void'`, medicaidPatient); n != 1 {
		t.Errorf("%d void charges after the rate change, want 1 (the old price)", n)
	}
	// The uncontracted patient's charge was not touched by the Medicaid change.
	if n := e.Count(t, `SELECT count(*) FROM charges WHERE patient_id = $1`, uncontracted); n != 2 {
		t.Errorf("%d charges of the other patient, want 2 (the placeholder, voided, and the priced one)", n)
	}
}
