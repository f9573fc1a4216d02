package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/rpc"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
	"github.com/trellis-health/trellis/services/dashboard/internal/web"
)

// WriteOff as billing's contract says: billing and admin only, an open denial or underpayment,
// 0 cents for all that is left, at most that; resolved when nothing is left; the same
// idempotency key answers the first write-off.
func (f *fakeBilling) WriteOff(_ context.Context, req *connect.Request[billingv1.WriteOffRequest]) (*connect.Response[billingv1.WriteOffResponse], error) {
	p, err := f.principal(req.Header())
	if err != nil {
		return nil, err
	}
	if !p.HasRole("billing", "admin") {
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("role"))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writeOffs = append(f.writeOffs, req.Msg)
	if prev, ok := f.keys[req.Msg.GetIdempotencyKey()]; ok && req.Msg.GetIdempotencyKey() != "" {
		return connect.NewResponse(prev), nil
	}
	for _, q := range []string{"denial", "underpayment"} {
		for _, it := range f.items[q] {
			if it.GetId() != req.Msg.GetWorkItemId() || !p.CanSeeClinic(it.GetClinicId()) {
				continue
			}
			if it.GetStatus() != "open" {
				return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("the work item is "+it.GetStatus()))
			}
			// The item keeps its amount; what is left is it less the write-offs.
			left := it.GetAmountCents() - f.written[it.GetId()]
			cents := req.Msg.GetAmountCents()
			if cents == 0 {
				cents = left
			}
			if cents > left {
				return nil, rpc.InvalidArgument(rpc.FieldViolation{Field: "amount_cents", Rule: "amount_cents.at_most_left", Msg: "more than is left on the item"})
			}
			if f.written == nil {
				f.written = map[string]int64{}
			}
			f.written[it.GetId()] += cents
			if cents == left {
				it.Status = "resolved"
			}
			resp := &billingv1.WriteOffResponse{Item: it, WriteOff: &billingv1.WriteOff{Id: bus.NewID(), WorkItemId: it.GetId(), Queue: q,
				ClinicId: it.GetClinicId(), AmountCents: cents, Reason: req.Msg.GetReason(), CreatedAt: timestamppb.Now()}}
			if f.keys == nil {
				f.keys = map[string]*billingv1.WriteOffResponse{}
			}
			f.keys[req.Msg.GetIdempotencyKey()] = resp
			return connect.NewResponse(resp), nil
		}
	}
	return nil, connect.NewError(connect.CodeNotFound, errors.New("not found"))
}

func (f *fakeBilling) sawWriteOffs() []*billingv1.WriteOffRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.writeOffs)
}

// Write-offs: BalanceWrittenOff projected (a redelivery adds nothing) into the billing page's
// table by reason, the flow and its weeks; the work queues' "Write off" form calls billing's
// WriteOff with the amount parsed exactly to cents, and says what happened.
func TestWriteOffs(t *testing.T) {
	now := time.Now().UTC()
	const (
		wDenial = "0190a000-0000-7000-8000-0000000000d1"
		wUnder  = "0190a000-0000-7000-8000-0000000000a1"
	)
	e, fake := startWithBilling(t, map[string][]*billingv1.WorkItem{
		"denial": {{Id: wDenial, Queue: "denial", ClinicId: clinicA, PayerId: "acme", ClaimId: bus.NewID(), AmountCents: 8500,
			Status: "open", AppealStatus: "none", Reason: "CO-50", CreatedAt: timestamppb.New(now)}},
		"underpayment": {{Id: wUnder, Queue: "underpayment", ClinicId: clinicA, PayerId: "acme", ClaimId: bus.NewID(), AmountCents: 1500,
			Status: "open", CreatedAt: timestamppb.New(now)}},
	})
	e.publish("trellis.scheduling.clinic.configured.v1", clinicA, now.AddDate(0, 0, -30), &schedulingv1.ClinicConfigured{
		Clinic: &schedulingv1.Clinic{ClinicId: clinicA, Name: "Lakeview", TimeZone: "UTC"}})
	wo := func(reason string, cents int64, at time.Time) *billingv1.BalanceWrittenOff {
		return &billingv1.BalanceWrittenOff{WriteOffId: bus.NewID(), WorkItemId: bus.NewID(), Queue: "denial", ClaimId: bus.NewID(),
			ClinicId: clinicA, PayerId: "acme", AmountCents: cents, Reason: reason, WrittenOffAt: timestamppb.New(at)}
	}
	first := e.publish("trellis.billing.balance.written_off.v1", clinicA, now.AddDate(0, 0, -2), wo("small_balance", 1234, now.AddDate(0, 0, -2)))
	e.publish("trellis.billing.balance.written_off.v1", clinicA, now.AddDate(0, 0, -3), wo("small_balance", 66, now.AddDate(0, 0, -3)))
	e.publish("trellis.billing.balance.written_off.v1", clinicA, now.AddDate(0, 0, -1), wo("timely_filing", 50000, now.AddDate(0, 0, -1)))
	e.publish("trellis.billing.balance.written_off.v1", clinicA, now.AddDate(0, 0, -60), wo("charity_care", 999, now.AddDate(0, 0, -60))) // before the range
	e.redeliver("trellis.billing.balance.written_off.v1", first)
	e.settle()
	if got := e.Count(t, `SELECT count(*) FROM write_offs`); got != 4 {
		t.Errorf("%d write-offs projected, want 4", got)
	}

	biller := e.signIn("billing", "*")
	rng := "?from=" + day(now.AddDate(0, 0, -20)) + "&to=" + day(now)
	var b web.Billing
	e.json("/api/billing.json"+rng, biller, &b)
	if len(b.WriteOffs) != 2 || b.WriteOffs[0].Reason != "timely_filing" || b.WriteOffs[1].Count != 2 || b.WriteOffs[1].AmountCents != 1300 {
		t.Errorf("write-offs: %+v", b.WriteOffs)
	}
	if b.Flow["written_off"] != "$513.00" || b.FlowCents.WrittenOff != 51300 {
		t.Errorf("flow written off: %s %d", b.Flow["written_off"], b.FlowCents.WrittenOff)
	}
	var weeks int64
	for _, w := range b.Trends {
		weeks += w.Cents.WrittenOff
	}
	if weeks != 51300 {
		t.Errorf("written off over the weeks: %d", weeks)
	}
	page := e.page("/billing"+rng, biller)
	if got := cells(t, page, "write-offs", "data-reason", "small_balance", "data-field"); got["count"] != "2" || got["amount"] != "$13.00" {
		t.Errorf("small balance row: %v", got)
	}
	if got := cells(t, page, "flow", "data-stage", "written_off", "data-kpi"); got["written_off"] != "$513.00" {
		t.Errorf("flow row: %v", got)
	}

	// The form: on denials and underpayments, with the contract's reasons and labelled fields.
	row := regexp.MustCompile(`(?s)<tr data-work-item-id="` + wDenial + `">.*?</tr>`).FindString(page)
	for _, want := range []string{`action="/billing/work-items/` + wDenial + `/write-off?`, `<label for="wo-reason-` + wDenial + `">`,
		`<label for="wo-amount-` + wDenial + `">`, `value="small_balance"`, `value="charity_care"`, `name="key"`} {
		if !strings.Contains(row, want) {
			t.Errorf("denial row lacks %s", want)
		}
	}
	if !strings.Contains(regexp.MustCompile(`(?s)<tr data-work-item-id="`+wUnder+`">.*?</tr>`).FindString(page), "/write-off?") {
		t.Error("underpayment row has no write-off form")
	}
	csrf := csrfOf(t, page)
	key := regexp.MustCompile(`name="key" value="([^"]+)"`).FindStringSubmatch(row)[1]

	// Bad input changes nothing and names the field.
	for form, want := range map[string]string{
		"reason=bribe&amount=1":             "Reason: choose one of the listed reasons",
		"reason=small_balance&amount=1.234": "Amount: at most two digits after the decimal point",
		"reason=small_balance&amount=-5":    "Amount: want an amount in dollars",
		"reason=small_balance&amount=0.00":  "Amount: more than $0.00",
	} {
		v, _ := url.ParseQuery(form)
		v.Set("csrf", csrf)
		code, _, body := e.post("/billing/work-items/"+wDenial+"/write-off"+rng, biller, v)
		if code != http.StatusBadRequest || !strings.Contains(body, want) {
			t.Errorf("%s: %d, want 400 with %q", form, code, want)
		}
	}
	if code, _, _ := e.post("/billing/work-items/"+wDenial+"/write-off"+rng, biller, url.Values{"reason": {"small_balance"}}); code != http.StatusForbidden {
		t.Errorf("without CSRF: %d", code)
	}
	if n := len(fake.sawWriteOffs()); n != 0 {
		t.Fatalf("billing got %d write-offs from bad forms", n)
	}

	// More than is left: billing's field violation, in plain words.
	code, _, body := e.post("/billing/work-items/"+wDenial+"/write-off"+rng, biller,
		url.Values{"csrf": {csrf}, "reason": {"small_balance"}, "amount": {"$100.01"}, "key": {key}})
	if code != http.StatusBadRequest || !strings.Contains(body, "Amount: more than is left on the item") {
		t.Errorf("more than is left: %d", code)
	}
	code, h, body := e.post("/billing/work-items/"+wDenial+"/write-off"+rng, biller,
		url.Values{"csrf": {csrf}, "reason": {"small_balance"}, "amount": {"19.99"}, "key": {key + "-2"}})
	if code != http.StatusSeeOther {
		t.Fatalf("write off: %d %s", code, body)
	}
	got := fake.sawWriteOffs()
	last := got[len(got)-1]
	if last.GetWorkItemId() != wDenial || last.GetAmountCents() != 1999 || last.GetReason() != "small_balance" || last.GetIdempotencyKey() != key+"-2" {
		t.Errorf("billing got %v", last)
	}
	page = e.page(h.Get("Location"), biller)
	if !strings.Contains(page, "Wrote off $19.99 (small balance). The item stays open for what is left.") {
		t.Errorf("no notice after a partial write-off: %s", h.Get("Location"))
	}
	// Billing announces it (BalanceWrittenOff): the form says what is left.
	e.publish("trellis.billing.balance.written_off.v1", clinicA, now, &billingv1.BalanceWrittenOff{WriteOffId: bus.NewID(),
		WorkItemId: wDenial, Queue: "denial", ClinicId: clinicA, PayerId: "acme", AmountCents: 1999, Reason: "small_balance",
		WrittenOffAt: timestamppb.New(now)})
	e.settle()
	if page := e.page("/billing"+rng, biller); !strings.Contains(page, "Empty: all that is left ($65.01; $19.99 already written off).") {
		t.Error("the write-off form does not say what is left after a partial write-off")
	}
	// All that is left of the underpayment (empty amount): resolved, gone from the queue.
	_, h, _ = e.post("/billing/work-items/"+wUnder+"/write-off"+rng, biller, url.Values{"csrf": {csrf}, "reason": {"administrative"}, "amount": {""}})
	page = e.page(h.Get("Location"), biller)
	if !strings.Contains(page, "Wrote off $15.00 (administrative). Nothing is left on the item: it is resolved.") {
		t.Errorf("no notice after writing off everything: %s", h.Get("Location"))
	}
	if rows := workRows(t, page, "queue-underpayment"); len(rows) != 0 {
		t.Errorf("resolved underpayment still listed: %v", rows)
	}
	// An operator sees no form and is refused.
	op := e.signIn("operator", "*")
	if strings.Contains(e.page("/billing"+rng, op), "/write-off?") {
		t.Error("an operator sees the write-off form")
	}
	if code, _, _ := e.post("/billing/work-items/"+wDenial+"/write-off"+rng, op, url.Values{"csrf": {csrfFor(op)}, "reason": {"small_balance"}}); code != http.StatusForbidden {
		t.Errorf("operator write-off: %d", code)
	}
}
