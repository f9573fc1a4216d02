package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trellis-health/trellis/pkg/bus"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"

	"github.com/trellis-health/trellis/services/billing/internal/x12"
)

// sentClaim is one claim of an 837 file as billing wrote it.
type sentClaim struct {
	frequency, f8 string
	lines         []billedLine
}

// sentClaims reads CLM01 -> frequency code (CLM05-3), REF*F8 and lines of an 837 file.
func sentClaims(t *testing.T, segs []x12.Segment) map[string]sentClaim {
	t.Helper()
	out := map[string]sentClaim{}
	lines := billedClaims(t, segs)
	var claim string
	for _, s := range segs {
		switch {
		case s.ID == "CLM":
			claim = s.Element(1)
			parts := strings.Split(s.Element(5), ":")
			out[claim] = sentClaim{frequency: parts[len(parts)-1], lines: lines[claim]}
		case s.ID == "REF" && s.Element(1) == "F8" && claim != "":
			c := out[claim]
			c.f8 = s.Element(2)
			out[claim] = c
		}
	}
	return out
}

// TestClaimCorrections walks corrections after claims went out, through attendance events:
// a session corrected to fewer minutes (another code) makes its claim replaced by a
// frequency-7 claim with every line (the unchanged one and the new code); a claim whose only
// session is corrected to absent is voided by a frequency-8 claim repeating its line; a claim
// with one of two sessions corrected to absent is replaced by a claim with the other line.
// Each correction names the original by REF*F8, discloses again, and a further run sends
// nothing.
func TestClaimCorrections(t *testing.T) {
	e := startClaims(t)
	ctx := context.Background()
	ch := &chargesEnv{Service: e.Service, charges: billingv1connect.NewChargesServiceClient(http.DefaultClient, e.URL), admin: e.admin}
	// Acme also bills individual therapy by the minutes attended.
	contract := &billingv1.Contract{ContractId: e.acmeContract, PayerId: "acme-health", ClinicId: clinicA,
		BillingMode: billingv1.BillingMode_BILLING_MODE_PER_SERVICE, ClaimType: billingv1.ClaimType_CLAIM_TYPE_PROFESSIONAL,
		EffectiveFrom: time.Now().UTC().AddDate(0, 0, -200).Format(time.DateOnly),
		Codes: []*billingv1.ServiceCode{
			{Service: billingv1.BillableService_BILLABLE_SERVICE_GROUP, ProcedureCode: "90853", RateCents: 8500},
			{Service: billingv1.BillableService_BILLABLE_SERVICE_INDIVIDUAL, ProcedureCode: "90832", RateCents: 9000, MinMinutes: 16, MaxMinutes: 37},
			{Service: billingv1.BillableService_BILLABLE_SERVICE_INDIVIDUAL, ProcedureCode: "90834", RateCents: 12000, MinMinutes: 38, MaxMinutes: 52},
			{Service: billingv1.BillableService_BILLABLE_SERVICE_INDIVIDUAL, ProcedureCode: "90837", RateCents: 15000, MinMinutes: 53},
		}}
	if _, err := e.config.UpsertContract(ctx, req(e.admin, &billingv1.UpsertContractRequest{Contract: contract})); err != nil {
		t.Fatal(err)
	}
	contractsSettled(t, e.Service, 3)

	day1 := time.Now().UTC().AddDate(0, 0, -6).Format(time.DateOnly)
	day2 := time.Now().UTC().AddDate(0, 0, -5).Format(time.DateOnly)
	shorter, absent, partly := bus.NewID(), bus.NewID(), bus.NewID()
	individual := schedulingv1.ServiceType_SERVICE_TYPE_INDIVIDUAL
	sessions := map[string][]session{
		shorter: {{date: day1, appointment: appt("c001")}, {date: day2, appointment: appt("c002")}},
		absent:  {{date: day1, appointment: appt("c003")}},
		partly:  {{date: day1, appointment: appt("c004")}, {date: day2, appointment: appt("c005")}},
	}
	for _, p := range []string{shorter, absent, partly} {
		up := envelope(t, enrolled(p, clinicA), clinicA)
		e.Settled(t, "SCHEDULING", "billing--enrollments", e.Publish(t, subjectEnrolled, up.GetEventId(), up, ""))
		e.identity(t, p, "Pat", time.Now())
		ch.coverage(t, p, "acme-health", time.Now())
		ch.consent(t, p)
		if _, err := e.claims.SetPatientDiagnoses(ctx, req(e.admin, &billingv1.SetPatientDiagnosesRequest{
			PatientId: p, ClinicId: clinicA, Codes: []string{"F1020"}})); err != nil {
			t.Fatal(err)
		}
		for _, s := range sessions[p] {
			s.patient, s.service, s.minutes = p, individual, 55
			ch.attend(t, s)
		}
	}
	first := e.run(t, e.admin)
	if len(first.GetFiles()) != 1 || first.GetFiles()[0].GetClaimCount() != 3 || first.GetFiles()[0].GetLineCount() != 5 {
		t.Fatalf("first run = %v, want one file of 3 claims and 5 lines", first)
	}
	originals := map[string]sentClaim{} // by patient
	controls := map[string]string{}
	list, err := e.claims.ListClaims(ctx, req(e.admin, &billingv1.ListClaimsRequest{ClinicId: clinicA}))
	if err != nil {
		t.Fatal(err)
	}
	segs1, _ := e.parsed(t, first.GetFiles()[0].GetFileId())
	sent1 := sentClaims(t, segs1)
	for _, c := range list.Msg.GetClaims() {
		controls[c.GetPatientId()] = c.GetControlNumber()
		originals[c.GetPatientId()] = sent1[c.GetControlNumber()]
	}

	// After submission: a session 25 minutes shorter (90837 -> 90832), and two corrected to absent.
	ch.attend(t, session{patient: shorter, date: day2, appointment: appt("c002"), service: individual, minutes: 30, version: 2})
	ch.attend(t, session{patient: absent, date: day1, appointment: appt("c003"), service: individual,
		status: schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT, version: 2})
	ch.attend(t, session{patient: partly, date: day2, appointment: appt("c005"), service: individual,
		status: schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT, version: 2})

	second := e.run(t, e.admin)
	if len(second.GetFiles()) != 1 || len(second.GetHeld()) != 0 {
		t.Fatalf("second run = %v, want one file", second)
	}
	f2 := second.GetFiles()[0]
	segs2, _ := e.parsed(t, f2.GetFileId())
	checkEnvelope(t, segs2, f2.GetInterchangeControlNumber())
	if f2.GetClaimCount() != 3 || f2.GetLineCount() != 4 || len(segmentsWith(segs2, "CLM")) != 3 || len(segmentsWith(segs2, "LX")) != 4 {
		t.Fatalf("correction file = %v, want 3 claims, 4 lines", f2)
	}
	list, err = e.claims.ListClaims(ctx, req(e.admin, &billingv1.ListClaimsRequest{ClinicId: clinicA}))
	if err != nil {
		t.Fatal(err)
	}
	byControl := map[string]*billingv1.ClaimInfo{}
	for _, c := range list.Msg.GetClaims() {
		byControl[c.GetControlNumber()] = c
	}
	sent2 := sentClaims(t, segs2)
	want := map[string]struct {
		frequency string
		lines     []billedLine
		status    billingv1.ClaimStatus
	}{
		shorter: {"7", []billedLine{{code: "90837", date: day1, cents: 15000}, {code: "90832", date: day2, cents: 9000}},
			billingv1.ClaimStatus_CLAIM_STATUS_REPLACED},
		absent: {"8", originals[absent].lines, billingv1.ClaimStatus_CLAIM_STATUS_VOIDED},
		partly: {"7", []billedLine{{code: "90837", date: day1, cents: 15000}}, billingv1.ClaimStatus_CLAIM_STATUS_REPLACED},
	}
	for control, got := range sent2 {
		info := byControl[control]
		if info == nil {
			t.Fatalf("claim %s of the file is not listed", control)
		}
		p := info.GetPatientId()
		w := want[p]
		orig := byControl[controls[p]]
		if got.frequency != w.frequency || got.f8 != controls[p] || info.GetFrequencyCode() != w.frequency ||
			info.GetReplacesClaimId() != orig.GetClaimId() {
			t.Errorf("patient %s: frequency %q F8 %q (info %v), want %q naming %s", p, got.frequency, got.f8, info, w.frequency, controls[p])
		}
		if len(got.lines) != len(w.lines) {
			t.Errorf("patient %s: lines %+v, want %+v", p, got.lines, w.lines)
			continue
		}
		for i, l := range got.lines {
			if l.code != w.lines[i].code || l.date != w.lines[i].date || l.cents != w.lines[i].cents ||
				!strings.HasPrefix(l.control, control+"-") {
				t.Errorf("patient %s line %d: %+v, want %+v", p, i+1, l, w.lines[i])
			}
		}
		if orig.GetStatus() != w.status || orig.GetCorrectedByClaimId() != info.GetClaimId() {
			t.Errorf("patient %s: original %v, want status %v corrected by %s", p, orig, w.status, info.GetClaimId())
		}
	}
	// The charges billed now are submitted on the replacements; the voided ones stay void.
	for _, p := range []string{shorter, partly} {
		if n := e.Count(t, `SELECT count(*) FROM charges ch JOIN claims c ON c.id = ch.claim_id
			WHERE ch.patient_id = $1 AND ch.status <> 'void' AND (ch.status <> 'submitted' OR c.frequency_code <> '7')`, p); n != 0 {
			t.Errorf("patient %s: %d valid charges not submitted on the replacement", p, n)
		}
	}
	if n := e.Count(t, `SELECT count(*) FROM charges WHERE patient_id = $1 AND status <> 'void'`, absent); n != 0 {
		t.Errorf("absent patient: %d charges not void", n)
	}
	// Each correction is a disclosure and a ClaimSubmitted.
	if n := e.Count(t, `SELECT count(*) FROM disclosures`); n != 6 {
		t.Errorf("disclosures = %d, want 6", n)
	}
	e.Relayed(t)
	if n := e.StreamCount(t, "BILLING", subjectClaimSubmitted); n != 6 {
		t.Errorf("ClaimSubmitted = %d, want 6", n)
	}

	// Nothing more to correct.
	if third := e.run(t, e.admin); len(third.GetFiles()) != 0 || len(third.GetHeld()) != 0 {
		t.Fatalf("third run = %v, want nothing", third)
	}
	if slices.ContainsFunc(list.Msg.GetClaims(), func(c *billingv1.ClaimInfo) bool {
		return c.GetFrequencyCode() != "1" && c.GetCorrectedByClaimId() != ""
	}) {
		t.Error("a correction was corrected")
	}
}
