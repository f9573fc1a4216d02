package servicetest_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
)

const clinic = "0192f0c0-0000-7000-8000-0000000000c1"

func TestEnvelopeAndMessageAreWhatTheRelayWrites(t *testing.T) {
	env := servicetest.Envelope(t, wrapperspb.String("hello"), clinic, "peer")
	if env.GetEventType() != "google.protobuf.StringValue" || env.GetProducer() != "peer" || env.GetClinicId() != clinic ||
		env.GetEventId() == "" || env.GetCorrelationId() == "" || env.GetCausationId() == "" || env.GetOccurredAt() == nil {
		t.Fatalf("envelope = %v", env)
	}
	body, err := proto.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	msg := servicetest.Message("trellis.peer.thing.happened.v1", "msg-1", body, env, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	var back eventsv1.Envelope
	if err := proto.Unmarshal(msg.Data, &back); err != nil {
		t.Fatal(err)
	}
	var payload wrapperspb.StringValue
	if err := back.GetPayload().UnmarshalTo(&payload); err != nil || payload.GetValue() != "hello" {
		t.Fatalf("payload %q, %v", payload.GetValue(), err)
	}
	for k, want := range map[string]string{
		bus.HeaderMsgID: "msg-1", bus.HeaderEventType: "google.protobuf.StringValue",
		bus.HeaderCorrelationID: env.GetCorrelationId(), bus.HeaderCausationID: env.GetCausationId(),
		bus.HeaderOccurredAt: env.GetOccurredAt().AsTime().Format(time.RFC3339Nano), bus.HeaderClinicID: clinic,
		bus.HeaderContentType: bus.ContentTypeProto, "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	} {
		if got := msg.Header[k]; len(got) != 1 || got[0] != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
}

// echoSpec is a service that answers each peer event with an echo event of its own.
func echoSpec() service.Spec {
	return service.Spec{
		Name: "echo", DefaultAddr: ":8099", Consumes: []string{"peer"},
		Setup: func(_ context.Context, p *service.Platform) error {
			p.Consume(bus.ConsumerConfig{Name: "echo--peer", Stream: "PEER", Subjects: []string{"trellis.peer.>"}},
				func(_ context.Context, tx *bus.Tx, d *bus.Delivery) error {
					var v wrapperspb.StringValue
					if err := d.Decode(&v); err != nil {
						return err
					}
					tx.Emit(bus.Event{Subject: "trellis.echo.thing.echoed.v1", ClinicID: d.Envelope.GetClinicId(), Payload: &v})
					return nil
				})
			return nil
		},
	}
}

func TestServiceConsumesRelaysAndAuthenticates(t *testing.T) {
	var cfg struct{ service.Base }
	s := servicetest.Start(t, echoSpec(), &cfg, map[string]string{"NATS_STREAM_STORAGE": "memory"})
	if cfg.DBSchema != "echo" || cfg.AuthDevKey != servicetest.DevKey || s.NATS == nil || s.URL != "http://"+s.Addr {
		t.Fatalf("service %+v, config %+v", s, cfg.Base)
	}

	env := servicetest.Envelope(t, wrapperspb.String("hi"), clinic, "peer")
	seq := s.Publish(t, "trellis.peer.thing.happened.v1", env.GetEventId(), env, "")
	seq2 := s.Publish(t, "trellis.peer.thing.happened.v1", "again-"+env.GetEventId(), env, "") // the inbox absorbs it
	s.Settled(t, "PEER", "echo--peer", seq2)
	s.Relayed(t)
	if seq2 != seq+1 {
		t.Errorf("sequences %d, %d", seq, seq2)
	}
	if n := s.Count(t, "SELECT count(*) FROM inbox WHERE consumer = $1", "echo--peer"); n != 1 {
		t.Errorf("inbox rows = %d, want 1", n)
	}
	if n := s.StreamCount(t, "ECHO", "trellis.echo.thing.echoed.v1"); n != 1 {
		t.Errorf("echoes = %d, want 1", n)
	}
	if n := s.StreamCount(t, "PEER", ""); n != 2 {
		t.Errorf("PEER holds %d messages, want 2", n)
	}
	if ok, dup := s.Processed(t, "echo--peer", "ok"), s.Processed(t, "echo--peer", "duplicate"); ok != 1 || dup != 1 {
		t.Errorf("processed ok %v, duplicate %v; want 1, 1", ok, dup)
	}

	p, err := auth.NewDevVerifier([]byte(s.DevKey), "trellis-dev", "trellis").Verify(context.Background(), s.Token(t, "user-1", []string{"admin"}, []string{clinic}))
	if err != nil || !p.HasRole("admin") || !p.CanSeeClinic(clinic) {
		t.Fatalf("token: %+v, %v", p, err)
	}
}
