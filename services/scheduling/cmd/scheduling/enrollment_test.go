package main

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/testkit"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1/schedulingv1connect"

	"github.com/trellis-health/trellis/services/scheduling/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/scheduling/internal/app"
	"github.com/trellis-health/trellis/services/scheduling/internal/ports/events"
)

const (
	subjectWaitlisted  = "trellis.scheduling.enrollment.waitlisted.v1"
	subjectEnded       = "trellis.scheduling.enrollment.ended.v1"
	subjectDischarged  = "trellis.intake.patient.discharged.v1"
	dischargesConsumer = "scheduling--discharges"
)

// seatTrack configures a track of adult-iop at clinicID (and the clinic and program when
// missing) directly in the tables, and returns its id.
func seatTrack(t *testing.T, s *servicetest.Service, clinicID, code string, capacity int) string {
	t.Helper()
	return seatTrackOf(t, s, clinicID, "adult-iop", code, capacity)
}

func seatTrackOf(t *testing.T, s *servicetest.Service, clinicID, program, code string, capacity int) string {
	t.Helper()
	ctx := context.Background()
	id := bus.NewID()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO programs (code, name, population, length_weeks, weekly_minimum_minutes)
			VALUES ($1, $1, 'adult', 12, 540) ON CONFLICT DO NOTHING`, []any{program}},
		{`INSERT INTO clinics (id, name, time_zone) VALUES ($1, 'Clinic', 'America/Chicago') ON CONFLICT DO NOTHING`, []any{clinicID}},
		{`INSERT INTO tracks (id, clinic_id, program_code, code, time_of_day, weekdays, start_time, end_time, capacity)
			VALUES ($1, $2, $3, $4, 'evening', '{1,3,4}', '18:00', '21:00', $5)`, []any{id, clinicID, program, code, capacity}},
	} {
		if _, err := s.Pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("configure track: %v", err)
		}
	}
	return id
}

// admit publishes intake's PatientAdmitted and waits until it is handled and what it emitted
// is on the bus. It returns the episode id.
func admit(t *testing.T, s *servicetest.Service, patientID, clinicID, track string) string {
	t.Helper()
	m := admitted(patientID, clinicID)
	m.ProgramTrack = track
	env := envelope(t, m, clinicID)
	seq := s.Publish(t, subjectAdmitted, env.GetEventId(), env, "")
	s.Settled(t, "INTAKE", consumerName, seq)
	s.Relayed(t)
	return m.GetEpisodeId()
}

// discharge publishes intake's PatientDischarged and waits like admit.
func discharge(t *testing.T, s *servicetest.Service, patientID, episodeID, clinicID string) {
	t.Helper()
	env := envelope(t, &intakev1.PatientDischarged{PatientId: patientID, EpisodeId: episodeID, ClinicId: clinicID,
		Reason: intakev1.DischargeReason_DISCHARGE_REASON_COMPLETED, DischargeDate: "2026-04-01", StartDate: "2026-03-02"}, clinicID)
	seq := s.Publish(t, subjectDischarged, env.GetEventId(), env, "")
	s.Settled(t, "INTAKE", dischargesConsumer, seq)
	s.Relayed(t)
}

// published decodes every message on subject of the SCHEDULING stream, oldest first.
func published[T proto.Message](t *testing.T, s *servicetest.Service, subject string, newT func() T) []T {
	t.Helper()
	ctx := context.Background()
	st, err := s.JS.Stream(ctx, "SCHEDULING")
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		raw, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if raw.Subject != subject {
			continue
		}
		env := &eventsv1.Envelope{}
		if err := proto.Unmarshal(raw.Data, env); err != nil {
			t.Fatal(err)
		}
		m := newT()
		if err := env.GetPayload().UnmarshalTo(m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func createdEvents(t *testing.T, s *servicetest.Service) []*schedulingv1.EnrollmentCreated {
	return published(t, s, subjectEnrolled, func() *schedulingv1.EnrollmentCreated { return &schedulingv1.EnrollmentCreated{} })
}

func waitlistedEvents(t *testing.T, s *servicetest.Service) []*schedulingv1.PatientWaitlisted {
	return published(t, s, subjectWaitlisted, func() *schedulingv1.PatientWaitlisted { return &schedulingv1.PatientWaitlisted{} })
}

func endedEvents(t *testing.T, s *servicetest.Service) []*schedulingv1.EnrollmentEnded {
	return published(t, s, subjectEnded, func() *schedulingv1.EnrollmentEnded { return &schedulingv1.EnrollmentEnded{} })
}

// enrollmentOf is a patient's enrollment in a track, as stored.
type enrollmentRow struct {
	id, status, replacedBy, replaces string
}

func enrollmentOf(t *testing.T, s *servicetest.Service, patientID, trackID string) enrollmentRow {
	t.Helper()
	var r enrollmentRow
	if err := s.Pool.QueryRow(context.Background(), `SELECT id::text, status, COALESCE(replaced_by::text, ''), COALESCE(replaces::text, '')
		FROM enrollments WHERE patient_id = $1 AND track_id = $2 ORDER BY id DESC LIMIT 1`, patientID, trackID).
		Scan(&r.id, &r.status, &r.replacedBy, &r.replaces); err != nil {
		t.Fatalf("enrollment of patient in track: %v", err)
	}
	return r
}

// history renders an enrollment's history as "from>to reason".
func history(t *testing.T, s *servicetest.Service, enrollmentID string) []string {
	t.Helper()
	rows, err := s.Pool.Query(context.Background(), `SELECT COALESCE(from_status, '') || '>' || to_status || ' ' || reason
		FROM enrollment_history WHERE enrollment_id = $1 ORDER BY at, id`, enrollmentID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			t.Fatal(err)
		}
		out = append(out, h)
	}
	return out
}

func wantHistory(t *testing.T, s *servicetest.Service, what, enrollmentID string, want ...string) {
	t.Helper()
	if got := history(t, s, enrollmentID); !slices.Equal(got, want) {
		t.Errorf("%s history = %q, want %q", what, got, want)
	}
}

func seatCounts(t *testing.T, s *servicetest.Service, trackID string) (active, waiting int) {
	t.Helper()
	return s.Count(t, "SELECT count(*) FROM enrollments WHERE track_id = $1 AND status = 'active'", trackID),
		s.Count(t, "SELECT count(*) FROM enrollments WHERE track_id = $1 AND status = 'waitlisted'", trackID)
}

// A track of two seats: two admissions are seated, the third waits; discharging a seated
// patient promotes the head of the waitlist, all on the bus.
func TestAdmissionsFillSeatsThenWaitlist(t *testing.T) {
	s := start(t)
	trackID := seatTrack(t, s, clinicA, "adult-evening", 2)
	p1, p2, p3 := bus.NewID(), bus.NewID(), bus.NewID()
	ep1 := admit(t, s, p1, clinicA, "adult-evening")
	admit(t, s, p2, clinicA, "adult-evening")
	admit(t, s, p3, clinicA, "adult-evening")

	if a, w := seatCounts(t, s, trackID); a != 2 || w != 1 {
		t.Fatalf("active %d, waitlisted %d; want 2, 1", a, w)
	}
	created := createdEvents(t, s)
	if len(created) != 2 || created[0].GetPatientId() != p1 || created[1].GetPatientId() != p2 {
		t.Fatalf("EnrollmentCreated = %v", created)
	}
	for _, c := range created {
		if c.GetTrackId() != trackID || c.GetProgramCode() != "adult-iop" || c.GetFromWaitlist() || c.GetReplacesEnrollmentId() != "" {
			t.Errorf("EnrollmentCreated = %v", c)
		}
	}
	w3 := enrollmentOf(t, s, p3, trackID)
	waitlisted := waitlistedEvents(t, s)
	if len(waitlisted) != 1 {
		t.Fatalf("PatientWaitlisted = %v", waitlisted)
	}
	if w := waitlisted[0]; w.GetEnrollmentId() != w3.id || w.GetPatientId() != p3 || w.GetTrackId() != trackID ||
		w.GetPosition() != 1 || w.GetProgramTrack() != "adult-evening" || w.GetWaitlistedAt() == nil || w.GetClinicId() != clinicA {
		t.Fatalf("PatientWaitlisted = %v", w)
	}

	// The waitlist and the patient's enrollment through the API.
	client := schedulingv1connect.NewSchedulingServiceClient(http.DefaultClient, s.URL)
	clinician := s.Token(t, "clinician-1", []string{"clinician"}, []string{clinicA})
	list, err := client.ListWaitlist(context.Background(), call(clinician, &schedulingv1.ListWaitlistRequest{TrackId: trackID}))
	if err != nil || len(list.Msg.GetEnrollments()) != 1 || list.Msg.GetEnrollments()[0].GetEnrollmentId() != w3.id ||
		list.Msg.GetEnrollments()[0].GetStatus() != "waitlisted" || list.Msg.GetEnrollments()[0].GetWaitlistedAt() == nil {
		t.Fatalf("ListWaitlist = %v, %v", list, err)
	}

	// A discharge of a patient scheduling never saw changes nothing.
	discharge(t, s, bus.NewID(), bus.NewID(), clinicA)
	if n := s.StreamCount(t, "SCHEDULING", ""); n != 3 {
		t.Fatalf("SCHEDULING messages = %d, want 3", n)
	}

	// Discharging p1 frees a seat: p3 is promoted, in the same transaction.
	discharge(t, s, p1, ep1, clinicA)
	e1 := enrollmentOf(t, s, p1, trackID)
	ended := endedEvents(t, s)
	if len(ended) != 1 || ended[0].GetEnrollmentId() != e1.id || ended[0].GetReason() != "discharged" ||
		ended[0].GetTrackId() != trackID || ended[0].GetEndedAt() == nil {
		t.Fatalf("EnrollmentEnded = %v", ended)
	}
	created = createdEvents(t, s)
	if len(created) != 3 {
		t.Fatalf("EnrollmentCreated = %d, want 3", len(created))
	}
	want := &schedulingv1.EnrollmentCreated{EnrollmentId: w3.id, PatientId: p3, ClinicId: clinicA, ProgramTrack: "adult-evening",
		StartDate: "2026-03-02", TrackId: trackID, ProgramCode: "adult-iop", FromWaitlist: true}
	if !proto.Equal(created[2], want) {
		t.Fatalf("promotion = %v, want %v", created[2], want)
	}
	if a, w := seatCounts(t, s, trackID); a != 2 || w != 0 {
		t.Fatalf("active %d, waitlisted %d; want 2, 0", a, w)
	}
	wantHistory(t, s, "discharged", e1.id, ">active admitted", "active>ended discharged")
	wantHistory(t, s, "promoted", w3.id, ">waitlisted admitted", "waitlisted>active promoted")

	got, err := client.GetEnrollment(context.Background(), call(clinician, &schedulingv1.GetEnrollmentRequest{PatientId: p3}))
	if err != nil || got.Msg.GetEnrollment().GetStatus() != "active" || got.Msg.GetEnrollment().GetEnrolledAt() == nil {
		t.Fatalf("GetEnrollment = %v, %v", got, err)
	}
	_, err = client.GetEnrollment(context.Background(), call(clinician, &schedulingv1.GetEnrollmentRequest{PatientId: p1}))
	wantCode(t, err, connect.CodeNotFound) // ended: no current enrollment

	// The discharge again (a redelivery under a new event id) ends and promotes nothing more.
	discharge(t, s, p1, ep1, clinicA)
	if n := len(endedEvents(t, s)); n != 1 {
		t.Fatalf("EnrollmentEnded after a repeated discharge = %d", n)
	}
}

// Admissions racing for the last seat, each in its own transaction through the consumer's
// handler: exactly one is seated.
func TestConcurrentAdmissionsForTheLastSeat(t *testing.T) {
	s := start(t)
	trackID := seatTrack(t, s, clinicA, "adult-evening", 3)
	admit(t, s, bus.NewID(), clinicA, "adult-evening")
	admit(t, s, bus.NewID(), clinicA, "adult-evening")

	store := bus.NewStore(s.Pool, "scheduling")
	store.EnableClinicScope()
	h := events.NewAdmissions(app.New(store, postgres.NewEnrollments(store)), s.Log)
	const racers = 4
	envs := make([]*eventsv1.Envelope, racers)
	for i := range envs {
		envs[i] = envelope(t, admitted(bus.NewID(), clinicA), clinicA)
	}
	start := make(chan struct{})
	errs := make(chan error, racers)
	var wg sync.WaitGroup
	for _, env := range envs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// As the consumer runs it: in system scope.
			errs <- store.InTx(auth.WithSystemScope(context.Background()), func(ctx context.Context, tx *bus.Tx) error {
				return h.Handle(ctx, tx, &bus.Delivery{Subject: subjectAdmitted, Envelope: env, NumDelivered: 1})
			})
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if a, w := seatCounts(t, s, trackID); a != 3 || w != racers-1 {
		t.Fatalf("active %d, waitlisted %d; want 3, %d", a, w, racers-1)
	}
	testkit.Eventually(t, 10*time.Second, "events of the race on SCHEDULING", func() bool {
		return s.StreamCount(t, "SCHEDULING", subjectEnrolled) == 3 && s.StreamCount(t, "SCHEDULING", subjectWaitlisted) == racers-1
	})
	var positions []int32
	for _, w := range waitlistedEvents(t, s) {
		positions = append(positions, w.GetPosition())
	}
	slices.Sort(positions)
	if !slices.Equal(positions, []int32{1, 2, 3}) {
		t.Fatalf("positions = %v", positions)
	}
}

// Track switches: to a full track (waitlisted, the seat kept until a seat frees there, then
// promoted, which frees the old seat for that track's waitlist), and to a track with a free
// seat (at once), with their events and history.
func TestSwitchTrack(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	day := seatTrack(t, s, clinicA, "adult-day", 2)
	evening := seatTrack(t, s, clinicA, "adult-evening", 1)
	weekend := seatTrack(t, s, clinicA, "adult-weekend", 3)
	client := schedulingv1connect.NewSchedulingServiceClient(http.DefaultClient, s.URL)
	scheduler := s.Token(t, "scheduler-1", []string{"scheduler"}, []string{clinicA})
	switchTo := func(enrollmentID, code, key string) *schedulingv1.SwitchTrackResponse {
		t.Helper()
		resp, err := client.SwitchTrack(ctx, call(scheduler, &schedulingv1.SwitchTrackRequest{
			EnrollmentId: enrollmentID, TrackCode: code, Reason: " new work hours\n", IdempotencyKey: key})) // kept trimmed
		if err != nil {
			t.Fatalf("SwitchTrack to %s: %v", code, err)
		}
		s.Relayed(t)
		return resp.Msg
	}

	p1, p2, p3, p4, p5 := bus.NewID(), bus.NewID(), bus.NewID(), bus.NewID(), bus.NewID()
	admit(t, s, p1, clinicA, "adult-day")
	ep2 := admit(t, s, p2, clinicA, "adult-evening")
	admit(t, s, p3, clinicA, "adult-day")
	admit(t, s, p4, clinicA, "adult-day") // day is full: waits
	p3day, p4day := enrollmentOf(t, s, p3, day), enrollmentOf(t, s, p4, day)
	if p4day.status != "waitlisted" {
		t.Fatalf("p4 = %+v", p4day)
	}

	// p3 asks for the evening track, which is full: waitlisted there, the day seat kept.
	resp := switchTo(p3day.id, "adult-evening", "switch-p3-evening")
	p3eve := resp.GetEnrollment()
	if p3eve.GetStatus() != "waitlisted" || p3eve.GetTrackId() != evening || p3eve.GetProgramTrack() != "adult-evening" || resp.GetReplayed() {
		t.Fatalf("switch to a full track = %v", resp)
	}
	if r := enrollmentOf(t, s, p3, day); r.status != "active" || r.replacedBy != p3eve.GetEnrollmentId() {
		t.Fatalf("p3's day enrollment during the pending switch = %+v", r)
	}
	if w := waitlistedEvents(t, s); len(w) != 2 || w[1].GetEnrollmentId() != p3eve.GetEnrollmentId() || w[1].GetPosition() != 1 {
		t.Fatalf("PatientWaitlisted = %v", w)
	}
	got, err := client.GetEnrollment(ctx, call(scheduler, &schedulingv1.GetEnrollmentRequest{PatientId: p3}))
	if err != nil || got.Msg.GetEnrollment().GetEnrollmentId() != p3day.id ||
		got.Msg.GetEnrollment().GetReplacedByEnrollmentId() != p3eve.GetEnrollmentId() {
		t.Fatalf("GetEnrollment during the pending switch = %v, %v", got, err)
	}
	if n := len(endedEvents(t, s)); n != 0 {
		t.Fatalf("EnrollmentEnded = %d before any seat changed", n)
	}

	// p2 leaves the evening track: p3 is promoted there, which ends p3's day enrollment and
	// gives its seat to p4, the head of the day waitlist. One transaction, five events.
	discharge(t, s, p2, ep2, clinicA)
	ended := endedEvents(t, s)
	if len(ended) != 2 || ended[0].GetPatientId() != p2 || ended[0].GetReason() != "discharged" ||
		ended[1].GetEnrollmentId() != p3day.id || ended[1].GetReason() != "switched" || ended[1].GetTrackId() != day {
		t.Fatalf("EnrollmentEnded = %v", ended)
	}
	created := createdEvents(t, s)
	if len(created) != 5 {
		t.Fatalf("EnrollmentCreated = %d, want 5 (3 admissions, 2 promotions)", len(created))
	}
	if c := created[3]; c.GetEnrollmentId() != p3eve.GetEnrollmentId() || !c.GetFromWaitlist() || c.GetReplacesEnrollmentId() != p3day.id || c.GetTrackId() != evening {
		t.Errorf("promotion of the switch = %v", c)
	}
	if c := created[4]; c.GetEnrollmentId() != p4day.id || !c.GetFromWaitlist() || c.GetReplacesEnrollmentId() != "" || c.GetTrackId() != day {
		t.Errorf("promotion into the freed day seat = %v", c)
	}
	if r := enrollmentOf(t, s, p3, day); r.status != "switched" || r.replacedBy != p3eve.GetEnrollmentId() {
		t.Errorf("p3's day enrollment = %+v", r)
	}
	wantHistory(t, s, "p3 day", p3day.id, ">active admitted", "active>switched switched")
	wantHistory(t, s, "p3 evening", p3eve.GetEnrollmentId(), ">waitlisted switch", "waitlisted>active promoted")
	wantHistory(t, s, "p4 day", p4day.id, ">waitlisted admitted", "waitlisted>active promoted")
	var note, actor string
	if err := s.Pool.QueryRow(ctx, `SELECT note, actor FROM enrollment_history WHERE enrollment_id = $1 AND reason = 'switch'`,
		p3eve.GetEnrollmentId()).Scan(&note, &actor); err != nil || note != "new work hours" || actor != "scheduler-1" {
		t.Errorf("switch history note %q actor %q (%v)", note, actor, err)
	}

	// Day is full again (p1, p4); p5 waits there. p1 switches to the weekend track, which
	// has seats: at once, and p1's day seat goes to p5.
	admit(t, s, p5, clinicA, "adult-day")
	p1day, p5day := enrollmentOf(t, s, p1, day), enrollmentOf(t, s, p5, day)
	resp = switchTo(p1day.id, "adult-weekend", "switch-p1-weekend")
	p1wk := resp.GetEnrollment()
	if p1wk.GetStatus() != "active" || p1wk.GetTrackId() != weekend || p1wk.GetEnrolledAt() == nil {
		t.Fatalf("switch to a free seat = %v", resp)
	}
	created = createdEvents(t, s)
	if len(created) != 7 {
		t.Fatalf("EnrollmentCreated = %d, want 7", len(created))
	}
	if c := created[5]; c.GetEnrollmentId() != p1wk.GetEnrollmentId() || c.GetFromWaitlist() || c.GetReplacesEnrollmentId() != p1day.id {
		t.Errorf("switch EnrollmentCreated = %v", c)
	}
	if c := created[6]; c.GetEnrollmentId() != p5day.id || !c.GetFromWaitlist() {
		t.Errorf("promotion into p1's day seat = %v", c)
	}
	if e := endedEvents(t, s); len(e) != 3 || e[2].GetEnrollmentId() != p1day.id || e[2].GetReason() != "switched" {
		t.Errorf("EnrollmentEnded = %v", e)
	}
	wantHistory(t, s, "p1 day", p1day.id, ">active admitted", "active>switched switched")
	wantHistory(t, s, "p1 weekend", p1wk.GetEnrollmentId(), ">active switch")
	for _, tc := range []struct {
		track          string
		active, waitng int
	}{{day, 2, 0}, {evening, 1, 0}, {weekend, 1, 0}} {
		if a, w := seatCounts(t, s, tc.track); a != tc.active || w != tc.waitng {
			t.Errorf("track %s: active %d waitlisted %d, want %d %d", tc.track, a, w, tc.active, tc.waitng)
		}
	}

	// A pending switch can be withdrawn by switching the waitlisted enrollment back: p4 (day)
	// asks for the evening (full), then for the day again.
	resp = switchTo(p4day.id, "adult-evening", "switch-p4-evening")
	if resp.GetEnrollment().GetStatus() != "waitlisted" {
		t.Fatalf("p4 to evening = %v", resp)
	}
	p4eve := resp.GetEnrollment().GetEnrollmentId()
	back := switchTo(p4eve, "adult-day", "switch-p4-back")
	if e := back.GetEnrollment(); e.GetEnrollmentId() != p4day.id || e.GetStatus() != "active" || e.GetReplacedByEnrollmentId() != "" {
		t.Fatalf("withdrawn switch = %v", back)
	}
	// The withdrawn replacement ends as switched (back to the seat it never left).
	if e := endedEvents(t, s); len(e) != 4 || e[3].GetEnrollmentId() != p4eve || e[3].GetReason() != "switched" ||
		e[3].GetTrackId() != evening || e[3].GetPatientId() != p4 {
		t.Errorf("EnrollmentEnded after the withdrawal = %v", e)
	}
	wantHistory(t, s, "p4 evening", p4eve, ">waitlisted switch", "waitlisted>switched switch_cancelled")
	wantHistory(t, s, "p4 day", p4day.id, ">waitlisted admitted", "waitlisted>active promoted")
	if a, w := seatCounts(t, s, evening); a != 1 || w != 0 {
		t.Fatalf("evening: active %d waitlisted %d", a, w)
	}
}

func TestSwitchTrackRulesAccessAndIdempotency(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	day := seatTrack(t, s, clinicA, "adult-day", 5)
	seatTrack(t, s, clinicA, "adult-evening", 5)
	seatTrack(t, s, clinicA, "adult-closed", 5)
	if _, err := s.Pool.Exec(ctx, "UPDATE tracks SET active = false WHERE code = 'adult-closed'"); err != nil {
		t.Fatal(err)
	}
	seatTrackOf(t, s, clinicA, "adolescent-iop", "teen-afternoon", 5)
	seatTrack(t, s, clinicB, "adult-other", 5)
	client := schedulingv1connect.NewSchedulingServiceClient(http.DefaultClient, s.URL)
	p := bus.NewID()
	admit(t, s, p, clinicA, "adult-day")
	e := enrollmentOf(t, s, p, day)

	tok := func(subject string, roles []string, clinics ...string) string {
		return s.Token(t, subject, roles, clinics)
	}
	scheduler := tok("scheduler-1", []string{"scheduler"}, clinicA)
	req := func(enrollmentID, code, key string) *schedulingv1.SwitchTrackRequest {
		return &schedulingv1.SwitchTrackRequest{EnrollmentId: enrollmentID, TrackCode: code, Reason: "schedule", IdempotencyKey: key}
	}
	withReason := func(r *schedulingv1.SwitchTrackRequest, reason string) *schedulingv1.SwitchTrackRequest {
		r.Reason = reason
		return r
	}
	tests := []struct {
		name     string
		token    string
		req      *schedulingv1.SwitchTrackRequest
		want     connect.Code
		wantRule string // for invalid_argument: "track_code <rule>"
	}{
		{"other program", scheduler, req(e.id, "teen-afternoon", "key-rule-1"), connect.CodeInvalidArgument, "track_code track_code.same_program"},
		{"unknown track", scheduler, req(e.id, "adult-nowhere", "key-rule-2"), connect.CodeInvalidArgument, "track_code track_code.known"},
		{"another clinic's track", scheduler, req(e.id, "adult-other", "key-rule-3"), connect.CodeInvalidArgument, "track_code track_code.known"},
		{"same track", scheduler, req(e.id, "adult-day", "key-rule-4"), connect.CodeInvalidArgument, "track_code track_code.different"},
		{"inactive track", scheduler, req(e.id, "adult-closed", "key-rule-5"), connect.CodeFailedPrecondition, ""},
		{"bad track code", scheduler, req(e.id, "Adult Day", "key-rule-6"), connect.CodeInvalidArgument, "track_code string.pattern"},
		{"short key", scheduler, req(e.id, "adult-evening", "k"), connect.CodeInvalidArgument, "idempotency_key string.min_len"},
		{"blank reason", scheduler, withReason(req(e.id, "adult-evening", "key-rule-12"), " \t "), connect.CodeInvalidArgument, "reason reason.not_blank"},
		{"control character in reason", scheduler, withReason(req(e.id, "adult-evening", "key-rule-13"), "new\x07hours"), connect.CodeInvalidArgument, "reason reason.not_blank"},
		{"unknown enrollment", scheduler, req(bus.NewID(), "adult-evening", "key-rule-7"), connect.CodeNotFound, ""},
		{"scheduler of another clinic", tok("scheduler-2", []string{"scheduler"}, clinicB), req(e.id, "adult-evening", "key-rule-8"), connect.CodeNotFound, ""},
		{"clinician", tok("clinician-1", []string{"clinician"}, clinicA), req(e.id, "adult-evening", "key-rule-9"), connect.CodePermissionDenied, ""},
		{"operator", tok("operator-1", []string{"operator"}, clinicA), req(e.id, "adult-evening", "key-rule-10"), connect.CodePermissionDenied, ""},
		{"no token", "", req(e.id, "adult-evening", "key-rule-11"), connect.CodeUnauthenticated, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.SwitchTrack(ctx, call(tt.token, tt.req))
			wantCode(t, err, tt.want)
			if tt.wantRule != "" && !slices.Contains(violations(err), tt.wantRule) {
				t.Fatalf("violations = %v, want %s", violations(err), tt.wantRule)
			}
		})
	}
	if n := s.Count(t, "SELECT count(*) FROM enrollments"); n != 1 {
		t.Fatalf("enrollments = %d after refused switches", n)
	}

	// A key is used once: the repeat replays the first response, changing nothing.
	first, err := client.SwitchTrack(ctx, call(scheduler, req(e.id, "adult-evening", "key-once")))
	if err != nil || first.Msg.GetReplayed() {
		t.Fatal(first, err)
	}
	s.Relayed(t)
	again, err := client.SwitchTrack(ctx, call(scheduler, req(e.id, "adult-evening", "key-once")))
	if err != nil || !again.Msg.GetReplayed() || !proto.Equal(again.Msg.GetEnrollment(), first.Msg.GetEnrollment()) {
		t.Fatalf("replay = %v, %v", again, err)
	}
	s.Relayed(t)
	if n := s.Count(t, "SELECT count(*) FROM enrollments"); n != 2 {
		t.Fatalf("enrollments = %d, want 2", n)
	}
	if n := s.StreamCount(t, "SCHEDULING", subjectEnrolled); n != 2 {
		t.Fatalf("EnrollmentCreated = %d, want 2 (admission, switch)", n)
	}
	// The same key for another request is refused; another caller's key is its own.
	_, err = client.SwitchTrack(ctx, call(scheduler, req(first.Msg.GetEnrollment().GetEnrollmentId(), "adult-day", "key-once")))
	wantCode(t, err, connect.CodeFailedPrecondition)
	// The switched enrollment can no longer be switched.
	_, err = client.SwitchTrack(ctx, call(tok("admin-1", []string{"admin"}, auth.AllClinics), req(e.id, "adult-day", "key-once")))
	wantCode(t, err, connect.CodeFailedPrecondition)

	// ListWaitlist: the track's clinic decides; another clinic's track is not_found. The
	// small track is full: its second admission waits.
	small := seatTrack(t, s, clinicA, "adult-small", 1)
	seated, waiting := bus.NewID(), bus.NewID()
	admit(t, s, seated, clinicA, "adult-small")
	admit(t, s, waiting, clinicA, "adult-small")
	for _, tc := range []struct {
		name  string
		token string
		track string
		want  connect.Code
	}{
		{"intake coordinator of the clinic", tok("ic-1", []string{"intake_coordinator"}, clinicA), small, 0},
		{"scheduler of another clinic", tok("scheduler-2", []string{"scheduler"}, clinicB), small, connect.CodeNotFound},
		{"unknown track", scheduler, bus.NewID(), connect.CodeNotFound},
		{"billing role", tok("billing-1", []string{"billing"}, clinicA), small, connect.CodePermissionDenied},
		{"not a uuid", scheduler, "track-1", connect.CodeInvalidArgument},
	} {
		t.Run("ListWaitlist "+tc.name, func(t *testing.T) {
			resp, err := client.ListWaitlist(ctx, call(tc.token, &schedulingv1.ListWaitlistRequest{TrackId: tc.track}))
			if tc.want == 0 {
				if err != nil || len(resp.Msg.GetEnrollments()) != 1 || resp.Msg.GetEnrollments()[0].GetPatientId() != waiting ||
					resp.Msg.GetEnrollments()[0].GetStatus() != "waitlisted" {
					t.Fatalf("ListWaitlist = %v, %v", resp, err)
				}
				return
			}
			wantCode(t, err, tc.want)
		})
	}
}
