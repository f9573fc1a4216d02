package audit

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/trellis-health/trellis/pkg/auth"
)

// QueryProcedure is the procedure recorded for a query of the audit trail itself.
const QueryProcedure = "GET /audit"

// Handler serves the compliance officer's API on the service's port:
//
//	GET /audit?patient_id=&referral_id=&record_id=&from=&to=&after=&limit=
//	    {"rows": [...], "next_after": seq}: matching rows, oldest first (from, to: RFC 3339;
//	    after: the next_after of the previous page; limit: 1-1000, default 100)
//	GET /audit/verify
//	    {"rows", "head", "ok", "broken_at", "reason"}: the whole chain checked
//
// The caller needs a bearer token with the role compliance_officer or admin for every clinic
// ("*": rows are not per clinic). Every query of /audit is itself recorded in the trail (with
// the patient or referral it names), allowed or not.
func Handler(l *Log, v *auth.Verifier, log *slog.Logger) http.Handler {
	h := &handler{l: l, v: v, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /audit", h.query)
	mux.HandleFunc("GET /audit/verify", h.verify)
	return mux
}

type handler struct {
	l   *Log
	v   *auth.Verifier
	log *slog.Logger
}

type apiError struct {
	Code  string `json:"code"`
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
	Rule  string `json:"rule,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// authorize returns the caller, or writes the refusal and returns the outcome code.
func (h *handler) authorize(w http.ResponseWriter, r *http.Request) (*auth.Principal, string) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || raw == "" {
		writeJSON(w, http.StatusUnauthorized, apiError{Code: "unauthenticated", Error: "missing bearer token"})
		return nil, "unauthenticated"
	}
	p, err := h.v.Verify(r.Context(), raw)
	if err != nil {
		writeJSON(w, http.StatusUnauthorized, apiError{Code: "unauthenticated", Error: "invalid or expired token"})
		return nil, "unauthenticated"
	}
	if !p.HasRole(auth.RoleComplianceOfficer, auth.RoleAdmin) || !slices.Contains(p.Clinics, auth.AllClinics) {
		writeJSON(w, http.StatusForbidden, apiError{Code: "permission_denied",
			Error: "the audit trail is for the roles compliance_officer and admin, with every clinic (\"*\")"})
		return p, "permission_denied"
	}
	return p, ""
}

func (h *handler) verify(w http.ResponseWriter, r *http.Request) {
	if _, refused := h.authorize(w, r); refused != "" {
		return
	}
	v, err := h.l.Verify(r.Context())
	if err != nil {
		h.log.ErrorContext(r.Context(), "audit: verify failed", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, apiError{Code: "unavailable", Error: "the audit trail could not be read"})
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *handler) query(w http.ResponseWriter, r *http.Request) {
	p, refused := h.authorize(w, r)
	q := r.URL.Query()
	f, bad := parseFilter(q)
	e := Entry{Service: h.l.service, RequestID: uuid.NewString(), Procedure: QueryProcedure, Access: Read,
		ClientIP: ClientIP(r.RemoteAddr), ForwardedFor: r.Header.Get("X-Forwarded-For"), UserAgent: r.UserAgent()}
	if id := q.Get("patient_id"); id != "" {
		e.PatientIDs = []string{id}
	}
	if id := q.Get("referral_id"); id != "" {
		e.ReferralIDs = []string{id}
	}
	if id := q.Get("record_id"); id != "" {
		e.RecordIDs = []string{"record_id=" + id}
	}
	if p != nil {
		e.Subject, e.Roles = p.Subject, p.Roles
	}
	record := func(outcome string) bool {
		e.Outcome = outcome
		if err := h.l.Append(r.Context(), e); err != nil {
			h.log.ErrorContext(r.Context(), "audit: a query of the audit trail could not be recorded", "error", err)
			return false
		}
		return true
	}
	if refused != "" {
		record(refused) // the refusal is already answered
		return
	}
	if bad != nil {
		record("invalid_argument")
		writeJSON(w, http.StatusBadRequest, bad)
		return
	}
	if !record(OutcomeOK) {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Code: "unavailable",
			Error: "the query could not be recorded in the audit trail, so it is not answered; try again"})
		return
	}
	rows, err := h.l.Query(r.Context(), f)
	if err != nil {
		h.log.ErrorContext(r.Context(), "audit: query failed", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, apiError{Code: "unavailable", Error: "the audit trail could not be read"})
		return
	}
	next := f.AfterSeq
	if len(rows) > 0 {
		next = rows[len(rows)-1].Seq
	}
	if rows == nil {
		rows = []Row{}
	}
	writeJSON(w, http.StatusOK, struct {
		Rows      []Row `json:"rows"`
		NextAfter int64 `json:"next_after"`
	}{rows, next})
}

// parseFilter reads the query parameters; a bad one is named with its rule.
func parseFilter(q map[string][]string) (Filter, *apiError) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	bad := func(field, rule, msg string) *apiError {
		return &apiError{Code: "invalid_argument", Field: field, Rule: rule, Error: field + ": " + msg + " [" + rule + "]"}
	}
	var f Filter
	for _, k := range []string{"patient_id", "referral_id", "record_id"} {
		v := get(k)
		if v == "" {
			continue
		}
		if _, err := uuid.Parse(v); err != nil || len(v) != 36 {
			return f, bad(k, "string.uuid", "value must be a UUID")
		}
		switch k {
		case "patient_id":
			f.PatientID = v
		case "referral_id":
			f.ReferralID = v
		default:
			f.RecordID = strings.ToLower(v)
		}
	}
	for _, k := range []string{"from", "to"} {
		v := get(k)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return f, bad(k, "timestamp.rfc3339", "value must be an RFC 3339 time such as 2026-11-29T00:00:00Z")
		}
		if k == "from" {
			f.From = t
		} else {
			f.To = t
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		return f, bad("to", "timestamp.after_from", "value must be after from")
	}
	if v := get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return f, bad("after", "int64.gte_zero", "value must be a whole number, 0 or more")
		}
		f.AfterSeq = n
	}
	if v := get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return f, bad("limit", "int32.range", "value must be between 1 and 1000")
		}
		f.Limit = n
	}
	return f, nil
}

// ClientIP is the host of a "host:port" peer address (or the address as is).
func ClientIP(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
