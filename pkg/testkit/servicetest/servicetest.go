// Package servicetest runs a whole Trellis service in-process for its tests, the way
// `<svc> serve` would, against real infrastructure: a fresh Postgres database and an embedded
// JetStream server (pkg/testkit). It also speaks to the service the way its peers do: events
// wrapped and published as another service's outbox relay would, tokens minted with the
// service's dev key, and the counts tests check (rows, stream messages, processed events).
//
//	var cfg Config
//	s := servicetest.Start(t, spec(), &cfg, nil)
//	env := servicetest.Envelope(t, &intakev1.PatientAdmitted{...}, clinicID, "intake")
//	seq := s.Publish(t, "trellis.intake.patient.admitted.v1", env.GetEventId(), env, "")
//	s.Settled(t, "INTAKE", "scheduling--admissions", seq)
//
// (pkg/service's own tests must not import this package: it imports pkg/service.)
package servicetest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/pkg/telemetry"
	"github.com/trellis-health/trellis/pkg/testkit"
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
)

// DevKey is the AUTH_DEV_KEY Start uses when env does not name one.
const DevKey = "servicetest-dev-key-0123456789abcdef"

// Timeouts of Start and of the waits.
const (
	startTimeout = 30 * time.Second
	stopTimeout  = 20 * time.Second
	waitTimeout  = 10 * time.Second
)

// Service is one service running in-process (service.Serve) for a test.
type Service struct {
	Addr        string // the bound HTTP address, host:port
	URL         string // "http://" + Addr, for Connect clients
	DatabaseURL string
	DevKey      string              // the AUTH_DEV_KEY the service verifies tokens with
	NATS        *testkit.NATS       // the embedded server; nil when env gave NATS_URL
	JS          jetstream.JetStream // a client of the service's NATS
	Pool        *pgxpool.Pool       // on the service's database, search_path = its schema
	Log         *slog.Logger        // the service's logger
	Logs        *LogBuffer          // everything the service logged; printed if the test fails
}

// Start runs spec in-process until t ends and returns once it is listening. cfg is the
// service's config struct (embedding service.Base); it is loaded from env over these test
// defaults: a fresh database (DATABASE_URL), an embedded JetStream server (NATS_URL),
// HTTP_ADDR 127.0.0.1:0, SHUTDOWN_TIMEOUT 2s, LOG_LEVEL warn and AUTH_DEV_KEY DevKey.
//
// Start fails the test if the service exits or is not ready within 30 s. When t ends it stops
// the service, reports an error Serve returned (or a stop taking over 20 s), and prints the
// service's logs if the test failed.
func Start(t testing.TB, spec service.Spec, cfg service.Config, env map[string]string) *Service {
	t.Helper()
	vars := map[string]string{
		"HTTP_ADDR": "127.0.0.1:0", "SHUTDOWN_TIMEOUT": "2s", "LOG_LEVEL": "warn",
		"AUTH_DEV_KEY": DevKey, "AUTH_DEV_MODE": "true", "DB_SCHEMA": spec.Name,
	}
	for k, v := range env {
		vars[k] = v
	}
	s := &Service{Logs: &LogBuffer{}}
	if vars["DATABASE_URL"] == "" {
		vars["DATABASE_URL"] = testkit.Database(t)
	}
	if vars["NATS_URL"] == "" {
		s.NATS = testkit.StartNATS(t)
		vars["NATS_URL"] = s.NATS.URL
	}
	s.DatabaseURL, s.DevKey = vars["DATABASE_URL"], vars["AUTH_DEV_KEY"]
	if err := service.LoadConfig(spec, cfg, vars); err != nil {
		t.Fatalf("servicetest: config: %v", err)
	}
	s.Log = telemetry.NewLogger(s.Logs, spec.Name, vars["LOG_LEVEL"])

	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan struct{})
	var serveErr error
	go func() {
		defer close(done)
		serveErr = service.Serve(ctx, spec, cfg, s.Log, ready)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
			if serveErr != nil {
				t.Errorf("servicetest: %s stopped with error: %v", spec.Name, serveErr)
			}
		case <-time.After(stopTimeout):
			t.Errorf("servicetest: %s did not stop within %s", spec.Name, stopTimeout)
		}
		if t.Failed() {
			t.Logf("%s logs:\n%s", spec.Name, s.Logs)
		}
	})
	select {
	case s.Addr = <-ready:
	case <-done:
		t.Fatalf("servicetest: %s did not start: %v", spec.Name, serveErr)
	case <-time.After(startTimeout):
		t.Fatalf("servicetest: %s did not start within %s", spec.Name, startTimeout)
	}
	s.URL = "http://" + s.Addr

	nc, err := nats.Connect(vars["NATS_URL"], nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if s.JS, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	if s.Pool, err = pg.Open(context.Background(), s.DatabaseURL, vars["DB_SCHEMA"], 4); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Pool.Close)
	return s
}

// Envelope wraps payload as producer's outbox relay would: fresh event, correlation and
// causation ids, the payload's type and clinicID.
func Envelope(t testing.TB, payload proto.Message, clinicID, producer string) *eventsv1.Envelope {
	t.Helper()
	a, err := anypb.New(payload)
	if err != nil {
		t.Fatal(err)
	}
	return &eventsv1.Envelope{
		EventId:       bus.NewID(),
		EventType:     string(payload.ProtoReflect().Descriptor().FullName()),
		OccurredAt:    timestamppb.Now(),
		ClinicId:      clinicID,
		CorrelationId: bus.NewID(),
		CausationId:   bus.NewID(),
		Producer:      producer,
		Payload:       a,
	}
}

// Message is body on subject with the headers the outbox relay writes for env: msgID as
// Nats-Msg-Id, the event headers (lowercase) and, when not empty, traceparent. body is
// normally env marshalled; a test of poison input passes something else.
func Message(subject, msgID string, body []byte, env *eventsv1.Envelope, traceparent string) *nats.Msg {
	msg := nats.NewMsg(subject)
	msg.Data = body
	h := telemetry.HeaderCarrier(msg.Header)
	h.Set(bus.HeaderEventType, env.GetEventType())
	h.Set(bus.HeaderCorrelationID, env.GetCorrelationId())
	if env.GetCausationId() != "" {
		h.Set(bus.HeaderCausationID, env.GetCausationId())
	}
	if env.GetOccurredAt() != nil {
		h.Set(bus.HeaderOccurredAt, env.GetOccurredAt().AsTime().Format(time.RFC3339Nano))
	}
	if env.GetClinicId() != "" {
		h.Set(bus.HeaderClinicID, env.GetClinicId())
	}
	h.Set(bus.HeaderContentType, bus.ContentTypeProto)
	if traceparent != "" {
		h.Set("traceparent", traceparent)
	}
	msg.Header[bus.HeaderMsgID] = []string{msgID} // spelled as JetStream expects
	return msg
}

// Publish puts env on subject as the relay would (see Message) and returns its stream
// sequence. It fails the test if JetStream drops the message as a duplicate of msgID.
func (s *Service) Publish(t testing.TB, subject, msgID string, env *eventsv1.Envelope, traceparent string) uint64 {
	t.Helper()
	body, err := proto.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return s.PublishRaw(t, subject, msgID, body, env, traceparent)
}

// PublishRaw is Publish with the body given as bytes (poison input, say); the headers still
// come from env.
func (s *Service) PublishRaw(t testing.TB, subject, msgID string, body []byte, env *eventsv1.Envelope, traceparent string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ack, err := s.JS.PublishMsg(ctx, Message(subject, msgID, body, env, traceparent))
	if err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	if ack.Duplicate {
		t.Fatalf("publish %s: JetStream treated it as a duplicate", msgID)
	}
	return ack.Sequence
}

// Settled waits until consumer on stream has acked or terminated every message up to seq.
func (s *Service) Settled(t testing.TB, stream, consumer string, seq uint64) {
	t.Helper()
	testkit.Eventually(t, waitTimeout, fmt.Sprintf("consumer %s to settle %s seq %d", consumer, stream, seq), func() bool {
		c, err := s.JS.Consumer(context.Background(), stream, consumer)
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		return err == nil && info.AckFloor.Stream >= seq && info.NumAckPending == 0
	})
}

// Relayed waits until the service's outbox holds no unpublished row.
func (s *Service) Relayed(t testing.TB) {
	t.Helper()
	testkit.Eventually(t, waitTimeout, "outbox to drain", func() bool {
		return s.Count(t, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
	})
}

// Count runs a `SELECT count(*) ...` query in the service's schema.
func (s *Service) Count(t testing.TB, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := s.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// StreamCount is how many messages stream holds on subject, or on every subject when subject
// is empty.
func (s *Service) StreamCount(t testing.TB, stream, subject string) uint64 {
	t.Helper()
	st, err := s.JS.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	if subject == "" {
		info, err := st.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

// Processed reads trellis_events_processed_total for consumer and outcome (ok, duplicate,
// retry, dead_letter) from the service's /metrics, summed over subjects.
func (s *Service) Processed(t testing.TB, consumer, outcome string) float64 {
	t.Helper()
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var total float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "trellis_events_processed_total{") &&
			strings.Contains(line, `consumer="`+consumer+`"`) && strings.Contains(line, `outcome="`+outcome+`"`) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			total += v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return total
}

// Token mints a dev token the service accepts (its dev key, issuer "trellis-dev", audience
// "trellis"), valid for an hour.
func (s *Service) Token(t testing.TB, subject string, roles, clinics []string) string {
	t.Helper()
	tok, err := auth.MintDev([]byte(s.DevKey), "trellis-dev", "trellis", subject, roles, clinics, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// LogBuffer collects logs written from many goroutines.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// DeadLetter waits (up to 10 s) for consumer's dead-letter copy of the message at seq of its
// stream, and returns it.
func (s *Service) DeadLetter(t testing.TB, consumer string, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	var dl *jetstream.RawStreamMsg
	testkit.Eventually(t, 10*time.Second, "dead letter of "+consumer, func() bool {
		st, err := s.JS.Stream(context.Background(), bus.DeadLetterStream)
		if err != nil {
			return false
		}
		m, err := st.GetLastMsgForSubject(context.Background(), bus.DeadLetterSubject(consumer))
		if err != nil || m.Header.Get(bus.HeaderDLStreamSequence) != strconv.FormatUint(seq, 10) {
			return false
		}
		dl = m
		return true
	})
	return dl
}
