package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"

	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

const (
	subjectRemittancePosted = "trellis.billing.remittance.posted.v1"
	subjectAdjudicated      = "trellis.billing.claim.adjudicated.v1"
	subjectStatementReady   = "trellis.billing.statement.ready.v1"
	remitPayer              = "remit-payer"
)

// remitEnv is the service with a RemittanceService client.
type remitEnv struct {
	*servicetest.Service
	client billingv1connect.RemittanceServiceClient
	// admin of every clinic (may upload).
	admin string
}

func startRemit(t testing.TB) *remitEnv {
	t.Helper()
	var cfg Config
	s := systemScoped(t, servicetest.Start(t, spec(&cfg), &cfg, nil))
	e := &remitEnv{Service: s, client: billingv1connect.NewRemittanceServiceClient(http.DefaultClient, s.URL)}
	e.admin = s.Token(t, "admin-1", []string{"billing"}, []string{auth.AllClinics})
	e.sql(t, `INSERT INTO payers (code, name, kind, x12_payer_id) VALUES ($1, 'Remit Payer', 'commercial', 'RP01')`, remitPayer)
	return e
}

func (e *remitEnv) sql(t testing.TB, q string, args ...any) {
	t.Helper()
	if _, err := e.Pool.Exec(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// fixtureLine is a billed claim line: procedure code, service date (YYYY-MM-DD) and charge.
type fixtureLine struct {
	Code, Date  string
	Cents       int64
	ChargeID    string // filled by the fixture
	LineControl string // filled by the fixture
}

// fixtureClaim is a claim billing sent (CLM01 Control).
type fixtureClaim struct {
	ID, Control, Clinic, Patient string
	Lines                        []fixtureLine
}

func (c fixtureClaim) total() int64 {
	var t int64
	for _, l := range c.Lines {
		t += l.Cents
	}
	return t
}

// claimFixture inserts, with SQL, what H3's claim run would have written for these claims
// (a claim file, claims, claim lines, their submitted charges, a contract) plus the patients'
// accounts, submitted daysAgo days ago. The remittance area reads only these tables.
func (e *remitEnv) claimFixture(t testing.TB, daysAgo int, claims ...*fixtureClaim) {
	t.Helper()
	ctx := context.Background()
	contract, file := bus.NewID(), bus.NewID()
	var total int64
	for _, c := range claims {
		total += c.total()
	}
	var icn int64
	if err := e.Pool.QueryRow(ctx, `SELECT nextval('interchange_control_seq')`).Scan(&icn); err != nil {
		t.Fatal(err)
	}
	clinic := claims[0].Clinic
	e.sql(t, `INSERT INTO contracts (id, payer_id, clinic_id, billing_mode, claim_type, effective_from)
		VALUES ($1, $2, $3, 'per_diem', '837I', '2026-01-01')`, contract, remitPayer, clinic)
	e.sql(t, `INSERT INTO claim_files (id, clinic_id, payer_id, claim_type, interchange_control_number, claim_count, total_cents, content, created_at)
		VALUES ($1, $2, $3, '837I', $4, $5, $6, '', now() - make_interval(days => $7))`, file, clinic, remitPayer, icn, len(claims), total, daysAgo)
	for _, c := range claims {
		c.ID = bus.NewID()
		e.sql(t, `INSERT INTO accounts (id, patient_id, clinic_id, enrollment_id, source_event_id) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT DO NOTHING`, bus.NewID(), c.Patient, c.Clinic, bus.NewID(), bus.NewID())
		e.sql(t, `INSERT INTO claims (id, file_id, control_number, clinic_id, patient_id, payer_id, contract_id, claim_type,
			total_cents, first_service_date, last_service_date, submitted_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, '837I', $8, $9, $9, now() - make_interval(days => $10))`,
			c.ID, file, c.Control, c.Clinic, c.Patient, remitPayer, contract, c.total(), c.Lines[0].Date, daysAgo)
		for i := range c.Lines {
			l := &c.Lines[i]
			l.ChargeID, l.LineControl = bus.NewID(), fmt.Sprintf("%s-%d", c.Control, i+1)
			e.sql(t, `INSERT INTO charges (id, billable_unit, patient_id, clinic_id, enrollment_id, payer_id, contract_id,
				service_date, service, procedure_code, units, rate_cents, amount_cents, status, source_event_ids, appointment_ids, claim_id)
				VALUES ($1::uuid, 'fixture:' || $1::text, $2, $3, $4, $5, $6, $7, 'per_diem', $8, 1, $9, $9, 'submitted', '{}', '{}', $10)`,
				l.ChargeID, c.Patient, c.Clinic, bus.NewID(), remitPayer, contract, l.Date, l.Code, l.Cents, c.ID)
			e.sql(t, `INSERT INTO claim_lines (claim_id, line_number, charge_id, line_control_number, procedure_code, units, charge_cents, service_date, clinic_id)
				VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8)`, c.ID, i+1, l.ChargeID, l.LineControl, l.Code, l.Cents, l.Date, c.Clinic)
		}
	}
}

// claimFixtureBulk inserts what claimFixture does, one statement per table over arrays (a
// file of tens of thousands of claims would take minutes row by row). Claims need no ID.
func (e *remitEnv) claimFixtureBulk(t testing.TB, daysAgo int, claims ...*fixtureClaim) {
	t.Helper()
	contract, file := bus.NewID(), bus.NewID()
	var total int64
	var ids, controls, clinics, patients, accounts, enrollments, sources, firstDates []string
	var totals []int64
	var chIDs, chPatients, chClinics, chEnrollments, chDates, chCodes, chClaims, chControls []string
	var chCents, chNumbers []int64
	for _, c := range claims {
		c.ID = bus.NewID()
		total += c.total()
		ids, controls, clinics, patients = append(ids, c.ID), append(controls, c.Control), append(clinics, c.Clinic), append(patients, c.Patient)
		accounts, enrollments, sources = append(accounts, bus.NewID()), append(enrollments, bus.NewID()), append(sources, bus.NewID())
		firstDates, totals = append(firstDates, c.Lines[0].Date), append(totals, c.total())
		for i := range c.Lines {
			l := &c.Lines[i]
			l.ChargeID, l.LineControl = bus.NewID(), fmt.Sprintf("%s-%d", c.Control, i+1)
			chIDs, chPatients, chClinics = append(chIDs, l.ChargeID), append(chPatients, c.Patient), append(chClinics, c.Clinic)
			chEnrollments, chDates, chCodes = append(chEnrollments, bus.NewID()), append(chDates, l.Date), append(chCodes, l.Code)
			chClaims, chControls, chCents, chNumbers = append(chClaims, c.ID), append(chControls, l.LineControl), append(chCents, l.Cents), append(chNumbers, int64(i+1))
		}
	}
	var icn int64
	if err := e.Pool.QueryRow(context.Background(), `SELECT nextval('interchange_control_seq')`).Scan(&icn); err != nil {
		t.Fatal(err)
	}
	clinic := claims[0].Clinic
	e.sql(t, `INSERT INTO contracts (id, payer_id, clinic_id, billing_mode, claim_type, effective_from)
		VALUES ($1, $2, $3, 'per_diem', '837I', '2026-01-01')`, contract, remitPayer, clinic)
	e.sql(t, `INSERT INTO claim_files (id, clinic_id, payer_id, claim_type, interchange_control_number, claim_count, total_cents, content, created_at)
		VALUES ($1, $2, $3, '837I', $4, $5, $6, '', now() - make_interval(days => $7))`, file, clinic, remitPayer, icn, len(claims), total, daysAgo)
	e.sql(t, `INSERT INTO accounts (id, patient_id, clinic_id, enrollment_id, source_event_id)
		SELECT v.id::uuid, v.patient::uuid, v.clinic::uuid, v.enrollment::uuid, v.source::uuid
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS v(id, patient, clinic, enrollment, source)
		ON CONFLICT DO NOTHING`, accounts, patients, clinics, enrollments, sources)
	e.sql(t, `INSERT INTO claims (id, file_id, control_number, clinic_id, patient_id, payer_id, contract_id, claim_type,
		total_cents, first_service_date, last_service_date, submitted_at)
		SELECT v.id::uuid, $1, v.control, v.clinic::uuid, v.patient::uuid, $2, $3, '837I', v.total, v.day::date, v.day::date,
		       now() - make_interval(days => $4)
		FROM unnest($5::text[], $6::text[], $7::text[], $8::text[], $9::int8[], $10::text[]) AS v(id, control, clinic, patient, total, day)`,
		file, remitPayer, contract, daysAgo, ids, controls, clinics, patients, totals, firstDates)
	e.sql(t, `INSERT INTO charges (id, billable_unit, patient_id, clinic_id, enrollment_id, payer_id, contract_id,
		service_date, service, procedure_code, units, rate_cents, amount_cents, status, source_event_ids, appointment_ids, claim_id)
		SELECT v.id::uuid, 'fixture:' || v.id, v.patient::uuid, v.clinic::uuid, v.enrollment::uuid, $1, $2, v.day::date, 'per_diem',
		       v.code, 1, v.cents, v.cents, 'submitted', '{}', '{}', v.claim::uuid
		FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int8[], $10::text[])
		     AS v(id, patient, clinic, enrollment, day, code, cents, claim)`,
		remitPayer, contract, chIDs, chPatients, chClinics, chEnrollments, chDates, chCodes, chCents, chClaims)
	e.sql(t, `INSERT INTO claim_lines (claim_id, line_number, charge_id, line_control_number, procedure_code, units, charge_cents, service_date, clinic_id)
		SELECT v.claim::uuid, v.n, v.charge::uuid, v.control, v.code, 1, v.cents, v.day::date, v.clinic::uuid
		FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::text[], $8::text[])
		     AS v(claim, n, charge, control, code, cents, day, clinic)`,
		chClaims, chNumbers, chIDs, chControls, chCodes, chCents, chDates, chClinics)
}

// eraAdj is one CAS amount.
type eraAdj struct {
	Group, Reason string
	Cents         int64
}

// eraLine is one SVC of a generated 835.
type eraLine struct {
	Code, Date, LineControl string // Date YYYY-MM-DD; LineControl "" sends no REF*6R
	Charged, Paid           int64
	Adjs                    []eraAdj
	Remarks                 []string // LQ*HE
}

// eraClaim is one CLP of a generated 835; Charged and Paid are the sums of the lines (or
// given when the claim has none), PR the sum of the PR adjustments.
type eraClaim struct {
	Control, Status string
	Charged, Paid   int64
	Adjs            []eraAdj
	Lines           []eraLine
}

func amt(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}

func cas(adjs []eraAdj) []string {
	var out []string
	for _, a := range adjs {
		out = append(out, fmt.Sprintf("CAS*%s*%s*%s", a.Group, a.Reason, amt(a.Cents)))
	}
	return out
}

// era835 writes a balanced 835 (no envelope, one transaction) for claims: BPR is the sum of
// CLP04, SE counts its segments. trace makes files of the same claims differ.
func era835(trace string, claims ...eraClaim) string {
	var body []string
	var total int64
	for i, c := range claims {
		charged, paid, pr := c.Charged, c.Paid, int64(0)
		if len(c.Lines) > 0 {
			charged, paid = 0, 0
		}
		for _, a := range c.Adjs {
			if a.Group == "PR" {
				pr += a.Cents
			}
		}
		for _, l := range c.Lines {
			charged, paid = charged+l.Charged, paid+l.Paid
			for _, a := range l.Adjs {
				if a.Group == "PR" {
					pr += a.Cents
				}
			}
		}
		total += paid
		body = append(body, fmt.Sprintf("LX*%d", i+1),
			fmt.Sprintf("CLP*%s*%s*%s*%s*%s*MC*PCN%s*13*1", c.Control, c.Status, amt(charged), amt(paid), amt(pr), c.Control))
		body = append(body, cas(c.Adjs)...)
		for _, l := range c.Lines {
			body = append(body, fmt.Sprintf("SVC*HC:%s*%s*%s**1", l.Code, amt(l.Charged), amt(l.Paid)),
				"DTM*472*"+strings.ReplaceAll(l.Date, "-", ""))
			body = append(body, cas(l.Adjs)...)
			if l.LineControl != "" {
				body = append(body, "REF*6R*"+l.LineControl)
			}
			for _, r := range l.Remarks {
				body = append(body, "LQ*HE*"+r)
			}
		}
	}
	credit, bpr := "C", total
	if total < 0 {
		credit, bpr = "D", -total
	}
	segs := []string{"ST*835*0001",
		fmt.Sprintf("BPR*I*%s*%s*ACH*CCP*01*999999999*DA*123456*1512345678**01*999988880*DA*98765*20260320", amt(bpr), credit),
		"TRN*1*" + trace + "*1512345678", "N1*PR*REMIT PAYER*XV*RP01", "N1*PE*RIVERSIDE*XX*1234567893"}
	segs = append(segs, body...)
	segs = append(segs, fmt.Sprintf("SE*%d*0001", len(segs)+1))
	return strings.Join(segs, "~\n") + "~\n"
}

// paidLine answers a billed line: paid = charge - adjustments, REF*6R echoed.
func paidLine(l fixtureLine, adjs ...eraAdj) eraLine {
	paid := l.Cents
	for _, a := range adjs {
		paid -= a.Cents
	}
	return eraLine{Code: l.Code, Date: l.Date, LineControl: l.LineControl, Charged: l.Cents, Paid: paid, Adjs: adjs}
}

func (e *remitEnv) upload(t testing.TB, token, content string) *billingv1.RemittanceSummary {
	t.Helper()
	resp, err := e.client.UploadRemittance(context.Background(), req(token, &billingv1.UploadRemittanceRequest{
		Content: []byte(content), FileName: "era.835"}))
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	return resp.Msg.GetSummary()
}

func (e *remitEnv) status(t testing.TB, table, id string) string {
	t.Helper()
	var s string
	if err := e.Pool.QueryRow(context.Background(), `SELECT status FROM `+table+` WHERE id = $1`, id).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *remitEnv) balance(t testing.TB, patient, clinic string) int64 {
	t.Helper()
	var b int64
	if err := e.Pool.QueryRow(context.Background(), `SELECT balance_cents FROM accounts WHERE patient_id = $1 AND clinic_id = $2`,
		patient, clinic).Scan(&b); err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *remitEnv) items(t testing.TB, token, queue, clinic, status string) []*billingv1.WorkItem {
	t.Helper()
	resp, err := e.client.ListWorkItems(context.Background(), req(token, &billingv1.ListWorkItemsRequest{Queue: queue, ClinicId: clinic, Status: status}))
	if err != nil {
		t.Fatalf("list %s: %v", queue, err)
	}
	return resp.Msg.GetItems()
}

func lastPayload[T proto.Message](t testing.TB, e *remitEnv, subject string, msg T) T {
	t.Helper()
	s, err := e.JS.Stream(context.Background(), "BILLING")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetLastMsgForSubject(context.Background(), subject)
	if err != nil {
		t.Fatal(err)
	}
	env := &eventsv1.Envelope{}
	if err := proto.Unmarshal(raw.Data, env); err != nil {
		t.Fatal(err)
	}
	if err := env.GetPayload().UnmarshalTo(msg); err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestRemittancePosting(t *testing.T) {
	e := startRemit(t)
	ctx := context.Background()
	patient, other := bus.NewID(), bus.NewID()
	day := func(d string) fixtureLine { return fixtureLine{Code: "H0015", Date: "2026-03-" + d, Cents: 15000} }
	c1 := &fixtureClaim{Control: "R1C1", Clinic: clinicA, Patient: patient, Lines: []fixtureLine{day("02"), day("03")}}
	c2 := &fixtureClaim{Control: "R1C2", Clinic: clinicA, Patient: other, Lines: []fixtureLine{day("04")}}
	c3 := &fixtureClaim{Control: "R1C3", Clinic: clinicA, Patient: other, Lines: []fixtureLine{day("05")}}
	c4 := &fixtureClaim{Control: "R1C4", Clinic: clinicB, Patient: other, Lines: []fixtureLine{day("06"), day("09")}}
	e.claimFixture(t, 45, c1, c2, c3)
	e.claimFixture(t, 100, c4)

	wrongCode := eraLine{Code: "99999", Date: "2026-03-09", Charged: 15000, Paid: 15000}
	file := era835("T1",
		// C1: CO contractual on both lines, PR on the first (to the patient).
		eraClaim{Control: "R1C1", Status: "1", Lines: []eraLine{
			paidLine(c1.Lines[0], eraAdj{"CO", "45", 1000}, eraAdj{"PR", "2", 2000}),
			paidLine(c1.Lines[1], eraAdj{"CO", "45", 1000})}},
		// C2: denied.
		eraClaim{Control: "R1C2", Status: "4", Lines: []eraLine{paidLine(c2.Lines[0], eraAdj{"CO", "50", 15000})}},
		// C3: underpaid by 10.00 (OA).
		eraClaim{Control: "R1C3", Status: "1", Lines: []eraLine{paidLine(c3.Lines[0], eraAdj{"CO", "45", 2000}, eraAdj{"OA", "23", 1000})}},
		// C4: the first line by REF*6R; the second names a code billing never sent.
		eraClaim{Control: "R1C4", Status: "1", Lines: []eraLine{paidLine(c4.Lines[0]), wrongCode}},
		// A claim billing never sent.
		eraClaim{Control: "NOSUCH", Status: "1", Charged: 5000, Paid: 5000},
	)
	s := e.upload(t, e.admin, file)
	if s.GetDuplicate() || s.GetClaims() != 5 || s.GetServiceLines() != 6 || s.GetMatchedClaims() != 4 || s.GetUnmatchedLines() != 2 ||
		s.GetTotalPaidCents() != 26000+0+12000+30000+5000 || len(s.GetDeviations()) != 0 {
		t.Fatalf("summary %v", s)
	}

	// Claims and charges.
	for _, c := range []struct {
		claim *fixtureClaim
		want  string
	}{{c1, "paid"}, {c2, "denied"}, {c3, "partially_paid"}, {c4, "partially_paid"}} {
		if got := e.status(t, "claims", c.claim.ID); got != c.want {
			t.Errorf("claim %s = %s, want %s", c.claim.Control, got, c.want)
		}
	}
	for _, c := range []struct {
		id, want string
	}{{c1.Lines[0].ChargeID, "paid"}, {c1.Lines[1].ChargeID, "paid"}, {c2.Lines[0].ChargeID, "denied"},
		{c3.Lines[0].ChargeID, "paid"}, {c4.Lines[0].ChargeID, "paid"}, {c4.Lines[1].ChargeID, "submitted"}} {
		if got := e.status(t, "charges", c.id); got != c.want {
			t.Errorf("charge = %s, want %s", got, c.want)
		}
	}
	var paid, pr int64
	var payerClaim string
	if err := e.Pool.QueryRow(ctx, `SELECT paid_cents, patient_resp_cents, payer_claim_number FROM claims WHERE id = $1`, c1.ID).
		Scan(&paid, &pr, &payerClaim); err != nil {
		t.Fatal(err)
	}
	if paid != 26000 || pr != 2000 || payerClaim != "PCNR1C1" {
		t.Fatalf("claim 1 paid %d pr %d payer claim %q", paid, pr, payerClaim)
	}
	classes := map[string]string{}
	rows, _ := e.Pool.Query(ctx, `SELECT line_control || '/' || procedure_code, classification FROM remittance_lines`)
	for rows.Next() {
		var k, v string
		_ = rows.Scan(&k, &v)
		classes[k] = v
	}
	rows.Close()
	want := map[string]string{"R1C1-1/H0015": "patient_responsibility", "R1C1-2/H0015": "contractual", "R1C2-1/H0015": "denied",
		"R1C3-1/H0015": "underpaid", "R1C4-1/H0015": "paid", "/99999": "unmatched"}
	for k, v := range want {
		if classes[k] != v {
			t.Errorf("line %s classified %q, want %q (all: %v)", k, classes[k], v, classes)
		}
	}

	// Patient responsibility reached the patient's account, with a statement.
	if b := e.balance(t, patient, clinicA); b != 2000 {
		t.Fatalf("balance = %d, want 2000", b)
	}
	e.Relayed(t)
	st := lastPayload(t, e, subjectStatementReady, &billingv1.StatementReady{})
	if st.GetPatientId() != patient || st.GetBalanceCents() != 2000 || st.GetDueDate() != time.Now().UTC().AddDate(0, 0, 30).Format(time.DateOnly) {
		t.Fatalf("statement %v", st)
	}
	counts := func() [4]uint64 {
		return [4]uint64{e.StreamCount(t, "BILLING", subjectRemittancePosted), e.StreamCount(t, "BILLING", subjectAdjudicated),
			e.StreamCount(t, "BILLING", subjectChargeStatus), e.StreamCount(t, "BILLING", subjectStatementReady)}
	}
	if got := counts(); got != [4]uint64{1, 4, 5, 1} {
		t.Fatalf("events (posted, adjudicated, charge status, statement) = %v", got)
	}
	bal, err := e.client.GetPatientBalance(ctx, req(e.admin, &billingv1.GetPatientBalanceRequest{PatientId: patient, ClinicId: clinicA}))
	if err != nil {
		t.Fatal(err)
	}
	if bal.Msg.GetBalanceCents() != 2000 || len(bal.Msg.GetEntries()) != 1 || bal.Msg.GetLastStatement().GetBalanceCents() != 2000 {
		t.Fatalf("balance %v", bal.Msg)
	}

	// Work queues.
	queue := func(q string) map[string]int64 {
		out := map[string]int64{}
		for _, w := range e.items(t, e.admin, q, "", "open") {
			out[w.GetClaimId()] += w.GetAmountCents()
		}
		return out
	}
	if d := queue("denial"); len(d) != 1 || d[c2.ID] != 15000 {
		t.Errorf("denials %v", d)
	}
	if u := queue("underpayment"); len(u) != 1 || u[c3.ID] != 1000 {
		t.Errorf("underpayments %v", u)
	}
	if u := queue("unmatched"); len(u) != 2 || u[c4.ID] != 15000 || u[""] != 5000 {
		t.Errorf("unmatched %v", u)
	}
	// A clinic-B-only caller sees clinic B's unmatched line, not the clinic-less one.
	onlyB := e.Token(t, "user-b", []string{"operator"}, []string{clinicB})
	if got := e.items(t, onlyB, "unmatched", "", ""); len(got) != 1 || got[0].GetClaimId() != c4.ID {
		t.Errorf("clinic B unmatched %v", got)
	}
	_, err = e.client.ListWorkItems(ctx, req(onlyB, &billingv1.ListWorkItemsRequest{Queue: "denial", ClinicId: clinicA}))
	wantCode(t, err, connect.CodePermissionDenied)

	// Appeal the denial.
	denial := e.items(t, e.admin, "denial", clinicA, "")[0]
	update := func(token, status, appeal string) (*billingv1.WorkItem, error) {
		resp, err := e.client.UpdateWorkItem(ctx, req(token, &billingv1.UpdateWorkItemRequest{Id: denial.GetId(), Status: status, AppealStatus: appeal}))
		if err != nil {
			return nil, err
		}
		return resp.Msg.GetItem(), nil
	}
	_, err = update(e.admin, "", "won")
	wantCode(t, err, connect.CodeFailedPrecondition)
	if w, err := update(e.admin, "", "appealed"); err != nil || w.GetAppealStatus() != "appealed" || w.GetStatus() != "open" {
		t.Fatalf("appeal: %v %v", w, err)
	}
	_, err = update(onlyB, "resolved", "")
	wantCode(t, err, connect.CodePermissionDenied) // operators read queues only
	_, err = update(e.Token(t, "user-b", []string{"billing"}, []string{clinicB}), "resolved", "")
	wantCode(t, err, connect.CodeNotFound)
	if w, err := update(e.admin, "resolved", "won"); err != nil || w.GetAppealStatus() != "won" || w.GetStatus() != "resolved" {
		t.Fatalf("win: %v %v", w, err)
	}
	_, err = update(e.admin, "", "lost")
	wantCode(t, err, connect.CodeFailedPrecondition)
	// Appeals are for denials.
	under := e.items(t, e.admin, "underpayment", "", "")[0]
	_, err = e.client.UpdateWorkItem(ctx, req(e.admin, &billingv1.UpdateWorkItemRequest{Id: under.GetId(), AppealStatus: "appealed"}))
	wantCode(t, err, connect.CodeFailedPrecondition)

	// The same file again posts nothing.
	again := e.upload(t, e.admin, file)
	if !again.GetDuplicate() || again.GetRemittanceId() != s.GetRemittanceId() || again.GetClaims() != 5 {
		t.Fatalf("duplicate %v", again)
	}
	e.Relayed(t)
	if got := counts(); got != [4]uint64{1, 4, 5, 1} {
		t.Fatalf("events after duplicate = %v", got)
	}
	if n := e.Count(t, `SELECT count(*) FROM work_items`); n != 4 {
		t.Fatalf("work items = %d", n)
	}
	if b := e.balance(t, patient, clinicA); b != 2000 {
		t.Fatalf("balance after duplicate = %d", b)
	}

	// A reversal (22) undoes claim 1; a corrected payment posts it again.
	reversal := era835("T2", eraClaim{Control: "R1C1", Status: "22", Lines: []eraLine{
		{Code: "H0015", Date: "2026-03-02", LineControl: c1.Lines[0].LineControl, Charged: -15000, Paid: -12000,
			Adjs: []eraAdj{{"CO", "45", -1000}, {"PR", "2", -2000}}},
		{Code: "H0015", Date: "2026-03-03", LineControl: c1.Lines[1].LineControl, Charged: -15000, Paid: -14000,
			Adjs: []eraAdj{{"CO", "45", -1000}}}}})
	if r := e.upload(t, e.admin, reversal); r.GetDuplicate() || r.GetTotalPaidCents() != -26000 || len(r.GetDeviations()) != 0 {
		t.Fatalf("reversal %v", r)
	}
	if got := e.status(t, "claims", c1.ID); got != "reversed" {
		t.Fatalf("claim 1 after reversal %s", got)
	}
	for _, l := range c1.Lines {
		if got := e.status(t, "charges", l.ChargeID); got != "submitted" {
			t.Fatalf("charge after reversal %s", got)
		}
	}
	if b := e.balance(t, patient, clinicA); b != 0 {
		t.Fatalf("balance after reversal = %d", b)
	}
	corrected := era835("T3", eraClaim{Control: "R1C1", Status: "1", Lines: []eraLine{
		paidLine(c1.Lines[0], eraAdj{"CO", "45", 1000}, eraAdj{"PR", "3", 500}), paidLine(c1.Lines[1], eraAdj{"CO", "45", 1000})}})
	e.upload(t, e.admin, corrected)
	if got := e.status(t, "claims", c1.ID); got != "paid" {
		t.Fatalf("claim 1 after correction %s", got)
	}
	if b := e.balance(t, patient, clinicA); b != 500 {
		t.Fatalf("balance after correction = %d", b)
	}

	// Receivables (45 days old): C2 (denied) and C3's 10.00 for clinic A.
	aging, err := e.client.GetReceivablesAging(ctx, req(e.admin, &billingv1.GetReceivablesAgingRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	byClinic := map[string]*billingv1.PayerAging{}
	for _, p := range aging.Msg.GetPayers() {
		byClinic[p.GetClinicId()] = p
	}
	if a := byClinic[clinicA]; a.GetClaims() != 2 || a.GetBuckets().GetDays_31_60() != 16000 || a.GetBuckets().GetTotal() != 16000 {
		t.Errorf("clinic A aging %v", a)
	}
	// C4 is settled on paper: its CLP04 includes the unmatched line's payment (in its queue).
	if b := byClinic[clinicB]; b != nil {
		t.Errorf("clinic B aging %v", b)
	}
	if p := aging.Msg.GetPatients(); len(p) != 1 || p[0].GetClinicId() != clinicA || p[0].GetBuckets().GetDays_0_30() != 500 {
		t.Errorf("patient aging %v", p)
	}
	onlyA := e.Token(t, "user-a", []string{"operator"}, []string{clinicA})
	aging, err = e.client.GetReceivablesAging(ctx, req(onlyA, &billingv1.GetReceivablesAgingRequest{}))
	if err != nil || len(aging.Msg.GetPayers()) != 1 || aging.Msg.GetPayers()[0].GetClinicId() != clinicA {
		t.Fatalf("clinic A caller aging %v %v", aging, err)
	}
	_, err = e.client.GetReceivablesAging(ctx, req(onlyA, &billingv1.GetReceivablesAgingRequest{ClinicId: clinicB}))
	wantCode(t, err, connect.CodePermissionDenied)

	// Listing remittances: three posted files.
	list, err := e.client.ListRemittances(ctx, req(onlyA, &billingv1.ListRemittancesRequest{}))
	if err != nil || len(list.Msg.GetRemittances()) != 3 {
		t.Fatalf("remittances %v %v", list, err)
	}
}

func TestRemittanceUploadAccessAndInput(t *testing.T) {
	e := startRemit(t)
	ctx := context.Background()
	content := []byte(era835("X", eraClaim{Control: "NONE", Status: "1", Charged: 100, Paid: 100}))
	for _, c := range []struct {
		name  string
		token string
		body  []byte
		want  connect.Code
	}{
		{"billing of one clinic", e.Token(t, "u", []string{"billing"}, []string{clinicA}), content, connect.CodePermissionDenied},
		{"operator", e.Token(t, "u", []string{"operator"}, []string{auth.AllClinics}), content, connect.CodePermissionDenied},
		{"no token", "", content, connect.CodeUnauthenticated},
		{"empty content", e.admin, nil, connect.CodeInvalidArgument},
		{"unreadable content", e.admin, []byte("   \n  "), connect.CodeInvalidArgument},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.client.UploadRemittance(ctx, req(c.token, &billingv1.UploadRemittanceRequest{Content: c.body}))
			wantCode(t, err, c.want)
		})
	}
	if n := e.Count(t, `SELECT count(*) FROM remittances`); n != 0 {
		t.Fatalf("remittances = %d", n)
	}
	// An unbalanced file is posted, its deviations returned and stored.
	bad := strings.Replace(string(content), "BPR*I*1.00", "BPR*I*2.00", 1)
	s := e.upload(t, e.admin, bad)
	if len(s.GetDeviations()) == 0 || s.GetDuplicate() {
		t.Fatalf("unbalanced %v", s)
	}
	if n := e.Count(t, `SELECT count(*) FROM remittances WHERE jsonb_array_length(summary->'deviations') > 0`); n != 1 {
		t.Fatalf("stored deviations: %d", n)
	}
	// The public sample (claims billing never sent): posted, every line to the unmatched queue.
	sample, err := os.ReadFile(eraSample)
	if err != nil {
		t.Fatal(err)
	}
	if s := e.upload(t, e.admin, string(sample)); s.GetTotalPaidCents() != 39105 || s.GetMatchedClaims() != 0 || s.GetUnmatchedLines() != 4 || s.GetWorkItems() != 4 {
		t.Fatalf("sample %v", s)
	}
	// The holds queue lists held charges with their reason.
	contract := bus.NewID()
	e.sql(t, `INSERT INTO contracts (id, payer_id, clinic_id, billing_mode, claim_type, effective_from) VALUES ($1, $2, $3, 'per_diem', '837I', '2026-01-01')`,
		contract, remitPayer, clinicA)
	held := bus.NewID()
	e.sql(t, `INSERT INTO charges (id, billable_unit, patient_id, clinic_id, enrollment_id, payer_id, contract_id, service_date, service,
		procedure_code, units, rate_cents, amount_cents, status, hold_reason, source_event_ids, appointment_ids)
		VALUES ($1::uuid, 'fixture:' || $1::text, $2, $3, $4, $5, $6, '2026-03-02', 'per_diem', 'H0015', 1, 15000, 15000, 'held', 'consent', '{}', '{}')`,
		held, bus.NewID(), clinicA, bus.NewID(), remitPayer, contract)
	holds := e.items(t, e.admin, "holds", clinicA, "")
	if len(holds) != 1 || holds[0].GetId() != held || holds[0].GetReason() != "consent" || holds[0].GetAmountCents() != 15000 {
		t.Fatalf("holds %v", holds)
	}
	if got := e.items(t, e.Token(t, "u", []string{"operator"}, []string{clinicB}), "holds", "", ""); len(got) != 0 {
		t.Fatalf("clinic B sees holds %v", got)
	}
	_, err = e.client.ListWorkItems(ctx, req(e.admin, &billingv1.ListWorkItemsRequest{Queue: "everything"}))
	wantViolations(t, err, "queue string.in")
}

// randomRemittance answers claims with random outcomes (balanced lines: paid = charged -
// adjustments), sometimes a whole-claim denial.
func randomRemittance(r *rand.Rand, claims []*fixtureClaim) []eraClaim {
	var out []eraClaim
	for _, c := range claims {
		ec := eraClaim{Control: c.Control, Status: []string{"1", "1", "2", "19", "4"}[r.IntN(5)]}
		for _, l := range c.Lines {
			var adjs []eraAdj
			left := l.Cents
			for _, g := range []string{"CO", "PR", "OA"} {
				if left > 0 && r.IntN(2) == 0 {
					a := r.Int64N(left + 1)
					if ec.Status == "4" && g == "CO" {
						a = left
					}
					adjs, left = append(adjs, eraAdj{g, "45", a}), left-a
				}
			}
			if ec.Status == "4" && left > 0 {
				adjs = append(adjs, eraAdj{"CO", "50", left})
			}
			ec.Lines = append(ec.Lines, paidLine(l, adjs...))
		}
		out = append(out, ec)
	}
	return out
}

// TestRemittancePostingProperties: for random remittances, every posted remittance balances
// to the cent (each claim's posted lines add up to its CLP04; the claims to the BPR total),
// and no charge is counted twice, whether a file is uploaded twice or a second file pays the
// same claims again.
func TestRemittancePostingProperties(t *testing.T) {
	e := startRemit(t)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(5, 835))
	for round := range 6 {
		var claims []*fixtureClaim
		for i := range 1 + r.IntN(5) {
			c := &fixtureClaim{Control: fmt.Sprintf("P%dC%d", round, i), Clinic: []string{clinicA, clinicB}[r.IntN(2)], Patient: bus.NewID()}
			for d := range 1 + r.IntN(3) {
				c.Lines = append(c.Lines, fixtureLine{Code: []string{"H0015", "90834"}[r.IntN(2)], Date: fmt.Sprintf("2026-03-%02d", d+1),
					Cents: 1 + r.Int64N(40000)})
			}
			claims = append(claims, c)
		}
		e.claimFixture(t, r.IntN(150), claims...)
		first := era835(fmt.Sprintf("R%dA", round), randomRemittance(r, claims)...)
		s := e.upload(t, e.admin, first)
		if len(s.GetDeviations()) != 0 {
			t.Fatalf("round %d: generated file has deviations %v", round, s.GetDeviations())
		}
		if dup := e.upload(t, e.admin, first); !dup.GetDuplicate() {
			t.Fatalf("round %d: second upload posted", round)
		}
		// A second file paying the same claims (a payer's duplicate payment).
		e.upload(t, e.admin, era835(fmt.Sprintf("R%dB", round), randomRemittance(r, claims)...))
	}
	check := func(what, q string) {
		t.Helper()
		if n := e.Count(t, q); n != 0 {
			t.Errorf("%s: %d violations", what, n)
		}
	}
	// Each remittance: sum of CLP04 = BPR total (no PLB in these files).
	check("file total", `SELECT count(*) FROM remittances m WHERE total_paid_cents <>
		(SELECT coalesce(sum(paid_cents), 0) FROM remittance_claims WHERE remittance_id = m.id)`)
	// Each claim posting: its lines' payments add up to CLP04.
	check("claim total", `SELECT count(*) FROM remittance_claims rc WHERE paid_cents <>
		(SELECT coalesce(sum(paid_cents), 0) FROM remittance_lines WHERE remittance_claim_id = rc.id)`)
	// At most one active posting per claim, and the claim carries exactly its amounts.
	check("active postings", `SELECT count(*) FROM (SELECT claim_id FROM remittance_claims WHERE classification = 'posted'
		AND reversed_by IS NULL GROUP BY claim_id HAVING count(*) > 1) x`)
	check("claim amounts", `SELECT count(*) FROM claims c JOIN remittance_claims rc ON rc.claim_id = c.id
		AND rc.classification = 'posted' AND rc.reversed_by IS NULL
		WHERE c.paid_cents <> rc.paid_cents OR c.patient_resp_cents <> rc.patient_resp_cents`)
	// Each charge is paid or denied by at most one active posting line.
	check("charges counted twice", `SELECT count(*) FROM (SELECT l.charge_id FROM remittance_lines l
		JOIN remittance_claims rc ON rc.id = l.remittance_claim_id AND rc.classification = 'posted' AND rc.reversed_by IS NULL
		WHERE l.charge_id IS NOT NULL GROUP BY l.charge_id HAVING count(*) > 1) x`)
	check("charges unposted", `SELECT count(*) FROM charges WHERE status = 'submitted' AND claim_id IS NOT NULL`)
	// Patients owe exactly the PR of the active postings.
	check("balances", `SELECT count(*) FROM accounts a WHERE balance_cents <> (SELECT coalesce(sum(rc.patient_resp_cents), 0)
		FROM remittance_claims rc JOIN claims c ON c.id = rc.claim_id
		WHERE c.patient_id = a.patient_id AND c.clinic_id = a.clinic_id AND rc.classification = 'posted' AND rc.reversed_by IS NULL)`)
	// Every second payment of a claim is in the overpayment queue.
	check("duplicates queued", `SELECT count(*) FROM remittance_claims rc WHERE classification = 'duplicate' AND paid_cents <> 0
		AND NOT EXISTS (SELECT 1 FROM work_items w WHERE w.queue = 'overpayment' AND w.ref = 'claim:' || rc.id::text)`)
	var remits int
	if err := e.Pool.QueryRow(ctx, `SELECT count(*) FROM remittances`).Scan(&remits); err != nil || remits != 12 {
		t.Fatalf("remittances = %d (%v), want 12", remits, err)
	}
}

// One file that posts a claim, reverses it (22) and posts it again leaves exactly what the
// same three CLPs leave when uploaded as three files one after the other: the posting's
// set-based writes fold a claim's repeated updates and keep a charge's repeated status
// changes in file order.
func TestRemittancePostReverseRepostInOneFile(t *testing.T) {
	e := startRemit(t)
	ctx := context.Background()
	lines := func() []fixtureLine {
		return []fixtureLine{{Code: "H0015", Date: "2026-03-02", Cents: 15000}, {Code: "H0015", Date: "2026-03-03", Cents: 15000}}
	}
	one := &fixtureClaim{Control: "ONEFILE", Clinic: clinicA, Patient: bus.NewID(), Lines: lines()}
	three := &fixtureClaim{Control: "THREEFILES", Clinic: clinicA, Patient: bus.NewID(), Lines: lines()}
	e.claimFixture(t, 20, one, three)
	clps := func(c *fixtureClaim) []eraClaim {
		return []eraClaim{
			{Control: c.Control, Status: "1", Lines: []eraLine{
				paidLine(c.Lines[0], eraAdj{"CO", "45", 1000}, eraAdj{"PR", "2", 2000}), paidLine(c.Lines[1], eraAdj{"CO", "45", 1000})}},
			{Control: c.Control, Status: "22", Lines: []eraLine{
				{Code: "H0015", Date: c.Lines[0].Date, LineControl: c.Lines[0].LineControl, Charged: -15000, Paid: -12000,
					Adjs: []eraAdj{{"CO", "45", -1000}, {"PR", "2", -2000}}},
				{Code: "H0015", Date: c.Lines[1].Date, LineControl: c.Lines[1].LineControl, Charged: -15000, Paid: -14000,
					Adjs: []eraAdj{{"CO", "45", -1000}}}}},
			{Control: c.Control, Status: "1", Lines: []eraLine{
				paidLine(c.Lines[0], eraAdj{"CO", "45", 1000}, eraAdj{"PR", "3", 500}), paidLine(c.Lines[1], eraAdj{"CO", "45", 3000})}},
		}
	}
	e.upload(t, e.admin, era835("ONE", clps(one)...))
	for i, clp := range clps(three) {
		e.upload(t, e.admin, era835(fmt.Sprintf("THREE%d", i), clp))
	}
	// What each claim's posting left, compared between the two.
	state := func(c *fixtureClaim) string {
		var claim string
		if err := e.Pool.QueryRow(ctx, `SELECT status || ' paid=' || paid_cents || ' pr=' || patient_resp_cents FROM claims WHERE id = $1`,
			c.ID).Scan(&claim); err != nil {
			t.Fatal(err)
		}
		var charges, ledger, items, postings string
		if err := e.Pool.QueryRow(ctx, `SELECT string_agg(status, ',' ORDER BY service_date) FROM charges WHERE claim_id = $1`,
			c.ID).Scan(&charges); err != nil {
			t.Fatal(err)
		}
		if err := e.Pool.QueryRow(ctx, `SELECT coalesce(string_agg(kind || ':' || amount_cents, ',' ORDER BY amount_cents), '')
			FROM ledger_entries WHERE claim_id = $1`, c.ID).Scan(&ledger); err != nil {
			t.Fatal(err)
		}
		if err := e.Pool.QueryRow(ctx, `SELECT coalesce(string_agg(queue || ':' || status || ':' || amount_cents, ',' ORDER BY queue, status, amount_cents), '')
			FROM work_items WHERE claim_id = $1`, c.ID).Scan(&items); err != nil {
			t.Fatal(err)
		}
		if err := e.Pool.QueryRow(ctx, `SELECT string_agg(classification || ':' || paid_cents || ':' || (reversed_by IS NOT NULL), ',' ORDER BY classification, paid_cents)
			FROM remittance_claims WHERE claim_id = $1`, c.ID).Scan(&postings); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("claim %s; charges %s; ledger %s; items %s; postings %s; balance %d",
			claim, charges, ledger, items, postings, e.balance(t, c.Patient, c.Clinic))
	}
	got, want := state(one), state(three)
	if got != want {
		t.Fatalf("one file:    %s\nthree files: %s", got, want)
	}
	// And it is the corrected posting: paid 26,000 - 4,000 CO - 500 PR, balance 500.
	if !strings.HasPrefix(got, "claim paid paid=25500 pr=500; charges paid,paid;") || !strings.HasSuffix(got, "balance 500") {
		t.Fatalf("state %s", got)
	}
}

// An 835 naming more patients than Postgres's shared lock table has slots (it holds a
// posting's advisory locks until commit) posts: patients share domain.ChargeLockBuckets locks.
// With a lock per patient this failed with "out of shared memory".
func TestRemittanceOfMorePatientsThanLockSlotsPosts(t *testing.T) {
	e := startRemit(t)
	var slots int
	if err := e.Pool.QueryRow(context.Background(), `SELECT current_setting('max_locks_per_transaction')::int *
		(current_setting('max_connections')::int + current_setting('max_prepared_transactions')::int)`).Scan(&slots); err != nil {
		t.Fatal(err)
	}
	if slots > 20_000 {
		t.Skipf("this server's lock table has %d slots: a file naming more patients would take too long here", slots)
	}
	patients := slots + 500
	claims := make([]*fixtureClaim, patients)
	ec := make([]eraClaim, patients)
	for i := range claims {
		claims[i] = &fixtureClaim{Control: fmt.Sprintf("MANY%d", i), Clinic: clinicA, Patient: bus.NewID(),
			Lines: []fixtureLine{{Code: "H0015", Date: "2026-03-02", Cents: 15000}}}
	}
	e.claimFixtureBulk(t, 10, claims...)
	for i, c := range claims {
		ec[i] = eraClaim{Control: c.Control, Status: "1", Lines: []eraLine{paidLine(c.Lines[0])}}
	}
	sum := e.upload(t, e.admin, era835("MANY", ec...))
	if sum.GetClaims() != int32(patients) || sum.GetMatchedClaims() != int32(patients) {
		t.Fatalf("summary: %d claims, %d matched, want %d", sum.GetClaims(), sum.GetMatchedClaims(), patients)
	}
	if got := e.status(t, "charges", claims[patients-1].Lines[0].ChargeID); got != "paid" {
		t.Fatalf("the last patient's charge is %s after the posting", got)
	}
	var paid int
	if err := e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM charges WHERE status = 'paid' AND id = ANY($1::uuid[])`,
		chargeIDs(claims)).Scan(&paid); err != nil {
		t.Fatal(err)
	}
	if paid != patients {
		t.Fatalf("%d of %d charges paid", paid, patients)
	}
}

func chargeIDs(claims []*fixtureClaim) []string {
	var out []string
	for _, c := range claims {
		for _, l := range c.Lines {
			out = append(out, l.ChargeID)
		}
	}
	return out
}

// A posting takes its patients' charges locks (the lock the attendance, consent and coverage
// consumers take first) before it touches their rows: while another transaction holds a
// patient's lock, an 835 paying that patient's claim waits, then posts once it is released.
func TestRemittanceWaitsForPatientChargesLock(t *testing.T) {
	e := startRemit(t)
	ctx := context.Background()
	c := &fixtureClaim{Control: "LOCKED1", Clinic: clinicA, Patient: bus.NewID(),
		Lines: []fixtureLine{{Code: "H0015", Date: "2026-03-02", Cents: 15000}}}
	e.claimFixture(t, 20, c)
	holder, err := e.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Rollback(ctx) }()
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, domain.ChargesLockKey(c.Patient, c.Clinic)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.client.UploadRemittance(ctx, req(e.admin, &billingv1.UploadRemittanceRequest{FileName: "era.835",
			Content: []byte(era835("LOCKED", eraClaim{Control: c.Control, Status: "1", Lines: []eraLine{paidLine(c.Lines[0])}}))}))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the posting finished while the patient's charges lock was held: %v", err)
	case <-time.After(700 * time.Millisecond):
	}
	if got := e.status(t, "charges", c.Lines[0].ChargeID); got != "submitted" {
		t.Fatalf("charge %s while the lock is held", got)
	}
	if err := holder.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("upload: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the posting did not finish after the lock was released")
	}
	if got := e.status(t, "charges", c.Lines[0].ChargeID); got != "paid" {
		t.Fatalf("charge %s after the posting", got)
	}
}

// A line's adjustments and remarks are stored as the file gave them, whatever characters
// they hold (they travel as JSON text and a text[] literal per line), and a line that matched
// no claim line references no claim line and no charge.
func TestRemittanceLineAdjustmentsAndRemarksStored(t *testing.T) {
	e := startRemit(t)
	c := &fixtureClaim{Control: "RMK1", Clinic: clinicA, Patient: bus.NewID(),
		Lines: []fixtureLine{{Code: "H0015", Date: "2026-03-02", Cents: 15000}}}
	e.claimFixture(t, 10, c)
	remarks := []string{"N130", `A"B\C,D{}`, "NULL", "M 1", "é"}
	line := paidLine(c.Lines[0], eraAdj{"CO", "45", 1000}, eraAdj{"PR", `2"<\&>`, 500}, eraAdj{"OA", "23", 0})
	line.Remarks = remarks
	stray := eraLine{Code: "99999", Date: "2026-03-02", Charged: 2000, Paid: 2000, Remarks: []string{"MA01"}}
	e.upload(t, e.admin, era835("RMK", eraClaim{Control: "RMK1", Status: "1", Lines: []eraLine{line, stray}}))

	type stored struct {
		Adjs                  []map[string]any
		Remarks               []string
		Claim, Charge, Clinic *string
		LineNumber            *int
	}
	rows, err := e.Pool.Query(context.Background(), `SELECT adjustments, remarks, claim_id::text, charge_id::text, line_number,
		clinic_id::text FROM remittance_lines ORDER BY position`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (stored, error) {
		var s stored
		err := row.Scan(&s.Adjs, &s.Remarks, &s.Claim, &s.Charge, &s.LineNumber, &s.Clinic)
		return s, err
	})
	if err != nil || len(got) != 2 {
		t.Fatalf("%d lines stored (%v), want 2", len(got), err)
	}
	wantAdjs := `[map[amount_cents:1000 group:CO reason:45] map[amount_cents:500 group:PR reason:2"<\&>] map[amount_cents:0 group:OA reason:23]]`
	if a := fmt.Sprint(got[0].Adjs); a != wantAdjs {
		t.Errorf("adjustments %s, want %s", a, wantAdjs)
	}
	if fmt.Sprintf("%q", got[0].Remarks) != fmt.Sprintf("%q", remarks) {
		t.Errorf("remarks %q, want %q", got[0].Remarks, remarks)
	}
	if got[0].Claim == nil || *got[0].Claim != c.ID || got[0].Charge == nil || *got[0].Charge != c.Lines[0].ChargeID ||
		got[0].LineNumber == nil || *got[0].LineNumber != 1 || got[0].Clinic == nil || *got[0].Clinic != clinicA {
		t.Errorf("matched line references %v %v %v %v", got[0].Claim, got[0].Charge, got[0].LineNumber, got[0].Clinic)
	}
	if fmt.Sprint(got[1].Adjs) != "[]" || fmt.Sprintf("%q", got[1].Remarks) != `["MA01"]` {
		t.Errorf("stray line: adjustments %v remarks %q", got[1].Adjs, got[1].Remarks)
	}
	if got[1].Claim != nil || got[1].Charge != nil || got[1].LineNumber != nil || got[1].Clinic == nil || *got[1].Clinic != clinicA {
		t.Errorf("stray line references %v %v %v %v, want none but the clinic", got[1].Claim, got[1].Charge, got[1].LineNumber, got[1].Clinic)
	}
}

// An 835 larger than the 1 MiB every other procedure takes is accepted by UploadRemittance
// (up to rpc.MaxUploadBytes), while a request of the same size to another procedure of the
// remittance service is refused before it is read.
func TestLargeRemittanceUpload(t *testing.T) {
	e := startRemit(t)
	claim := func(i int) eraClaim {
		// Unmatched claims (billing sent none): each opens one work item.
		return eraClaim{Control: fmt.Sprintf("LARGE%033d", i), Status: "1", Charged: 15000, Paid: 12500}
	}
	perClaim := len(era835("LARGE", claim(0), claim(1))) - len(era835("LARGE", claim(0)))
	var claims []eraClaim
	for i := range (2<<20)/perClaim + 1 {
		claims = append(claims, claim(i))
	}
	file := era835("LARGE", claims...)
	if len(file) < 2<<20 {
		t.Fatalf("file of %d bytes, want at least 2 MiB", len(file))
	}
	s := e.upload(t, e.admin, file)
	if int(s.GetClaims()) != len(claims) || s.GetMatchedClaims() != 0 || int(s.GetWorkItems()) != len(claims) {
		t.Fatalf("summary of the %d-byte file: claims %d matched %d work items %d, want %d unmatched",
			len(file), s.GetClaims(), s.GetMatchedClaims(), s.GetWorkItems(), len(claims))
	}
	if n := e.Count(t, `SELECT count(*) FROM remittance_claims`); n != len(claims) {
		t.Fatalf("remittance claims stored = %d, want %d", n, len(claims))
	}
	// The same size to another procedure: resource_exhausted (padded with an unknown field,
	// which the server would otherwise read and ignore).
	pad := protowire.AppendBytes(protowire.AppendTag(nil, 9999, protowire.BytesType), make([]byte, 2<<20))
	msg := &billingv1.ListWorkItemsRequest{Queue: "unmatched"}
	msg.ProtoReflect().SetUnknown(pad)
	_, err := e.client.ListWorkItems(context.Background(), req(e.admin, msg))
	wantCode(t, err, connect.CodeResourceExhausted)
	msg.ProtoReflect().SetUnknown(nil)
	if _, err := e.client.ListWorkItems(context.Background(), req(e.admin, msg)); err != nil {
		t.Fatalf("small ListWorkItems: %v", err)
	}
}

// BenchmarkPostRemittance measures posting 835 files of 100 claims x 4 lines through the API
// (parse, match, classify, ledger, work items, events, one transaction per file), in service
// lines per second, against a baseline measured in the same run on the same database: inserting
// as many rows of similar width, one INSERT per line, in one transaction per file. The ratio is
// what reconciliation costs over merely storing the lines.
func BenchmarkPostRemittance(b *testing.B) {
	e := startRemit(b)
	const claimsPerFile, linesPerClaim = 100, 4
	b.Run("baseline=insert", func(b *testing.B) {
		ctx := context.Background()
		// IF NOT EXISTS: with -count N the sub-benchmark runs N times on the same database.
		e.sql(b, `CREATE TABLE IF NOT EXISTS bench_lines (id uuid PRIMARY KEY, claim text NOT NULL, code text NOT NULL,
			service_date date NOT NULL, charged bigint NOT NULL, paid bigint NOT NULL, adjustments jsonb NOT NULL)`)
		lines := 0
		for b.Loop() {
			tx, err := e.Pool.Begin(ctx)
			if err != nil {
				b.Fatal(err)
			}
			batch := &pgx.Batch{}
			for c := range claimsPerFile {
				for d := range linesPerClaim {
					batch.Queue(`INSERT INTO bench_lines VALUES ($1, $2, 'H0015', $3, 15000, 12500, '[{"g":"CO","r":"45","a":2000},{"g":"PR","r":"2","a":500}]')`,
						bus.NewID(), fmt.Sprintf("C%d", c), fmt.Sprintf("2026-03-%02d", d+1))
				}
			}
			if err := tx.SendBatch(ctx, batch).Close(); err != nil {
				b.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				b.Fatal(err)
			}
			lines += claimsPerFile * linesPerClaim
		}
		b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
	})
	run := 0
	// benchClaims are n claims of linesPerClaim lines each, perPatient claims per patient;
	// benchFile is the 835 paying them (CO and PR on every line).
	benchClaims := func(prefix string, n, perPatient int) []*fixtureClaim {
		var claims []*fixtureClaim
		patient := ""
		for c := range n {
			if c%perPatient == 0 {
				patient = bus.NewID()
			}
			fc := &fixtureClaim{Control: fmt.Sprintf("%sC%d", prefix, c), Clinic: clinicA, Patient: patient}
			for d := range linesPerClaim {
				fc.Lines = append(fc.Lines, fixtureLine{Code: "H0015", Date: fmt.Sprintf("2026-03-%02d", d+1), Cents: 15000})
			}
			claims = append(claims, fc)
		}
		return claims
	}
	benchFile := func(trace string, claims []*fixtureClaim) string {
		var ec []eraClaim
		for _, c := range claims {
			var ls []eraLine
			for _, l := range c.Lines {
				ls = append(ls, paidLine(l, eraAdj{"CO", "45", 2000}, eraAdj{"PR", "2", 500}))
			}
			ec = append(ec, eraClaim{Control: c.Control, Status: "1", Lines: ls})
		}
		return era835(trace, ec...)
	}
	b.Run("post", func(b *testing.B) {
		run++ // with -count N this runs N times on the same database: control numbers stay unique
		lines := 0
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			claims := benchClaims(fmt.Sprintf("B%dR%d", i, run), claimsPerFile, 1)
			e.claimFixture(b, 10, claims...)
			file := benchFile(fmt.Sprintf("BENCH%dR%d", i, run), claims)
			b.StartTimer()
			e.upload(b, e.admin, file)
			lines += claimsPerFile * linesPerClaim
		}
		b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
	})
	// One file of bigLines lines (issue 9's era_lines_per_s: parse, balance and post), its
	// claims inserted in bulk; the timer covers the upload only. It checks the file posted.
	// 20,000 lines, not the 100,000: the bench harness runs every sub-benchmark 20
	// times, and a 100,000-line file takes ~25 s to set up and post on the 2-core bench
	// machine (its lines/s was within noise of this size's). Two claims per patient (5,000
	// patients): the posting holds their charges locks until it commits, at most
	// domain.ChargeLockBuckets of them whatever the file's size.
	const bigLines = 20_000
	big := 0
	b.Run(fmt.Sprintf("post-lines=%d", bigLines), func(b *testing.B) {
		big++
		lines := 0
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			claims := benchClaims(fmt.Sprintf("L%dR%d", i, big), bigLines/linesPerClaim, 2)
			e.claimFixtureBulk(b, 10, claims...)
			file := benchFile(fmt.Sprintf("BIG%dR%d", i, big), claims)
			// What autovacuum does between uploads in production (CI's Postgres runs without
			// it): without fresh statistics the 20th file's plans are those of an empty table.
			e.sql(b, `VACUUM (ANALYZE)`)
			b.StartTimer()
			s := e.upload(b, e.admin, file)
			b.StopTimer()
			if int(s.GetMatchedClaims()) != len(claims) || s.GetServiceLines() != bigLines {
				b.Fatalf("matched %d of %d claims, %d lines", s.GetMatchedClaims(), len(claims), s.GetServiceLines())
			}
			b.StartTimer()
			lines += bigLines
		}
		b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
	})
}
