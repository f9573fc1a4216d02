package rpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/audit"
	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/rpc"
	"github.com/trellis-health/trellis/pkg/telemetry"
	"github.com/trellis-health/trellis/pkg/testkit"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/intake/v1/intakev1connect"
)

// auditIntake answers a few IntakeService calls that name patients in their requests or
// responses, and counts the calls that reached it.
type auditIntake struct {
	intakev1connect.UnimplementedIntakeServiceHandler
	calls     atomic.Int32
	referrals []*intakev1.Referral
	admitted  string
}

func (s *auditIntake) ListConsents(context.Context, *connect.Request[intakev1.ListConsentsRequest]) (*connect.Response[intakev1.ListConsentsResponse], error) {
	s.calls.Add(1)
	return connect.NewResponse(&intakev1.ListConsentsResponse{}), nil
}

func (s *auditIntake) GrantConsent(_ context.Context, req *connect.Request[intakev1.GrantConsentRequest]) (*connect.Response[intakev1.GrantConsentResponse], error) {
	s.calls.Add(1)
	if req.Msg.GetLanguage() == "es" {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("patient not found"))
	}
	return connect.NewResponse(&intakev1.GrantConsentResponse{Consent: &intakev1.Consent{PatientId: req.Msg.GetPatientId()}}), nil
}

func (s *auditIntake) RevokeConsent(_ context.Context, req *connect.Request[intakev1.RevokeConsentRequest]) (*connect.Response[intakev1.RevokeConsentResponse], error) {
	s.calls.Add(1)
	return connect.NewResponse(&intakev1.RevokeConsentResponse{Consent: &intakev1.Consent{ConsentId: req.Msg.GetConsentId(), PatientId: s.admitted}}), nil
}

func (s *auditIntake) AdmitPatient(context.Context, *connect.Request[intakev1.AdmitPatientRequest]) (*connect.Response[intakev1.AdmitPatientResponse], error) {
	s.calls.Add(1)
	return connect.NewResponse(&intakev1.AdmitPatientResponse{PatientId: s.admitted, EpisodeId: uuid.NewString()}), nil
}

func (s *auditIntake) ListReferrals(context.Context, *connect.Request[intakev1.ListReferralsRequest]) (*connect.Response[intakev1.ListReferralsResponse], error) {
	s.calls.Add(1)
	return connect.NewResponse(&intakev1.ListReferralsResponse{Referrals: s.referrals}), nil
}

func (s *auditIntake) ListCareLevels(context.Context, *connect.Request[intakev1.ListCareLevelsRequest]) (*connect.Response[intakev1.ListCareLevelsResponse], error) {
	s.calls.Add(1)
	return connect.NewResponse(&intakev1.ListCareLevelsResponse{}), nil
}

type auditHarness struct {
	url    string
	impl   *auditIntake
	pool   *pgxpool.Pool
	client intakev1connect.IntakeServiceClient
	http   *http.Client
}

var auditPolicy = rpc.Policy{
	intakev1connect.IntakeServiceListConsentsProcedure:   {"clinician", "admin"},
	intakev1connect.IntakeServiceGrantConsentProcedure:   {"intake_coordinator", "admin"},
	intakev1connect.IntakeServiceRevokeConsentProcedure:  {"intake_coordinator", "admin"},
	intakev1connect.IntakeServiceAdmitPatientProcedure:   {"intake_coordinator", "admin"},
	intakev1connect.IntakeServiceListReferralsProcedure:  {"intake_coordinator", "admin"},
	intakev1connect.IntakeServiceListCareLevelsProcedure: {"intake_coordinator", "admin"},
}

func startAudited(t *testing.T) *auditHarness {
	t.Helper()
	ctx := context.Background()
	pool := testkit.Pool(t, "intake")
	if err := audit.Migrate(ctx, pool, "intake", nil); err != nil {
		t.Fatal(err)
	}
	h := &auditHarness{impl: &auditIntake{admitted: uuid.NewString()}, pool: pool}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := rpc.NewServer(log, telemetry.NewMetrics("intake"), auth.NewDevVerifier(devKey, "trellis-dev", "trellis"), auditPolicy)
	if err != nil {
		t.Fatal(err)
	}
	srv.UseAudit(audit.New(pool, "intake"))
	srv.Handle(intakev1connect.NewIntakeServiceHandler(h.impl, srv.HandlerOptions()...))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.ServeListener(sctx, ln, 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	h.url = "http://" + ln.Addr().String()
	h.http = &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(h.http.CloseIdleConnections)
	h.client = intakev1connect.NewIntakeServiceClient(h.http, h.url)
	return h
}

func tokenFor(t *testing.T, subject string, clinics []string, roles ...string) string {
	t.Helper()
	tok, err := auth.MintDev(devKey, "trellis-dev", "trellis", subject, roles, clinics, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func withToken[T any](msg *T, bearer string) *connect.Request[T] {
	req := connect.NewRequest(msg)
	if bearer != "" {
		req.Header().Set("Authorization", "Bearer "+bearer)
	}
	req.Header().Set("User-Agent", "audit-test/1")
	return req
}

// rowsFor is every row naming patient, oldest first.
func (h *auditHarness) rowsFor(t *testing.T, patient string) []audit.Row {
	t.Helper()
	rows, err := audit.New(h.pool, "intake").Query(context.Background(), audit.Filter{PatientID: patient})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

type want struct {
	subject, procedure, outcome string
	access                      audit.Access
}

func check(t *testing.T, rows []audit.Row, wants ...want) {
	t.Helper()
	if len(rows) != len(wants) {
		t.Fatalf("%d rows, want %d: %+v", len(rows), len(wants), rows)
	}
	for i, w := range wants {
		r := rows[i]
		if r.Subject != w.subject || r.Procedure != w.procedure || r.Outcome != w.outcome || r.Access != w.access {
			t.Errorf("row %d: subject %q procedure %s outcome %s access %s, want %+v", i, r.Subject, r.Procedure, r.Outcome, r.Access, w)
		}
		if r.ClientIP != "127.0.0.1" || r.UserAgent != "audit-test/1" || r.RequestID == "" || r.Service != "intake" {
			t.Errorf("row %d: client %q agent %q request %q service %q", i, r.ClientIP, r.UserAgent, r.RequestID, r.Service)
		}
	}
}

func TestAuditInterceptorRecordsReadsChangesAndRefusals(t *testing.T) {
	ctx := context.Background()
	h := startAudited(t)
	clinics := []string{clinic}
	clinicianTok := tokenFor(t, "clinician-7", clinics, "clinician")
	coordTok := tokenFor(t, "coordinator-3", clinics, "intake_coordinator")
	listConsents := intakev1connect.IntakeServiceListConsentsProcedure
	grant := intakev1connect.IntakeServiceGrantConsentProcedure

	// A read.
	p1 := uuid.NewString()
	if _, err := h.client.ListConsents(ctx, withToken(&intakev1.ListConsentsRequest{PatientId: p1}, clinicianTok)); err != nil {
		t.Fatal(err)
	}
	rows := h.rowsFor(t, p1)
	check(t, rows, want{"clinician-7", listConsents, "ok", audit.Read})
	if !slices.Equal(rows[0].Roles, []string{"clinician"}) {
		t.Errorf("roles %v", rows[0].Roles)
	}

	// A change: a "started" row before the handler, then the outcome.
	p2 := uuid.NewString()
	grantReq := func(patient, language string) *intakev1.GrantConsentRequest {
		return &intakev1.GrantConsentRequest{PatientId: patient, Language: language, IdempotencyKey: "idem-" + uuid.NewString(),
			Scopes: []intakev1.ConsentScope{intakev1.ConsentScope_CONSENT_SCOPE_TREATMENT}}
	}
	if _, err := h.client.GrantConsent(ctx, withToken(grantReq(p2, ""), coordTok)); err != nil {
		t.Fatal(err)
	}
	check(t, h.rowsFor(t, p2), want{"coordinator-3", grant, "started", audit.Change}, want{"coordinator-3", grant, "ok", audit.Change})

	// A change the handler refuses (not_found) keeps its code.
	p3 := uuid.NewString()
	if _, err := h.client.GrantConsent(ctx, withToken(grantReq(p3, "es"), coordTok)); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("err %v", err)
	}
	check(t, h.rowsFor(t, p3), want{"coordinator-3", grant, "started", audit.Change}, want{"coordinator-3", grant, "not_found", audit.Change})

	// Refused before the handler: the role, validation, no token. No "started" row.
	before := h.impl.calls.Load()
	p4 := uuid.NewString()
	if _, err := h.client.GrantConsent(ctx, withToken(grantReq(p4, ""), clinicianTok)); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("err %v", err)
	}
	invalid := grantReq(p4, "")
	invalid.Scopes = nil
	if _, err := h.client.GrantConsent(ctx, withToken(invalid, coordTok)); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("err %v", err)
	}
	if _, err := h.client.ListConsents(ctx, withToken(&intakev1.ListConsentsRequest{PatientId: p4}, "")); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("err %v", err)
	}
	check(t, h.rowsFor(t, p4),
		want{"clinician-7", grant, "permission_denied", audit.Change},
		want{"coordinator-3", grant, "invalid_argument", audit.Change},
		want{"", listConsents, "unauthenticated", audit.Read})
	if h.impl.calls.Load() != before {
		t.Fatal("a refused call reached the handler")
	}

	// Patients named only in the response: an admission, and a list.
	if _, err := h.client.AdmitPatient(ctx, withToken(&intakev1.AdmitPatientRequest{
		GivenName: "Test", FamilyName: "Person", DateOfBirth: "1990-01-01", ContactEmail: "person@example.com",
		ClinicId: clinic, ProgramTrack: "adult-evening", StartDate: "2026-01-05", IdempotencyKey: "idem-key-0001",
	}, coordTok)); err != nil {
		t.Fatal(err)
	}
	check(t, h.rowsFor(t, h.impl.admitted), want{"coordinator-3", intakev1connect.IntakeServiceAdmitPatientProcedure, "ok", audit.Change})
	listed := uuid.NewString()
	h.impl.referrals = []*intakev1.Referral{{ReferralId: uuid.NewString()}, {ReferralId: uuid.NewString(), PatientId: listed}, {ReferralId: uuid.NewString()}}
	if _, err := h.client.ListReferrals(ctx, withToken(&intakev1.ListReferralsRequest{}, coordTok)); err != nil {
		t.Fatal(err)
	}
	rows = h.rowsFor(t, listed)
	check(t, rows, want{"coordinator-3", intakev1connect.IntakeServiceListReferralsProcedure, "ok", audit.Read})
	if len(rows[0].ReferralIDs) != 3 || rows[0].ReferralIDs[1] != h.impl.referrals[1].GetReferralId() {
		t.Errorf("referral ids %v", rows[0].ReferralIDs)
	}

	// A call naming no patient is not recorded; no row holds a name.
	var total, names int
	if _, err := h.client.ListCareLevels(ctx, withToken(&intakev1.ListCareLevelsRequest{}, coordTok)); err != nil {
		t.Fatal(err)
	}
	if err := h.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE procedure LIKE '%ListCareLevels'
		OR row_to_json(audit_log)::text ILIKE '%Person%' OR row_to_json(audit_log)::text ILIKE '%example.com%')
		FROM audit_log`).Scan(&total, &names); err != nil {
		t.Fatal(err)
	}
	if total != 10 || names != 0 {
		t.Fatalf("%d rows (want 10), %d with ListCareLevels or PHI", total, names)
	}
	if v, err := audit.New(h.pool, "intake").Verify(ctx); err != nil || !v.OK || v.Rows != 10 {
		t.Fatalf("verify %+v err %v", v, err)
	}
	m := h.metrics(t)
	for _, want := range []string{
		`trellis_audit_rows_total{access="change",outcome="started",service="intake"} 2`,
		`trellis_audit_rows_total{access="read",outcome="unauthenticated",service="intake"} 1`,
		`trellis_audit_rows_total{access="read",outcome="ok",service="intake"} 2`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// When the trail cannot be written, a change is not made and a read returns nothing.
func TestAuditFailsClosed(t *testing.T) {
	ctx := context.Background()
	h := startAudited(t)
	coordTok := tokenFor(t, "coordinator-3", []string{clinic}, "intake_coordinator", "clinician")
	if _, err := h.pool.Exec(ctx, "ALTER TABLE audit_log RENAME TO audit_log_away"); err != nil {
		t.Fatal(err)
	}
	before := h.impl.calls.Load()
	_, err := h.client.GrantConsent(ctx, withToken(&intakev1.GrantConsentRequest{PatientId: uuid.NewString(),
		IdempotencyKey: "idem-key-0002", Scopes: []intakev1.ConsentScope{intakev1.ConsentScope_CONSENT_SCOPE_TREATMENT}}, coordTok))
	if connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("change: err %v, want unavailable", err)
	}
	if h.impl.calls.Load() != before {
		t.Fatal("the change ran although its audit row could not be written")
	}
	resp, err := h.client.ListConsents(ctx, withToken(&intakev1.ListConsentsRequest{PatientId: uuid.NewString()}, coordTok))
	if connect.CodeOf(err) != connect.CodeUnavailable || resp != nil {
		t.Fatalf("read: resp %v err %v, want unavailable and no data", resp, err)
	}
	// Calls naming no patient do not depend on the trail.
	if _, err := h.client.ListCareLevels(ctx, withToken(&intakev1.ListCareLevelsRequest{}, coordTok)); err != nil {
		t.Fatal(err)
	}
	// The started row, the refused change's outcome row and the read's row.
	if m := h.metrics(t); !strings.Contains(m, `trellis_audit_write_failures_total{service="intake"} 3`) {
		t.Fatalf("metrics:\n%s", m)
	}
}

func (h *auditHarness) metrics(t *testing.T) string {
	t.Helper()
	resp, err := h.http.Get(h.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func getJSON(t *testing.T, h *auditHarness, path, bearer string, status int, into any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.url+path, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := h.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != status {
		t.Fatalf("GET %s: %d, want %d", path, resp.StatusCode, status)
	}
	if into != nil {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAuditQueryAPI(t *testing.T) {
	ctx := context.Background()
	h := startAudited(t)
	p := uuid.NewString()
	if _, err := h.client.ListConsents(ctx, withToken(&intakev1.ListConsentsRequest{PatientId: p}, tokenFor(t, "clinician-7", []string{clinic}, "clinician"))); err != nil {
		t.Fatal(err)
	}
	officer := tokenFor(t, "officer-1", []string{auth.AllClinics}, auth.RoleComplianceOfficer)
	var page struct {
		Rows []struct {
			Subject, Procedure, Outcome, Hash string
			PatientIDs                        []string `json:"patient_ids"`
		}
		NextAfter int64 `json:"next_after"`
	}
	getJSON(t, h, "/audit?patient_id="+p, officer, http.StatusOK, &page)
	// The query itself is recorded first, so it is in its own answer.
	if len(page.Rows) != 2 || page.Rows[1].Subject != "officer-1" || page.Rows[0].Subject != "clinician-7" || page.Rows[0].PatientIDs[0] != p || len(page.Rows[0].Hash) != 64 || page.NextAfter == 0 {
		t.Fatalf("page %+v", page)
	}
	// Refused: an operator, an officer of one clinic, no token; a bad parameter is named.
	var bad struct{ Code, Field, Rule string }
	getJSON(t, h, "/audit?patient_id="+p, tokenFor(t, "operator-1", []string{auth.AllClinics}, "operator"), http.StatusForbidden, &bad)
	getJSON(t, h, "/audit?patient_id="+p, tokenFor(t, "officer-2", []string{clinic}, auth.RoleComplianceOfficer), http.StatusForbidden, nil)
	getJSON(t, h, "/audit/verify", tokenFor(t, "operator-1", []string{auth.AllClinics}, "operator"), http.StatusForbidden, nil)
	getJSON(t, h, "/audit?patient_id="+p, "", http.StatusUnauthorized, nil)
	getJSON(t, h, "/audit?patient_id=Jane%20Doe", officer, http.StatusBadRequest, &bad)
	if bad.Field != "patient_id" || bad.Rule != "string.uuid" {
		t.Fatalf("error %+v", bad)
	}
	getJSON(t, h, "/audit?from=yesterday", officer, http.StatusBadRequest, &bad)
	if bad.Field != "from" {
		t.Fatalf("error %+v", bad)
	}
	// Each query was recorded, allowed or not: the officer's, then the refusals.
	getJSON(t, h, "/audit?patient_id="+p, officer, http.StatusOK, &page)
	var outcomes []string
	for _, r := range page.Rows {
		outcomes = append(outcomes, r.Subject+" "+r.Procedure+" "+r.Outcome)
	}
	wantOutcomes := []string{
		"clinician-7 " + intakev1connect.IntakeServiceListConsentsProcedure + " ok",
		"officer-1 GET /audit ok", "operator-1 GET /audit permission_denied", "officer-2 GET /audit permission_denied",
		" GET /audit unauthenticated", "officer-1 GET /audit ok",
	}
	if !slices.Equal(outcomes, wantOutcomes) {
		t.Fatalf("rows\n%q\nwant\n%q", outcomes, wantOutcomes)
	}
	var v audit.Verification
	getJSON(t, h, "/audit/verify", tokenFor(t, "admin-1", []string{auth.AllClinics}, auth.RoleAdmin), http.StatusOK, &v)
	if !v.OK || v.Rows < 7 {
		t.Fatalf("verify %+v", v)
	}
}

// A call naming a patient only through another record (a consent) keeps that record on its row,
// and is recorded when refused although it names no patient.
func TestAuditRecordsOtherRecordsOfAPatient(t *testing.T) {
	ctx := context.Background()
	h := startAudited(t)
	consent := uuid.NewString()
	revoke := &intakev1.RevokeConsentRequest{ConsentId: consent, WrittenRevocationReceived: true}
	if _, err := h.client.RevokeConsent(ctx, withToken(revoke, tokenFor(t, "clinician-7", []string{clinic}, "clinician"))); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("err %v", err)
	}
	if _, err := h.client.RevokeConsent(ctx, withToken(revoke, tokenFor(t, "coordinator-3", []string{clinic}, "intake_coordinator"))); err != nil {
		t.Fatal(err)
	}
	rows, err := audit.New(h.pool, "intake").Query(ctx, audit.Filter{RecordID: consent})
	if err != nil {
		t.Fatal(err)
	}
	proc := intakev1connect.IntakeServiceRevokeConsentProcedure
	check(t, rows, want{"clinician-7", proc, "permission_denied", audit.Change},
		want{"coordinator-3", proc, "started", audit.Change}, want{"coordinator-3", proc, "ok", audit.Change})
	for _, r := range rows[:2] {
		if len(r.PatientIDs) != 0 || !slices.Equal(r.RecordIDs, []string{"consent_id=" + consent}) {
			t.Errorf("%s row: patients %v records %v", r.Outcome, r.PatientIDs, r.RecordIDs)
		}
	}
	if !slices.Equal(rows[2].PatientIDs, []string{h.impl.admitted}) || !slices.Equal(rows[2].RecordIDs, []string{"consent_id=" + consent}) {
		t.Errorf("row: patients %v records %v", rows[2].PatientIDs, rows[2].RecordIDs)
	}
	// A call naming neither a patient nor a patient's record is not recorded, refused or not.
	if _, err := h.client.ListCareLevels(ctx, withToken(&intakev1.ListCareLevelsRequest{}, "")); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("err %v", err)
	}
	var n int
	if err := h.pool.QueryRow(ctx, "SELECT count(*) FROM audit_log").Scan(&n); err != nil || n != 3 {
		t.Fatalf("%d rows, err %v", n, err)
	}
}
