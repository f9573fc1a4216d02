package intake_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
	"github.com/trellis-health/trellis/services/intake"
	"github.com/trellis-health/trellis/services/intake/demo"
)

const (
	subjectClinicConfigured = "trellis.scheduling.clinic.configured.v1"
	clinicsConsumer         = "intake--clinics"
)

// clinicEvent is scheduling's ClinicConfigured for the clinic, as its relay would publish it,
// occurred at `at`.
func clinicEvent(t *testing.T, id, name, tz string, at time.Time) *eventsv1.Envelope {
	t.Helper()
	env := servicetest.Envelope(t, &schedulingv1.ClinicConfigured{Clinic: &schedulingv1.Clinic{
		ClinicId: id, Name: name, TimeZone: tz, Npi: "1234567893", Phone: "+15035550100"}}, id, "scheduling")
	env.OccurredAt = timestamppb.New(at)
	return env
}

// deliver publishes env (msgID: a redelivery under another message id gets past JetStream's
// duplicate window, as a republished outbox row would) and waits until intake--clinics has
// handled it.
func (e *env) deliver(t *testing.T, env *eventsv1.Envelope, msgID string) {
	t.Helper()
	seq := e.Publish(t, subjectClinicConfigured, msgID, env, "")
	e.Settled(t, "SCHEDULING", clinicsConsumer, seq)
}

// clinicRow is intake's copy of a clinic: name and time zone ("" when there is none).
func (e *env) clinicRow(t *testing.T, id string) (name, tz string) {
	t.Helper()
	_ = e.Pool.QueryRow(context.Background(), `SELECT name, time_zone FROM clinics WHERE id = $1`, id).Scan(&name, &tz)
	return name, tz
}

func TestClinicsComeFromScheduling(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	clinic := bus.NewID()
	tok := e.Token(t, "coordinator-portland", []string{"intake_coordinator"}, []string{clinic})
	referral := func(key string) (*intakev1.CreateReferralResponse, error) {
		m := rfPerson(key, 1)
		m.ClinicId = clinic
		resp, err := e.client.CreateReferral(ctx, rfReq(tok, m))
		if err != nil {
			return nil, err
		}
		return resp.Msg, nil
	}

	// Before scheduling configures it, intake does not know the clinic.
	_, err := referral("portland-before")
	if got := rfViolations(t, err); len(got) != 1 || got[0] != "clinic_id clinic.known" {
		t.Fatalf("referral for an unconfigured clinic: violations %v", got)
	}

	// ClinicConfigured: the clinic is usable, for referrals and admissions, in its time zone.
	t0 := time.Now().Add(-time.Hour).UTC()
	first := clinicEvent(t, clinic, "Portland Recovery Center", "America/Los_Angeles", t0)
	e.deliver(t, first, first.GetEventId())
	if name, tz := e.clinicRow(t, clinic); name != "Portland Recovery Center" || tz != "America/Los_Angeles" {
		t.Fatalf("clinic copy = %q %q", name, tz)
	}
	r, err := referral("portland-after")
	if err != nil {
		t.Fatalf("referral for a configured clinic: %v", err)
	}
	if r.GetReferral().GetClinicId() != clinic {
		t.Fatalf("referral clinic = %s", r.GetReferral().GetClinicId())
	}
	adm := validRequest("portland-admit")
	adm.ClinicId = clinic
	la, _ := time.LoadLocation("America/Los_Angeles")
	adm.StartDate = time.Now().In(la).Format(time.DateOnly) // today, in the clinic's zone
	if _, err := e.admit(tok, adm); err != nil {
		t.Fatalf("admission to a configured clinic: %v", err)
	}

	// A newer configuration wins; an older one, or a redelivery of the first, changes nothing.
	renamed := clinicEvent(t, clinic, "Portland Recovery Center (Pearl)", "America/Los_Angeles", t0.Add(time.Minute))
	e.deliver(t, renamed, renamed.GetEventId())
	if name, _ := e.clinicRow(t, clinic); name != "Portland Recovery Center (Pearl)" {
		t.Fatalf("after a newer configuration: name %q", name)
	}
	older := clinicEvent(t, clinic, "Portland (stale)", "America/Denver", t0.Add(-time.Minute))
	e.deliver(t, older, older.GetEventId())
	e.deliver(t, first, bus.NewID()) // the same event again, as a republished outbox row
	e.deliver(t, renamed, bus.NewID())
	if name, tz := e.clinicRow(t, clinic); name != "Portland Recovery Center (Pearl)" || tz != "America/Los_Angeles" {
		t.Fatalf("after an older event and redeliveries: %q %q", name, tz)
	}
	var at time.Time
	var eventID string
	if err := e.Pool.QueryRow(ctx, `SELECT configured_at, configured_event_id::text FROM clinics WHERE id = $1`, clinic).Scan(&at, &eventID); err != nil {
		t.Fatal(err)
	}
	if eventID != renamed.GetEventId() || !at.Equal(renamed.GetOccurredAt().AsTime().Truncate(time.Microsecond)) {
		t.Errorf("copy holds event %s at %v, want %s", eventID, at, renamed.GetEventId())
	}
	if got := e.Processed(t, clinicsConsumer, "duplicate"); got != 2 {
		t.Errorf("duplicates = %v, want 2 (the redeliveries)", got)
	}
	if got := e.Processed(t, clinicsConsumer, "ok"); got != 3 {
		t.Errorf("ok = %v, want 3 (first, renamed, older)", got)
	}
	if n := e.Count(t, `SELECT count(*) FROM clinics WHERE id = $1`, clinic); n != 1 {
		t.Errorf("clinic rows = %d", n)
	}
	if n := e.Count(t, `SELECT count(*) FROM inbox WHERE consumer = $1`, clinicsConsumer); n != 3 {
		t.Errorf("inbox rows = %d, want 3", n)
	}

	// A demo clinic scheduling configures keeps scheduling's name when seed-demo runs again.
	demoEv := clinicEvent(t, demo.LakeviewClinicID, "Lakeview Clinic (Main St)", "America/New_York", time.Now().UTC())
	e.deliver(t, demoEv, demoEv.GetEventId())
	if err := intakeSeed(e); err != nil {
		t.Fatal(err)
	}
	if name, _ := e.clinicRow(t, demo.LakeviewClinicID); name != "Lakeview Clinic (Main St)" {
		t.Errorf("seed-demo overwrote scheduling's clinic: %q", name)
	}

	// A clinic intake cannot use (no IANA zone) is a producer bug: dead-lettered, not stored.
	bad := bus.NewID()
	poison := clinicEvent(t, bad, "Nowhere", "UTC+3", time.Now().UTC())
	e.deliver(t, poison, poison.GetEventId())
	if got := e.Processed(t, clinicsConsumer, "dead_letter"); got != 1 {
		t.Errorf("dead letters = %v, want 1", got)
	}
	if name, _ := e.clinicRow(t, bad); name != "" {
		t.Errorf("a clinic without a zone was stored: %q", name)
	}
}

func intakeSeed(e *env) error {
	return intake.Spec(nil).Commands["seed-demo"](context.Background(), &service.Platform{Pool: e.Pool, Log: e.Log}, nil)
}
