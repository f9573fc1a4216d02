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

	"github.com/trellis-health/trellis/services/billing/internal/x12"
)

// billedLine is a service line as billing sent it, read back from its own 837 file.
type billedLine struct {
	code, date, control string
	cents               int64
}

// billedClaims reads the claims of an 837 file: CLM01 -> its lines (code, date, REF*6R, charge).
func billedClaims(t *testing.T, segs []x12.Segment) map[string][]billedLine {
	t.Helper()
	out := map[string][]billedLine{}
	var claim string
	for _, s := range segs {
		switch s.ID {
		case "CLM":
			claim = s.Element(1)
			out[claim] = nil
		case "SV1", "SV2":
			composite, amount := s.Element(1), s.Element(2)
			if s.ID == "SV2" {
				composite, amount = s.Element(2), s.Element(3)
			}
			cents, err := x12.ParseCents(amount)
			if err != nil {
				t.Fatalf("%s amount %q: %v", s.ID, amount, err)
			}
			code := strings.Split(composite, ":")[1]
			out[claim] = append(out[claim], billedLine{code: code, cents: cents})
		case "DTP":
			if s.Element(1) == "472" && len(out[claim]) > 0 {
				d := s.Element(3)
				out[claim][len(out[claim])-1].date = d[:4] + "-" + d[4:6] + "-" + d[6:8]
			}
		case "REF":
			if s.Element(1) == "6R" && len(out[claim]) > 0 {
				out[claim][len(out[claim])-1].control = s.Element(2)
			}
		}
	}
	return out
}

// TestRevenueCycle walks charges to reconciled payments through the real consumers and APIs,
// without fixtures: attendance, coverage, consent and identity events make charges; a claim
// run writes the 837 files; the payers' 835 answers (built from billing's own files) are
// uploaded, posted and reconciled.
func TestRevenueCycle(t *testing.T) {
	e := startClaims(t)
	ctx := context.Background()
	ch := &chargesEnv{Service: e.Service, charges: billingv1connect.NewChargesServiceClient(http.DefaultClient, e.URL), admin: e.admin}
	remit := billingv1connect.NewRemittanceServiceClient(http.DefaultClient, e.URL)

	medicaidPatient, acmePatient := bus.NewID(), bus.NewID()
	day1 := time.Now().UTC().AddDate(0, 0, -6).Format(time.DateOnly)
	day2 := time.Now().UTC().AddDate(0, 0, -5).Format(time.DateOnly)
	var medicaidEvents []string
	for i, p := range []struct{ patient, payer string }{{medicaidPatient, "medicaid-il"}, {acmePatient, "acme-health"}} {
		up := envelope(t, enrolled(p.patient, clinicA), clinicA)
		e.Settled(t, "SCHEDULING", "billing--enrollments", e.Publish(t, subjectEnrolled, up.GetEventId(), up, ""))
		e.identity(t, p.patient, "Pat", time.Now())
		ch.coverage(t, p.patient, p.payer, time.Now())
		ch.consent(t, p.patient)
		if _, err := e.claims.SetPatientDiagnoses(ctx, req(e.admin, &billingv1.SetPatientDiagnosesRequest{
			PatientId: p.patient, ClinicId: clinicA, Codes: []string{"F1020"}})); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			// Per diem: three hours of group across three sessions of one day is one charge.
			for n, tag := range []string{"a001", "a002", "a003"} {
				env, _ := ch.attend(t, session{patient: p.patient, date: day1, appointment: appt(tag), minutes: 60, hour: n})
				medicaidEvents = append(medicaidEvents, env.GetEventId())
			}
			continue
		}
		// Per service: one group session on each of two days.
		ch.attend(t, session{patient: p.patient, date: day1, appointment: appt("b001"), minutes: 60})
		ch.attend(t, session{patient: p.patient, date: day2, appointment: appt("b002"), minutes: 55})
	}

	// The per-diem charge names the three attendance events it came from.
	var sources []string
	if err := e.Pool.QueryRow(ctx, `SELECT source_event_ids::text[] FROM charges WHERE patient_id = $1 AND status = 'ready'`,
		medicaidPatient).Scan(&sources); err != nil {
		t.Fatal(err)
	}
	slices.Sort(sources)
	slices.Sort(medicaidEvents)
	if !slices.Equal(sources, medicaidEvents) {
		t.Fatalf("per-diem charge sources %v, want the attendance events %v", sources, medicaidEvents)
	}

	run := e.run(t, e.admin)
	if len(run.GetFiles()) != 2 || len(run.GetHeld()) != 0 {
		t.Fatalf("claim run = %v, want two files (837I Medicaid, 837P Acme) and no holds", run)
	}
	// Each payer answers its own file with an 835 built from what billing sent.
	var uploads []string
	for _, f := range run.GetFiles() {
		segs, _ := e.parsed(t, f.GetFileId())
		claims := billedClaims(t, segs)
		if len(claims) != 1 {
			t.Fatalf("file %s has %d claims, want 1", f.GetFileId(), len(claims))
		}
		for control, lines := range claims {
			var answer eraClaim
			switch f.GetPayerId() {
			case "medicaid-il":
				// H0015 $250 paid $210, $40 contractual.
				if len(lines) != 1 || lines[0].code != "H0015" || lines[0].cents != 25000 || lines[0].date != day1 {
					t.Fatalf("Medicaid lines = %+v", lines)
				}
				l := fixtureLine{Code: "H0015", Date: day1, Cents: 25000, LineControl: lines[0].control}
				answer = eraClaim{Control: control, Status: "1", Lines: []eraLine{paidLine(l, eraAdj{"CO", "45", 4000})}}
			case "acme-health":
				// 90853 $85 twice: the first paid $60 with $10 contractual and $15 coinsurance, the
				// second denied (CO-50, not medically necessary).
				if len(lines) != 2 || lines[0].code != "90853" || lines[1].code != "90853" {
					t.Fatalf("Acme lines = %+v", lines)
				}
				first := fixtureLine{Code: "90853", Date: lines[0].date, Cents: lines[0].cents, LineControl: lines[0].control}
				second := fixtureLine{Code: "90853", Date: lines[1].date, Cents: lines[1].cents, LineControl: lines[1].control}
				answer = eraClaim{Control: control, Status: "1", Lines: []eraLine{
					paidLine(first, eraAdj{"CO", "45", 1000}, eraAdj{"PR", "2", 1500}),
					paidLine(second, eraAdj{"CO", "50", 8500}),
				}}
			default:
				t.Fatalf("unexpected payer %s", f.GetPayerId())
			}
			uploads = append(uploads, era835("TRACE-"+f.GetPayerId(), answer))
		}
	}
	biller := e.Token(t, "biller-1", []string{"billing"}, []string{"*"})
	for _, content := range uploads {
		resp, err := remit.UploadRemittance(ctx, req(biller, &billingv1.UploadRemittanceRequest{Content: []byte(content), FileName: "era.835"}))
		if err != nil {
			t.Fatal(err)
		}
		if s := resp.Msg.GetSummary(); s.GetDuplicate() || len(s.GetDeviations()) != 0 || s.GetUnmatchedLines() != 0 || s.GetMatchedClaims() != 1 {
			t.Fatalf("upload summary = %v, want one matched claim, balanced, new", s)
		}
	}

	// Reconciled: every charge has its outcome, the claims their status, the patient owes the
	// coinsurance, and the denial waits in its queue.
	statuses := func(patient string) []string {
		rows, err := e.Pool.Query(ctx, `SELECT status FROM charges WHERE patient_id = $1 AND status <> 'void' ORDER BY service_date`, patient)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	if got := statuses(medicaidPatient); !slices.Equal(got, []string{"paid"}) {
		t.Errorf("Medicaid charges %v, want [paid]", got)
	}
	if got := statuses(acmePatient); !slices.Equal(got, []string{"paid", "denied"}) {
		t.Errorf("Acme charges %v, want [paid denied]", got)
	}
	var claimStates []string
	rows, err := e.Pool.Query(ctx, `SELECT payer_id || ' ' || status || ' ' || paid_cents || ' ' || patient_resp_cents FROM claims ORDER BY payer_id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		claimStates = append(claimStates, s)
	}
	if want := []string{"acme-health partially_paid 6000 1500", "medicaid-il paid 21000 0"}; !slices.Equal(claimStates, want) {
		t.Errorf("claims %v, want %v", claimStates, want)
	}
	bal, err := remit.GetPatientBalance(ctx, req(biller, &billingv1.GetPatientBalanceRequest{PatientId: acmePatient, ClinicId: clinicA}))
	if err != nil {
		t.Fatal(err)
	}
	if bal.Msg.GetBalanceCents() != 1500 {
		t.Errorf("Acme patient balance %d, want 1500 (the coinsurance)", bal.Msg.GetBalanceCents())
	}
	denials, err := remit.ListWorkItems(ctx, req(biller, &billingv1.ListWorkItemsRequest{Queue: "denial", ClinicId: clinicA}))
	if err != nil {
		t.Fatal(err)
	}
	if items := denials.Msg.GetItems(); len(items) != 1 || items[0].GetAmountCents() != 8500 || items[0].GetPayerId() != "acme-health" {
		t.Errorf("denial queue = %v, want the one denied $85 line", items)
	}
	for subject, want := range map[string]uint64{
		subjectRemittancePosted: 2, subjectAdjudicated: 2, subjectStatementReady: 1,
		"trellis.billing.claim.submitted.v1": 2, "trellis.billing.claim_file.created.v1": 2,
	} {
		e.Relayed(t)
		if got := e.StreamCount(t, "BILLING", subject); got != want {
			t.Errorf("%s: %d events, want %d", subject, got, want)
		}
	}

	// The same 835 again posts nothing.
	again, err := remit.UploadRemittance(ctx, req(biller, &billingv1.UploadRemittanceRequest{Content: []byte(uploads[0]), FileName: "era.835"}))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Msg.GetSummary().GetDuplicate() {
		t.Errorf("second upload of the same file: %v, want duplicate", again.Msg.GetSummary())
	}
	if n := e.Count(t, "SELECT count(*) FROM ledger_entries"); n != 1 {
		t.Errorf("%d ledger entries after a duplicate upload, want 1", n)
	}
	// Nothing is left to claim.
	if next := e.run(t, e.admin); len(next.GetFiles()) != 0 {
		t.Errorf("second claim run wrote %d files, want none", len(next.GetFiles()))
	}
}
