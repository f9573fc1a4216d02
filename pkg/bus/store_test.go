package bus

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
)

func TestEventValidate(t *testing.T) {
	p := &intakev1.PatientAdmitted{}
	for _, tc := range []struct {
		ev Event
		ok bool
	}{
		{Event{Subject: "trellis.intake.patient.admitted.v1", Payload: p}, true},
		{Event{Subject: "trellis.intake.patient.admitted.v12", Payload: p}, true},
		{Event{Subject: "trellis.intake.patient.admitted", Payload: p}, false},
		{Event{Subject: "other.intake.patient.admitted.v1", Payload: p}, false},
		{Event{Subject: "trellis.intake.patient.admitted.1", Payload: p}, false},
		{Event{Subject: "trellis.intake.patient.admitted.v1.extra", Payload: p}, false},
		{Event{Subject: "trellis.intake.patient.admitted.v1"}, false},
	} {
		if err := tc.ev.Validate(); (err == nil) != tc.ok {
			t.Errorf("%q payload=%v: err=%v, want ok=%v", tc.ev.Subject, tc.ev.Payload != nil, err, tc.ok)
		}
	}
}

func TestNewIDIsUUIDv7(t *testing.T) {
	a, b := NewID(), NewID()
	u, err := uuid.Parse(a)
	if err != nil || u.Version() != 7 {
		t.Fatalf("NewID %q: version %d err %v", a, u.Version(), err)
	}
	if a == b {
		t.Fatal("ids repeat")
	}
}

func TestStoreInTxWritesEnvelopeAndHeaders(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("x", 3600))
	f.store.now = func() time.Time { return at }
	must(t, f.store.InTx(WithCause(ctx, "corr", "cause"), func(ctx context.Context, tx *Tx) error {
		tx.Emit(event("one"), Event{Subject: "trellis.test.network.changed.v1", Payload: &intakev1.PatientAdmitted{PatientId: "two"}})
		return nil
	}))

	rows, err := f.pool.Query(ctx, "SELECT event_id::text, subject, headers, payload, txid::text FROM outbox ORDER BY seq")
	must(t, err)
	defer rows.Close()
	var txids []string
	i := 0
	for rows.Next() {
		var id, subject, txid string
		var hj, body []byte
		must(t, rows.Scan(&id, &subject, &hj, &body, &txid))
		txids = append(txids, txid)
		env := &eventsv1.Envelope{}
		must(t, proto.Unmarshal(body, env))
		if env.GetEventId() != id || env.GetProducer() != "test" || env.GetEventType() != "trellis.intake.v1.PatientAdmitted" ||
			env.GetCorrelationId() != "corr" || env.GetCausationId() != "cause" || !env.GetOccurredAt().AsTime().Equal(at) {
			t.Errorf("row %d envelope %v", i, env)
		}
		var h map[string][]string
		must(t, json.Unmarshal(hj, &h))
		want := map[string]string{
			HeaderEventType: "trellis.intake.v1.PatientAdmitted", HeaderCorrelationID: "corr", HeaderCausationID: "cause",
			HeaderOccurredAt: "2026-03-01T11:00:00Z", HeaderContentType: ContentTypeProto,
		}
		if i == 0 {
			want[HeaderClinicID] = event("").ClinicID
		} else if _, has := h[HeaderClinicID]; has {
			t.Errorf("network-wide event has a clinic-id header")
		}
		for k, v := range want {
			if got := h[k]; len(got) != 1 || got[0] != v {
				t.Errorf("row %d header %s = %v, want %q", i, k, got, v)
			}
		}
		for k := range h {
			if k != strings.ToLower(k) {
				t.Errorf("stored header %q is not lowercase", k)
			}
		}
		i++
	}
	must(t, rows.Err())
	if i != 2 || txids[0] != txids[1] {
		t.Fatalf("rows %d txids %v: both events belong to one transaction", i, txids)
	}
}

func TestStoreInTxWithoutCauseStartsACorrelation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	f.emit("x")
	var id, body = "", []byte(nil)
	must(t, f.pool.QueryRow(context.Background(), "SELECT event_id::text, payload FROM outbox").Scan(&id, &body))
	env := &eventsv1.Envelope{}
	must(t, proto.Unmarshal(body, env))
	if env.GetCorrelationId() != id || env.GetCausationId() != "" {
		t.Fatalf("correlation %q causation %q, want the event's own id and none", env.GetCorrelationId(), env.GetCausationId())
	}
}

func TestStoreInTxRollsBackEverything(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	ctx := context.Background()
	boom := errors.New("boom")
	insert := func(ctx context.Context, tx *Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO effects (consumer, event_id, marker, delivered) VALUES ('domain', $1, 'x', 0)`, NewID())
		return err
	}
	err := f.store.InTx(ctx, func(ctx context.Context, tx *Tx) error {
		if err := insert(ctx, tx); err != nil {
			return err
		}
		tx.Emit(event("x"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	// An invalid event fails the whole unit of work, domain change included.
	err = f.store.InTx(ctx, func(ctx context.Context, tx *Tx) error {
		if err := insert(ctx, tx); err != nil {
			return err
		}
		tx.Emit(event("ok"), Event{Subject: "bad subject", Payload: &intakev1.PatientAdmitted{}})
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "bad subject") {
		t.Fatalf("err %v, want the invalid subject reported", err)
	}
	if n := f.scalar("SELECT count(*) FROM outbox") + f.scalar("SELECT count(*) FROM effects"); n != 0 {
		t.Fatalf("%d rows survived failed transactions", n)
	}
	select {
	case <-f.store.wake:
		t.Fatal("a failed transaction woke the relay")
	default:
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{}) // migrated once already
	must(t, Migrate(context.Background(), f.pool, testSchema, nil))
	if n := f.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename IN ('outbox', 'inbox', 'bus_db_version')", testSchema); n != 3 {
		t.Fatalf("%d bus tables in schema %s, want 3", n, testSchema)
	}
}

func TestStreamConfigs(t *testing.T) {
	c := ContextStream("intake", StreamOptions{Replicas: 3})
	if c.Name != "INTAKE" || len(c.Subjects) != 1 || c.Subjects[0] != "trellis.intake.>" || c.Replicas != 3 ||
		c.Storage != jetstream.FileStorage || c.MaxAge != 30*24*time.Hour || c.Duplicates != 2*time.Minute {
		t.Fatalf("context stream %+v", c)
	}
	if m := ContextStream("x", StreamOptions{Storage: "Memory"}); m.Storage != jetstream.MemoryStorage || m.Replicas != 1 {
		t.Fatalf("memory stream %+v", m)
	}
	ps := PlatformStreams(StreamOptions{})
	if len(ps) != 2 || ps[0].Name != DeadLetterStream || ps[1].Name != AdvisoryStream {
		t.Fatalf("platform streams %+v", ps)
	}
	if DeadLetterSubject("billing--payments") != "trellis.deadletter.billing--payments" {
		t.Fatal(DeadLetterSubject("billing--payments"))
	}
}

func TestEnsureStreamsIsIdempotent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{}) // ensured once already
	ctx := context.Background()
	opts := StreamOptions{Storage: "memory"}
	must(t, EnsureStreams(ctx, f.js, append(PlatformStreams(opts), ContextStream("test", opts))...))
	names := f.js.StreamNames(ctx)
	var got []string
	for n := range names.Name() {
		got = append(got, n)
	}
	if len(got) != 3 {
		t.Fatalf("streams %v", got)
	}
}

func TestAfterCommitRunsOnlyAfterACommit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	ctx := context.Background()
	var ran []string
	var sawCommitted bool
	err := f.store.InTx(ctx, func(ctx context.Context, tx *Tx) error {
		tx.AfterCommit(func() {
			ran = append(ran, "committed")
			// The hook sees the committed state from another connection.
			sawCommitted = f.unpublished() == 1
		})
		tx.Emit(event("after-commit"))
		return nil
	})
	must(t, err)
	err = f.store.InTx(ctx, func(ctx context.Context, tx *Tx) error {
		tx.AfterCommit(func() { ran = append(ran, "rolled back") })
		return errors.New("boom")
	})
	if err == nil {
		t.Fatal("want the handler's error")
	}
	if len(ran) != 1 || ran[0] != "committed" || !sawCommitted {
		t.Fatalf("hooks ran %v (saw committed row: %v); want only the committed one, after commit", ran, sawCommitted)
	}
}
