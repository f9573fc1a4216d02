package rpc_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/rpc"
	"github.com/trellis-health/trellis/pkg/telemetry"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/intake/v1/intakev1connect"
)

// padded adds an unknown field of n bytes to m (the server keeps it and validation ignores it),
// so the request is large without breaking any field rule.
func padded[M proto.Message](m M, n int) M {
	pad := protowire.AppendTag(nil, 9999, protowire.BytesType)
	pad = protowire.AppendBytes(pad, make([]byte, n))
	m.ProtoReflect().SetUnknown(pad)
	return m
}

// WithRequestLimit raises the cap of the named procedure only: a 2 MiB AdmitPatient is served,
// a 2 MiB request to another procedure of the same handler is refused (resource_exhausted)
// before it reaches the handler, and so is one over the raised cap.
func TestRequestLimitPerProcedure(t *testing.T) {
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := rpc.NewServer(log, telemetry.NewMetrics("intake"), auth.NewDevVerifier(devKey, "trellis-dev", "trellis"),
		rpc.Policy{intakev1connect.IntakeServiceAdmitPatientProcedure: {"intake"}, intakev1connect.IntakeServiceCreateReferralProcedure: {"intake"}})
	if err != nil {
		t.Fatal(err)
	}
	impl := &intake{}
	opts := append(srv.HandlerOptions(), rpc.WithRequestLimit(4<<20, intakev1connect.IntakeServiceAdmitPatientProcedure))
	srv.Handle(intakev1connect.NewIntakeServiceHandler(impl, opts...))
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	client := intakev1connect.NewIntakeServiceClient(hs.Client(), hs.URL)
	bearer := "Bearer " + token(t, "intake")

	admit := func(size int) error {
		req := connect.NewRequest(padded(validRequest(), size))
		req.Header().Set("Authorization", bearer)
		_, err := client.AdmitPatient(context.Background(), req)
		return err
	}
	if err := admit(2 << 20); err != nil {
		t.Fatalf("2 MiB AdmitPatient (raised to 4 MiB): %v", err)
	}
	if impl.calls.Load() != 1 {
		t.Fatalf("handler calls = %d, want 1", impl.calls.Load())
	}
	if err := admit(5 << 20); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("5 MiB AdmitPatient over its 4 MiB cap: %v, want resource_exhausted", err)
	}
	req := connect.NewRequest(padded(&intakev1.CreateReferralRequest{}, 2<<20))
	req.Header().Set("Authorization", bearer)
	if _, err := client.CreateReferral(context.Background(), req); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("2 MiB CreateReferral (default %d bytes): %v, want resource_exhausted", rpc.MaxRequestBytes, err)
	}
	if impl.calls.Load() != 1 {
		t.Fatalf("handler calls = %d after refused calls, want 1", impl.calls.Load())
	}
}
