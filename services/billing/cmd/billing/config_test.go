package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/rpc"
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/pkg/testkit"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
)

const subjectContractConfigured = "trellis.billing.contract.configured.v1"

type configEnv struct {
	*servicetest.Service
	client billingv1connect.BillingServiceClient
}

func startConfig(t *testing.T) *configEnv {
	e := start(t)
	return &configEnv{Service: e, client: billingv1connect.NewBillingServiceClient(http.DefaultClient, e.URL)}
}

func (e *configEnv) tok(t *testing.T, roles []string, clinics ...string) string {
	return e.Token(t, "user-1", roles, clinics)
}

func req[T any](token string, msg *T) *connect.Request[T] {
	r := connect.NewRequest(msg)
	if token != "" {
		r.Header().Set("Authorization", "Bearer "+token)
	}
	return r
}

func wantCode(t *testing.T, err error, want connect.Code) {
	t.Helper()
	if connect.CodeOf(err) != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
}

// wantViolations fails unless err is invalid_argument naming exactly these "field rule" pairs.
func wantViolations(t *testing.T, err error, want ...string) {
	t.Helper()
	wantCode(t, err, connect.CodeInvalidArgument)
	var got []string
	for _, v := range rpc.Violations(err) {
		got = append(got, v.Field+" "+v.Rule)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("violations = %q, want %q", got, want)
	}
}

func medicaid() *billingv1.Payer {
	return &billingv1.Payer{PayerId: "medicaid-il", Name: "Illinois Medicaid", Kind: billingv1.PayerKind_PAYER_KIND_MEDICAID, X12PayerId: "ILMCD"}
}

func perDiemContract(clinic string) *billingv1.Contract {
	return &billingv1.Contract{PayerId: "medicaid-il", ClinicId: clinic,
		BillingMode: billingv1.BillingMode_BILLING_MODE_PER_DIEM, ClaimType: billingv1.ClaimType_CLAIM_TYPE_INSTITUTIONAL,
		Codes: []*billingv1.ServiceCode{{Service: billingv1.BillableService_BILLABLE_SERVICE_PER_DIEM,
			ProcedureCode: "H0015", RevenueCode: "0906", RateCents: 25000}},
		EffectiveFrom: "2026-01-01", EffectiveTo: "2026-12-31"}
}

func TestPayers(t *testing.T) {
	e := startConfig(t)
	ctx := context.Background()
	admin := e.tok(t, []string{"billing"}, auth.AllClinics)
	resp, err := e.client.UpsertPayer(ctx, req(admin, &billingv1.UpsertPayerRequest{Payer: medicaid()}))
	if err != nil || !proto.Equal(resp.Msg.GetPayer(), medicaid()) {
		t.Fatalf("upsert = %v, %v", resp, err)
	}
	self := &billingv1.Payer{PayerId: "self-pay", Name: "Self-pay", Kind: billingv1.PayerKind_PAYER_KIND_SELF_PAY}
	if _, err := e.client.UpsertPayer(ctx, req(admin, &billingv1.UpsertPayerRequest{Payer: self})); err != nil {
		t.Fatal(err)
	}
	changed := medicaid()
	changed.Name = "Illinois Medicaid (HFS)"
	if _, err := e.client.UpsertPayer(ctx, req(admin, &billingv1.UpsertPayerRequest{Payer: changed})); err != nil {
		t.Fatal(err)
	}

	bad := func(edit func(*billingv1.Payer)) *billingv1.UpsertPayerRequest {
		p := medicaid()
		edit(p)
		return &billingv1.UpsertPayerRequest{Payer: p}
	}
	_, err = e.client.UpsertPayer(ctx, req(admin, bad(func(p *billingv1.Payer) { p.PayerId = "Medicaid IL"; p.X12PayerId = "" })))
	wantViolations(t, err, "payer.payer_id payer_id.pattern", "payer.x12_payer_id x12_payer_id.required")
	_, err = e.client.UpsertPayer(ctx, req(admin, bad(func(p *billingv1.Payer) { p.Kind = 0 })))
	wantViolations(t, err, "payer.kind kind.known")
	_, err = e.client.UpsertPayer(ctx, req(admin, bad(func(p *billingv1.Payer) { p.Kind = billingv1.PayerKind_PAYER_KIND_SELF_PAY })))
	wantViolations(t, err, "payer.x12_payer_id x12_payer_id.self_pay")

	// Payers are network-wide: one clinic is not enough; operators read only.
	_, err = e.client.UpsertPayer(ctx, req(e.tok(t, []string{"billing"}, clinicA), bad(func(p *billingv1.Payer) { p.Name = "X" })))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = e.client.UpsertPayer(ctx, req(e.tok(t, []string{"operator"}, auth.AllClinics), bad(func(p *billingv1.Payer) { p.Name = "X" })))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = e.client.UpsertPayer(ctx, req("", &billingv1.UpsertPayerRequest{Payer: medicaid()}))
	wantCode(t, err, connect.CodeUnauthenticated)

	list, err := e.client.ListPayers(ctx, req(e.tok(t, []string{"operator"}, clinicA), &billingv1.ListPayersRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	want := []*billingv1.Payer{changed, self}
	if got := list.Msg.GetPayers(); len(got) != 2 || !proto.Equal(got[0], want[0]) || !proto.Equal(got[1], want[1]) {
		t.Fatalf("payers = %v, want %v", got, want)
	}
	_, err = e.client.ListPayers(ctx, req(e.tok(t, []string{"clinician"}, auth.AllClinics), &billingv1.ListPayersRequest{}))
	wantCode(t, err, connect.CodePermissionDenied)
}

// configured returns the ContractConfigured payloads on the BILLING stream, oldest first.
func configured(t *testing.T, e *configEnv, n int) []*billingv1.Contract {
	t.Helper()
	e.Relayed(t)
	testkit.Eventually(t, 10*time.Second, "ContractConfigured messages", func() bool {
		return e.StreamCount(t, "BILLING", subjectContractConfigured) >= uint64(n)
	})
	if got := e.StreamCount(t, "BILLING", subjectContractConfigured); got != uint64(n) {
		t.Fatalf("ContractConfigured messages = %d, want %d", got, n)
	}
	s, err := e.JS.Stream(context.Background(), "BILLING")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []*billingv1.Contract
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil || m.Subject != subjectContractConfigured {
			continue
		}
		env := &eventsv1.Envelope{}
		if err := proto.Unmarshal(m.Data, env); err != nil {
			t.Fatal(err)
		}
		got := &billingv1.ContractConfigured{}
		if err := env.GetPayload().UnmarshalTo(got); err != nil {
			t.Fatal(err)
		}
		if env.GetClinicId() != got.GetContract().GetClinicId() || env.GetProducer() != "billing" {
			t.Errorf("envelope clinic %q producer %q", env.GetClinicId(), env.GetProducer())
		}
		out = append(out, got.GetContract())
	}
	return out
}

func TestContracts(t *testing.T) {
	e := startConfig(t)
	ctx := context.Background()
	network := e.tok(t, []string{"admin"}, auth.AllClinics)
	if _, err := e.client.UpsertPayer(ctx, req(network, &billingv1.UpsertPayerRequest{Payer: medicaid()})); err != nil {
		t.Fatal(err)
	}
	billingA := e.tok(t, []string{"billing"}, clinicA)

	// Create: an id is assigned, the defaults filled in, ContractConfigured emitted.
	resp, err := e.client.UpsertContract(ctx, req(billingA, &billingv1.UpsertContractRequest{Contract: perDiemContract(clinicA)}))
	if err != nil {
		t.Fatal(err)
	}
	c := resp.Msg.GetContract()
	want := perDiemContract(clinicA)
	want.ContractId, want.PerDiemMinimumMinutes, want.TimelyFilingDays = c.GetContractId(), 180, 90
	want.BelowMinimum = billingv1.BelowMinimum_BELOW_MINIMUM_BILL_NOTHING
	if c.GetContractId() == "" || !proto.Equal(c, want) {
		t.Fatalf("contract = %v, want %v", c, want)
	}
	// The same again changes nothing and emits nothing; a new rate is a change.
	if _, err := e.client.UpsertContract(ctx, req(billingA, &billingv1.UpsertContractRequest{Contract: want})); err != nil {
		t.Fatal(err)
	}
	raised := proto.Clone(want).(*billingv1.Contract)
	raised.Codes[0].RateCents = 26000
	raised.Codes[0].Modifiers = []string{"hq"}
	resp, err = e.client.UpsertContract(ctx, req(billingA, &billingv1.UpsertContractRequest{Contract: raised}))
	if err != nil {
		t.Fatal(err)
	}
	raised.Codes[0].Modifiers = []string{"HQ"} // normalized
	if !proto.Equal(resp.Msg.GetContract(), raised) {
		t.Fatalf("contract = %v, want %v", resp.Msg.GetContract(), raised)
	}
	events := configured(t, e, 2)
	if !proto.Equal(events[0], want) || !proto.Equal(events[1], raised) {
		t.Fatalf("events = %v, want %v then %v", events, want, raised)
	}

	// Overlap: a second Medicaid contract at clinic A effective on a day of the first.
	next := perDiemContract(clinicA)
	next.EffectiveFrom, next.EffectiveTo = "2026-12-31", ""
	_, err = e.client.UpsertContract(ctx, req(billingA, &billingv1.UpsertContractRequest{Contract: next}))
	wantCode(t, err, connect.CodeFailedPrecondition)
	next.EffectiveFrom = "2027-01-01"
	if _, err := e.client.UpsertContract(ctx, req(billingA, &billingv1.UpsertContractRequest{Contract: next})); err != nil {
		t.Fatalf("the next year's contract: %v", err)
	}
	// Extending the first into the second's year is an overlap too.
	longer := proto.Clone(raised).(*billingv1.Contract)
	longer.EffectiveTo = "2027-03-31"
	_, err = e.client.UpsertContract(ctx, req(billingA, &billingv1.UpsertContractRequest{Contract: longer}))
	wantCode(t, err, connect.CodeFailedPrecondition)
	// A contract's clinic cannot move.
	moved := proto.Clone(raised).(*billingv1.Contract)
	moved.ClinicId = clinicB
	_, err = e.client.UpsertContract(ctx, req(network, &billingv1.UpsertContractRequest{Contract: moved}))
	wantCode(t, err, connect.CodeFailedPrecondition)

	// Bad input: every violation names the field and the rule.
	bad := perDiemContract(clinicA)
	bad.PayerId = "acme-health"
	bad.EffectiveFrom, bad.EffectiveTo = "2028-02-30", ""
	bad.TimelyFilingDays = 1000
	bad.Codes[0].ProcedureCode = "H15"
	bad.Codes[0].RevenueCode = ""
	bad.Codes[0].RateCents = -100
	_, err = e.client.UpsertContract(ctx, req(billingA, &billingv1.UpsertContractRequest{Contract: bad}))
	wantViolations(t, err,
		"contract.payer_id payer_id.exists",
		"contract.timely_filing_days timely_filing_days.range",
		"contract.effective_from effective_from.date",
		"contract.codes[0].procedure_code procedure_code.hcpcs_cpt",
		"contract.codes[0].revenue_code revenue_code.required",
		"contract.codes[0].rate_cents rate_cents.gte_0")
	session := perDiemContract(clinicA)
	session.EffectiveFrom, session.EffectiveTo = "2030-01-01", ""
	session.BillingMode = billingv1.BillingMode_BILLING_MODE_PER_SERVICE
	session.ClaimType = billingv1.ClaimType_CLAIM_TYPE_PROFESSIONAL
	session.Codes = []*billingv1.ServiceCode{
		{Service: billingv1.BillableService_BILLABLE_SERVICE_INDIVIDUAL, ProcedureCode: "90832", RateCents: 7000, MinMinutes: 16, MaxMinutes: 37},
		{Service: billingv1.BillableService_BILLABLE_SERVICE_INDIVIDUAL, ProcedureCode: "90834", RateCents: 9500, MinMinutes: 30, MaxMinutes: 52},
	}
	_, err = e.client.UpsertContract(ctx, req(billingA, &billingv1.UpsertContractRequest{Contract: session}))
	wantViolations(t, err, "contract.codes[1].min_minutes codes.minutes_overlap")

	// Clinics and roles.
	otherClinic := perDiemContract(clinicB)
	_, err = e.client.UpsertContract(ctx, req(billingA, &billingv1.UpsertContractRequest{Contract: otherClinic}))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = e.client.UpsertContract(ctx, req(e.tok(t, []string{"operator"}, clinicB), &billingv1.UpsertContractRequest{Contract: otherClinic}))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = e.client.UpsertContract(ctx, req(e.tok(t, []string{"clinician"}, auth.AllClinics), &billingv1.UpsertContractRequest{Contract: otherClinic}))
	wantCode(t, err, connect.CodePermissionDenied)
	// Updating clinic A's contract needs clinic A.
	_, err = e.client.UpsertContract(ctx, req(e.tok(t, []string{"billing"}, clinicB), &billingv1.UpsertContractRequest{Contract: moved}))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = e.client.UpsertContract(ctx, req(billingA, &billingv1.UpsertContractRequest{}))
	wantCode(t, err, connect.CodeInvalidArgument)

	list, err := e.client.ListContracts(ctx, req(e.tok(t, []string{"operator"}, clinicA), &billingv1.ListContractsRequest{ClinicId: clinicA}))
	if err != nil {
		t.Fatal(err)
	}
	if got := list.Msg.GetContracts(); len(got) != 2 || !proto.Equal(got[0], raised) || got[1].GetEffectiveFrom() != "2027-01-01" {
		t.Fatalf("contracts = %v", got)
	}
	_, err = e.client.ListContracts(ctx, req(billingA, &billingv1.ListContractsRequest{ClinicId: clinicB}))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = e.client.ListContracts(ctx, req(billingA, &billingv1.ListContractsRequest{ClinicId: "a"}))
	wantCode(t, err, connect.CodeInvalidArgument)
	// Nothing refused was written or announced.
	if n := e.Count(t, "SELECT count(*) FROM contracts"); n != 2 {
		t.Fatalf("contracts = %d, want 2", n)
	}
	configured(t, e, 3)
}

func TestSlidingScale(t *testing.T) {
	e := startConfig(t)
	ctx := context.Background()
	network := e.tok(t, []string{"billing"}, auth.AllClinics)
	tiers := []*billingv1.SlidingScaleTier{{MaxFplPercent: 100, DiscountPercent: 75}, {MaxFplPercent: 200, DiscountPercent: 50}, {MaxFplPercent: 300, DiscountPercent: 25}}
	if _, err := e.client.SetSlidingScale(ctx, req(network, &billingv1.SetSlidingScaleRequest{Tiers: tiers})); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.SetSlidingScale(ctx, req(network, &billingv1.SetSlidingScaleRequest{Tiers: []*billingv1.SlidingScaleTier{
		{MaxFplPercent: 200, DiscountPercent: 50}, {MaxFplPercent: 100, DiscountPercent: 75}, {MaxFplPercent: 300, DiscountPercent: 101}}}))
	wantViolations(t, err, "tiers[1].max_fpl_percent max_fpl_percent.increasing", "tiers[1].discount_percent discount_percent.non_increasing",
		"tiers[2].discount_percent discount_percent.range")
	_, err = e.client.SetSlidingScale(ctx, req(network, &billingv1.SetSlidingScaleRequest{}))
	wantCode(t, err, connect.CodeInvalidArgument)
	_, err = e.client.SetSlidingScale(ctx, req(e.tok(t, []string{"billing"}, clinicA, clinicB), &billingv1.SetSlidingScaleRequest{Tiers: tiers[:1]}))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = e.client.SetSlidingScale(ctx, req(e.tok(t, []string{"operator"}, auth.AllClinics), &billingv1.SetSlidingScaleRequest{Tiers: tiers[:1]}))
	wantCode(t, err, connect.CodePermissionDenied)

	got, err := e.client.GetSlidingScale(ctx, req(e.tok(t, []string{"operator"}, clinicA), &billingv1.GetSlidingScaleRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if g := got.Msg.GetTiers(); len(g) != 3 || !proto.Equal(g[0], tiers[0]) || !proto.Equal(g[2], tiers[2]) {
		t.Fatalf("tiers = %v", g)
	}
	_, err = e.client.GetSlidingScale(ctx, req(e.tok(t, []string{"clinician"}, clinicA), &billingv1.GetSlidingScaleRequest{}))
	wantCode(t, err, connect.CodePermissionDenied)
}

func TestSeedDemoIsIdempotent(t *testing.T) {
	dbURL := testkit.Database(t)
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("LOG_LEVEL", "warn")
	run := func(args ...string) (int, string) {
		var cfg Config
		var stderr bytes.Buffer
		code := service.Run(context.Background(), spec(&cfg), &cfg, args, &bytes.Buffer{}, &stderr)
		return code, stderr.String()
	}
	pool, err := pg.Open(context.Background(), systemURL(t, dbURL), "billing", 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	tables := []string{
		"SELECT code, name, kind, x12_payer_id, updated_at FROM payers ORDER BY code",
		"SELECT id, payer_id, clinic_id, billing_mode, claim_type, per_diem_minimum_minutes, below_minimum, timely_filing_days, effective_from, effective_to, updated_at FROM contracts ORDER BY id",
		"SELECT contract_id, position, service, procedure_code, revenue_code, modifiers, rate_cents, min_minutes, max_minutes FROM contract_codes ORDER BY 1, 2",
		"SELECT max_fpl_percent, discount_percent FROM sliding_scale ORDER BY 1",
		"SELECT subject, count(*) FROM outbox GROUP BY subject ORDER BY subject",
	}
	snap := func() []string {
		var out []string
		for _, q := range tables {
			rows, err := pool.Query(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for rows.Next() {
				vals, err := rows.Values()
				if err != nil {
					t.Fatal(err)
				}
				lines = append(lines, fmt.Sprint(vals...))
			}
			rows.Close()
			out = append(out, strings.Join(lines, "\n"))
		}
		return out
	}
	if code, out := run("seed-demo"); code != 0 {
		t.Fatalf("seed-demo exited %d:\n%s", code, out)
	}
	first := snap()
	if code, out := run("seed-demo"); code != 0 {
		t.Fatalf("second seed-demo exited %d:\n%s", code, out)
	}
	if second := snap(); !slices.Equal(first, second) {
		t.Fatalf("a second seed-demo changed rows:\nfirst:\n%s\nsecond:\n%s", strings.Join(first, "\n--\n"), strings.Join(second, "\n--\n"))
	}
	if code, _ := run("seed-demo", "extra"); code == 0 {
		t.Error("seed-demo accepted an argument")
	}
	counts := map[string]int{"payers": 3, "contracts": 6, "contract_codes": 21, "sliding_scale": 3}
	for table, want := range counts {
		var n int
		if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil || n != want {
			t.Errorf("%s: %d rows (%v), want %d", table, n, err, want)
		}
	}
	var events int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM outbox WHERE subject = $1", subjectContractConfigured).Scan(&events); err != nil || events != 6 {
		t.Errorf("ContractConfigured in the outbox = %d (%v), want 6 (first run only)", events, err)
	}
	// Each demo clinic bills Medicaid per diem (H0015, rev 0906, $250.00 from 180 minutes).
	for _, clinic := range demoClinics {
		var rate int64
		var minimum int
		if err := pool.QueryRow(context.Background(), `SELECT cc.rate_cents, c.per_diem_minimum_minutes FROM contracts c
			JOIN contract_codes cc ON cc.contract_id = c.id
			WHERE c.clinic_id = $1 AND c.payer_id = 'medicaid-il' AND cc.procedure_code = 'H0015' AND cc.revenue_code = '0906'`,
			clinic).Scan(&rate, &minimum); err != nil || rate != 25000 || minimum != 180 {
			t.Errorf("clinic %s Medicaid: %d cents from %d minutes (%v)", clinic, rate, minimum, err)
		}
	}
}
