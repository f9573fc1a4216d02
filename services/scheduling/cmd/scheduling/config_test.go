package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/rpc"
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/pkg/testkit"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1/schedulingv1connect"

	"github.com/trellis-health/trellis/services/scheduling/demo"
	"github.com/trellis-health/trellis/services/scheduling/internal/testscope"
)

const (
	subjectClinicConfigured  = "trellis.scheduling.clinic.configured.v1"
	subjectTrackConfigured   = "trellis.scheduling.track.configured.v1"
	subjectProgramConfigured = "trellis.scheduling.program.configured.v1"
)

// configEnv is the service running in-process with a client that calls as a given token.
type configEnv struct {
	*servicetest.Service
	client schedulingv1connect.SchedulingServiceClient
}

func startConfig(t *testing.T, env map[string]string) *configEnv {
	t.Helper()
	var cfg Config
	s := servicetest.Start(t, spec(), &cfg, env)
	testscope.SystemScoped(t, s)
	return &configEnv{Service: s, client: schedulingv1connect.NewSchedulingServiceClient(http.DefaultClient, s.URL)}
}

func (e *configEnv) tok(t *testing.T, roles []string, clinics ...string) string {
	return e.Token(t, "user-"+strings.Join(roles, "-"), roles, clinics)
}

// call sets the bearer token on a request.
func call[T any](token string, m *T) *connect.Request[T] {
	req := connect.NewRequest(m)
	if token != "" {
		req.Header().Set("Authorization", "Bearer "+token)
	}
	return req
}

// violations renders an invalid_argument error's violations as "field rule".
func violations(err error) []string {
	var out []string
	for _, v := range rpc.Violations(err) {
		out = append(out, v.Field+" "+v.Rule)
	}
	return out
}

func wantCode(t *testing.T, err error, code connect.Code) {
	t.Helper()
	if connect.CodeOf(err) != code {
		t.Fatalf("err = %v, want %s", err, code)
	}
}

// lastPayload decodes the last message on subject of the SCHEDULING stream into m.
func (e *configEnv) lastPayload(t *testing.T, subject string, m proto.Message) *eventsv1.Envelope {
	t.Helper()
	s, err := e.JS.Stream(context.Background(), "SCHEDULING")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetLastMsgForSubject(context.Background(), subject)
	if err != nil {
		t.Fatal(err)
	}
	env := &eventsv1.Envelope{}
	if err := proto.Unmarshal(raw.Data, env); err != nil {
		t.Fatal(err)
	}
	if err := env.GetPayload().UnmarshalTo(m); err != nil {
		t.Fatal(err)
	}
	return env
}

func adultIOP() *schedulingv1.Program {
	return &schedulingv1.Program{ProgramCode: "adult-iop", Name: "Adult IOP", Population: schedulingv1.Population_POPULATION_ADULT,
		LengthWeeks: 12, WeeklyMinimumMinutes: 540}
}

func eveningTrack(clinicID, roomID string) *schedulingv1.Track {
	return &schedulingv1.Track{ClinicId: clinicID, ProgramCode: "adult-iop", TrackCode: "adult-evening",
		TimeOfDay: schedulingv1.TimeOfDay_TIME_OF_DAY_EVENING, Weekdays: []int32{4, 1, 3}, StartTime: "18:00", EndTime: "21:00",
		Capacity: 12, RoomId: roomID, Active: proto.Bool(true)}
}

// configure sets up clinics A and B (a room each) and the adult program, as an admin.
func (e *configEnv) configure(t *testing.T) (roomA, roomB string) {
	t.Helper()
	ctx := context.Background()
	admin := e.tok(t, []string{"admin"}, auth.AllClinics)
	if _, err := e.client.UpsertProgram(ctx, call(admin, &schedulingv1.UpsertProgramRequest{Program: adultIOP()})); err != nil {
		t.Fatal(err)
	}
	rooms := map[string]string{}
	for _, c := range []struct{ id, name, zone string }{{clinicA, "Clinic A", "America/Chicago"}, {clinicB, "Clinic B", "America/Phoenix"}} {
		if _, err := e.client.UpsertClinic(ctx, call(admin, &schedulingv1.UpsertClinicRequest{Clinic: &schedulingv1.Clinic{
			ClinicId: c.id, Name: c.name, TimeZone: c.zone}})); err != nil {
			t.Fatal(err)
		}
		r, err := e.client.UpsertRoom(ctx, call(admin, &schedulingv1.UpsertRoomRequest{Room: &schedulingv1.Room{
			ClinicId: c.id, Name: "Group Room", Seats: 14}}))
		if err != nil {
			t.Fatal(err)
		}
		rooms[c.id] = r.Msg.GetRoom().GetRoomId()
	}
	return rooms[clinicA], rooms[clinicB]
}

func TestConfigUpsertAndList(t *testing.T) {
	e := startConfig(t, nil)
	ctx := context.Background()
	admin := e.tok(t, []string{"admin"}, auth.AllClinics)
	operatorA := e.tok(t, []string{"operator"}, clinicA)
	schedulerA := e.tok(t, []string{"scheduler"}, clinicA)

	// Programs: create, list, update, and an unchanged upsert.
	if _, err := e.client.UpsertProgram(ctx, call(admin, &schedulingv1.UpsertProgramRequest{Program: adultIOP()})); err != nil {
		t.Fatal(err)
	}
	teen := &schedulingv1.Program{ProgramCode: "adolescent-iop", Name: "Adolescent IOP",
		Population: schedulingv1.Population_POPULATION_ADOLESCENT, LengthWeeks: 10, WeeklyMinimumMinutes: 360}
	if _, err := e.client.UpsertProgram(ctx, call(admin, &schedulingv1.UpsertProgramRequest{Program: teen})); err != nil {
		t.Fatal(err)
	}
	teen.LengthWeeks = 12
	if _, err := e.client.UpsertProgram(ctx, call(admin, &schedulingv1.UpsertProgramRequest{Program: teen})); err != nil {
		t.Fatal(err)
	}
	progs, err := e.client.ListPrograms(ctx, call(e.tok(t, []string{"intake_coordinator"}, clinicA), &schedulingv1.ListProgramsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if got := progs.Msg.GetPrograms(); len(got) != 2 || !proto.Equal(got[0], teen) || !proto.Equal(got[1], adultIOP()) {
		t.Fatalf("programs = %v", got)
	}
	// Each change emits ProgramConfigured (network-wide: no clinic in the envelope).
	testkit.Eventually(t, 10*time.Second, "three ProgramConfigured", func() bool {
		return e.StreamCount(t, "SCHEDULING", subjectProgramConfigured) == 3
	})
	var pc schedulingv1.ProgramConfigured
	if env := e.lastPayload(t, subjectProgramConfigured, &pc); !proto.Equal(pc.GetProgram(), teen) || env.GetClinicId() != "" {
		t.Fatalf("ProgramConfigured = %v (envelope clinic %q)", pc.GetProgram(), env.GetClinicId())
	}

	// Clinics: a new one (no id: a new UUIDv7) and one with its network-wide id.
	created, err := e.client.UpsertClinic(ctx, call(admin, &schedulingv1.UpsertClinicRequest{Clinic: &schedulingv1.Clinic{
		Name: "New Clinic", TimeZone: "America/Denver"}}))
	if err != nil {
		t.Fatal(err)
	}
	if u, err := uuid.Parse(created.Msg.GetClinic().GetClinicId()); err != nil || u.Version() != 7 {
		t.Fatalf("new clinic id %q is not a UUIDv7", created.Msg.GetClinic().GetClinicId())
	}
	clinic := &schedulingv1.Clinic{ClinicId: clinicA, Name: "Riverside", TimeZone: "America/Chicago", Npi: "1234567893",
		Phone: "+13125550100", Address: &schedulingv1.Address{Lines: []string{"1 River Rd"}, City: "Chicago", State: "IL", PostalCode: "60601"}}
	got, err := e.client.UpsertClinic(ctx, call(operatorA, &schedulingv1.UpsertClinicRequest{Clinic: clinic}))
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got.Msg.GetClinic(), clinic) {
		t.Fatalf("clinic = %v, want %v", got.Msg.GetClinic(), clinic)
	}
	testkit.Eventually(t, 10*time.Second, "two ClinicConfigured", func() bool {
		return e.StreamCount(t, "SCHEDULING", subjectClinicConfigured) == 2
	})
	var cc schedulingv1.ClinicConfigured
	if env := e.lastPayload(t, subjectClinicConfigured, &cc); !proto.Equal(cc.GetClinic(), clinic) || env.GetClinicId() != clinicA {
		t.Fatalf("ClinicConfigured = %v (envelope clinic %s)", cc.GetClinic(), env.GetClinicId())
	}
	// The same clinic again changes nothing and emits nothing; a change emits.
	if _, err := e.client.UpsertClinic(ctx, call(operatorA, &schedulingv1.UpsertClinicRequest{Clinic: clinic})); err != nil {
		t.Fatal(err)
	}
	clinic.Phone = "+13125550111"
	if _, err := e.client.UpsertClinic(ctx, call(operatorA, &schedulingv1.UpsertClinicRequest{Clinic: clinic})); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "third ClinicConfigured", func() bool {
		return e.StreamCount(t, "SCHEDULING", subjectClinicConfigured) == 3
	})
	e.Relayed(t)
	if n := e.StreamCount(t, "SCHEDULING", subjectClinicConfigured); n != 3 {
		t.Fatalf("ClinicConfigured messages = %d, want 3 (an unchanged upsert emits nothing)", n)
	}
	if e.lastPayload(t, subjectClinicConfigured, &cc); cc.GetClinic().GetPhone() != "+13125550111" {
		t.Fatalf("last ClinicConfigured = %v", cc.GetClinic())
	}
	// A clinic-A operator lists clinic A only; an admin lists all three, by name.
	if _, err := e.client.UpsertClinic(ctx, call(admin, &schedulingv1.UpsertClinicRequest{Clinic: &schedulingv1.Clinic{
		ClinicId: clinicB, Name: "Zeta", TimeZone: "America/Phoenix"}})); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		token string
		want  []string
	}{{operatorA, []string{clinicA}}, {admin, []string{created.Msg.GetClinic().GetClinicId(), clinicA, clinicB}}} {
		list, err := e.client.ListClinics(ctx, call(c.token, &schedulingv1.ListClinicsRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, x := range list.Msg.GetClinics() {
			ids = append(ids, x.GetClinicId())
		}
		if !slices.Equal(ids, c.want) {
			t.Fatalf("clinics = %v, want %v", ids, c.want)
		}
	}

	// Rooms: create, then update by id.
	room, err := e.client.UpsertRoom(ctx, call(schedulerA, &schedulingv1.UpsertRoomRequest{Room: &schedulingv1.Room{
		ClinicId: clinicA, Name: "Group Room", Seats: 10}}))
	if err != nil {
		t.Fatal(err)
	}
	roomID := room.Msg.GetRoom().GetRoomId()
	room, err = e.client.UpsertRoom(ctx, call(schedulerA, &schedulingv1.UpsertRoomRequest{Room: &schedulingv1.Room{
		RoomId: roomID, ClinicId: clinicA, Name: "Group Room 1", Seats: 14}}))
	if err != nil {
		t.Fatal(err)
	}
	if r := room.Msg.GetRoom(); r.GetRoomId() != roomID || r.GetName() != "Group Room 1" || r.GetSeats() != 14 {
		t.Fatalf("room = %v", r)
	}
	if n := e.Count(t, "SELECT count(*) FROM rooms WHERE clinic_id = $1", clinicA); n != 1 {
		t.Fatalf("rooms = %d, want 1", n)
	}

	// Clinicians: create, then replace the availability as a whole.
	w := func(d int32, s, e string) *schedulingv1.WeeklyWindow {
		return &schedulingv1.WeeklyWindow{Weekday: d, Start: s, End: e}
	}
	cl := &schedulingv1.Clinician{ClinicId: clinicA, DisplayName: "Dana Whitfield", Role: schedulingv1.ClinicianRole_CLINICIAN_ROLE_COUNSELOR,
		Credentials: []string{"LADC"}, Active: proto.Bool(true), Availability: []*schedulingv1.WeeklyWindow{w(3, "08:00", "12:00"), w(1, "08:00", "12:00"), w(1, "13:00", "17:00")}}
	created2, err := e.client.UpsertClinician(ctx, call(schedulerA, &schedulingv1.UpsertClinicianRequest{Clinician: cl}))
	if err != nil {
		t.Fatal(err)
	}
	cl.ClinicianId = created2.Msg.GetClinician().GetClinicianId()
	cl.Availability = []*schedulingv1.WeeklyWindow{w(2, "17:30", "21:30")}
	cl.Credentials = []string{"LADC", "CADC"}
	if _, err := e.client.UpsertClinician(ctx, call(schedulerA, &schedulingv1.UpsertClinicianRequest{Clinician: cl})); err != nil {
		t.Fatal(err)
	}
	other := &schedulingv1.Clinician{ClinicId: clinicA, DisplayName: "Abe Prescott", Role: schedulingv1.ClinicianRole_CLINICIAN_ROLE_PRESCRIBER,
		Credentials: []string{"MD"}, Availability: []*schedulingv1.WeeklyWindow{w(5, "09:00", "12:00")}}
	r2, err := e.client.UpsertClinician(ctx, call(schedulerA, &schedulingv1.UpsertClinicianRequest{Clinician: other}))
	if err != nil {
		t.Fatal(err)
	}
	other.ClinicianId = r2.Msg.GetClinician().GetClinicianId()
	other.Active = proto.Bool(true) // left out: active
	cls, err := e.client.ListClinicians(ctx, call(e.tok(t, []string{"clinician"}, clinicA), &schedulingv1.ListCliniciansRequest{ClinicId: strings.ToUpper(clinicA)}))
	if err != nil {
		t.Fatal(err)
	}
	if got := cls.Msg.GetClinicians(); len(got) != 2 || !proto.Equal(got[0], other) || !proto.Equal(got[1], cl) {
		t.Fatalf("clinicians = %v\nwant %v, %v", got, other, cl)
	}
	if n := e.Count(t, "SELECT count(*) FROM clinician_availability WHERE clinician_id = $1", cl.ClinicianId); n != 1 {
		t.Fatalf("availability rows = %d, want 1 (replaced as a whole)", n)
	}

	// Tracks: create (weekdays come back sorted), update the capacity, list with fill.
	tr := eveningTrack(clinicA, roomID)
	res, err := e.client.UpsertTrack(ctx, call(schedulerA, &schedulingv1.UpsertTrackRequest{Track: tr}))
	if err != nil {
		t.Fatal(err)
	}
	tr.TrackId, tr.Weekdays = res.Msg.GetTrack().GetTrackId(), []int32{1, 3, 4}
	if !proto.Equal(res.Msg.GetTrack(), tr) {
		t.Fatalf("track = %v, want %v", res.Msg.GetTrack(), tr)
	}
	day := &schedulingv1.Track{ClinicId: clinicA, ProgramCode: "adult-iop", TrackCode: "adult-day", TimeOfDay: schedulingv1.TimeOfDay_TIME_OF_DAY_DAY,
		Weekdays: []int32{1, 3, 4}, StartTime: "09:00", EndTime: "12:00", Capacity: 12, RoomId: roomID, Active: proto.Bool(true)}
	res, err = e.client.UpsertTrack(ctx, call(schedulerA, &schedulingv1.UpsertTrackRequest{Track: day}))
	if err != nil {
		t.Fatal(err)
	}
	day.TrackId = res.Msg.GetTrack().GetTrackId()
	tr.Capacity = 2
	if _, err := e.client.UpsertTrack(ctx, call(schedulerA, &schedulingv1.UpsertTrackRequest{Track: tr})); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.UpsertTrack(ctx, call(schedulerA, &schedulingv1.UpsertTrackRequest{Track: tr})); err != nil { // unchanged
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "three TrackConfigured", func() bool {
		return e.StreamCount(t, "SCHEDULING", subjectTrackConfigured) == 3
	})
	e.Relayed(t)
	if n := e.StreamCount(t, "SCHEDULING", subjectTrackConfigured); n != 3 {
		t.Fatalf("TrackConfigured messages = %d, want 3", n)
	}
	var tc schedulingv1.TrackConfigured
	if env := e.lastPayload(t, subjectTrackConfigured, &tc); !proto.Equal(tc.GetTrack(), tr) || env.GetClinicId() != clinicA {
		t.Fatalf("TrackConfigured = %v, want %v", tc.GetTrack(), tr)
	}

	// Fill: two active and one waitlisted on the (full) evening track; ended ones and other
	// tracks' enrollments do not count.
	e.enroll(t, tr.TrackId, "active", "active", "waitlisted", "ended", "switched")
	e.enroll(t, day.TrackId, "active")
	tracks, err := e.client.ListTracks(ctx, call(e.tok(t, []string{"intake_coordinator"}, clinicA), &schedulingv1.ListTracksRequest{ClinicId: clinicA}))
	if err != nil {
		t.Fatal(err)
	}
	want := []*schedulingv1.TrackFill{{Track: day, Enrolled: 1, Waitlisted: 0}, {Track: tr, Enrolled: 2, Waitlisted: 1}}
	if got := tracks.Msg.GetTracks(); len(got) != 2 || !proto.Equal(got[0], want[0]) || !proto.Equal(got[1], want[1]) {
		t.Fatalf("tracks = %v\nwant %v", got, want)
	}
	// A seat added by a higher capacity goes to the waitlist at once.
	tr.Capacity = 3
	if _, err := e.client.UpsertTrack(ctx, call(schedulerA, &schedulingv1.UpsertTrackRequest{Track: tr})); err != nil {
		t.Fatal(err)
	}
	tracks, err = e.client.ListTracks(ctx, call(schedulerA, &schedulingv1.ListTracksRequest{ClinicId: clinicA}))
	if err != nil {
		t.Fatal(err)
	}
	if f := tracks.Msg.GetTracks()[1]; f.GetTrack().GetCapacity() != 3 || f.GetEnrolled() != 3 || f.GetWaitlisted() != 0 {
		t.Fatalf("after raising the capacity: %v", f)
	}
	testkit.Eventually(t, 10*time.Second, "EnrollmentCreated from the waitlist", func() bool {
		return e.StreamCount(t, "SCHEDULING", "trellis.scheduling.enrollment.created.v1") == 1
	})
	var ec schedulingv1.EnrollmentCreated
	if e.lastPayload(t, "trellis.scheduling.enrollment.created.v1", &ec); !ec.GetFromWaitlist() || ec.GetTrackId() != tr.TrackId {
		t.Fatalf("EnrollmentCreated = %v", &ec)
	}

	// Lowering the capacity below the enrollment keeps everyone enrolled.
	tr.Capacity = 1
	if _, err := e.client.UpsertTrack(ctx, call(schedulerA, &schedulingv1.UpsertTrackRequest{Track: tr})); err != nil {
		t.Fatal(err)
	}
	tracks, err = e.client.ListTracks(ctx, call(schedulerA, &schedulingv1.ListTracksRequest{ClinicId: clinicA}))
	if err != nil {
		t.Fatal(err)
	}
	if f := tracks.Msg.GetTracks()[1]; f.GetTrack().GetCapacity() != 1 || f.GetEnrolled() != 3 || f.GetWaitlisted() != 0 {
		t.Fatalf("after lowering the capacity: %v", f)
	}

	// Another clinic's list is empty, not an error, for whoever sees it.
	tracks, err = e.client.ListTracks(ctx, call(admin, &schedulingv1.ListTracksRequest{ClinicId: clinicB}))
	if err != nil || len(tracks.Msg.GetTracks()) != 0 {
		t.Fatalf("clinic B tracks = %v, %v", tracks, err)
	}
}

// enroll inserts enrollments of track in the given statuses, as the enrollment use cases
// would leave them.
func (e *configEnv) enroll(t *testing.T, trackID string, statuses ...string) {
	t.Helper()
	for _, st := range statuses {
		var waitlisted, ended, reason any
		switch st {
		case "waitlisted":
			waitlisted = time.Now()
		case "ended":
			ended, reason = time.Now(), "discharged"
		case "switched":
			ended, reason = time.Now(), "switched"
		}
		if _, err := e.Pool.Exec(context.Background(), `
			INSERT INTO enrollments (id, patient_id, clinic_id, program_track, start_date, status, source_event_id,
				track_id, program_code, waitlisted_at, enrolled_at, ended_at, end_reason)
			SELECT $1, $2, clinic_id, code, '2026-03-02', $3, $4, id, program_code, $5, now(), $6, $7 FROM tracks WHERE id = $8`,
			bus.NewID(), bus.NewID(), st, bus.NewID(), waitlisted, ended, reason, trackID); err != nil {
			t.Fatalf("insert %s enrollment: %v", st, err)
		}
	}
}

func TestConfigRejectsInvalidInput(t *testing.T) {
	e := startConfig(t, nil)
	ctx := context.Background()
	roomA, roomB := e.configure(t)
	admin := e.tok(t, []string{"admin"}, auth.AllClinics)
	if _, err := e.client.UpsertTrack(ctx, call(admin, &schedulingv1.UpsertTrackRequest{Track: eveningTrack(clinicA, roomA)})); err != nil {
		t.Fatal(err)
	}
	var existing string
	if err := e.Pool.QueryRow(ctx, "SELECT id::text FROM tracks WHERE code = 'adult-evening'").Scan(&existing); err != nil {
		t.Fatal(err)
	}
	unconfigured := bus.NewID()
	type rpcCall func() error
	track := func(mutate func(*schedulingv1.Track)) rpcCall {
		return func() error {
			tr := eveningTrack(clinicA, roomA)
			tr.TrackCode = "adult-evening-2"
			tr.RoomId = ""
			mutate(tr)
			_, err := e.client.UpsertTrack(ctx, call(admin, &schedulingv1.UpsertTrackRequest{Track: tr}))
			return err
		}
	}
	clinician := func(mutate func(*schedulingv1.Clinician)) rpcCall {
		return func() error {
			c := &schedulingv1.Clinician{ClinicId: clinicA, DisplayName: "Sam", Role: schedulingv1.ClinicianRole_CLINICIAN_ROLE_THERAPIST,
				Availability: []*schedulingv1.WeeklyWindow{{Weekday: 1, Start: "09:00", End: "12:00"}, {Weekday: 1, Start: "13:00", End: "17:00"}}}
			mutate(c)
			_, err := e.client.UpsertClinician(ctx, call(admin, &schedulingv1.UpsertClinicianRequest{Clinician: c}))
			return err
		}
	}
	clinic := func(mutate func(*schedulingv1.Clinic)) rpcCall {
		return func() error {
			c := &schedulingv1.Clinic{ClinicId: clinicA, Name: "Clinic A", TimeZone: "America/Chicago"}
			mutate(c)
			_, err := e.client.UpsertClinic(ctx, call(admin, &schedulingv1.UpsertClinicRequest{Clinic: c}))
			return err
		}
	}
	tests := []struct {
		name string
		call rpcCall
		want []string
	}{
		{"track capacity 0", track(func(tr *schedulingv1.Track) { tr.Capacity = 0 }), []string{"track.capacity capacity.range"}},
		{"track capacity 101", track(func(tr *schedulingv1.Track) { tr.Capacity = 101 }), []string{"track.capacity capacity.range"}},
		{"track weekday twice and end before start", track(func(tr *schedulingv1.Track) { tr.Weekdays = []int32{1, 1}; tr.EndTime = "17:00" }),
			[]string{"track.weekdays[1] weekdays.unique", "track.end_time time.order"}},
		{"track without weekdays", track(func(tr *schedulingv1.Track) { tr.Weekdays = nil }), []string{"track.weekdays weekdays.not_empty"}},
		{"track time of day unspecified", track(func(tr *schedulingv1.Track) { tr.TimeOfDay = 0 }), []string{"track.time_of_day time_of_day.known"}},
		{"track of an unknown program", track(func(tr *schedulingv1.Track) { tr.ProgramCode = "geriatric-iop" }), []string{"track.program_code program.known"}},
		{"track in another clinic's room", track(func(tr *schedulingv1.Track) { tr.RoomId = roomB }), []string{"track.room_id room.known"}},
		{"track in an unknown room", track(func(tr *schedulingv1.Track) { tr.RoomId = bus.NewID() }), []string{"track.room_id room.known"}},
		{"track over the room's seats", track(func(tr *schedulingv1.Track) { tr.RoomId, tr.Capacity = roomA, 15 }), []string{"track.capacity capacity.room_seats"}},
		{"track in a booked room", track(func(tr *schedulingv1.Track) { tr.RoomId, tr.Weekdays, tr.StartTime = roomA, []int32{3}, "20:00" }),
			[]string{"track.room_id room.booked"}},
		{"track code taken", track(func(tr *schedulingv1.Track) { tr.TrackCode = "adult-evening" }), []string{"track.track_code track_code.unique"}},
		{"track of an unconfigured clinic", track(func(tr *schedulingv1.Track) { tr.ClinicId = unconfigured }), []string{"track.clinic_id clinic.known"}},
		{"track changes code and program", track(func(tr *schedulingv1.Track) { tr.TrackId, tr.ProgramCode = existing, "adolescent-iop" }),
			[]string{"track.program_code program_code.immutable", "track.track_code track_code.immutable"}},
		{"track moves clinic", track(func(tr *schedulingv1.Track) {
			tr.TrackId, tr.ClinicId, tr.TrackCode = existing, clinicB, "adult-evening"
		}),
			[]string{"track.clinic_id clinic_id.immutable"}},
		{"clinician windows overlap", clinician(func(c *schedulingv1.Clinician) { c.Availability[1].Start = "11:00" }),
			[]string{"clinician.availability[1] availability.overlap"}},
		{"clinician window end", clinician(func(c *schedulingv1.Clinician) { c.Availability[1].End = "5pm" }),
			[]string{"clinician.availability[1].end time.format"}},
		{"clinician weekday", clinician(func(c *schedulingv1.Clinician) { c.Availability[0].Weekday = 0 }),
			[]string{"clinician.availability[0].weekday weekday.range"}},
		{"clinician without role or name", clinician(func(c *schedulingv1.Clinician) { c.Role, c.DisplayName = 0, "" }),
			[]string{"clinician.display_name name.not_blank", "clinician.role role.known"}},
		{"clinician of an unconfigured clinic", clinician(func(c *schedulingv1.Clinician) { c.ClinicId = unconfigured }),
			[]string{"clinician.clinic_id clinic.known"}},
		{"clinic time zone", clinic(func(c *schedulingv1.Clinic) { c.TimeZone = "Central" }), []string{"clinic.time_zone time_zone.iana"}},
		{"clinic npi and phone", clinic(func(c *schedulingv1.Clinic) { c.Npi, c.Phone = "1234567890", "555-0100" }),
			[]string{"clinic.npi npi.check_digit", "clinic.phone phone.e164"}},
		{"clinic state", clinic(func(c *schedulingv1.Clinic) { c.Address = &schedulingv1.Address{State: "Ill."} }),
			[]string{"clinic.address.state address.state"}},
		{"room without seats", func() error {
			_, err := e.client.UpsertRoom(ctx, call(admin, &schedulingv1.UpsertRoomRequest{Room: &schedulingv1.Room{ClinicId: clinicA, Name: "R", Seats: 0}}))
			return err
		}, []string{"room.seats seats.positive"}},
		{"room name taken", func() error {
			_, err := e.client.UpsertRoom(ctx, call(admin, &schedulingv1.UpsertRoomRequest{Room: &schedulingv1.Room{ClinicId: clinicA, Name: "Group Room", Seats: 3}}))
			return err
		}, []string{"room.name name.unique"}},
		{"program length and minimum", func() error {
			p := adultIOP()
			p.LengthWeeks, p.WeeklyMinimumMinutes, p.Population = 53, 20000, 0
			_, err := e.client.UpsertProgram(ctx, call(admin, &schedulingv1.UpsertProgramRequest{Program: p}))
			return err
		}, []string{"program.population population.known", "program.length_weeks length_weeks.range",
			"program.weekly_minimum_minutes weekly_minimum_minutes.range"}},
	}
	before := e.Count(t, "SELECT count(*) FROM outbox")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			wantCode(t, err, connect.CodeInvalidArgument)
			if got := violations(err); !slices.Equal(got, tt.want) {
				t.Fatalf("violations = %q\nwant %q", got, tt.want)
			}
		})
	}
	if n := e.Count(t, "SELECT count(*) FROM tracks"); n != 1 {
		t.Errorf("tracks = %d, want 1", n)
	}
	if n := e.Count(t, "SELECT count(*) FROM outbox"); n != before {
		t.Errorf("outbox rows %d -> %d: a rejected upsert emitted", before, n)
	}
}

func TestConfigAccess(t *testing.T) {
	e := startConfig(t, nil)
	ctx := context.Background()
	roomA, _ := e.configure(t)
	admin := e.tok(t, []string{"admin"}, auth.AllClinics)
	res, err := e.client.UpsertTrack(ctx, call(admin, &schedulingv1.UpsertTrackRequest{Track: eveningTrack(clinicA, roomA)}))
	if err != nil {
		t.Fatal(err)
	}
	trackA := res.Msg.GetTrack()
	schedulerB := e.tok(t, []string{"scheduler"}, clinicB)
	operatorA := e.tok(t, []string{"operator"}, clinicA)
	clinicianA := e.tok(t, []string{"clinician"}, clinicA)

	// A clinic-B scheduler that names clinic B but an id of clinic A's track, and one that
	// names an id that does not exist, get the same answer.
	hidden := proto.Clone(trackA).(*schedulingv1.Track)
	hidden.ClinicId = clinicB
	absent := proto.Clone(hidden).(*schedulingv1.Track)
	absent.TrackId = bus.NewID()
	tests := []struct {
		name string
		call func() error
		want connect.Code
	}{
		{"clinician may not change tracks", func() error {
			_, err := e.client.UpsertTrack(ctx, call(clinicianA, &schedulingv1.UpsertTrackRequest{Track: trackA}))
			return err
		}, connect.CodePermissionDenied},
		{"intake coordinator may not add rooms", func() error {
			_, err := e.client.UpsertRoom(ctx, call(e.tok(t, []string{"intake_coordinator"}, clinicA),
				&schedulingv1.UpsertRoomRequest{Room: &schedulingv1.Room{ClinicId: clinicA, Name: "X", Seats: 3}}))
			return err
		}, connect.CodePermissionDenied},
		{"scheduler may not change clinics", func() error {
			_, err := e.client.UpsertClinic(ctx, call(e.tok(t, []string{"scheduler"}, clinicA),
				&schedulingv1.UpsertClinicRequest{Clinic: &schedulingv1.Clinic{ClinicId: clinicA, Name: "A", TimeZone: "UTC"}}))
			return err
		}, connect.CodePermissionDenied},
		{"billing may not list clinics", func() error {
			_, err := e.client.ListClinics(ctx, call(e.tok(t, []string{"billing"}, auth.AllClinics), &schedulingv1.ListClinicsRequest{}))
			return err
		}, connect.CodePermissionDenied},
		{"no token", func() error {
			_, err := e.client.ListPrograms(ctx, call("", &schedulingv1.ListProgramsRequest{}))
			return err
		}, connect.CodeUnauthenticated},
		{"track in a clinic the caller may not see", func() error {
			_, err := e.client.UpsertTrack(ctx, call(schedulerB, &schedulingv1.UpsertTrackRequest{Track: trackA}))
			return err
		}, connect.CodePermissionDenied},
		{"room in a clinic the caller may not see", func() error {
			_, err := e.client.UpsertRoom(ctx, call(schedulerB, &schedulingv1.UpsertRoomRequest{Room: &schedulingv1.Room{ClinicId: clinicA, Name: "X", Seats: 3}}))
			return err
		}, connect.CodePermissionDenied},
		{"clinic the caller may not see", func() error {
			_, err := e.client.UpsertClinic(ctx, call(e.tok(t, []string{"operator"}, clinicB),
				&schedulingv1.UpsertClinicRequest{Clinic: &schedulingv1.Clinic{ClinicId: clinicA, Name: "A", TimeZone: "UTC"}}))
			return err
		}, connect.CodePermissionDenied},
		{"list tracks of a clinic the caller may not see", func() error {
			_, err := e.client.ListTracks(ctx, call(schedulerB, &schedulingv1.ListTracksRequest{ClinicId: clinicA}))
			return err
		}, connect.CodePermissionDenied},
		{"list clinicians of a clinic the caller may not see", func() error {
			_, err := e.client.ListClinicians(ctx, call(schedulerB, &schedulingv1.ListCliniciansRequest{ClinicId: clinicA}))
			return err
		}, connect.CodePermissionDenied},
		{"another clinic's track by id", func() error {
			_, err := e.client.UpsertTrack(ctx, call(schedulerB, &schedulingv1.UpsertTrackRequest{Track: hidden}))
			return err
		}, connect.CodeNotFound},
		{"an unknown track id", func() error {
			_, err := e.client.UpsertTrack(ctx, call(schedulerB, &schedulingv1.UpsertTrackRequest{Track: absent}))
			return err
		}, connect.CodeNotFound},
		{"another clinic's room by id", func() error {
			_, err := e.client.UpsertRoom(ctx, call(schedulerB, &schedulingv1.UpsertRoomRequest{Room: &schedulingv1.Room{
				RoomId: roomA, ClinicId: clinicB, Name: "Mine now", Seats: 3}}))
			return err
		}, connect.CodeNotFound},
		{"programs are network-wide: a one-clinic operator may not change them", func() error {
			_, err := e.client.UpsertProgram(ctx, call(operatorA, &schedulingv1.UpsertProgramRequest{Program: adultIOP()}))
			return err
		}, connect.CodePermissionDenied},
		{"a one-clinic operator may not create a clinic without an id", func() error {
			_, err := e.client.UpsertClinic(ctx, call(operatorA, &schedulingv1.UpsertClinicRequest{Clinic: &schedulingv1.Clinic{Name: "N", TimeZone: "UTC"}}))
			return err
		}, connect.CodePermissionDenied},
		{"clinic id not a uuid in a list", func() error {
			_, err := e.client.ListTracks(ctx, call(admin, &schedulingv1.ListTracksRequest{ClinicId: "clinic-a"}))
			return err
		}, connect.CodeInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantCode(t, tt.call(), tt.want) })
	}
	// The not_found answers are indistinguishable.
	_, errHidden := e.client.UpsertTrack(ctx, call(schedulerB, &schedulingv1.UpsertTrackRequest{Track: hidden}))
	_, errAbsent := e.client.UpsertTrack(ctx, call(schedulerB, &schedulingv1.UpsertTrackRequest{Track: absent}))
	if errHidden.Error() != errAbsent.Error() {
		t.Errorf("hidden %v and absent %v differ", errHidden, errAbsent)
	}
	// Nothing changed.
	tracks, err := e.client.ListTracks(ctx, call(admin, &schedulingv1.ListTracksRequest{ClinicId: clinicA}))
	if err != nil || len(tracks.Msg.GetTracks()) != 1 || !proto.Equal(tracks.Msg.GetTracks()[0].GetTrack(), trackA) {
		t.Fatalf("tracks = %v, %v", tracks, err)
	}
	var rooms int
	if err := e.Pool.QueryRow(ctx, "SELECT count(*) FROM rooms WHERE name IN ('X', 'Mine now')").Scan(&rooms); err != nil || rooms != 0 {
		t.Fatalf("rooms = %d, %v", rooms, err)
	}
	// A one-clinic operator may configure its own clinic, by its id (clinic ids are network-wide).
	own := bus.NewID()
	operatorOwn := e.tok(t, []string{"operator"}, own)
	if _, err := e.client.UpsertClinic(ctx, call(operatorOwn, &schedulingv1.UpsertClinicRequest{Clinic: &schedulingv1.Clinic{
		ClinicId: own, Name: "Own", TimeZone: "America/Anchorage"}})); err != nil {
		t.Fatal(err)
	}
}

func TestSeedDemoIsIdempotent(t *testing.T) {
	dbURL := testkit.Database(t)
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("LOG_LEVEL", "warn")
	run := func(args ...string) (int, string) {
		var cfg Config
		var stderr bytes.Buffer
		code := service.Run(context.Background(), spec(), &cfg, args, &bytes.Buffer{}, &stderr)
		return code, stderr.String()
	}
	pool, err := pg.Open(context.Background(), testscope.SystemURL(t, dbURL), "scheduling", 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	tables := []string{
		"SELECT code, name, population, length_weeks, weekly_minimum_minutes, updated_at FROM programs ORDER BY code",
		"SELECT id, name, time_zone, address, npi, phone, updated_at FROM clinics ORDER BY id",
		"SELECT id, clinic_id, name, seats, updated_at FROM rooms ORDER BY id",
		"SELECT id, clinic_id, display_name, role, credentials, active, updated_at FROM clinicians ORDER BY id",
		"SELECT clinician_id, weekday, start_time, end_time FROM clinician_availability ORDER BY 1, 2, 3",
		"SELECT id, clinic_id, program_code, code, time_of_day, weekdays, start_time, end_time, capacity, room_id, active, updated_at FROM tracks ORDER BY id",
		"SELECT subject, count(*) FROM outbox GROUP BY subject ORDER BY subject",
	}
	snap := func() []string {
		var out []string
		for _, q := range tables {
			rows, err := pool.Query(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for rows.Next() {
				vals, err := rows.Values()
				if err != nil {
					t.Fatal(err)
				}
				lines = append(lines, fmt.Sprint(vals...))
			}
			rows.Close()
			out = append(out, strings.Join(lines, "\n"))
		}
		return out
	}
	if code, out := run("seed-demo"); code != 0 {
		t.Fatalf("seed-demo exited %d:\n%s", code, out)
	}
	first := snap()
	if code, out := run("seed-demo"); code != 0 {
		t.Fatalf("second seed-demo exited %d:\n%s", code, out)
	}
	if second := snap(); !slices.Equal(first, second) {
		t.Fatalf("a second seed-demo changed rows:\nfirst:\n%s\nsecond:\n%s", strings.Join(first, "\n--\n"), strings.Join(second, "\n--\n"))
	}
	if code, _ := run("seed-demo", "extra"); code == 0 {
		t.Error("seed-demo accepted an argument")
	}
	counts := map[string]int{"programs": 2, "clinics": 3, "rooms": 6, "clinicians": 6, "clinician_availability": 42, "tracks": 9}
	for table, want := range counts {
		var n int
		if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil || n != want {
			t.Errorf("%s: %d rows (%v), want %d", table, n, err, want)
		}
	}

	// The clinics are intake's demo clinics: same ids, names and zones.
	wantClinics := map[string][2]string{
		"0190a000-0000-7000-8000-000000000001": {"Riverside Health Center", "America/Chicago"},
		"0190a000-0000-7000-8000-000000000002": {"Lakeview Clinic", "America/New_York"},
		"0190a000-0000-7000-8000-000000000003": {"Desert Bloom", "America/Phoenix"},
	}
	rows, err := pool.Query(context.Background(), "SELECT id::text, name, time_zone FROM clinics")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, name, zone string
		if err := rows.Scan(&id, &name, &zone); err != nil {
			t.Fatal(err)
		}
		if w, ok := wantClinics[id]; !ok || w != [2]string{name, zone} {
			t.Errorf("clinic %s %q %s is not an intake demo clinic", id, name, zone)
		}
	}
	rows.Close()

	// The service on that database serves the demo configuration and relays the first run's
	// events: one ClinicConfigured per clinic, one TrackConfigured per track.
	e := startConfig(t, map[string]string{"DATABASE_URL": dbURL})
	testkit.Eventually(t, 10*time.Second, "seed events relayed", func() bool {
		return e.StreamCount(t, "SCHEDULING", subjectClinicConfigured) == 3 && e.StreamCount(t, "SCHEDULING", subjectTrackConfigured) == 9
	})
	tok := e.tok(t, []string{"scheduler"}, demo.DesertBloomClinicID)
	tracks, err := e.client.ListTracks(context.Background(), call(tok, &schedulingv1.ListTracksRequest{ClinicId: demo.DesertBloomClinicID}))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range tracks.Msg.GetTracks() {
		tr := f.GetTrack()
		got = append(got, fmt.Sprintf("%s %s %s %v %s-%s %d %s", tr.GetTrackId(), tr.GetTrackCode(), tr.GetProgramCode(), tr.GetWeekdays(),
			tr.GetStartTime(), tr.GetEndTime(), tr.GetCapacity(), tr.GetRoomId()))
	}
	want := []string{
		demo.DesertBloomAdolescentAfternoonID + " adolescent-afternoon adolescent-iop [2 4] 16:00-19:00 12 " + demo.DesertBloomTeenRoomID,
		demo.DesertBloomAdultDayID + " adult-day adult-iop [1 3 4] 09:00-12:00 12 " + demo.DesertBloomRoomID,
		demo.DesertBloomAdultEveningID + " adult-evening adult-iop [1 3 4] 18:00-21:00 12 " + demo.DesertBloomRoomID,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Desert Bloom tracks:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	cls, err := e.client.ListClinicians(context.Background(), call(tok, &schedulingv1.ListCliniciansRequest{ClinicId: demo.DesertBloomClinicID}))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cls.Msg.GetClinicians()); n != 2 {
		t.Fatalf("Desert Bloom clinicians = %d, want 2", n)
	}
}

// A track or clinician upserted without `active` is active: leaving the field out must not
// deactivate anything.
func TestActiveDefaultsToTrue(t *testing.T) {
	e := startConfig(t, nil)
	roomA, _ := e.configure(t)
	ctx := context.Background()
	admin := e.tok(t, []string{"admin"}, auth.AllClinics)
	tr := eveningTrack(clinicA, roomA)
	tr.Active = nil
	resp, err := e.client.UpsertTrack(ctx, call(admin, &schedulingv1.UpsertTrackRequest{Track: tr}))
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Msg.GetTrack().GetActive() {
		t.Fatal("a track upserted without `active` is inactive")
	}
	c, err := e.client.UpsertClinician(ctx, call(admin, &schedulingv1.UpsertClinicianRequest{Clinician: &schedulingv1.Clinician{
		ClinicId: clinicA, DisplayName: "Sam Counselor", Role: schedulingv1.ClinicianRole_CLINICIAN_ROLE_COUNSELOR}}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Msg.GetClinician().GetActive() {
		t.Fatal("a clinician upserted without `active` is inactive")
	}
	tr.TrackId, tr.Active = resp.Msg.GetTrack().GetTrackId(), proto.Bool(false)
	off, err := e.client.UpsertTrack(ctx, call(admin, &schedulingv1.UpsertTrackRequest{Track: tr}))
	if err != nil || off.Msg.GetTrack().GetActive() {
		t.Fatalf("explicit active=false: %v, %v", off.Msg.GetTrack(), err)
	}
}
