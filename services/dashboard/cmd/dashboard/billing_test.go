package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/rpc"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"
	"github.com/trellis-health/trellis/services/dashboard/internal/web"
)

// fakeBilling is billing's RemittanceService as far as the dashboard uses it: it verifies the
// forwarded token as billing does (dev tokens), applies billing's rules that matter here
// (roles, every clinic for an upload, the appeal's moves) and records what it was asked.
type fakeBilling struct {
	billingv1connect.UnimplementedRemittanceServiceHandler
	cfg *Config

	mu      sync.Mutex
	tokens  []string // Authorization headers, every call
	updates []*billingv1.UpdateWorkItemRequest
	uploads int
	items   map[string][]*billingv1.WorkItem
	// WriteOff (writeoff_test.go): the requests, and the answers by idempotency key.
	writeOffs []*billingv1.WriteOffRequest
	keys      map[string]*billingv1.WriteOffResponse
	written   map[string]int64 // cents written off per item
}

func (f *fakeBilling) principal(h http.Header) (*auth.Principal, error) {
	f.mu.Lock()
	f.tokens = append(f.tokens, h.Get("Authorization"))
	f.mu.Unlock()
	raw, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	if !ok {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("no token"))
	}
	p, err := auth.NewDevVerifier([]byte(servicetest.DevKey), f.cfg.AuthIssuer, f.cfg.AuthAudience).Verify(context.Background(), raw)
	if err != nil {
		return nil, connect.NewError(connect.CodeUnauthenticated, err)
	}
	return p, nil
}

func (f *fakeBilling) ListWorkItems(_ context.Context, req *connect.Request[billingv1.ListWorkItemsRequest]) (*connect.Response[billingv1.ListWorkItemsResponse], error) {
	p, err := f.principal(req.Header())
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*billingv1.WorkItem
	for _, it := range f.items[req.Msg.GetQueue()] {
		if (req.Msg.GetStatus() == "" || it.GetStatus() == req.Msg.GetStatus()) && p.CanSeeClinic(it.GetClinicId()) {
			out = append(out, it)
		}
	}
	return connect.NewResponse(&billingv1.ListWorkItemsResponse{Items: out}), nil
}

func (f *fakeBilling) UpdateWorkItem(_ context.Context, req *connect.Request[billingv1.UpdateWorkItemRequest]) (*connect.Response[billingv1.UpdateWorkItemResponse], error) {
	p, err := f.principal(req.Header())
	if err != nil {
		return nil, err
	}
	if !p.HasRole("billing", "admin") {
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("role"))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates = append(f.updates, req.Msg)
	for _, list := range f.items {
		for _, it := range list {
			if it.GetId() != req.Msg.GetId() {
				continue
			}
			if a := req.Msg.GetAppealStatus(); a != "" {
				if !(it.GetAppealStatus() == "none" && a == "appealed") && !(it.GetAppealStatus() == "appealed" && (a == "won" || a == "lost")) {
					return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("appeal_status: cannot go from "+it.GetAppealStatus()+" to "+a))
				}
				it.AppealStatus = a
			}
			if s := req.Msg.GetStatus(); s != "" {
				it.Status = s
			}
			return connect.NewResponse(&billingv1.UpdateWorkItemResponse{Item: it}), nil
		}
	}
	return nil, connect.NewError(connect.CodeNotFound, errors.New("not found"))
}

func (f *fakeBilling) UploadRemittance(_ context.Context, req *connect.Request[billingv1.UploadRemittanceRequest]) (*connect.Response[billingv1.UploadRemittanceResponse], error) {
	p, err := f.principal(req.Header())
	if err != nil {
		return nil, err
	}
	if !p.HasRole("billing", "admin") || !slices.Contains(p.Clinics, auth.AllClinics) {
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("an upload needs every clinic"))
	}
	if !bytes.HasPrefix(req.Msg.GetContent(), []byte("ISA*")) {
		return nil, rpc.InvalidArgument(rpc.FieldViolation{Field: "content", Rule: "x12.readable", Msg: "no X12 segment in the file"})
	}
	f.mu.Lock()
	f.uploads++
	f.mu.Unlock()
	return connect.NewResponse(&billingv1.UploadRemittanceResponse{Summary: &billingv1.RemittanceSummary{
		RemittanceId: "0190a000-0000-7000-8000-0000000000e1", Payer: "ILMCD", Transactions: 1, Claims: 3, ServiceLines: 4,
		TotalPaidCents: 39105, MatchedClaims: 2, UnmatchedLines: 1, WorkItems: 2, FileName: req.Msg.GetFileName(),
		Deviations: []*billingv1.RemittanceDeviation{{Rule: "claim_balance", Segment: "CLP*T01 (segment 11)", Expected: 21000, Actual: 20000}},
	}}), nil
}

func (f *fakeBilling) sawTokens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.tokens)
}

func (f *fakeBilling) sawUpdates() []*billingv1.UpdateWorkItemRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.updates)
}

// startWithBilling runs the dashboard with BILLING_URL at a fake billing.
func startWithBilling(t *testing.T, items map[string][]*billingv1.WorkItem) (*env, *fakeBilling) {
	t.Helper()
	var cfg Config
	fake := &fakeBilling{cfg: &cfg, items: items}
	mux := http.NewServeMux()
	mux.Handle(billingv1connect.NewRemittanceServiceHandler(fake))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e := &env{Service: servicetest.Start(t, newSpec(&cfg), &cfg, map[string]string{"BILLING_URL": srv.URL}), t: t}
	systemScoped(t, e.Service)
	return e, fake
}

func (e *env) post(path, cookie string, form url.Values) (int, http.Header, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: web.CookieName, Value: cookie})
	return e.do(req)
}

func (e *env) upload(path, cookie, csrf, name string, content []byte) (int, string) {
	e.t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	_ = mw.WriteField("csrf", csrf)
	fw, _ := mw.CreateFormFile("file", name)
	_, _ = fw.Write(content)
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, e.URL+path, &b)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.AddCookie(&http.Cookie{Name: web.CookieName, Value: cookie})
	code, _, body := e.do(req)
	return code, body
}

// csrfFor is the CSRF token of a session (the dashboard's derivation, for a session whose page
// has no form to read it from).
func csrfFor(session string) string {
	m := hmac.New(sha256.New, []byte(session))
	m.Write([]byte("trellis-dashboard-csrf-v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF field on the billing page")
	}
	return m[1]
}

// rows lists the data-work-item-id of table id's rows.
func workRows(t *testing.T, page, table string) []string {
	t.Helper()
	tm := regexp.MustCompile(`(?s)<table id="` + table + `">.*?</table>`).FindString(page)
	if tm == "" {
		t.Fatalf("no table#%s", table)
	}
	var out []string
	for _, m := range regexp.MustCompile(`data-work-item-id="([^"]+)"`).FindAllStringSubmatch(tm, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestBillingRatesAndWorkQueues(t *testing.T) {
	now := time.Now().UTC()
	d := func(days int) time.Time { return now.AddDate(0, 0, -days) }
	item := func(id, queue, clinic, status, appeal, reason string, cents int64, created time.Time) *billingv1.WorkItem {
		return &billingv1.WorkItem{Id: id, Queue: queue, ClinicId: clinic, PayerId: "acme-health", ClaimId: "claim-" + id[len(id)-2:],
			AmountCents: cents, Status: status, AppealStatus: appeal, Reason: reason, CreatedAt: timestamppb.New(created)}
	}
	const (
		wNone     = "0190a000-0000-7000-8000-0000000000d1"
		wAppealed = "0190a000-0000-7000-8000-0000000000d2"
		wDone     = "0190a000-0000-7000-8000-0000000000d3"
		wOld      = "0190a000-0000-7000-8000-0000000000d4"
		wOtherB   = "0190a000-0000-7000-8000-0000000000d5"
		wUnder    = "0190a000-0000-7000-8000-0000000000a1"
		wUnmatch  = "0190a000-0000-7000-8000-0000000000b1"
		wHeld     = "0190a000-0000-7000-8000-0000000000c1"
	)
	e, fake := startWithBilling(t, map[string][]*billingv1.WorkItem{
		"denial": {
			item(wNone, "denial", clinicA, "open", "none", "CO-50", 8500, d(1)),
			item(wAppealed, "denial", clinicA, "open", "appealed", "CO-50 CO-97", 11000, d(2)),
			item(wDone, "denial", clinicA, "resolved", "lost", "CO-16", 4000, d(3)),
			item(wOld, "denial", clinicA, "open", "none", "CO-29", 9900, d(60)),
			item(wOtherB, "denial", clinicB, "open", "none", "CO-11", 100, d(1)),
		},
		"underpayment": {item(wUnder, "underpayment", clinicA, "open", "", "", 1500, d(1))},
		"unmatched":    {{Id: wUnmatch, Queue: "unmatched", PayerId: "ILMCD", RemittanceId: "0190a000-0000-7000-8000-0000000000e0", AmountCents: 2500, Status: "open", CreatedAt: timestamppb.New(d(1))}},
		"holds":        {item(wHeld, "holds", clinicA, "open", "", "consent", 25000, d(2))},
	})

	// Claims adjudicated in the range, in clinic A: what the rates are computed from.
	adj := func(id string, status billingv1.ClaimStatus, charged, contractual, paid int64, at time.Time) {
		e.publish("trellis.billing.claim.adjudicated.v1", clinicA, at, &billingv1.ClaimAdjudicated{ClaimId: id, ClinicId: clinicA,
			PatientId: bus.NewID(), PayerId: "acme-health", Status: status, ChargedCents: charged, ContractualCents: contractual, PaidCents: paid})
	}
	sub := func(id, freq, corrects string, cents int64, at time.Time) {
		e.publish("trellis.billing.claim.submitted.v1", clinicA, at, &billingv1.ClaimSubmitted{ClaimId: id, ClinicId: clinicA, PatientId: bus.NewID(),
			PayerId: "acme-health", TotalCents: cents, SubmittedAt: timestamppb.New(at), FrequencyCode: freq, CorrectedClaimId: corrects})
	}
	k1, k2, k3, k4, k5, k6, k7, k8 := bus.NewID(), bus.NewID(), bus.NewID(), bus.NewID(), bus.NewID(), bus.NewID(), bus.NewID(), bus.NewID()
	sub(k1, "1", "", 25000, d(9))
	adj(k1, billingv1.ClaimStatus_CLAIM_STATUS_PAID, 25000, 4000, 21000, d(2)) // clean
	adj(k2, billingv1.ClaimStatus_CLAIM_STATUS_DENIED, 8500, 0, 0, d(2))
	adj(k3, billingv1.ClaimStatus_CLAIM_STATUS_PARTIALLY_PAID, 17000, 1000, 6000, d(2))
	// k4 replaces k5: the correction's ClaimSubmitted arrives before the original's.
	sub(k4, "7", k5, 10000, d(5))
	sub(k5, "1", "", 10000, d(8))
	adj(k5, billingv1.ClaimStatus_CLAIM_STATUS_PAID, 10000, 0, 10000, d(6))
	adj(k4, billingv1.ClaimStatus_CLAIM_STATUS_PAID, 10000, 0, 10000, d(2))
	// k6 was denied, then paid on appeal: the newer payment is applied first.
	adj(k6, billingv1.ClaimStatus_CLAIM_STATUS_PAID, 5000, 0, 5000, d(1))
	adj(k6, billingv1.ClaimStatus_CLAIM_STATUS_DENIED, 5000, 0, 0, d(3))
	adj(k7, billingv1.ClaimStatus_CLAIM_STATUS_REVERSED, 7000, 0, 0, d(2)) // left out
	adj(k8, billingv1.ClaimStatus_CLAIM_STATUS_PAID, 5000, 0, 5000, d(2))  // clean
	e.settle()

	rng := "?from=" + day(d(20)) + "&to=" + day(now)
	biller := e.signIn("billing", "*")
	page := e.page("/billing"+rng, biller)

	// 7 adjudicated (k7 reversed is not), 1 denied (k6 stands paid), 2 clean (k1, k8);
	// paid 57000 / (charged 80500 - contractual 5000).
	if got, want := cells(t, page, "rates", "data-rate", "denial_rate", "data-kpi")["denial_rate"], "14.3%"; got != want {
		t.Errorf("denial rate = %s, want %s", got, want)
	}
	if got, want := cells(t, page, "rates", "data-rate", "clean_claim_rate", "data-kpi")["clean_claim_rate"], "28.6%"; got != want {
		t.Errorf("clean-claim rate = %s, want %s", got, want)
	}
	if got, want := cells(t, page, "rates", "data-rate", "net_collection_rate", "data-kpi")["net_collection_rate"], "75.5%"; got != want {
		t.Errorf("net collection rate = %s, want %s", got, want)
	}

	// Top denial reasons: the denials opened in the range, by CARC code, from billing's queue.
	if got := cells(t, page, "denial-reasons", "data-code", "CO-50", "data-field"); got["denials"] != "2" || got["amount"] != "$195.00" {
		t.Errorf("CO-50 = %v, want 2 denials, $195.00", got)
	}
	for _, code := range []string{"CO-97", "CO-16", "CO-11"} {
		if got := cells(t, page, "denial-reasons", "data-code", code, "data-field"); got["denials"] != "1" {
			t.Errorf("%s = %v", code, got)
		}
	}
	if strings.Contains(page, `data-code="CO-29"`) {
		t.Error("a denial opened before the range is counted")
	}
	if i, j := strings.Index(page, `data-code="CO-50"`), strings.Index(page, `data-code="CO-97"`); i < 0 || j < i {
		t.Error("CO-50 (2 denials) is not listed first")
	}

	// The queues: open items only (holds are always open), each with its actions.
	if got, want := workRows(t, page, "queue-denial"), []string{wNone, wAppealed, wOld, wOtherB}; !slices.Equal(got, want) {
		t.Errorf("denial queue = %v, want %v", got, want)
	}
	for table, want := range map[string]string{"queue-underpayment": wUnder, "queue-unmatched": wUnmatch, "queue-holds": wHeld} {
		if got := workRows(t, page, table); !slices.Equal(got, []string{want}) {
			t.Errorf("%s = %v, want [%s]", table, got, want)
		}
	}
	if got := cells(t, page, "queue-denial", "data-work-item-id", wAppealed, "data-field"); got["appeal_status"] != "appealed" || got["reason"] != "CO-50 CO-97" || got["amount"] != "$110.00" {
		t.Errorf("appealed denial row = %v", got)
	}
	row := regexp.MustCompile(`(?s)<tr data-work-item-id="` + wAppealed + `">.*?</tr>`).FindString(page)
	if !strings.Contains(row, `data-action="won"`) || !strings.Contains(row, `data-action="lost"`) || strings.Contains(row, `data-action="appealed"`) {
		t.Errorf("an appealed denial offers %s", row)
	}
	if row := regexp.MustCompile(`(?s)<tr data-work-item-id="` + wHeld + `">.*?</tr>`).FindString(page); strings.Contains(row, "<form") {
		t.Error("a held charge offers an action billing does not have")
	}
	for _, want := range []string{`id="upload-835"`, `enctype="multipart/form-data"`, `<label for="era-file">`, `id="era-file"`} {
		if !strings.Contains(page, want) {
			t.Errorf("billing page has no %s", want)
		}
	}

	// Billing was called with the signed-in user's own token.
	for _, tok := range fake.sawTokens() {
		if tok != "Bearer "+biller {
			t.Fatalf("billing got Authorization %q, want the session's token", tok)
		}
	}
	if len(fake.sawTokens()) == 0 {
		t.Fatal("billing was not called")
	}

	// JSON: the same rates and reasons.
	var b struct {
		Rates         map[string]string `json:"rates"`
		DenialReasons []struct {
			Code    string `json:"code"`
			Denials int    `json:"denials"`
		} `json:"denial_reasons"`
		BillingError string `json:"billing_error"`
	}
	e.json("/api/billing.json"+rng, biller, &b)
	if b.Rates["denial_rate"] != "14.3%" || b.Rates["net_collection_rate"] != "75.5%" || len(b.DenialReasons) != 4 ||
		b.DenialReasons[0].Code != "CO-50" || b.DenialReasons[0].Denials != 2 || b.BillingError != "" {
		t.Errorf("billing.json = %+v", b)
	}

	csrf := csrfOf(t, page)
	t.Run("CSRF", func(t *testing.T) {
		for name, form := range map[string]url.Values{
			"missing":           {"action": {"appealed"}},
			"wrong":             {"action": {"appealed"}, "csrf": {"x" + csrf}},
			"another session's": {"action": {"appealed"}, "csrf": {csrfOf(t, e.page("/billing", e.signIn("billing", clinicA)))}},
		} {
			code, _, body := e.post("/billing/work-items/"+wNone+rng, biller, form)
			if code != http.StatusForbidden || !strings.Contains(body, "did not come from this dashboard") {
				t.Errorf("%s token: %d %s", name, code, body)
			}
		}
		code, _ := e.upload("/billing/remittances"+rng, biller, "", "era.835", []byte("ISA*00*"))
		if code != http.StatusForbidden {
			t.Errorf("upload without a token: %d", code)
		}
		if n := len(fake.sawUpdates()); n != 0 {
			t.Fatalf("billing got %d updates from forged forms", n)
		}
	})

	t.Run("update a work item", func(t *testing.T) {
		code, h, body := e.post("/billing/work-items/"+wNone+rng, biller, url.Values{"action": {"appealed"}, "csrf": {csrf}})
		if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/billing?") {
			t.Fatalf("mark appealed: %d %s %s", code, h.Get("Location"), body)
		}
		u := fake.sawUpdates()
		if len(u) != 1 || u[0].GetId() != wNone || u[0].GetAppealStatus() != "appealed" || u[0].GetStatus() != "" {
			t.Fatalf("billing got %v", u)
		}
		page := e.page(h.Get("Location"), biller)
		if !strings.Contains(page, "The denial is marked appealed.") {
			t.Error("no confirmation after marking appealed")
		}
		if got := cells(t, page, "queue-denial", "data-work-item-id", wNone, "data-field"); got["appeal_status"] != "appealed" {
			t.Errorf("after marking appealed: %v", got)
		}
		// Resolve an underpayment: it leaves the open queue.
		if code, _, body := e.post("/billing/work-items/"+wUnder+rng, biller, url.Values{"action": {"resolve"}, "csrf": {csrf}}); code != http.StatusSeeOther {
			t.Fatalf("resolve: %d %s", code, body)
		}
		if got := workRows(t, e.page("/billing"+rng, biller), "queue-underpayment"); len(got) != 0 {
			t.Errorf("resolved underpayment still listed: %v", got)
		}
		// Billing refuses a move: said in plain words, nothing else changes.
		code, _, body = e.post("/billing/work-items/"+wOld+rng, biller, url.Values{"action": {"won"}, "csrf": {csrf}})
		if code != http.StatusConflict || !strings.Contains(body, "Billing could not make this change now: appeal_status: cannot go from none to won.") {
			t.Errorf("won before appealed: %d %s", code, body)
		}
		code, _, body = e.post("/billing/work-items/0190a000-0000-7000-8000-0000000000ff"+rng, biller, url.Values{"action": {"resolve"}, "csrf": {csrf}})
		if code != http.StatusNotFound || !strings.Contains(body, "Billing has no such work item") {
			t.Errorf("unknown item: %d %s", code, body)
		}
	})

	t.Run("upload an 835", func(t *testing.T) {
		code, body := e.upload("/billing/remittances"+rng, biller, csrf, "era.835", []byte("ISA*00*          *00*~"))
		if code != http.StatusOK {
			t.Fatalf("upload: %d %s", code, body)
		}
		for field, want := range map[string]string{"matched_claims": "2", "unmatched_lines": "1", "deviations": "1", "total_paid": "$391.05"} {
			m := regexp.MustCompile(`data-field="` + field + `">([^<]*)<`).FindStringSubmatch(body)
			if m == nil || m[1] != want {
				t.Errorf("summary %s = %v, want %s", field, m, want)
			}
		}
		if !strings.Contains(body, `<table id="upload-deviations">`) || !strings.Contains(body, "claim_balance") {
			t.Error("the deviation is not listed")
		}
		// Invalid content: billing's field violation, in plain words.
		code, body = e.upload("/billing/remittances"+rng, biller, csrf, "notes.txt", []byte("hello"))
		if code != http.StatusBadRequest || !strings.Contains(body, "Billing could not accept this.") ||
			!strings.Contains(body, "<li>The 835 file: no X12 segment in the file</li>") {
			t.Errorf("invalid file: %d %s", code, body)
		}
		// A biller of one clinic: billing refuses (an upload spans clinics).
		one := e.signIn("billing", clinicA)
		code, body = e.upload("/billing/remittances"+rng, one, csrfOf(t, e.page("/billing", one)), "era.835", []byte("ISA*00*~"))
		if code != http.StatusForbidden || !strings.Contains(body, "Billing did not allow this") {
			t.Errorf("one-clinic upload: %d %s", code, body)
		}
		// The one-clinic biller sees only that clinic's items (billing's own scoping).
		if rows := workRows(t, e.page("/billing"+rng, one), "queue-denial"); slices.Contains(rows, wOtherB) {
			t.Errorf("clinic B's denial shown to a clinic A biller: %v", rows)
		}
	})

	t.Run("operators read only", func(t *testing.T) {
		op := e.signIn("operator", "*")
		page := e.page("/billing"+rng, op)
		if strings.Contains(page, "<form class=\"inline\"") || strings.Contains(page, `id="upload-835"`) || !strings.Contains(page, `id="read-only"`) {
			t.Error("an operator sees action forms")
		}
		if got := workRows(t, page, "queue-holds"); !slices.Equal(got, []string{wHeld}) {
			t.Errorf("operator's holds = %v", got)
		}
		before := len(fake.sawUpdates())
		// Even with a valid token for the operator's session, the dashboard refuses.
		code, _, body := e.post("/billing/work-items/"+wAppealed+rng, op, url.Values{"action": {"won"}, "csrf": {csrfFor(op)}})
		if code != http.StatusForbidden || !strings.Contains(body, "Only billing staff and administrators") {
			t.Errorf("operator action: %d %s", code, body)
		}
		if len(fake.sawUpdates()) != before {
			t.Error("an operator's action reached billing")
		}
	})
}
