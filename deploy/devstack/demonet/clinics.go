package demonet

import (
	"context"
	"fmt"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-health/trellis/deploy/devstack/stack"
	"github.com/trellis-health/trellis/pkg/rpc"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
)

// Programs of the tracks (scheduling's seeded programs).
const (
	programAdult      = "adult-iop"
	programAdolescent = "adolescent-iop"
)

// ClinicConfig is what the generator upserts in scheduling for a clinic it configures: the
// clinic (with its fixed id), a group room and a teen room, a counselor who runs the groups
// and a therapist for individual visits (with their weekly hours), and the tracks adult-day
// (Mon/Wed/Thu 09:00-12:00), adult-evening (Mon/Wed/Thu 18:00-21:00) and, where it admits
// adolescents, adolescent-afternoon (Tue/Thu 16:00-19:00): the same shape as the seeded
// clinics, with seats the tracks' capacity. Scheduling assigns the ids of rooms, clinicians
// and tracks (its API creates those only without one), so the tracks' room ids are left to
// fill in: rooms[0] is the adult tracks' room, rooms[1] the adolescent track's.
func ClinicConfig(c Clinic, seats int) (*schedulingv1.Clinic, []*schedulingv1.Room, []*schedulingv1.Clinician, []*schedulingv1.Track) {
	clinic := &schedulingv1.Clinic{ClinicId: c.ID, Name: c.Name, TimeZone: c.TimeZone, Phone: "+1" + c.AreaCode + "5550100",
		Address: &schedulingv1.Address{Lines: []string{fmt.Sprintf("%d Main St", 100+10*c.Number)}, City: c.City, State: c.State, PostalCode: c.Zip}}
	rooms := []*schedulingv1.Room{
		{ClinicId: c.ID, Name: "Group Room", Seats: int32(max(14, seats))},
		{ClinicId: c.ID, Name: "Teen Room", Seats: int32(max(12, seats))},
	}
	window := func(day int32, start, end string) *schedulingv1.WeeklyWindow {
		return &schedulingv1.WeeklyWindow{Weekday: day, Start: start, End: end}
	}
	counselor := &schedulingv1.Clinician{ClinicId: c.ID, DisplayName: "Group Counselor, " + c.City,
		Role: schedulingv1.ClinicianRole_CLINICIAN_ROLE_COUNSELOR, Credentials: []string{"CADC"}, Active: proto.Bool(true)}
	therapist := &schedulingv1.Clinician{ClinicId: c.ID, DisplayName: "Therapist, " + c.City,
		Role: schedulingv1.ClinicianRole_CLINICIAN_ROLE_THERAPIST, Credentials: []string{"LCSW"}, Active: proto.Bool(true)}
	for day := int32(1); day <= 5; day++ {
		counselor.Availability = append(counselor.Availability, window(day, "08:30", "12:30"))
		if day <= 4 {
			counselor.Availability = append(counselor.Availability, window(day, "15:30", "21:30"))
		}
		therapist.Availability = append(therapist.Availability, window(day, "09:00", "17:00"))
	}
	tracks := []*schedulingv1.Track{
		{ClinicId: c.ID, ProgramCode: programAdult, TrackCode: TrackDay,
			TimeOfDay: schedulingv1.TimeOfDay_TIME_OF_DAY_DAY, Weekdays: []int32{1, 3, 4}, StartTime: "09:00", EndTime: "12:00",
			Capacity: int32(seats), Active: proto.Bool(true)},
		{ClinicId: c.ID, ProgramCode: programAdult, TrackCode: TrackEvening,
			TimeOfDay: schedulingv1.TimeOfDay_TIME_OF_DAY_EVENING, Weekdays: []int32{1, 3, 4}, StartTime: "18:00", EndTime: "21:00",
			Capacity: int32(seats), Active: proto.Bool(true)},
	}
	if c.Adolescents {
		tracks = append(tracks, &schedulingv1.Track{ClinicId: c.ID, ProgramCode: programAdolescent,
			TrackCode: TrackAdolescent, TimeOfDay: schedulingv1.TimeOfDay_TIME_OF_DAY_DAY, Weekdays: []int32{2, 4},
			StartTime: "16:00", EndTime: "19:00", Capacity: int32(seats), Active: proto.Bool(true)})
	}
	return clinic, rooms, []*schedulingv1.Clinician{counselor, therapist}, tracks
}

// clinics configures, in scheduling, the network's clinics the stack does not seed, then
// waits until intake has learnt each of them from scheduling's ClinicConfigured event: until
// it accepts the clinic's first referral.
func (g *gen) clinics(ctx context.Context) error {
	for _, c := range g.plan.Clinics {
		if !c.Seeded {
			if err := g.configureClinic(ctx, c); err != nil {
				return err
			}
		}
	}
	return each(ctx, g.plan.Spec.Parallel, g.plan.Clinics, func(ctx context.Context, c Clinic) error {
		return g.intakeKnows(ctx, c)
	})
}

// configureClinic upserts clinic c (an upsert that changes nothing emits nothing) and makes
// what it lacks: clinicians are found by name, tracks by code (their rooms with them; there
// is no room listing, so a room is made only with a track that is missing), so a second run
// makes nothing.
func (g *gen) configureClinic(ctx context.Context, c Clinic) error {
	clinic, rooms, clinicians, tracks := ClinicConfig(c, g.plan.Spec.TrackSeats(c))
	if _, err := g.sched.UpsertClinic(ctx, connect.NewRequest(&schedulingv1.UpsertClinicRequest{Clinic: clinic})); err != nil {
		return fmt.Errorf("clinic %s: %w", c.ID, err)
	}
	have, err := g.sched.ListClinicians(ctx, connect.NewRequest(&schedulingv1.ListCliniciansRequest{ClinicId: c.ID}))
	if err != nil {
		return fmt.Errorf("clinicians of %s: %w", c.ID, err)
	}
	named := map[string]bool{}
	for _, cl := range have.Msg.GetClinicians() {
		named[cl.GetDisplayName()] = true
	}
	for _, cl := range clinicians {
		if named[cl.GetDisplayName()] {
			continue
		}
		if _, err := g.sched.UpsertClinician(ctx, connect.NewRequest(&schedulingv1.UpsertClinicianRequest{Clinician: cl})); err != nil {
			return fmt.Errorf("clinician of %s: %w", c.ID, err)
		}
	}
	existing, err := g.sched.ListTracks(ctx, connect.NewRequest(&schedulingv1.ListTracksRequest{ClinicId: c.ID}))
	if err != nil {
		return fmt.Errorf("tracks of %s: %w", c.ID, err)
	}
	coded := map[string]bool{}
	roomOf := map[bool]string{} // adolescent track? -> its room
	for _, t := range existing.Msg.GetTracks() {
		coded[t.GetTrack().GetTrackCode()] = true
		roomOf[t.GetTrack().GetTrackCode() == TrackAdolescent] = t.GetTrack().GetRoomId()
	}
	for _, t := range tracks {
		if coded[t.GetTrackCode()] {
			continue
		}
		teen := t.GetTrackCode() == TrackAdolescent
		if roomOf[teen] == "" {
			room := rooms[0]
			if teen {
				room = rooms[1]
			}
			resp, err := g.sched.UpsertRoom(ctx, connect.NewRequest(&schedulingv1.UpsertRoomRequest{Room: room}))
			if err != nil {
				return fmt.Errorf("room of %s: %w", c.ID, err)
			}
			roomOf[teen] = resp.Msg.GetRoom().GetRoomId()
		}
		t.RoomId = roomOf[teen]
		if _, err := g.sched.UpsertTrack(ctx, connect.NewRequest(&schedulingv1.UpsertTrackRequest{Track: t})); err != nil {
			return fmt.Errorf("track %s of %s: %w", t.GetTrackCode(), c.ID, err)
		}
	}
	return nil
}

// intakeKnows waits until intake takes referrals for clinic c: it has some already (an
// earlier run), or it accepts the clinic's first person's referral, which the funnel then
// finds by email. Until intake has applied ClinicConfigured, the referral is refused as
// clinic_id / clinic.known, and a refused call leaves nothing behind (not even its key).
func (g *gen) intakeKnows(ctx context.Context, c Clinic) error {
	first := -1
	for i, p := range g.plan.People {
		if g.plan.Clinics[p.ClinicIndex].ID == c.ID {
			first = i
			break
		}
	}
	if first < 0 {
		return nil
	}
	have, err := g.intake.ListReferrals(ctx, connect.NewRequest(&intakev1.ListReferralsRequest{ClinicId: c.ID, PageSize: 1}))
	if err != nil {
		return fmt.Errorf("list referrals of %s: %w", c.ID, err)
	}
	if len(have.Msg.GetReferrals()) > 0 {
		return nil
	}
	attempts := 0
	err = stack.Poll(ctx, Wait, "intake to learn clinic "+c.ID+" from scheduling", func() (bool, error) {
		attempts++
		_, err := g.intake.CreateReferral(ctx, connect.NewRequest(g.referralRequest(g.plan.People[first])))
		if err == nil {
			return true, nil
		}
		if connect.CodeOf(err) == connect.CodeInvalidArgument {
			for _, v := range rpc.Violations(err) {
				if v.Field == "clinic_id" && v.Rule == "clinic.known" {
					return false, nil
				}
			}
		}
		return false, fmt.Errorf("first referral of %s: %w", c.ID, err)
	})
	if err == nil && attempts > 1 {
		g.logf("demonet: intake learnt clinic %s after %d tries", c.ID, attempts)
	}
	return err
}
