package rpc_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/rpc"
	"github.com/trellis-health/trellis/pkg/telemetry"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/intake/v1/intakev1connect"
)

var devKey = []byte("rpc-test-dev-key-0123456789abcdef")

const clinic = "0190c2a4-7d1e-7000-8000-000000000001"

// intake is a tiny IntakeService: it checks the clinic, applies one domain rule and can fail
// unexpectedly on request.
type intake struct {
	intakev1connect.UnimplementedIntakeServiceHandler
	calls atomic.Int32
}

func (s *intake) AdmitPatient(ctx context.Context, req *connect.Request[intakev1.AdmitPatientRequest]) (*connect.Response[intakev1.AdmitPatientResponse], error) {
	s.calls.Add(1)
	p := auth.PrincipalFrom(ctx)
	if p == nil {
		return nil, errors.New("no principal in handler context")
	}
	if !p.CanSeeClinic(req.Msg.GetClinicId()) {
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("clinic not allowed"))
	}
	switch req.Msg.GetProgramTrack() {
	case "closed-track":
		return nil, rpc.InvalidArgument(
			rpc.FieldViolation{Field: "program_track", Rule: "program_track.open", Msg: "the track takes no admissions"},
			rpc.FieldViolation{Field: "start_date", Rule: "start_date.track_day", Msg: "the track does not start that day"})
	case "broken-track":
		return nil, errors.New(`insert patient: duplicate key value violates unique constraint, Key (email)=(x@example.com)`)
	}
	return connect.NewResponse(&intakev1.AdmitPatientResponse{PatientId: "p1", EpisodeId: "e1"}), nil
}

type harness struct {
	url     string
	impl    *intake
	metrics *telemetry.Metrics
	ready   *atomic.Bool
	http    *http.Client
}

func start(t *testing.T, policy rpc.Policy) *harness {
	t.Helper()
	h := &harness{impl: &intake{}, metrics: telemetry.NewMetrics("intake"), ready: &atomic.Bool{}}
	h.ready.Store(true)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := rpc.NewServer(log, h.metrics, auth.NewDevVerifier(devKey, "trellis-dev", "trellis"), policy,
		rpc.Check{Name: "always", Fn: func(context.Context) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	srv.AddCheck(rpc.Check{Name: "postgres", Fn: func(context.Context) error {
		if !h.ready.Load() {
			return errors.New("dial tcp 10.0.0.7:5432: connection refused")
		}
		return nil
	}})
	srv.Handle(intakev1connect.NewIntakeServiceHandler(h.impl, srv.HandlerOptions()...))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeListener(ctx, ln, 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("graceful shutdown: %v", err)
		}
	})
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	h.http = &http.Client{Transport: &http.Transport{Protocols: p}}
	t.Cleanup(h.http.CloseIdleConnections)
	h.url = "http://" + ln.Addr().String()
	return h
}

func token(t *testing.T, roles ...string) string {
	t.Helper()
	tok, err := auth.MintDev(devKey, "trellis-dev", "trellis", "staff-1", roles, []string{clinic}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func validRequest() *intakev1.AdmitPatientRequest {
	return &intakev1.AdmitPatientRequest{
		GivenName: "Test", FamilyName: "Person", DateOfBirth: "1990-01-01", ContactEmail: "person@example.com",
		ClinicId: clinic, ProgramTrack: "adult-evening", StartDate: "2026-01-05", IdempotencyKey: "idem-key-0001",
	}
}

func call(t *testing.T, h *harness, bearer string, msg *intakev1.AdmitPatientRequest, opts ...connect.ClientOption) (*connect.Response[intakev1.AdmitPatientResponse], error) {
	t.Helper()
	client := intakev1connect.NewIntakeServiceClient(h.http, h.url, opts...)
	req := connect.NewRequest(msg)
	if bearer != "" {
		req.Header().Set("Authorization", "Bearer "+bearer)
	}
	return client.AdmitPatient(context.Background(), req)
}

var policy = rpc.Policy{intakev1connect.IntakeServiceAdmitPatientProcedure: {"intake", "admin"}}

func TestServerAuthValidationAndErrors(t *testing.T) {
	h := start(t, policy)
	invalid := validRequest()
	invalid.ClinicId = "not-a-uuid"
	invalid.ContactEmail = "nope"
	closed := validRequest()
	closed.ProgramTrack = "closed-track"
	broken := validRequest()
	broken.ProgramTrack = "broken-track"
	otherClinic := validRequest()
	otherClinic.ClinicId = "0190c2a4-7d1e-7000-8000-000000000002"

	cases := []struct {
		name       string
		bearer     string
		req        *intakev1.AdmitPatientRequest
		code       connect.Code
		violations []rpc.FieldViolation // field and rule only
		reached    bool                 // the handler ran
	}{
		{"no token", "", validRequest(), connect.CodeUnauthenticated, nil, false},
		{"bad token", "garbage", validRequest(), connect.CodeUnauthenticated, nil, false},
		// Anonymous callers learn nothing about validation.
		{"no token, invalid request", "", invalid, connect.CodeUnauthenticated, nil, false},
		{"role not allowed", token(t, "billing"), validRequest(), connect.CodePermissionDenied, nil, false},
		{"protovalidate", token(t, "intake"), invalid, connect.CodeInvalidArgument,
			[]rpc.FieldViolation{{Field: "clinic_id", Rule: "string.uuid"}, {Field: "contact_email", Rule: "string.email"}}, false},
		{"domain rule", token(t, "admin"), closed, connect.CodeInvalidArgument,
			[]rpc.FieldViolation{{Field: "program_track", Rule: "program_track.open"}, {Field: "start_date", Rule: "start_date.track_day"}}, true},
		{"clinic not allowed", token(t, "intake"), otherClinic, connect.CodePermissionDenied, nil, true},
		{"unexpected error", token(t, "intake"), broken, connect.CodeInternal, nil, true},
		{"ok", token(t, "intake"), validRequest(), 0, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.impl.calls.Load()
			resp, err := call(t, h, tc.bearer, tc.req)
			if reached := h.impl.calls.Load() > before; reached != tc.reached {
				t.Errorf("handler reached=%v, want %v", reached, tc.reached)
			}
			if tc.code == 0 {
				if err != nil || resp.Msg.GetPatientId() != "p1" {
					t.Fatalf("resp %v err %v", resp, err)
				}
				return
			}
			if got := connect.CodeOf(err); got != tc.code {
				t.Fatalf("code %v (%v), want %v", got, err, tc.code)
			}
			var got []rpc.FieldViolation
			for _, v := range rpc.Violations(err) {
				if v.Msg == "" {
					t.Errorf("violation %+v has no message", v)
				}
				got = append(got, rpc.FieldViolation{Field: v.Field, Rule: v.Rule})
			}
			slices.SortFunc(got, func(a, b rpc.FieldViolation) int { return strings.Compare(a.Field, b.Field) })
			if !slices.Equal(got, tc.violations) {
				t.Fatalf("violations %+v, want %+v", got, tc.violations)
			}
			if strings.Contains(err.Error(), "x@example.com") || strings.Contains(err.Error(), "duplicate key") {
				t.Fatalf("internal detail leaked to the caller: %v", err)
			}
		})
	}

	body := get(t, h, "/metrics", http.StatusOK)
	proc := intakev1connect.IntakeServiceAdmitPatientProcedure
	for _, want := range []string{
		`trellis_rpc_requests_total{code="ok",procedure="` + proc + `",service="intake"} 1`,
		`trellis_rpc_requests_total{code="unauthenticated",procedure="` + proc + `",service="intake"} 3`,
		`trellis_rpc_requests_total{code="permission_denied",procedure="` + proc + `",service="intake"} 2`,
		`trellis_rpc_requests_total{code="invalid_argument",procedure="` + proc + `",service="intake"} 2`,
		`trellis_rpc_duration_seconds_count{procedure="` + proc + `",service="intake"} 9`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestProcedureMissingFromPolicyIsRefused(t *testing.T) {
	h := start(t, rpc.Policy{})
	_, err := call(t, h, token(t, "admin"), validRequest())
	if connect.CodeOf(err) != connect.CodePermissionDenied || h.impl.calls.Load() != 0 {
		t.Fatalf("err %v calls %d", err, h.impl.calls.Load())
	}
}

func TestServerSpeaksGRPCAndJSON(t *testing.T) {
	h := start(t, policy)
	for name, opts := range map[string][]connect.ClientOption{
		"grpc":         {connect.WithGRPC()},
		"grpc-web":     {connect.WithGRPCWeb()},
		"connect-json": {connect.WithProtoJSON()},
	} {
		if _, err := call(t, h, token(t, "intake"), validRequest(), opts...); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		bad := validRequest()
		bad.ClinicId = "x"
		_, err := call(t, h, token(t, "intake"), bad, opts...)
		if vs := rpc.Violations(err); connect.CodeOf(err) != connect.CodeInvalidArgument || len(vs) != 1 || vs[0].Field != "clinic_id" {
			t.Errorf("%s: err %v violations %+v", name, err, vs)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	h := start(t, policy)
	if body := get(t, h, "/healthz", http.StatusOK); body != "ok\n" {
		t.Fatalf("healthz %q", body)
	}
	if body := get(t, h, "/readyz", http.StatusOK); body != "always: ok\npostgres: ok\n" {
		t.Fatalf("readyz %q", body)
	}
	h.ready.Store(false)
	body := get(t, h, "/readyz", http.StatusServiceUnavailable)
	if body != "always: ok\npostgres: not ready\n" {
		t.Fatalf("readyz %q", body)
	}
	// Liveness does not depend on dependencies.
	get(t, h, "/healthz", http.StatusOK)
}

func get(t *testing.T, h *harness, path string, status int) string {
	t.Helper()
	resp, err := h.http.Get(h.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("GET %s: %d, want %d: %s", path, resp.StatusCode, status, b)
	}
	return string(b)
}

func TestInvalidArgumentRoundTrip(t *testing.T) {
	in := []rpc.FieldViolation{
		{Field: "clinic_id", Rule: "clinic.known", Msg: "no such clinic"},
		{Field: "start_date", Rule: "start_date.future", Msg: "must not be in the past"},
	}
	err := rpc.InvalidArgument(in...)
	if err.Code() != connect.CodeInvalidArgument {
		t.Fatalf("code %v", err.Code())
	}
	if msg := err.Message(); msg != "clinic_id: no such clinic [clinic.known]; start_date: must not be in the past [start_date.future]" {
		t.Fatalf("message %q", msg)
	}
	if got := rpc.Violations(err); !slices.Equal(got, in) {
		t.Fatalf("violations %+v, want %+v", got, in)
	}
	if got := rpc.Violations(errors.Join(errors.New("wrapped"), err)); !slices.Equal(got, in) {
		t.Fatalf("wrapped violations %+v", got)
	}
	if rpc.Violations(errors.New("plain")) != nil || rpc.Violations(nil) != nil {
		t.Fatal("violations from a non-connect error")
	}
	if ce := rpc.FromValidation(errors.New("rules failed to compile")); ce.Code() != connect.CodeInternal {
		t.Fatalf("FromValidation of a non-validation error: %v", ce)
	}
}

// The platform's interceptors are unary; a streaming procedure must not run unauthenticated.
func TestStreamingProceduresAreRefused(t *testing.T) {
	m := telemetry.NewMetrics("intake")
	srv, err := rpc.NewServer(slog.New(slog.DiscardHandler), m, auth.NewDevVerifier(devKey, "trellis-dev", "trellis"),
		rpc.Policy{"/test.Stream/Watch": {"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	srv.Handle("/test.Stream/Watch", connect.NewServerStreamHandler("/test.Stream/Watch",
		func(ctx context.Context, req *connect.Request[intakev1.AdmitPatientRequest], s *connect.ServerStream[intakev1.AdmitPatientResponse]) error {
			ran = true
			return s.Send(&intakev1.AdmitPatientResponse{PatientId: "leaked"})
		}, srv.HandlerOptions()...))
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	client := connect.NewClient[intakev1.AdmitPatientRequest, intakev1.AdmitPatientResponse](ts.Client(), ts.URL+"/test.Stream/Watch")
	stream, err := client.CallServerStream(context.Background(), connect.NewRequest(&intakev1.AdmitPatientRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	for stream.Receive() {
		t.Fatalf("received %v from an unauthenticated stream", stream.Msg())
	}
	if connect.CodeOf(stream.Err()) != connect.CodeUnimplemented || ran {
		t.Fatalf("err %v ran %v, want unimplemented and the handler not run", stream.Err(), ran)
	}
}
