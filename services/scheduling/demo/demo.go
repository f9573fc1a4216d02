// Package demo is the demo configuration that `scheduling seed-demo` upserts: the two default
// programs and, for each of intake's three demo clinics (same ids and time zones as
// services/intake/demo), two rooms, two clinicians with weekly availability and three
// tracks. Every id is fixed, so a second run updates rather than duplicates, and the dev stack,
// end-to-end tests and other services' tests can refer to them. The people are fictional
// staff; phone numbers are in the reserved 555-01xx range.
//
// The data are Connect messages, ready for the UpsertX calls; each function returns fresh
// messages.
package demo

import (
	"google.golang.org/protobuf/proto"

	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
)

// Demo clinic ids (as in services/intake/demo).
const (
	RiversideClinicID   = "0190a000-0000-7000-8000-000000000001" // America/Chicago
	LakeviewClinicID    = "0190a000-0000-7000-8000-000000000002" // America/New_York
	DesertBloomClinicID = "0190a000-0000-7000-8000-000000000003" // America/Phoenix (no daylight saving)
)

// Program codes.
const (
	AdultIOP      = "adult-iop"
	AdolescentIOP = "adolescent-iop"
)

// Track codes, the same in every demo clinic (intake's demo admissions name them).
const (
	AdultDay            = "adult-day"            // adult IOP, Mon/Wed/Thu 09:00-12:00
	AdultEvening        = "adult-evening"        // adult IOP, Mon/Wed/Thu 18:00-21:00
	AdolescentAfternoon = "adolescent-afternoon" // adolescent IOP, Tue/Thu 16:00-19:00
)

// TrackCapacity is the seats of every demo track.
const TrackCapacity = 12

// Fixed ids of the demo rooms, clinicians and tracks. The last two hex digits are the clinic
// (1 Riverside, 2 Lakeview, 3 Desert Bloom) and the item's number in it.
const (
	RiversideRoomID       = "0190a000-0000-7000-8001-000000000011"
	RiversideTeenRoomID   = "0190a000-0000-7000-8001-000000000012"
	LakeviewRoomID        = "0190a000-0000-7000-8001-000000000021"
	LakeviewTeenRoomID    = "0190a000-0000-7000-8001-000000000022"
	DesertBloomRoomID     = "0190a000-0000-7000-8001-000000000031"
	DesertBloomTeenRoomID = "0190a000-0000-7000-8001-000000000032"

	RiversideCounselorID   = "0190a000-0000-7000-8002-000000000011"
	RiversideTherapistID   = "0190a000-0000-7000-8002-000000000012"
	LakeviewCounselorID    = "0190a000-0000-7000-8002-000000000021"
	LakeviewTherapistID    = "0190a000-0000-7000-8002-000000000022"
	DesertBloomCounselorID = "0190a000-0000-7000-8002-000000000031"
	DesertBloomTherapistID = "0190a000-0000-7000-8002-000000000032"

	RiversideAdultDayID              = "0190a000-0000-7000-8003-000000000011"
	RiversideAdultEveningID          = "0190a000-0000-7000-8003-000000000012"
	RiversideAdolescentAfternoonID   = "0190a000-0000-7000-8003-000000000013"
	LakeviewAdultDayID               = "0190a000-0000-7000-8003-000000000021"
	LakeviewAdultEveningID           = "0190a000-0000-7000-8003-000000000022"
	LakeviewAdolescentAfternoonID    = "0190a000-0000-7000-8003-000000000023"
	DesertBloomAdultDayID            = "0190a000-0000-7000-8003-000000000031"
	DesertBloomAdultEveningID        = "0190a000-0000-7000-8003-000000000032"
	DesertBloomAdolescentAfternoonID = "0190a000-0000-7000-8003-000000000033"
)

// clinic is one demo clinic and the ids of what it holds.
type clinic struct {
	id, name, zone, street, city, state, zip, npi, phone string
	room, teenRoom                                       string
	counselor, therapist                                 staff
	day, evening, adolescent                             string // track ids
}

type staff struct {
	id, name    string
	credentials []string
}

var clinics = []clinic{
	{id: RiversideClinicID, name: "Riverside Health Center", zone: "America/Chicago",
		street: "1200 W River Dr", city: "Chicago", state: "IL", zip: "60607", npi: "1904001017", phone: "+13125550140",
		room: RiversideRoomID, teenRoom: RiversideTeenRoomID,
		counselor: staff{RiversideCounselorID, "Dana Whitfield", []string{"LADC", "CADC"}},
		therapist: staff{RiversideTherapistID, "Marcus Oyelaran", []string{"LCSW"}},
		day:       RiversideAdultDayID, evening: RiversideAdultEveningID, adolescent: RiversideAdolescentAfternoonID},
	{id: LakeviewClinicID, name: "Lakeview Clinic", zone: "America/New_York",
		street: "88 Lakeshore Blvd", city: "Cleveland", state: "OH", zip: "44114", npi: "1904002023", phone: "+12165550150",
		room: LakeviewRoomID, teenRoom: LakeviewTeenRoomID,
		counselor: staff{LakeviewCounselorID, "Priya Natarajan", []string{"LCDC"}},
		therapist: staff{LakeviewTherapistID, "Owen Castellano", []string{"LPC"}},
		day:       LakeviewAdultDayID, evening: LakeviewAdultEveningID, adolescent: LakeviewAdolescentAfternoonID},
	{id: DesertBloomClinicID, name: "Desert Bloom", zone: "America/Phoenix",
		street: "4500 E Camelback Rd", city: "Phoenix", state: "AZ", zip: "85018", npi: "1904003039", phone: "+16025550160",
		room: DesertBloomRoomID, teenRoom: DesertBloomTeenRoomID,
		counselor: staff{DesertBloomCounselorID, "Rosa Delgado", []string{"LISAC"}},
		therapist: staff{DesertBloomTherapistID, "Eli Brandt", []string{"LCSW", "LISAC"}},
		day:       DesertBloomAdultDayID, evening: DesertBloomAdultEveningID, adolescent: DesertBloomAdolescentAfternoonID},
}

// Programs are the two default programs: 12 weeks each, a weekly minimum of 9 hours for
// adults and 6 for adolescents.
func Programs() []*schedulingv1.Program {
	return []*schedulingv1.Program{
		{ProgramCode: AdultIOP, Name: "Adult IOP", Population: schedulingv1.Population_POPULATION_ADULT,
			LengthWeeks: 12, WeeklyMinimumMinutes: 540},
		{ProgramCode: AdolescentIOP, Name: "Adolescent IOP", Population: schedulingv1.Population_POPULATION_ADOLESCENT,
			LengthWeeks: 12, WeeklyMinimumMinutes: 360},
	}
}

// Clinics are the three demo clinics, in three time zones.
func Clinics() []*schedulingv1.Clinic {
	out := make([]*schedulingv1.Clinic, 0, len(clinics))
	for _, c := range clinics {
		out = append(out, &schedulingv1.Clinic{ClinicId: c.id, Name: c.name, TimeZone: c.zone, Npi: c.npi, Phone: c.phone,
			Address: &schedulingv1.Address{Lines: []string{c.street}, City: c.city, State: c.state, PostalCode: c.zip}})
	}
	return out
}

// Rooms are two per clinic: the group room of the adult tracks (14 seats) and the teen room
// of the adolescent track (12 seats). One room would not do: on Thursdays the adolescent
// group (16:00-19:00) and the adult evening group (18:00-21:00) overlap, and a room holds one
// group at a time.
func Rooms() []*schedulingv1.Room {
	out := make([]*schedulingv1.Room, 0, 2*len(clinics))
	for _, c := range clinics {
		out = append(out,
			&schedulingv1.Room{RoomId: c.room, ClinicId: c.id, Name: "Group Room", Seats: 14},
			&schedulingv1.Room{RoomId: c.teenRoom, ClinicId: c.id, Name: "Teen Room", Seats: 12})
	}
	return out
}

func window(day int32, start, end string) *schedulingv1.WeeklyWindow {
	return &schedulingv1.WeeklyWindow{Weekday: day, Start: start, End: end}
}

// Clinicians are two per clinic: a counselor who runs the groups (weekday mornings, and
// Monday to Thursday late afternoons and evenings) and a therapist for individual and family
// sessions (weekdays 09:00-17:00).
func Clinicians() []*schedulingv1.Clinician {
	var out []*schedulingv1.Clinician
	for _, c := range clinics {
		counselor := &schedulingv1.Clinician{ClinicianId: c.counselor.id, ClinicId: c.id, DisplayName: c.counselor.name,
			Role: schedulingv1.ClinicianRole_CLINICIAN_ROLE_COUNSELOR, Credentials: c.counselor.credentials, Active: proto.Bool(true)}
		for day := int32(1); day <= 5; day++ {
			counselor.Availability = append(counselor.Availability, window(day, "08:30", "12:30"))
			if day <= 4 {
				counselor.Availability = append(counselor.Availability, window(day, "15:30", "21:30"))
			}
		}
		therapist := &schedulingv1.Clinician{ClinicianId: c.therapist.id, ClinicId: c.id, DisplayName: c.therapist.name,
			Role: schedulingv1.ClinicianRole_CLINICIAN_ROLE_THERAPIST, Credentials: c.therapist.credentials, Active: proto.Bool(true)}
		for day := int32(1); day <= 5; day++ {
			therapist.Availability = append(therapist.Availability, window(day, "09:00", "17:00"))
		}
		out = append(out, counselor, therapist)
	}
	return out
}

// Tracks are three per clinic, 12 seats each: adult-day (Mon/Wed/Thu 09:00-12:00) and
// adult-evening (Mon/Wed/Thu 18:00-21:00) in the group room, adolescent-afternoon (Tue/Thu
// 16:00-19:00, adolescent IOP) in the teen room.
func Tracks() []*schedulingv1.Track {
	var out []*schedulingv1.Track
	for _, c := range clinics {
		out = append(out,
			&schedulingv1.Track{TrackId: c.day, ClinicId: c.id, ProgramCode: AdultIOP, TrackCode: AdultDay,
				TimeOfDay: schedulingv1.TimeOfDay_TIME_OF_DAY_DAY, Weekdays: []int32{1, 3, 4}, StartTime: "09:00", EndTime: "12:00",
				Capacity: TrackCapacity, RoomId: c.room, Active: proto.Bool(true)},
			&schedulingv1.Track{TrackId: c.evening, ClinicId: c.id, ProgramCode: AdultIOP, TrackCode: AdultEvening,
				TimeOfDay: schedulingv1.TimeOfDay_TIME_OF_DAY_EVENING, Weekdays: []int32{1, 3, 4}, StartTime: "18:00", EndTime: "21:00",
				Capacity: TrackCapacity, RoomId: c.room, Active: proto.Bool(true)},
			&schedulingv1.Track{TrackId: c.adolescent, ClinicId: c.id, ProgramCode: AdolescentIOP, TrackCode: AdolescentAfternoon,
				TimeOfDay: schedulingv1.TimeOfDay_TIME_OF_DAY_DAY, Weekdays: []int32{2, 4}, StartTime: "16:00", EndTime: "19:00",
				Capacity: TrackCapacity, RoomId: c.teenRoom, Active: proto.Bool(true)},
		)
	}
	return out
}
