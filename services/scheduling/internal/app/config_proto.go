package app

import (
	"slices"

	"google.golang.org/protobuf/proto"

	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"

	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
)

// Conversions between configuration records and their wire form (events and the API share
// the messages of types.proto).

// ClinicProto is c on the wire.
func ClinicProto(c domain.Clinic) *schedulingv1.Clinic {
	m := &schedulingv1.Clinic{ClinicId: c.ID, Name: c.Name, TimeZone: c.TimeZone, Npi: c.NPI, Phone: c.Phone}
	if a := c.Address; len(a.Lines) > 0 || a.City != "" || a.State != "" || a.PostalCode != "" {
		m.Address = &schedulingv1.Address{Lines: slices.Clone(a.Lines), City: a.City, State: a.State, PostalCode: a.PostalCode}
	}
	return m
}

// ClinicFromProto is the clinic m describes (unchecked).
func ClinicFromProto(m *schedulingv1.Clinic) domain.Clinic {
	a := m.GetAddress()
	return domain.Clinic{ID: m.GetClinicId(), Name: m.GetName(), TimeZone: m.GetTimeZone(), NPI: m.GetNpi(), Phone: m.GetPhone(),
		Address: domain.Address{Lines: a.GetLines(), City: a.GetCity(), State: a.GetState(), PostalCode: a.GetPostalCode()}}
}

// RoomProto is r on the wire.
func RoomProto(r domain.Room) *schedulingv1.Room {
	return &schedulingv1.Room{RoomId: r.ID, ClinicId: r.ClinicID, Name: r.Name, Seats: int32(r.Seats)}
}

// RoomFromProto is the room m describes (unchecked).
func RoomFromProto(m *schedulingv1.Room) domain.Room {
	return domain.Room{ID: m.GetRoomId(), ClinicID: m.GetClinicId(), Name: m.GetName(), Seats: int(m.GetSeats())}
}

var clinicianRoles = map[schedulingv1.ClinicianRole]string{
	schedulingv1.ClinicianRole_CLINICIAN_ROLE_COUNSELOR:    domain.ClinicianCounselor,
	schedulingv1.ClinicianRole_CLINICIAN_ROLE_THERAPIST:    domain.ClinicianTherapist,
	schedulingv1.ClinicianRole_CLINICIAN_ROLE_PRESCRIBER:   domain.ClinicianPrescriber,
	schedulingv1.ClinicianRole_CLINICIAN_ROLE_CASE_MANAGER: domain.ClinicianCaseManager,
}

// ClinicianProto is c on the wire.
func ClinicianProto(c domain.Clinician) *schedulingv1.Clinician {
	m := &schedulingv1.Clinician{ClinicianId: c.ID, ClinicId: c.ClinicID, DisplayName: c.DisplayName,
		Credentials: slices.Clone(c.Credentials), Active: proto.Bool(c.Active)}
	for r, s := range clinicianRoles {
		if s == c.Role {
			m.Role = r
		}
	}
	for _, w := range c.Availability {
		m.Availability = append(m.Availability, &schedulingv1.WeeklyWindow{Weekday: int32(w.Weekday), Start: string(w.Start), End: string(w.End)})
	}
	return m
}

// ClinicianFromProto is the clinician m describes (unchecked; an unknown role is "").
func ClinicianFromProto(m *schedulingv1.Clinician) domain.Clinician {
	c := domain.Clinician{ID: m.GetClinicianId(), ClinicID: m.GetClinicId(), DisplayName: m.GetDisplayName(),
		Role: clinicianRoles[m.GetRole()], Credentials: m.GetCredentials(), Active: activeOrDefault(m.Active)}
	for _, w := range m.GetAvailability() {
		c.Availability = append(c.Availability, domain.Window{Weekday: int(w.GetWeekday()), Start: domain.Clock(w.GetStart()), End: domain.Clock(w.GetEnd())})
	}
	return c
}

var populations = map[schedulingv1.Population]string{
	schedulingv1.Population_POPULATION_ADULT:      domain.PopulationAdult,
	schedulingv1.Population_POPULATION_ADOLESCENT: domain.PopulationAdolescent,
}

// ProgramProto is p on the wire.
func ProgramProto(p domain.Program) *schedulingv1.Program {
	m := &schedulingv1.Program{ProgramCode: p.Code, Name: p.Name, LengthWeeks: int32(p.LengthWeeks),
		WeeklyMinimumMinutes: int32(p.WeeklyMinimumMinutes)}
	for k, v := range populations {
		if v == p.Population {
			m.Population = k
		}
	}
	return m
}

// ProgramFromProto is the program m describes (unchecked; an unknown population is "").
func ProgramFromProto(m *schedulingv1.Program) domain.Program {
	return domain.Program{Code: m.GetProgramCode(), Name: m.GetName(), Population: populations[m.GetPopulation()],
		LengthWeeks: int(m.GetLengthWeeks()), WeeklyMinimumMinutes: int(m.GetWeeklyMinimumMinutes())}
}

var timesOfDay = map[schedulingv1.TimeOfDay]string{
	schedulingv1.TimeOfDay_TIME_OF_DAY_DAY:     domain.TimeOfDayDay,
	schedulingv1.TimeOfDay_TIME_OF_DAY_EVENING: domain.TimeOfDayEvening,
}

// TrackProto is t on the wire.
func TrackProto(t domain.Track) *schedulingv1.Track {
	m := &schedulingv1.Track{TrackId: t.ID, ClinicId: t.ClinicID, ProgramCode: t.ProgramCode, TrackCode: t.Code,
		StartTime: string(t.Start), EndTime: string(t.End), Capacity: int32(t.Capacity), RoomId: t.RoomID, Active: proto.Bool(t.Active)}
	for k, v := range timesOfDay {
		if v == t.TimeOfDay {
			m.TimeOfDay = k
		}
	}
	for _, d := range t.Weekdays {
		m.Weekdays = append(m.Weekdays, int32(d))
	}
	return m
}

// TrackFromProto is the track m describes (unchecked; an unknown time of day is "").
func TrackFromProto(m *schedulingv1.Track) domain.Track {
	t := domain.Track{ID: m.GetTrackId(), ClinicID: m.GetClinicId(), ProgramCode: m.GetProgramCode(), Code: m.GetTrackCode(),
		TimeOfDay: timesOfDay[m.GetTimeOfDay()], Start: domain.Clock(m.GetStartTime()), End: domain.Clock(m.GetEndTime()),
		Capacity: int(m.GetCapacity()), RoomID: m.GetRoomId(), Active: activeOrDefault(m.Active)}
	for _, d := range m.GetWeekdays() {
		t.Weekdays = append(t.Weekdays, int(d))
	}
	return t
}

// activeOrDefault reads an optional active flag: a record is active unless the request says
// otherwise, so a client that leaves the field out does not deactivate it by accident.
func activeOrDefault(active *bool) bool { return active == nil || *active }
