package rpc

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/trellis-health/trellis/pkg/audit"
	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
)

// The PHI audit trail of Connect calls (pkg/audit). Two interceptors share one record per call:
//
//   - auditCalls, outside authentication, sees every call, refused or not: after it returns, it
//     writes one row when the request or the response names a patient or a referral (a field
//     patient_id(s) or referral_id(s), the id of a Patient or Referral message, or a typed
//     reference {kind: "patient" or "referral", id}, at any depth, in lists and maps too), with the caller, the procedure, read or change, and the outcome
//     ("ok" or the Connect code). A call refused before the handler (unauthenticated,
//     permission_denied, invalid_argument) is recorded with what its request names. The
//     request's other records of a patient (episode_id, consent_id, ... : recordFields) are
//     kept on the row, and a refused call naming only such a record is recorded as well.
//   - auditAllowed, after authentication and validation, notes the caller and, for a change
//     whose request names a patient, a referral or another record of a patient, writes a
//     "started" row before the handler
//     runs: when that row cannot be written the change is refused (unavailable) and nothing is
//     changed (fail closed).
//
// When the final row cannot be written, a successful call answers unavailable instead of its
// result: a read discloses nothing that is not on record, and a change (made, or replayed by its
// idempotency key on a retry) is reported as failed rather than silently unaudited. A call that
// already failed keeps its error. Auditing is on once the service calls UseAudit.

// auditor is the server's audit state (set by NewServer and UseAudit, read by the interceptors).
type auditor struct {
	log      *audit.Log
	verifier *auth.Verifier
	slog     *slog.Logger
	rows     *prometheus.CounterVec // trellis_audit_rows_total{access, outcome}
	failures prometheus.Counter     // trellis_audit_write_failures_total
}

// UseAudit records every call naming a patient in l, and serves the compliance officer's query
// API (GET /audit, GET /audit/verify; see audit.Handler) on the server's port. Call it before
// serving.
func (s *Server) UseAudit(l *audit.Log) {
	s.audit.log, s.audit.slog = l, s.log
	s.audit.rows = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trellis_audit_rows_total",
		Help: "Calls recorded in the PHI audit trail, by access (read, change) and outcome (ok, started, a Connect code)."},
		[]string{"access", "outcome"})
	s.audit.failures = prometheus.NewCounter(prometheus.CounterOpts{Name: "trellis_audit_write_failures_total",
		Help: "Calls whose audit row could not be written (refused, or answered unavailable): alert on any."})
	if s.metrics != nil {
		reg := prometheus.WrapRegistererWith(prometheus.Labels{"service": l.Service()}, s.metrics.Registry)
		for _, c := range []prometheus.Collector{s.audit.rows, s.audit.failures} {
			if err := reg.Register(c); err != nil {
				s.log.Warn("audit metric not registered", "error", err)
			}
		}
	}
	h := audit.Handler(l, s.audit.verifier, s.log)
	s.mux.Handle("GET /audit", h)
	s.mux.Handle("GET /audit/verify", h)
}

type auditCallKey struct{}

// auditCall is what the inner interceptor learns for the outer one.
type auditCall struct {
	principal *auth.Principal
}

// readPrefixes are the method-name prefixes of procedures that only read.
var readPrefixes = []string{"Get", "List", "Download", "Preview", "Estimate", "Compare", "Search", "Check", "Inspect"}

// accessOf classifies a procedure ("/pkg.Service/Method") by its method name.
func accessOf(procedure string) audit.Access {
	method := procedure[strings.LastIndexByte(procedure, '/')+1:]
	for _, p := range readPrefixes {
		if strings.HasPrefix(method, p) {
			return audit.Read
		}
	}
	return audit.Change
}

// maxIDsPerCall bounds what one call records (pkg/audit writes rows of 100 ids).
const maxIDsPerCall = 1000

// named are the patient and referral ids a message names, and, in a request, the other records
// of a patient it names ("episode_id=<uuid>").
type named struct {
	patients, referrals, records []string
	request                      bool // collect records too
}

func (n *named) empty() bool { return len(n.patients) == 0 && len(n.referrals) == 0 }

// recordFields are the request fields naming one patient's record (not clinic configuration,
// not batches of many patients such as a remittance or a claim file, and never member_id).
var recordFields = map[protoreflect.Name]bool{
	"episode_id": true, "consent_id": true, "coverage_id": true, "assessment_id": true, "enrollment_id": true,
	"appointment_id": true, "account_id": true, "claim_id": true, "charge_id": true, "authorization_id": true,
	"work_item_id": true, "write_off_id": true, "statement_id": true, "estimate_id": true, "disclosure_id": true,
	"message_id": true,
}

func (n *named) add(kind string, id string) {
	if id == "" {
		return
	}
	switch kind {
	case "patient":
		if len(n.patients) < maxIDsPerCall {
			n.patients = append(n.patients, id)
		}
	case "referral":
		if len(n.referrals) < maxIDsPerCall {
			n.referrals = append(n.referrals, id)
		}
	}
}

// idKind says whether field of message msg holds patient or referral ids.
func idKind(msg protoreflect.Name, field protoreflect.Name) string {
	switch field {
	case "patient_id", "patient_ids":
		return "patient"
	case "referral_id", "referral_ids":
		return "referral"
	case "id":
		switch msg {
		case "Patient":
			return "patient"
		case "Referral":
			return "referral"
		}
	}
	return ""
}

// namedIn collects the ids m names, at any depth.
func namedIn(m any, n *named) {
	if pm, ok := m.(proto.Message); ok && pm != nil {
		collect(pm.ProtoReflect(), n, 0)
	}
}

func collect(m protoreflect.Message, n *named, depth int) {
	if !m.IsValid() || depth > 32 {
		return
	}
	msg := m.Descriptor().Name()
	// A typed reference {kind: "patient" | "referral", id} (intake's PossibleDuplicate).
	fields := m.Descriptor().Fields()
	if kf, idf := fields.ByName("kind"), fields.ByName("id"); kf != nil && idf != nil &&
		kf.Kind() == protoreflect.StringKind && idf.Kind() == protoreflect.StringKind && !kf.IsList() && !idf.IsList() {
		if kind := m.Get(kf).String(); kind == "patient" || kind == "referral" {
			n.add(kind, m.Get(idf).String())
		}
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					collect(mv.Message(), n, depth+1)
					return true
				})
			}
		case fd.Kind() == protoreflect.StringKind:
			if n.request && recordFields[fd.Name()] && !fd.IsList() && len(n.records) < audit.MaxIDsPerRow {
				n.records = append(n.records, string(fd.Name())+"="+v.String())
			}
			if kind := idKind(msg, fd.Name()); kind != "" {
				if fd.IsList() {
					for i := range v.List().Len() {
						n.add(kind, v.List().Get(i).String())
					}
				} else {
					n.add(kind, v.String())
				}
			}
		case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
			if fd.IsList() {
				for i := range v.List().Len() {
					collect(v.List().Get(i).Message(), n, depth+1)
				}
			} else {
				collect(v.Message(), n, depth+1)
			}
		}
		return true
	})
}

func (a *auditor) entry(ctx context.Context, req connect.AnyRequest, p *auth.Principal, n *named, outcome string) audit.Entry {
	_, requestID := bus.CauseFrom(ctx)
	e := audit.Entry{RequestID: requestID, Procedure: req.Spec().Procedure, Access: accessOf(req.Spec().Procedure),
		Outcome: outcome, PatientIDs: n.patients, ReferralIDs: n.referrals, RecordIDs: n.records, ClientIP: audit.ClientIP(req.Peer().Addr),
		ForwardedFor: req.Header().Get("X-Forwarded-For"), UserAgent: req.Header().Get("User-Agent")}
	if p != nil {
		e.Subject, e.Roles = p.Subject, p.Roles
	}
	return e
}

// write appends e; Append writes it even when the caller has gone (the access happened),
// within its own bound.
func (a *auditor) write(ctx context.Context, e audit.Entry) error {
	err := a.log.Append(ctx, e)
	if err == nil {
		a.rows.WithLabelValues(string(e.Access), e.Outcome).Inc()
	} else {
		a.failures.Inc()
		a.slog.ErrorContext(ctx, "audit: a call could not be recorded in the audit trail",
			"procedure", e.Procedure, "outcome", e.Outcome, "error", err)
	}
	return err
}

// auditCalls is the outer interceptor (see above). It keeps v to name the caller of a call
// refused after its token was verified.
func (s *Server) auditCalls(v *auth.Verifier) connect.UnaryInterceptorFunc {
	a := &s.audit
	a.verifier = v
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if a.log == nil {
				return next(ctx, req)
			}
			call := &auditCall{}
			resp, err := next(context.WithValue(ctx, auditCallKey{}, call), req)
			n := named{request: true}
			namedIn(req.Any(), &n)
			n.request = false
			if err == nil && resp != nil {
				namedIn(resp.Any(), &n)
			}
			// A refused call naming a patient only through another record is recorded too.
			if n.empty() && (err == nil || len(n.records) == 0) {
				return resp, err
			}
			outcome := audit.OutcomeOK
			if err != nil {
				outcome = connect.CodeOf(err).String()
			}
			if outcome == connect.CodeUnauthenticated.String() {
				// Anyone can send these: one row each at most, so they cannot fill the trail faster.
				n.patients = n.patients[:min(len(n.patients), audit.MaxIDsPerRow)]
				n.referrals = n.referrals[:min(len(n.referrals), audit.MaxIDsPerRow)]
			}
			p := call.principal
			if p == nil && outcome != connect.CodeUnauthenticated.String() {
				// Refused by the role check or validation: the token did verify.
				if raw, ok := strings.CutPrefix(req.Header().Get("Authorization"), "Bearer "); ok && raw != "" {
					p, _ = a.verifier.Verify(ctx, raw)
				}
			}
			if werr := a.write(ctx, a.entry(ctx, req, p, &n, outcome)); werr != nil && err == nil {
				return nil, connect.NewError(connect.CodeUnavailable, errors.New(
					"the call could not be recorded in the audit trail, so its result is withheld; "+
						"a change may have been made: retry with the same idempotency key"))
			}
			return resp, err
		}
	}
}

// auditAllowed is the inner interceptor (see above).
func (s *Server) auditAllowed() connect.UnaryInterceptorFunc {
	a := &s.audit
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			call, _ := ctx.Value(auditCallKey{}).(*auditCall)
			if call == nil || a.log == nil {
				return next(ctx, req)
			}
			call.principal = auth.PrincipalFrom(ctx)
			if accessOf(req.Spec().Procedure) == audit.Change {
				n := named{request: true}
				namedIn(req.Any(), &n)
				if !n.empty() || len(n.records) > 0 {
					if err := a.write(ctx, a.entry(ctx, req, call.principal, &n, audit.OutcomeStarted)); err != nil {
						return nil, connect.NewError(connect.CodeUnavailable, errors.New(
							"the change could not be recorded in the audit trail, so it was not made; try again"))
					}
				}
			}
			return next(ctx, req)
		}
	}
}
