package main

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
)

const subjectWrittenOff = "trellis.billing.balance.written_off.v1"

// writeOffNote is free text a biller might type; it must reach no event and no log line.
const writeOffNote = "payer portal says past filing limit, per Dana"

// writeOffEnv is the remittance environment with info logs kept (to check what they say),
// after posting one 835 with, in clinic A, a denied claim (150.00, one denial item), an
// underpaid one (10.00, one underpayment item) and a line that matched nothing, and in
// clinic B a denied claim; claims submitted 45 days ago.
type writeOffEnv struct {
	*remitEnv
	denied, under, deniedB *fixtureClaim
	denial, underpayment   *billingv1.WorkItem
	denialB, unmatched     *billingv1.WorkItem
}

func startWriteOffs(t testing.TB) *writeOffEnv {
	t.Helper()
	var cfg Config
	s := systemScoped(t, servicetest.Start(t, spec(&cfg), &cfg, map[string]string{"LOG_LEVEL": "info"}))
	e := &remitEnv{Service: s, client: billingv1connect.NewRemittanceServiceClient(http.DefaultClient, s.URL)}
	e.admin = s.Token(t, "admin-1", []string{"billing"}, []string{auth.AllClinics})
	e.sql(t, `INSERT INTO payers (code, name, kind, x12_payer_id) VALUES ($1, 'Remit Payer', 'commercial', 'RP01')`, remitPayer)

	w := &writeOffEnv{remitEnv: e}
	day := func(d string) fixtureLine { return fixtureLine{Code: "H0015", Date: "2026-03-" + d, Cents: 15000} }
	w.denied = &fixtureClaim{Control: "W1", Clinic: clinicA, Patient: bus.NewID(), Lines: []fixtureLine{day("02")}}
	w.under = &fixtureClaim{Control: "W2", Clinic: clinicA, Patient: bus.NewID(), Lines: []fixtureLine{day("03"), day("04")}}
	w.deniedB = &fixtureClaim{Control: "W3", Clinic: clinicB, Patient: bus.NewID(), Lines: []fixtureLine{day("05")}}
	e.claimFixture(t, 45, w.denied, w.under)
	e.claimFixture(t, 45, w.deniedB)
	e.upload(t, e.admin, era835("WO1",
		eraClaim{Control: "W1", Status: "4", Lines: []eraLine{paidLine(w.denied.Lines[0], eraAdj{"CO", "50", 15000})}},
		// Line 1 underpaid by 10.00 (OA); line 2 answers with a code billing never sent.
		eraClaim{Control: "W2", Status: "1", Lines: []eraLine{
			paidLine(w.under.Lines[0], eraAdj{"CO", "45", 2000}, eraAdj{"OA", "23", 1000}),
			{Code: "99999", Date: "2026-03-04", Charged: 15000, Paid: 15000}}},
		eraClaim{Control: "W3", Status: "4", Lines: []eraLine{paidLine(w.deniedB.Lines[0], eraAdj{"CO", "50", 15000})}},
	))
	one := func(queue, clinic string) *billingv1.WorkItem {
		t.Helper()
		items := e.items(t, e.admin, queue, clinic, "open")
		if len(items) != 1 {
			t.Fatalf("%s items in %s: %v", queue, clinic, items)
		}
		return items[0]
	}
	w.denial, w.underpayment = one("denial", clinicA), one("underpayment", clinicA)
	w.denialB, w.unmatched = one("denial", clinicB), one("unmatched", clinicA)
	if w.denial.GetAmountCents() != 15000 || w.underpayment.GetAmountCents() != 1000 || w.unmatched.GetAmountCents() != 15000 {
		t.Fatalf("items %v %v %v", w.denial, w.underpayment, w.unmatched)
	}
	return w
}

func (w *writeOffEnv) writeOff(token string, r *billingv1.WriteOffRequest) (*billingv1.WriteOffResponse, error) {
	resp, err := w.client.WriteOff(context.Background(), req(token, r))
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

// writtenOff is what the item's row says was written off, and its status.
func (w *writeOffEnv) writtenOff(t *testing.T, item string) (int64, string) {
	t.Helper()
	var cents int64
	var status string
	if err := w.Pool.QueryRow(context.Background(), `SELECT written_off_cents, status FROM work_items WHERE id = $1`, item).
		Scan(&cents, &status); err != nil {
		t.Fatal(err)
	}
	return cents, status
}

// payerAging is clinic's payer receivables total (all payers).
func (w *writeOffEnv) payerAging(t *testing.T, clinic string) int64 {
	t.Helper()
	resp, err := w.client.GetReceivablesAging(context.Background(), req(w.admin, &billingv1.GetReceivablesAgingRequest{ClinicId: clinic}))
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, p := range resp.Msg.GetPayers() {
		total += p.GetBuckets().GetTotal()
	}
	return total
}

// writtenOffEvents reads every BalanceWrittenOff in the BILLING stream (once the outbox is
// relayed), oldest first.
func (w *writeOffEnv) writtenOffEvents(t *testing.T) []*billingv1.BalanceWrittenOff {
	t.Helper()
	w.Relayed(t)
	n := int(w.StreamCount(t, "BILLING", subjectWrittenOff))
	if n == 0 {
		return nil
	}
	cons, err := w.JS.OrderedConsumer(context.Background(), "BILLING", jetstream.OrderedConsumerConfig{FilterSubjects: []string{subjectWrittenOff}})
	if err != nil {
		t.Fatal(err)
	}
	var out []*billingv1.BalanceWrittenOff
	for range n {
		msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatalf("%d of %d events: %v", len(out), n, err)
		}
		if strings.Contains(string(msg.Data()), writeOffNote) {
			t.Fatal("the note reached an event")
		}
		env := &eventsv1.Envelope{}
		if err := proto.Unmarshal(msg.Data(), env); err != nil {
			t.Fatal(err)
		}
		if env.GetClinicId() == "" {
			t.Fatalf("event without clinic: %v", env)
		}
		ev := &billingv1.BalanceWrittenOff{}
		if err := env.GetPayload().UnmarshalTo(ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// wantRefused fails unless err is failed_precondition naming work_item_id and rule.
func wantRefused(t *testing.T, err error, rule string) {
	t.Helper()
	wantCode(t, err, connect.CodeFailedPrecondition)
	if msg := err.Error(); !strings.Contains(msg, "work_item_id") || !strings.Contains(msg, rule) {
		t.Fatalf("err = %v, want work_item_id and %s named", err, rule)
	}
}

// TestWriteOffs: a partial then a full write-off of a denial resolves it, with two events
// carrying the amounts and reason (never the note), and takes the claim out of aging;
// idempotent repeats; the rules on the item, the amount and the caller.
func TestWriteOffs(t *testing.T) {
	w := startWriteOffs(t)
	ctx := context.Background()
	if got := w.payerAging(t, clinicA); got != 16000 {
		t.Fatalf("clinic A aging before = %d, want 16000 (denial 150.00 + underpayment 10.00)", got)
	}

	// Part of the denial, with a key.
	first := &billingv1.WriteOffRequest{WorkItemId: w.denial.GetId(), Reason: "timely_filing", AmountCents: 4000,
		Note: writeOffNote, IdempotencyKey: "wo-1"}
	resp, err := w.writeOff(w.admin, first)
	if err != nil {
		t.Fatal(err)
	}
	wo := resp.GetWriteOff()
	if wo.GetAmountCents() != 4000 || wo.GetReason() != "timely_filing" || wo.GetNote() != writeOffNote || wo.GetQueue() != "denial" ||
		wo.GetClaimId() != w.denied.ID || wo.GetClinicId() != clinicA || wo.GetPayerId() != remitPayer ||
		wo.GetWrittenOffBy() != "admin-1" || wo.GetWorkItemId() != w.denial.GetId() || wo.GetId() == "" {
		t.Fatalf("write-off %v", wo)
	}
	if it := resp.GetItem(); it.GetStatus() != "open" || it.GetAmountCents() != 15000 {
		t.Fatalf("item after part %v", it)
	}
	if got := w.payerAging(t, clinicA); got != 12000 {
		t.Fatalf("clinic A aging after 40.00 = %d, want 12000", got)
	}

	// The same key and request: the first answer, nothing more written or announced.
	again, err := w.writeOff(w.admin, first)
	if err != nil || !proto.Equal(again, resp) {
		t.Fatalf("repeat: %v %v, want %v", again, err, resp)
	}
	// The same key with another request is refused.
	other := proto.Clone(first).(*billingv1.WriteOffRequest)
	other.AmountCents = 100
	_, err = w.writeOff(w.admin, other)
	wantCode(t, err, connect.CodeFailedPrecondition)
	// Keys are the caller's: another biller's wo-1 is a new write-off (below, the rest).
	if n := w.Count(t, `SELECT count(*) FROM write_offs`); n != 1 {
		t.Fatalf("write-offs after repeats = %d", n)
	}

	// More than is left (110.00): refused naming amount_cents; nothing changes.
	_, err = w.writeOff(w.admin, &billingv1.WriteOffRequest{WorkItemId: w.denial.GetId(), Reason: "timely_filing", AmountCents: 11001})
	wantViolations(t, err, "amount_cents amount_cents.at_most_left")
	if cents, status := w.writtenOff(t, w.denial.GetId()); cents != 4000 || status != "open" {
		t.Fatalf("after refusal: written off %d, %s", cents, status)
	}
	// A bad reason, a negative amount: named by the request's rules.
	_, err = w.writeOff(w.admin, &billingv1.WriteOffRequest{WorkItemId: w.denial.GetId(), Reason: "bad_debt"})
	wantViolations(t, err, "reason string.in")
	_, err = w.writeOff(w.admin, &billingv1.WriteOffRequest{WorkItemId: w.denial.GetId(), Reason: "uncollectible", AmountCents: -1})
	wantViolations(t, err, "amount_cents int64.gte")

	// The rest (0: all that is left), by another biller with the same key: resolved.
	biller := w.Token(t, "biller-2", []string{"billing"}, []string{clinicA})
	resp, err = w.writeOff(biller, &billingv1.WriteOffRequest{WorkItemId: w.denial.GetId(), Reason: "non_covered", IdempotencyKey: "wo-1"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetWriteOff().GetAmountCents() != 11000 || resp.GetWriteOff().GetWrittenOffBy() != "biller-2" || resp.GetItem().GetStatus() != "resolved" {
		t.Fatalf("rest %v", resp)
	}
	if cents, status := w.writtenOff(t, w.denial.GetId()); cents != 15000 || status != "resolved" {
		t.Fatalf("denial written off %d, %s", cents, status)
	}
	if got := w.payerAging(t, clinicA); got != 1000 {
		t.Fatalf("clinic A aging after the denial = %d, want 1000 (the underpayment)", got)
	}
	// Resolved: nothing more. Reopened: nothing is left.
	_, err = w.writeOff(w.admin, &billingv1.WriteOffRequest{WorkItemId: w.denial.GetId(), Reason: "administrative"})
	wantRefused(t, err, "write_off.open")
	if _, err := w.client.UpdateWorkItem(ctx, req(w.admin, &billingv1.UpdateWorkItemRequest{Id: w.denial.GetId(), Status: "open"})); err != nil {
		t.Fatal(err)
	}
	_, err = w.writeOff(w.admin, &billingv1.WriteOffRequest{WorkItemId: w.denial.GetId(), Reason: "administrative"})
	wantRefused(t, err, "write_off.left")

	events := w.writtenOffEvents(t)
	if len(events) != 2 {
		t.Fatalf("events %v", events)
	}
	for i, want := range []struct {
		amount int64
		reason string
	}{{4000, "timely_filing"}, {11000, "non_covered"}} {
		ev := events[i]
		if ev.GetAmountCents() != want.amount || ev.GetReason() != want.reason || ev.GetWorkItemId() != w.denial.GetId() ||
			ev.GetQueue() != "denial" || ev.GetClaimId() != w.denied.ID || ev.GetClinicId() != clinicA || ev.GetPayerId() != remitPayer ||
			ev.GetWriteOffId() == "" || ev.GetWrittenOffAt() == nil {
			t.Fatalf("event %d %v", i, ev)
		}
	}
	if strings.Contains(w.Logs.String(), writeOffNote) {
		t.Fatal("the note reached the logs")
	}
	if !strings.Contains(w.Logs.String(), "balance written off") {
		t.Fatal("no log line for the write-off")
	}

	// Only denials and underpayments: unmatched and held charges are refused.
	_, err = w.writeOff(w.admin, &billingv1.WriteOffRequest{WorkItemId: w.unmatched.GetId(), Reason: "administrative"})
	wantRefused(t, err, "write_off.queue")
	held := bus.NewID()
	w.sql(t, `INSERT INTO charges (id, billable_unit, patient_id, clinic_id, enrollment_id, payer_id, contract_id, service_date, service,
		procedure_code, units, rate_cents, amount_cents, status, hold_reason, source_event_ids, appointment_ids)
		SELECT $1::uuid, 'fixture:' || $1::text, $2, $3, $4, $5, id, '2026-03-02', 'per_diem', 'H0015', 1, 15000, 15000, 'held', 'consent', '{}', '{}'
		FROM contracts WHERE clinic_id = $3 LIMIT 1`, held, bus.NewID(), clinicA, bus.NewID(), remitPayer)
	_, err = w.writeOff(w.admin, &billingv1.WriteOffRequest{WorkItemId: held, Reason: "administrative"})
	wantRefused(t, err, "write_off.queue")

	// Who: operators may not; a biller of another clinic does not see the item; nobody sees
	// an item that does not exist.
	_, err = w.writeOff(w.Token(t, "op", []string{"operator"}, []string{auth.AllClinics}),
		&billingv1.WriteOffRequest{WorkItemId: w.underpayment.GetId(), Reason: "small_balance"})
	wantCode(t, err, connect.CodePermissionDenied)
	onlyB := w.Token(t, "biller-b", []string{"billing"}, []string{clinicB})
	_, err = w.writeOff(onlyB, &billingv1.WriteOffRequest{WorkItemId: w.underpayment.GetId(), Reason: "small_balance"})
	wantCode(t, err, connect.CodeNotFound)
	_, err = w.writeOff(onlyB, &billingv1.WriteOffRequest{WorkItemId: held, Reason: "small_balance"})
	wantCode(t, err, connect.CodeNotFound)
	_, err = w.writeOff(w.admin, &billingv1.WriteOffRequest{WorkItemId: bus.NewID(), Reason: "small_balance"})
	wantCode(t, err, connect.CodeNotFound)
	if n := w.Count(t, `SELECT count(*) FROM write_offs`); n != 2 {
		t.Fatalf("write-offs after refusals = %d", n)
	}

	// The underpayment in part, and clinic B's denial in full.
	if _, err := w.writeOff(biller, &billingv1.WriteOffRequest{WorkItemId: w.underpayment.GetId(), Reason: "small_balance", AmountCents: 300}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.writeOff(onlyB, &billingv1.WriteOffRequest{WorkItemId: w.denialB.GetId(), Reason: "charity_care"}); err != nil {
		t.Fatal(err)
	}
	if got := w.payerAging(t, clinicA); got != 700 {
		t.Fatalf("clinic A aging = %d, want 700", got)
	}
	if got := w.payerAging(t, clinicB); got != 0 {
		t.Fatalf("clinic B aging = %d, want 0", got)
	}

	// Listing: newest first, by clinic and claim, only the caller's clinics.
	list := func(token string, r *billingv1.ListWriteOffsRequest) []*billingv1.WriteOff {
		t.Helper()
		resp, err := w.client.ListWriteOffs(ctx, req(token, r))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Msg.GetWriteOffs()
	}
	amounts := func(l []*billingv1.WriteOff) []int64 {
		var out []int64
		for _, x := range l {
			out = append(out, x.GetAmountCents())
		}
		return out
	}
	if got := amounts(list(w.admin, &billingv1.ListWriteOffsRequest{})); len(got) != 4 || got[0] != 15000 || got[3] != 4000 {
		t.Fatalf("all write-offs %v", got)
	}
	if got := amounts(list(w.admin, &billingv1.ListWriteOffsRequest{ClinicId: clinicA})); len(got) != 3 || got[0] != 300 {
		t.Fatalf("clinic A write-offs %v", got)
	}
	if got := amounts(list(w.admin, &billingv1.ListWriteOffsRequest{ClaimId: w.denied.ID})); len(got) != 2 || got[0] != 11000 || got[1] != 4000 {
		t.Fatalf("claim write-offs %v", got)
	}
	if got := amounts(list(w.admin, &billingv1.ListWriteOffsRequest{ClinicId: clinicA, ClaimId: w.deniedB.ID})); len(got) != 0 {
		t.Fatalf("clinic A, clinic B's claim: %v", got)
	}
	if got := amounts(list(w.admin, &billingv1.ListWriteOffsRequest{Limit: 1})); len(got) != 1 {
		t.Fatalf("limit 1: %v", got)
	}
	if got := list(onlyB, &billingv1.ListWriteOffsRequest{}); len(got) != 1 || got[0].GetClinicId() != clinicB || got[0].GetReason() != "charity_care" {
		t.Fatalf("clinic B caller %v", got)
	}
	_, err = w.client.ListWriteOffs(ctx, req(onlyB, &billingv1.ListWriteOffsRequest{ClinicId: clinicA}))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = w.client.ListWriteOffs(ctx, req(w.Token(t, "op", []string{"operator"}, []string{auth.AllClinics}), &billingv1.ListWriteOffsRequest{}))
	wantCode(t, err, connect.CodePermissionDenied)
	if got := len(w.writtenOffEvents(t)); got != 4 {
		t.Fatalf("events = %d, want 4", got)
	}
}

// TestWriteOffsConcurrent: write-offs racing on one item never take more than it has left:
// of 12 concurrent write-offs of 1.00 on a 10.00 underpayment, exactly 10 succeed.
func TestWriteOffsConcurrent(t *testing.T) {
	w := startWriteOffs(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[connect.Code]int{}
	for i := range 12 {
		wg.Go(func() {
			_, err := w.writeOff(w.admin, &billingv1.WriteOffRequest{WorkItemId: w.underpayment.GetId(), Reason: "small_balance",
				AmountCents: 100, IdempotencyKey: "race-" + string(rune('a'+i))})
			mu.Lock()
			defer mu.Unlock()
			codes[connect.CodeOf(err)]++
		})
	}
	wg.Wait()
	// connect.CodeOf(nil) is unknown: the successes.
	if codes[connect.CodeUnknown] != 10 || codes[connect.CodeUnknown]+codes[connect.CodeFailedPrecondition]+codes[connect.CodeInvalidArgument] != 12 {
		t.Fatalf("outcomes %v", codes)
	}
	if cents, status := w.writtenOff(t, w.underpayment.GetId()); cents != 1000 || status != "resolved" {
		t.Fatalf("written off %d, %s", cents, status)
	}
	if n := w.Count(t, `SELECT coalesce(sum(amount_cents), 0) FROM write_offs`); n != 1000 {
		t.Fatalf("sum of write-offs %d", n)
	}
	if got := len(w.writtenOffEvents(t)); got != 10 {
		t.Fatalf("events = %d, want 10", got)
	}
}

// TestWriteOffAfterReversal: a write-off counts only while the posting that opened its item
// stands. A reversal resolves the item; reopened, it cannot be written off; the claim is owed
// in full again.
func TestWriteOffAfterReversal(t *testing.T) {
	w := startWriteOffs(t)
	ctx := context.Background()
	if _, err := w.writeOff(w.admin, &billingv1.WriteOffRequest{WorkItemId: w.underpayment.GetId(), Reason: "small_balance", AmountCents: 400}); err != nil {
		t.Fatal(err)
	}
	if got := w.payerAging(t, clinicA); got != 15600 {
		t.Fatalf("aging %d, want 15600", got)
	}
	// The payer takes back its payment of W2 (both lines as paid).
	l := w.under.Lines[0]
	w.upload(t, w.admin, era835("WO2", eraClaim{Control: "W2", Status: "22", Lines: []eraLine{
		{Code: l.Code, Date: l.Date, LineControl: l.LineControl, Charged: -l.Cents, Paid: -12000,
			Adjs: []eraAdj{{"CO", "45", -2000}, {"OA", "23", -1000}}},
		{Code: "99999", Date: "2026-03-04", Charged: -15000, Paid: -15000}}}))
	if _, status := w.writtenOff(t, w.underpayment.GetId()); status != "resolved" {
		t.Fatalf("underpayment after reversal: %s", status)
	}
	// W2 is owed in full again (300.00), the 4.00 written off no longer counts.
	if got := w.payerAging(t, clinicA); got != 15000+30000 {
		t.Fatalf("aging after reversal %d, want 45000", got)
	}
	if _, err := w.client.UpdateWorkItem(ctx, req(w.admin, &billingv1.UpdateWorkItemRequest{Id: w.underpayment.GetId(), Status: "open"})); err != nil {
		t.Fatal(err)
	}
	_, err := w.writeOff(w.admin, &billingv1.WriteOffRequest{WorkItemId: w.underpayment.GetId(), Reason: "small_balance"})
	wantRefused(t, err, "write_off.posting")
}

// BenchmarkWriteOff measures write-offs through the API (lock the item, store the write-off,
// update the item, emit BalanceWrittenOff, with an idempotency key: one transaction each), in
// write-offs per second, against a baseline in the same run: UpdateWorkItem on the same kind of
// item (lock and update, no event, no key), the cheapest change to a work item.
func BenchmarkWriteOff(b *testing.B) {
	w := startWriteOffs(b)
	ctx := context.Background()
	b.Run("baseline=update", func(b *testing.B) {
		n := 0
		for i := 0; b.Loop(); i++ {
			status := []string{"resolved", "open"}[i%2]
			if _, err := w.client.UpdateWorkItem(ctx, req(w.admin, &billingv1.UpdateWorkItemRequest{Id: w.denialB.GetId(), Status: status})); err != nil {
				b.Fatal(err)
			}
			n++
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "calls/s")
	})
	b.Run("write-off", func(b *testing.B) {
		n := 0
		for i := 0; b.Loop(); i++ {
			// 1 cent each: the 150.00 denial has room for 15,000.
			if _, err := w.writeOff(w.admin, &billingv1.WriteOffRequest{WorkItemId: w.denial.GetId(), Reason: "small_balance",
				AmountCents: 1, IdempotencyKey: "bench-" + strconv.Itoa(i)}); err != nil {
				b.Fatal(err)
			}
			n++
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "calls/s")
	})
}
