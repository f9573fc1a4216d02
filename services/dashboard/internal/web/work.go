package web

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/rpc"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"
	"github.com/trellis-health/trellis/services/dashboard/internal/kpi"
)

// The billing staff's work on the billing page: billing's work queues and top denial reasons,
// read from billing's RemittanceService with the signed-in user's own token (so billing applies
// its role and clinic rules), and the actions on them (UpdateWorkItem, UploadRemittance) as
// small POST forms protected by a per-session CSRF token.

// ActionRoles may use the action forms (billing refuses the others anyway).
var ActionRoles = []string{"billing", "admin"}

// MaxUploadBytes caps an uploaded 835: billing's UploadRemittance takes requests up to
// rpc.MaxUploadBytes (64 MiB; its other procedures 1 MiB), and the request carries the file name too.
const MaxUploadBytes = rpc.MaxUploadBytes - 4<<10

// billingTimeout bounds each call to billing; uploadTimeout an 835 upload, which billing parses
// and posts in the call (a 100,000-line file takes tens of seconds: docs/benchmarks.md).
const (
	billingTimeout = 10 * time.Second
	uploadTimeout  = 3 * time.Minute
)

// Queue is one work queue as shown.
type Queue struct {
	Name    string     `json:"queue"` // denial, underpayment, unmatched, holds
	Title   string     `json:"title"`
	Caption string     `json:"-"`
	Empty   string     `json:"-"`
	Items   []WorkItem `json:"items"`
}

// Queues shown, in order: billing's queue name, title, caption and the text of an empty table.
var Queues = []struct{ Name, Title, Caption, Empty string }{
	{"denial", "Denials", "Open denials: claims or lines the payer denied, with the CARC codes and the appeal's status", "No open denial."},
	{"underpayment", "Underpayments", "Open underpayments: lines paid less than the contract expects (the amount is the difference)", "No open underpayment."},
	{"holds", "Holds", "Charges on hold (consent, authorization, coverage, ...): released when the reason is fixed", "No charge is on hold."},
	{"unmatched", "Unmatched remittance lines", "Open unmatched lines: what a payer paid that matches no claim sent", "No open unmatched line."},
}

// WorkItem is one work item as shown (ids and amounts only, never names).
type WorkItem struct {
	ID           string `json:"id"`
	Queue        string `json:"queue"`
	ClinicID     string `json:"clinic_id"`
	PayerID      string `json:"payer_id"`
	ClaimID      string `json:"claim_id"`
	RemittanceID string `json:"remittance_id"`
	AmountCents  int64  `json:"amount_cents"`
	Amount       string `json:"amount"`
	Status       string `json:"status"`
	AppealStatus string `json:"appeal_status"`
	Reason       string `json:"reason"`
	Opened       string `json:"opened"`
	// Actions the user may take (empty for read-only users and held charges).
	Actions []Action `json:"-"`
	// CanWriteOff: the user may write the item off (an open denial or underpayment).
	CanWriteOff bool `json:"-"`
	// What is left to write off: the amount less the write-offs the dashboard has projected
	// (billing keeps the item's amount as the payer's decision put it).
	Left           string `json:"-"`
	WrittenOffText string `json:"-"` // "" when nothing was written off yet
}

// Action is one button of a work item's form.
type Action struct{ Name, Label string }

// WriteOffReasons are billing's write-off reason codes (WriteOffRequest.reason), with labels.
var WriteOffReasons = []struct{ Code, Label string }{
	{"small_balance", "Small balance"},
	{"timely_filing", "Timely filing limit passed"},
	{"non_covered", "Service not covered"},
	{"authorization", "No authorization"},
	{"uncollectible", "Uncollectible"},
	{"administrative", "Administrative"},
	{"charity_care", "Charity care"},
}

// writeOffLabel is a reason code's label (the code itself when billing sends a new one).
func writeOffLabel(code string) string {
	for _, r := range WriteOffReasons {
		if r.Code == code {
			return r.Label
		}
	}
	return strings.ReplaceAll(code, "_", " ")
}

// DenialReason is a CARC code with the denials that name it.
type DenialReason struct {
	Code        string `json:"code"`
	Denials     int    `json:"denials"`
	AmountCents int64  `json:"amount_cents"`
	Amount      string `json:"amount"`
}

// Work is what billing's queues say, for the billing page and its JSON.
type Work struct {
	Queues        []Queue        `json:"-"`
	DenialReasons []DenialReason `json:"denial_reasons"`
	// Error is billing's failure in plain words ("" when it answered).
	Error string `json:"billing_error,omitempty"`
}

// rawToken is the token the request is signed in with: the session cookie's, else a bearer
// token (as session reads it).
func rawToken(r *http.Request) string {
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		return c.Value
	}
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(v)
	}
	return ""
}

// csrfToken is the session's CSRF token: an HMAC keyed by the session's token, so it is bound to
// the session, needs no server state, and cannot be computed without the (HttpOnly) cookie.
func csrfToken(session string) string {
	m := hmac.New(sha256.New, []byte(session))
	m.Write([]byte("trellis-dashboard-csrf-v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func validCSRF(session, got string) bool {
	return session != "" && got != "" && hmac.Equal([]byte(csrfToken(session)), []byte(got))
}

// billingToken is the token forwarded to billing for the user: the issuer's access token after
// an OIDC sign-in (the dashboard's own session token means nothing to billing), else the dev
// token the session cookie holds.
func (h *Handler) billingToken(r *http.Request) string {
	if tok := h.upstreamToken(r); tok != "" {
		return tok
	}
	return rawToken(r)
}

// withToken is a billing request carrying tok as its bearer token.
func withToken[T any](tok string, msg *T) *connect.Request[T] {
	req := connect.NewRequest(msg)
	req.Header().Set("Authorization", "Bearer "+tok)
	return req
}

// billingProblem is a failure of billing, in plain words for the user.
type billingProblem struct {
	status int
	msg    string
	Fields []string // field violations: "field: what is wrong"
}

func (p *billingProblem) Error() string { return p.msg }

// explain turns billing's error into plain words; unexpected failures are logged (ids only).
func (h *Handler) explain(ctx context.Context, op string, err error) *billingProblem {
	if errors.Is(err, errNoBilling) {
		return &billingProblem{status: http.StatusServiceUnavailable, msg: "Billing is not configured for this dashboard (BILLING_URL)."}
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		h.cfg.Log.WarnContext(ctx, "billing call failed", "op", op, "error", err)
		return &billingProblem{status: http.StatusBadGateway, msg: "Billing cannot be reached right now; try again in a moment."}
	}
	switch ce.Code() {
	case connect.CodePermissionDenied:
		return &billingProblem{status: http.StatusForbidden,
			msg: "Billing did not allow this: your role or clinics do not permit it (uploading an 835 needs access to every clinic)."}
	case connect.CodeUnauthenticated:
		return &billingProblem{status: http.StatusUnauthorized, msg: "Billing did not accept your sign-in: sign out and sign in again."}
	case connect.CodeNotFound:
		return &billingProblem{status: http.StatusNotFound, msg: "Billing has no such work item among your clinics' items."}
	case connect.CodeInvalidArgument:
		p := &billingProblem{status: http.StatusBadRequest, msg: "Billing could not accept this."}
		for _, v := range rpc.Violations(err) {
			p.Fields = append(p.Fields, plainField(v.Field)+": "+v.Msg)
		}
		if len(p.Fields) == 0 && ce.Message() != "" {
			p.msg = "Billing could not accept this: " + ce.Message() + "."
		}
		return p
	case connect.CodeFailedPrecondition:
		return &billingProblem{status: http.StatusConflict, msg: "Billing could not make this change now: " + ce.Message() + "."}
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded, connect.CodeCanceled:
		return &billingProblem{status: http.StatusBadGateway, msg: "Billing cannot be reached right now; try again in a moment."}
	default:
		h.cfg.Log.WarnContext(ctx, "billing call failed", "op", op, "code", ce.Code().String())
		return &billingProblem{status: http.StatusBadGateway, msg: "Billing failed to do this; try again, and tell support if it keeps failing."}
	}
}

// plainField names a request field for people.
func plainField(f string) string {
	switch f {
	case "content":
		return "The 835 file"
	case "file_name":
		return "The file name"
	case "appeal_status":
		return "Appeal status"
	case "status":
		return "Status"
	case "id", "work_item_id":
		return "Work item"
	case "reason":
		return "Reason"
	case "amount_cents":
		return "Amount"
	case "note":
		return "Note"
	}
	return strings.ReplaceAll(f, "_", " ")
}

var errNoBilling = errors.New("billing client not configured")

// work reads the queues (open items; every denial for the reasons) in the user's clinics.
func (h *Handler) work(ctx context.Context, rq *request) Work {
	w := Work{DenialReasons: []DenialReason{}}
	if err := h.readWork(ctx, rq, &w); err != nil {
		w.Error = h.explain(ctx, "ListWorkItems", err).msg
		w.Queues = nil
	}
	return w
}

func (h *Handler) readWork(ctx context.Context, rq *request, w *Work) error {
	if h.cfg.Billing == nil {
		return errNoBilling
	}
	ctx, cancel := context.WithTimeout(ctx, billingTimeout)
	defer cancel()
	canAct := rq.user.HasRole(ActionRoles...)
	for _, q := range Queues {
		status := "open"
		if q.Name == "denial" {
			status = "" // resolved denials count among the reasons too
		}
		resp, err := h.cfg.Billing.ListWorkItems(ctx, withToken(h.billingToken(rq.r), &billingv1.ListWorkItemsRequest{Queue: q.Name, Status: status}))
		if err != nil {
			return err
		}
		out := Queue{Name: q.Name, Title: q.Title, Caption: q.Caption, Empty: q.Empty, Items: []WorkItem{}}
		for _, it := range resp.Msg.GetItems() {
			if q.Name == "denial" {
				addReasons(w, it, rq.rng)
			}
			if it.GetStatus() != "open" && q.Name != "holds" {
				continue
			}
			wi := WorkItem{ID: it.GetId(), Queue: q.Name, ClinicID: it.GetClinicId(), PayerID: it.GetPayerId(), ClaimID: it.GetClaimId(),
				RemittanceID: it.GetRemittanceId(), AmountCents: it.GetAmountCents(), Amount: kpi.Cents(it.GetAmountCents()),
				Status: it.GetStatus(), AppealStatus: it.GetAppealStatus(), Reason: it.GetReason(), Opened: when(it.GetCreatedAt().AsTime())}
			if it.GetCreatedAt() == nil {
				wi.Opened = kpi.Unknown
			}
			if canAct {
				wi.Actions = actions(wi)
				wi.CanWriteOff = q.Name == "denial" || q.Name == "underpayment"
			}
			out.Items = append(out.Items, wi)
		}
		w.Queues = append(w.Queues, out)
	}
	if canAct {
		h.leftToWriteOff(ctx, w)
	}
	slices.SortFunc(w.DenialReasons, func(a, b DenialReason) int {
		if a.Denials != b.Denials {
			return b.Denials - a.Denials
		}
		if a.AmountCents != b.AmountCents {
			if a.AmountCents > b.AmountCents {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Code, b.Code)
	})
	for i := range w.DenialReasons {
		w.DenialReasons[i].Amount = kpi.Cents(w.DenialReasons[i].AmountCents)
	}
	return nil
}

// leftToWriteOff fills in what is left on the items that can be written off, from the
// write-offs projected (BalanceWrittenOff); without them, the whole amount.
func (h *Handler) leftToWriteOff(ctx context.Context, w *Work) {
	var ids []string
	for _, q := range w.Queues {
		for _, it := range q.Items {
			if it.CanWriteOff {
				ids = append(ids, it.ID)
			}
		}
	}
	done, err := h.store.WrittenOff(ctx, ids)
	if err != nil {
		h.cfg.Log.WarnContext(ctx, "dashboard: write-offs per item not read", "error", err)
	}
	for qi := range w.Queues {
		for i := range w.Queues[qi].Items {
			it := &w.Queues[qi].Items[i]
			if !it.CanWriteOff {
				continue
			}
			it.Left = kpi.Cents(max(it.AmountCents-done[it.ID], 0))
			if done[it.ID] > 0 {
				it.WrittenOffText = kpi.Cents(done[it.ID])
			}
		}
	}
}

// addReasons counts a denial opened in the range (UTC date) under each CARC code it names.
func addReasons(w *Work, it *billingv1.WorkItem, rng kpi.Range) {
	if it.GetCreatedAt() == nil {
		return
	}
	d := it.GetCreatedAt().AsTime().UTC().Truncate(24 * time.Hour)
	if d.Before(rng.From) || d.After(rng.To) {
		return
	}
	codes := strings.Fields(it.GetReason())
	if len(codes) == 0 {
		codes = []string{"unspecified"}
	}
	for _, c := range codes {
		i := slices.IndexFunc(w.DenialReasons, func(r DenialReason) bool { return r.Code == c })
		if i < 0 {
			w.DenialReasons = append(w.DenialReasons, DenialReason{Code: c})
			i = len(w.DenialReasons) - 1
		}
		w.DenialReasons[i].Denials++
		w.DenialReasons[i].AmountCents += it.GetAmountCents()
	}
}

// actions are the buttons a work item offers: a denial's appeal moves (none -> appealed -> won
// or lost) and Resolve; Resolve for underpayments and unmatched lines; nothing for a held charge
// (it is released when its reason is fixed; billing has no action on it).
func actions(w WorkItem) []Action {
	var out []Action
	switch w.Queue {
	case "holds":
		return nil
	case "denial":
		switch w.AppealStatus {
		case "", "none":
			out = append(out, Action{"appealed", "Mark appealed"})
		case "appealed":
			out = append(out, Action{"won", "Won"}, Action{"lost", "Lost"})
		}
	}
	return append(out, Action{"resolve", "Resolve"})
}

// workView is the billing page's view data.
type workView struct {
	Billing
	Stages  any
	Chart   Chart
	Work    Work
	CanAct  bool
	CSRF    string
	Query   string
	Notice  string
	Problem *billingProblem
	// The rates' rows: names in order and labels.
	RateNames  []string
	RateLabels map[string]string
	Upload     *UploadSummary
	// The write-off form's reasons, and a fresh idempotency key per page (a form sent twice
	// writes off once).
	WriteOffReasons any
	WriteOffKey     string
}

// UploadSummary is what posting an uploaded 835 did, as shown.
type UploadSummary struct {
	FileName       string
	RemittanceID   string
	Duplicate      bool
	Payer          string
	Claims         int32
	ServiceLines   int32
	TotalPaid      string
	MatchedClaims  int32
	UnmatchedLines int32
	WorkItems      int32
	Deviations     []*billingv1.RemittanceDeviation
}

// notices are the messages a redirect after an action names (?done=...).
var notices = map[string]string{
	"appealed": "The denial is marked appealed.",
	"won":      "The appeal is marked won.",
	"lost":     "The appeal is marked lost.",
	"resolve":  "The work item is resolved.",
}

// action wraps a POST: signed in (else to /signin), the right role, a valid CSRF token.
func (h *Handler) action(fn func(w http.ResponseWriter, rq *request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, ok := h.session(r)
		if !ok {
			http.Redirect(w, r, "/signin?next="+url.QueryEscape("/billing"), http.StatusSeeOther)
			return
		}
		r = withUser(r, user)
		rq, err := h.newRequest(r, user)
		if err != nil {
			h.fail(w, r, view{User: user}, err)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxUploadBytes+64<<10)
		if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
			err = r.ParseMultipartForm(MaxUploadBytes + 64<<10)
		} else {
			err = r.ParseForm()
		}
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			h.billingPage(w, rq, http.StatusRequestEntityTooLarge, "", &billingProblem{msg: fmt.Sprintf(
				"The file is too large: billing takes 835 files of at most %d KB.", MaxUploadBytes>>10)}, nil)
			return
		case err != nil:
			h.billingPage(w, rq, http.StatusBadRequest, "", &billingProblem{msg: "The form could not be read; reload the page and try again."}, nil)
			return
		case !validCSRF(rawToken(r), r.PostFormValue("csrf")):
			h.billingPage(w, rq, http.StatusForbidden, "", &billingProblem{
				msg: "This form has expired or did not come from this dashboard: nothing was changed. Reload the page and try again."}, nil)
			return
		case !user.HasRole(ActionRoles...):
			h.billingPage(w, rq, http.StatusForbidden, "", &billingProblem{
				msg: "Only billing staff and administrators can act on work items or upload remittances."}, nil)
			return
		}
		fn(w, rq)
	})
}

// updateWorkItem is POST /billing/work-items/{id}: action appealed, won, lost or resolve.
func (h *Handler) updateWorkItem(w http.ResponseWriter, rq *request) {
	act := rq.r.PostFormValue("action")
	msg := &billingv1.UpdateWorkItemRequest{Id: rq.r.PathValue("id")}
	switch act {
	case "appealed", "won", "lost":
		msg.AppealStatus = act
	case "resolve":
		msg.Status = "resolved"
	default:
		h.billingPage(w, rq, http.StatusBadRequest, "", &billingProblem{msg: "Choose one of the work item's buttons."}, nil)
		return
	}
	if h.cfg.Billing == nil {
		h.billingPage(w, rq, http.StatusServiceUnavailable, "", h.explain(rq.r.Context(), "UpdateWorkItem", errNoBilling), nil)
		return
	}
	ctx, cancel := context.WithTimeout(rq.r.Context(), billingTimeout)
	defer cancel()
	if _, err := h.cfg.Billing.UpdateWorkItem(ctx, withToken(h.billingToken(rq.r), msg)); err != nil {
		p := h.explain(rq.r.Context(), "UpdateWorkItem", err)
		h.billingPage(w, rq, p.status, "", p, nil)
		return
	}
	q := url.Values{"from": {rq.rng.From.Format(time.DateOnly)}, "to": {rq.rng.To.Format(time.DateOnly)}, "done": {act}}
	http.Redirect(w, rq.r, "/billing?"+q.Encode()+"#work", http.StatusSeeOther)
}

// uploadRemittance is POST /billing/remittances (multipart, the file in "file").
func (h *Handler) uploadRemittance(w http.ResponseWriter, rq *request) {
	f, hdr, err := rq.r.FormFile("file")
	if err != nil {
		h.billingPage(w, rq, http.StatusBadRequest, "", &billingProblem{msg: "Choose an 835 file to upload."}, nil)
		return
	}
	defer f.Close()
	content, err := io.ReadAll(io.LimitReader(f, MaxUploadBytes+1))
	switch {
	case err != nil:
		h.billingPage(w, rq, http.StatusBadRequest, "", &billingProblem{msg: "The file could not be read; try again."}, nil)
		return
	case len(content) > MaxUploadBytes:
		h.billingPage(w, rq, http.StatusRequestEntityTooLarge, "", &billingProblem{msg: fmt.Sprintf(
			"The file is too large: billing takes 835 files of at most %d KB.", MaxUploadBytes>>10)}, nil)
		return
	}
	if h.cfg.Billing == nil {
		h.billingPage(w, rq, http.StatusServiceUnavailable, "", h.explain(rq.r.Context(), "UploadRemittance", errNoBilling), nil)
		return
	}
	name := hdr.Filename
	if len(name) > 255 {
		name = name[:255]
	}
	ctx, cancel := context.WithTimeout(rq.r.Context(), uploadTimeout)
	defer cancel()
	resp, err := h.cfg.Billing.UploadRemittance(ctx, withToken(h.billingToken(rq.r), &billingv1.UploadRemittanceRequest{Content: content, FileName: name}))
	if err != nil {
		p := h.explain(rq.r.Context(), "UploadRemittance", err)
		h.billingPage(w, rq, p.status, "", p, nil)
		return
	}
	s := resp.Msg.GetSummary()
	sum := &UploadSummary{FileName: cmp.Or(s.GetFileName(), name), RemittanceID: s.GetRemittanceId(), Duplicate: s.GetDuplicate(),
		Payer: s.GetPayer(), Claims: s.GetClaims(), ServiceLines: s.GetServiceLines(), TotalPaid: kpi.Cents(s.GetTotalPaidCents()),
		MatchedClaims: s.GetMatchedClaims(), UnmatchedLines: s.GetUnmatchedLines(), WorkItems: s.GetWorkItems(), Deviations: s.GetDeviations()}
	h.billingPage(w, rq, http.StatusOK, "", nil, sum)
}

// billingPage renders the billing page with a notice, a problem or an upload's summary.
func (h *Handler) billingPage(w http.ResponseWriter, rq *request, status int, notice string, p *billingProblem, up *UploadSummary) {
	v, err := h.billing(rq.r.Context(), rq)
	v.User, v.CSRF = rq.user, csrfToken(rawToken(rq.r))
	if v.Clinics == nil {
		v.Clinics, _ = h.store.Clinics(rq.r.Context(), rq.scope)
	}
	v.From, v.To = rq.rng.From.Format(time.DateOnly), rq.rng.To.Format(time.DateOnly)
	v.Query = url.Values{"from": {v.From}, "to": {v.To}}.Encode()
	if err != nil {
		h.fail(w, rq.r, v, err)
		return
	}
	if d, ok := v.Data.(workView); ok {
		if notice != "" {
			d.Notice = notice
		}
		d.Problem, d.Upload = p, up
		v.Data = d
	}
	h.render(w, v.Page, status, v)
}

// canAct says whether the user sees the action forms.
func canAct(u *auth.Principal) bool { return u != nil && u.HasRole(ActionRoles...) }

// registerWork mounts the billing actions.
func (h *Handler) registerWork(handle func(pattern string, h http.Handler)) {
	handle("POST /billing/work-items/{id}", h.action(h.updateWorkItem))
	handle("POST /billing/remittances", h.action(h.uploadRemittance))
	handle("POST /billing/work-items/{id}/write-off", h.action(h.writeOff))
}

// writeOff is POST /billing/work-items/{id}/write-off: reason (a WriteOffReasons code), amount
// (dollars, empty: all that is left) and key (the form's idempotency key). It calls billing's
// WriteOff and redirects back saying what was written off and whether the item is resolved.
func (h *Handler) writeOff(w http.ResponseWriter, rq *request) {
	reason := rq.r.PostFormValue("reason")
	if !slices.ContainsFunc(WriteOffReasons, func(r struct{ Code, Label string }) bool { return r.Code == reason }) {
		h.billingPage(w, rq, http.StatusBadRequest, "", &billingProblem{msg: "Nothing was written off.",
			Fields: []string{"Reason: choose one of the listed reasons"}}, nil)
		return
	}
	var cents int64
	if a := strings.TrimSpace(rq.r.PostFormValue("amount")); a != "" {
		var err error
		if cents, err = kpi.ParseDollars(a); err == nil && cents == 0 {
			err = errors.New("more than $0.00, or leave it empty to write off all that is left")
		}
		if err != nil {
			h.billingPage(w, rq, http.StatusBadRequest, "", &billingProblem{msg: "Nothing was written off.",
				Fields: []string{"Amount: " + err.Error()}}, nil)
			return
		}
	}
	key := rq.r.PostFormValue("key")
	if len(key) > 200 {
		key = key[:200]
	}
	if h.cfg.Billing == nil {
		h.billingPage(w, rq, http.StatusServiceUnavailable, "", h.explain(rq.r.Context(), "WriteOff", errNoBilling), nil)
		return
	}
	ctx, cancel := context.WithTimeout(rq.r.Context(), billingTimeout)
	defer cancel()
	resp, err := h.cfg.Billing.WriteOff(ctx, withToken(h.billingToken(rq.r), &billingv1.WriteOffRequest{
		WorkItemId: rq.r.PathValue("id"), Reason: reason, AmountCents: cents, IdempotencyKey: key}))
	if err != nil {
		p := h.explain(rq.r.Context(), "WriteOff", err)
		h.billingPage(w, rq, p.status, "", p, nil)
		return
	}
	q := url.Values{"from": {rq.rng.From.Format(time.DateOnly)}, "to": {rq.rng.To.Format(time.DateOnly)}, "done": {"written_off"},
		"amount": {strconv.FormatInt(resp.Msg.GetWriteOff().GetAmountCents(), 10)}, "reason": {reason}, "item": {resp.Msg.GetItem().GetStatus()}}
	http.Redirect(w, rq.r, "/billing?"+q.Encode()+"#work", http.StatusSeeOther)
}

// writeOffNotice says what a write-off did, from the redirect's parameters (?done=written_off).
func writeOffNotice(q url.Values) string {
	cents, err := strconv.ParseInt(q.Get("amount"), 10, 64)
	if err != nil || cents < 0 {
		return "The balance is written off."
	}
	msg := "Wrote off " + kpi.Cents(cents) + " (" + strings.ToLower(writeOffLabel(q.Get("reason"))) + ")."
	switch q.Get("item") {
	case "resolved":
		msg += " Nothing is left on the item: it is resolved."
	case "open":
		msg += " The item stays open for what is left."
	}
	return msg
}

// BillingClient is the part of billing's RemittanceService the dashboard calls.
type BillingClient interface {
	ListWorkItems(context.Context, *connect.Request[billingv1.ListWorkItemsRequest]) (*connect.Response[billingv1.ListWorkItemsResponse], error)
	WriteOff(context.Context, *connect.Request[billingv1.WriteOffRequest]) (*connect.Response[billingv1.WriteOffResponse], error)
	UpdateWorkItem(context.Context, *connect.Request[billingv1.UpdateWorkItemRequest]) (*connect.Response[billingv1.UpdateWorkItemResponse], error)
	UploadRemittance(context.Context, *connect.Request[billingv1.UploadRemittanceRequest]) (*connect.Response[billingv1.UploadRemittanceResponse], error)
}

var _ BillingClient = billingv1connect.RemittanceServiceClient(nil)

// NewBillingClient returns a RemittanceService client for billing at baseURL ("" for none).
func NewBillingClient(baseURL string, hc *http.Client) BillingClient {
	if baseURL == "" {
		return nil
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return billingv1connect.NewRemittanceServiceClient(hc, strings.TrimRight(baseURL, "/"))
}
