package domain

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const (
	roomA  = "0192f0c0-0000-7000-8000-0000000000d1"
	trackA = "0192f0c0-0000-7000-8000-0000000000f1"
)

// fieldRule is one expected violation, "field rule".
func fieldRules(err error) []string {
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	out := make([]string, len(ve.Violations))
	for i, v := range ve.Violations {
		out[i] = v.Field + " " + v.Rule
	}
	return out
}

// checkViolations fails unless err is exactly the violations want (none: err is nil).
func checkViolations(t *testing.T, err error, want ...string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("err = %v, want none", err)
		}
		return
	}
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	if got := fieldRules(err); !slices.Equal(got, want) {
		t.Fatalf("violations = %q\nwant %q", got, want)
	}
}

func TestValidNPI(t *testing.T) {
	tests := []struct {
		npi  string
		want bool
	}{
		{"1234567893", true},  // the CMS example
		{"1245319599", true},  // another published example
		{"1234567890", false}, // wrong check digit
		{"1234567894", false},
		{"0000000000", false},
		{"123456789", false},
		{"12345678930", false},
		{"123456789a", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := ValidNPI(tt.npi); got != tt.want {
			t.Errorf("ValidNPI(%q) = %v, want %v", tt.npi, got, tt.want)
		}
	}
}

func TestNewClinic(t *testing.T) {
	valid := Clinic{ID: clinicA, Name: "Riverside Health Center", TimeZone: "America/Chicago",
		Address: Address{Lines: []string{"100 River St", "Suite 2"}, City: "Chicago", State: "IL", PostalCode: "60601"},
		NPI:     "1234567893", Phone: "+13125550100"}
	tests := []struct {
		name   string
		mutate func(*Clinic)
		want   []string
	}{
		{"valid", func(*Clinic) {}, nil},
		{"new clinic without id", func(c *Clinic) { c.ID = "" }, nil},
		{"minimal", func(c *Clinic) { *c = Clinic{Name: "X", TimeZone: "UTC"} }, nil},
		{"zip+4", func(c *Clinic) { c.Address.PostalCode = "60601-1234" }, nil},
		{"phoenix keeps no DST", func(c *Clinic) { c.TimeZone = "America/Phoenix" }, nil},
		{"bad id", func(c *Clinic) { c.ID = "clinic-1" }, []string{"clinic.clinic_id id.uuid"}},
		{"blank name", func(c *Clinic) { c.Name = "  " }, []string{"clinic.name name.not_blank"}},
		{"long name", func(c *Clinic) { c.Name = strings.Repeat("x", MaxNameLen+1) }, []string{"clinic.name name.max_len"}},
		{"control character in name", func(c *Clinic) { c.Name = "a\nb" }, []string{"clinic.name name.max_len"}},
		{"empty zone", func(c *Clinic) { c.TimeZone = "" }, []string{"clinic.time_zone time_zone.iana"}},
		{"Local zone", func(c *Clinic) { c.TimeZone = "Local" }, []string{"clinic.time_zone time_zone.iana"}},
		{"unknown zone", func(c *Clinic) { c.TimeZone = "America/Atlantis" }, []string{"clinic.time_zone time_zone.iana"}},
		{"offset is not a zone", func(c *Clinic) { c.TimeZone = "-05:00" }, []string{"clinic.time_zone time_zone.iana"}},
		{"npi 9 digits", func(c *Clinic) { c.NPI = "123456789" }, []string{"clinic.npi npi.format"}},
		{"npi letters", func(c *Clinic) { c.NPI = "12345678AB" }, []string{"clinic.npi npi.format"}},
		{"npi check digit", func(c *Clinic) { c.NPI = "1234567890" }, []string{"clinic.npi npi.check_digit"}},
		{"phone without plus", func(c *Clinic) { c.Phone = "3125550100" }, []string{"clinic.phone phone.e164"}},
		{"phone with spaces", func(c *Clinic) { c.Phone = "+1 312 555 0100" }, []string{"clinic.phone phone.e164"}},
		{"phone too long", func(c *Clinic) { c.Phone = "+1234567890123456" }, []string{"clinic.phone phone.e164"}},
		{"state lowercase", func(c *Clinic) { c.Address.State = "il" }, []string{"clinic.address.state address.state"}},
		{"state spelled out", func(c *Clinic) { c.Address.State = "Illinois" }, []string{"clinic.address.state address.state"}},
		{"bad zip", func(c *Clinic) { c.Address.PostalCode = "6060" }, []string{"clinic.address.postal_code address.postal_code"}},
		{"blank address line", func(c *Clinic) { c.Address.Lines = []string{"100 River St", " "} }, []string{"clinic.address.lines[1] address.lines"}},
		{"too many lines", func(c *Clinic) { c.Address.Lines = []string{"a", "b", "c", "d", "e"} }, []string{"clinic.address.lines address.lines"}},
		{"long city", func(c *Clinic) { c.Address.City = strings.Repeat("c", MaxCityLen+1) }, []string{"clinic.address.city address.city"}},
		{"every problem at once", func(c *Clinic) {
			*c = Clinic{ID: "x", TimeZone: "Mars/Olympus", NPI: "1", Phone: "1", Address: Address{State: "x"}}
		},
			[]string{"clinic.clinic_id id.uuid", "clinic.name name.not_blank", "clinic.time_zone time_zone.iana",
				"clinic.npi npi.format", "clinic.phone phone.e164", "clinic.address.state address.state"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			c.Address.Lines = slices.Clone(valid.Address.Lines)
			tt.mutate(&c)
			_, err := NewClinic(c)
			checkViolations(t, err, tt.want...)
		})
	}
}

func TestNewClinicNormalises(t *testing.T) {
	c, err := NewClinic(Clinic{ID: strings.ToUpper(clinicA), Name: " Lakeview ", TimeZone: " America/New_York ",
		Address: Address{Lines: []string{" 1 Lake Rd "}, City: " Cleveland ", State: "OH", PostalCode: " 44101 "}})
	if err != nil {
		t.Fatal(err)
	}
	want := Clinic{ID: clinicA, Name: "Lakeview", TimeZone: "America/New_York",
		Address: Address{Lines: []string{"1 Lake Rd"}, City: "Cleveland", State: "OH", PostalCode: "44101"}}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("clinic = %+v\nwant %+v", c, want)
	}
}

func TestNewRoom(t *testing.T) {
	valid := Room{ID: roomA, ClinicID: clinicA, Name: "Group Room 1", Seats: 14}
	tests := []struct {
		name   string
		mutate func(*Room)
		want   []string
	}{
		{"valid", func(*Room) {}, nil},
		{"new room", func(r *Room) { r.ID = "" }, nil},
		{"one seat", func(r *Room) { r.Seats = 1 }, nil},
		{"no seats", func(r *Room) { r.Seats = 0 }, []string{"room.seats seats.positive"}},
		{"negative seats", func(r *Room) { r.Seats = -3 }, []string{"room.seats seats.positive"}},
		{"no clinic", func(r *Room) { r.ClinicID = "" }, []string{"room.clinic_id id.uuid"}},
		{"bad id", func(r *Room) { r.ID = "room-1" }, []string{"room.room_id id.uuid"}},
		{"blank name", func(r *Room) { r.Name = "" }, []string{"room.name name.not_blank"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := valid
			tt.mutate(&r)
			_, err := NewRoom(r)
			checkViolations(t, err, tt.want...)
		})
	}
}

func TestClockMinutes(t *testing.T) {
	tests := []struct {
		c    Clock
		want int
	}{
		{"00:00", 0}, {"09:30", 570}, {"23:59", 1439}, {"18:00", 1080},
		{"24:00", -1}, {"9:00", -1}, {"09:60", -1}, {"0900", -1}, {"09:00:00", -1}, {"", -1}, {"ab:cd", -1},
	}
	for _, tt := range tests {
		if got := tt.c.Minutes(); got != tt.want {
			t.Errorf("Clock(%q).Minutes() = %d, want %d", tt.c, got, tt.want)
		}
	}
}

func TestNewClinician(t *testing.T) {
	w := func(day int, start, end Clock) Window { return Window{Weekday: day, Start: start, End: end} }
	valid := Clinician{ClinicID: clinicA, DisplayName: "Dana Whitfield", Role: ClinicianCounselor,
		Credentials: []string{"LCSW", "LADC"}, Active: true,
		Availability: []Window{w(1, "08:00", "12:00"), w(1, "13:00", "17:00"), w(3, "08:00", "17:00")}}
	tests := []struct {
		name   string
		mutate func(*Clinician)
		want   []string
	}{
		{"valid", func(*Clinician) {}, nil},
		{"no availability", func(c *Clinician) { c.Availability = nil }, nil},
		{"no credentials", func(c *Clinician) { c.Credentials = nil }, nil},
		{"touching windows", func(c *Clinician) { c.Availability = []Window{w(2, "09:00", "12:00"), w(2, "12:00", "15:00")} }, nil},
		{"same times on other days", func(c *Clinician) { c.Availability = []Window{w(2, "09:00", "12:00"), w(4, "09:00", "12:00")} }, nil},
		{"every role", func(c *Clinician) { c.Role = ClinicianCaseManager }, nil},
		{"prescriber", func(c *Clinician) { c.Role = ClinicianPrescriber }, nil},
		{"bad id", func(c *Clinician) { c.ID = "x" }, []string{"clinician.clinician_id id.uuid"}},
		{"no clinic", func(c *Clinician) { c.ClinicID = "" }, []string{"clinician.clinic_id id.uuid"}},
		{"blank name", func(c *Clinician) { c.DisplayName = " " }, []string{"clinician.display_name name.not_blank"}},
		{"no role", func(c *Clinician) { c.Role = "" }, []string{"clinician.role role.known"}},
		{"unknown role", func(c *Clinician) { c.Role = "surgeon" }, []string{"clinician.role role.known"}},
		{"blank credential", func(c *Clinician) { c.Credentials = []string{"LCSW", ""} }, []string{"clinician.credentials[1] credentials.format"}},
		{"long credential", func(c *Clinician) { c.Credentials = []string{strings.Repeat("X", MaxCredentialLen+1)} }, []string{"clinician.credentials[0] credentials.format"}},
		{"credential twice", func(c *Clinician) { c.Credentials = []string{"LCSW", "lcsw"} }, []string{"clinician.credentials[1] credentials.unique"}},
		{"too many credentials", func(c *Clinician) { c.Credentials = []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"} },
			[]string{"clinician.credentials credentials.max_items"}},
		{"weekday 0", func(c *Clinician) { c.Availability[1].Weekday = 0 }, []string{"clinician.availability[1].weekday weekday.range"}},
		{"weekday 8", func(c *Clinician) { c.Availability[2].Weekday = 8 }, []string{"clinician.availability[2].weekday weekday.range"}},
		{"bad start", func(c *Clinician) { c.Availability[0].Start = "8:00" }, []string{"clinician.availability[0].start time.format"}},
		{"bad end", func(c *Clinician) { c.Availability[1].End = "24:00" }, []string{"clinician.availability[1].end time.format"}},
		{"end before start", func(c *Clinician) { c.Availability[1].End = "12:30" }, []string{"clinician.availability[1].end time.order"}},
		{"empty window", func(c *Clinician) { c.Availability[1].End = "13:00" }, []string{"clinician.availability[1].end time.order"}},
		{"overlap", func(c *Clinician) { c.Availability[1].Start = "11:59" }, []string{"clinician.availability[1] availability.overlap"}},
		{"overlap listed first", func(c *Clinician) { c.Availability = []Window{w(5, "10:00", "12:00"), w(5, "09:00", "11:00")} },
			[]string{"clinician.availability[0] availability.overlap"}},
		{"same start", func(c *Clinician) { c.Availability = []Window{w(5, "09:00", "10:00"), w(5, "09:00", "11:00")} },
			[]string{"clinician.availability[1] availability.overlap"}},
		{"contained windows", func(c *Clinician) {
			c.Availability = []Window{w(5, "08:00", "18:00"), w(5, "09:00", "10:00"), w(5, "11:00", "12:00")}
		}, []string{"clinician.availability[1] availability.overlap", "clinician.availability[2] availability.overlap"}},
		{"invalid windows are not compared", func(c *Clinician) { c.Availability = []Window{w(9, "08:00", "12:00"), w(9, "09:00", "10:00")} },
			[]string{"clinician.availability[0].weekday weekday.range", "clinician.availability[1].weekday weekday.range"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			c.Credentials = slices.Clone(valid.Credentials)
			c.Availability = slices.Clone(valid.Availability)
			tt.mutate(&c)
			_, err := NewClinician(c)
			checkViolations(t, err, tt.want...)
		})
	}
	t.Run("too many windows", func(t *testing.T) {
		c := valid
		c.Availability = nil
		for i := range MaxWindows + 1 {
			c.Availability = append(c.Availability, w(i%7+1, Clock(fmt.Sprintf("%02d:00", i/7)), Clock(fmt.Sprintf("%02d:30", i/7))))
		}
		_, err := NewClinician(c)
		checkViolations(t, err, "clinician.availability availability.max_items")
	})
}

func TestNewClinicianSortsAvailability(t *testing.T) {
	c, err := NewClinician(Clinician{ClinicID: clinicA, DisplayName: "A", Role: ClinicianTherapist,
		Credentials:  []string{" MD "},
		Availability: []Window{{3, "13:00", "15:00"}, {1, "18:00", "20:00"}, {3, "09:00", "12:00"}, {1, "08:00", "09:00"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Window{{1, "08:00", "09:00"}, {1, "18:00", "20:00"}, {3, "09:00", "12:00"}, {3, "13:00", "15:00"}}
	if !slices.Equal(c.Availability, want) || !slices.Equal(c.Credentials, []string{"MD"}) {
		t.Fatalf("availability %v credentials %q", c.Availability, c.Credentials)
	}
}

func TestNewProgram(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Program)
		want   []string
	}{
		{"adult default", func(*Program) {}, nil},
		{"adolescent default", func(p *Program) { *p = DefaultAdolescentIOP }, nil},
		{"one week, no minimum", func(p *Program) { p.LengthWeeks, p.WeeklyMinimumMinutes = 1, 0 }, nil},
		{"52 weeks, whole week", func(p *Program) { p.LengthWeeks, p.WeeklyMinimumMinutes = 52, 10080 }, nil},
		{"code with capitals", func(p *Program) { p.Code = "Adult-IOP" }, []string{"program.program_code code.pattern"}},
		{"code one character", func(p *Program) { p.Code = "a" }, []string{"program.program_code code.pattern"}},
		{"code starts with hyphen", func(p *Program) { p.Code = "-iop" }, []string{"program.program_code code.pattern"}},
		{"blank name", func(p *Program) { p.Name = "" }, []string{"program.name name.not_blank"}},
		{"no population", func(p *Program) { p.Population = "" }, []string{"program.population population.known"}},
		{"unknown population", func(p *Program) { p.Population = "geriatric" }, []string{"program.population population.known"}},
		{"zero weeks", func(p *Program) { p.LengthWeeks = 0 }, []string{"program.length_weeks length_weeks.range"}},
		{"53 weeks", func(p *Program) { p.LengthWeeks = 53 }, []string{"program.length_weeks length_weeks.range"}},
		{"negative minimum", func(p *Program) { p.WeeklyMinimumMinutes = -1 }, []string{"program.weekly_minimum_minutes weekly_minimum_minutes.range"}},
		{"minimum over a week", func(p *Program) { p.WeeklyMinimumMinutes = 10081 }, []string{"program.weekly_minimum_minutes weekly_minimum_minutes.range"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultAdultIOP
			tt.mutate(&p)
			_, err := NewProgram(p)
			checkViolations(t, err, tt.want...)
		})
	}
	// The documented defaults.
	if DefaultAdultIOP.LengthWeeks != 12 || DefaultAdultIOP.WeeklyMinimumMinutes != 540 ||
		DefaultAdolescentIOP.LengthWeeks != 12 || DefaultAdolescentIOP.WeeklyMinimumMinutes != 360 {
		t.Errorf("defaults changed: %+v %+v", DefaultAdultIOP, DefaultAdolescentIOP)
	}
}

func TestNewTrack(t *testing.T) {
	valid := Track{ID: trackA, ClinicID: clinicA, ProgramCode: "adult-iop", Code: "adult-evening", TimeOfDay: TimeOfDayEvening,
		Weekdays: []int{1, 3, 4}, Start: "18:00", End: "21:00", Capacity: 12, RoomID: roomA, Active: true}
	tests := []struct {
		name   string
		mutate func(*Track)
		want   []string
	}{
		{"valid", func(*Track) {}, nil},
		{"new, no room", func(tr *Track) { tr.ID, tr.RoomID = "", "" }, nil},
		{"every day", func(tr *Track) { tr.Weekdays = []int{7, 6, 5, 4, 3, 2, 1} }, nil},
		{"capacity 1", func(tr *Track) { tr.Capacity = 1 }, nil},
		{"capacity 100", func(tr *Track) { tr.Capacity = 100 }, nil},
		{"day", func(tr *Track) { tr.TimeOfDay, tr.Start, tr.End = TimeOfDayDay, "09:00", "12:00" }, nil},
		{"bad id", func(tr *Track) { tr.ID = "t1" }, []string{"track.track_id id.uuid"}},
		{"no clinic", func(tr *Track) { tr.ClinicID = "" }, []string{"track.clinic_id id.uuid"}},
		{"no program", func(tr *Track) { tr.ProgramCode = "" }, []string{"track.program_code code.pattern"}},
		{"bad code", func(tr *Track) { tr.Code = "Adult Evening" }, []string{"track.track_code code.pattern"}},
		{"no time of day", func(tr *Track) { tr.TimeOfDay = "" }, []string{"track.time_of_day time_of_day.known"}},
		{"night", func(tr *Track) { tr.TimeOfDay = "night" }, []string{"track.time_of_day time_of_day.known"}},
		{"no weekdays", func(tr *Track) { tr.Weekdays = nil }, []string{"track.weekdays weekdays.not_empty"}},
		{"weekday 0", func(tr *Track) { tr.Weekdays = []int{1, 0} }, []string{"track.weekdays[1] weekday.range"}},
		{"weekday 8", func(tr *Track) { tr.Weekdays = []int{8} }, []string{"track.weekdays[0] weekday.range"}},
		{"weekday twice", func(tr *Track) { tr.Weekdays = []int{1, 3, 1} }, []string{"track.weekdays[2] weekdays.unique"}},
		{"bad start", func(tr *Track) { tr.Start = "6pm" }, []string{"track.start_time time.format"}},
		{"bad end", func(tr *Track) { tr.End = "21:00:00" }, []string{"track.end_time time.format"}},
		{"end before start", func(tr *Track) { tr.End = "17:00" }, []string{"track.end_time time.order"}},
		{"end equals start", func(tr *Track) { tr.End = "18:00" }, []string{"track.end_time time.order"}},
		{"past midnight", func(tr *Track) { tr.Start, tr.End = "22:00", "01:00" }, []string{"track.end_time time.order"}},
		{"capacity 0", func(tr *Track) { tr.Capacity = 0 }, []string{"track.capacity capacity.range"}},
		{"capacity 101", func(tr *Track) { tr.Capacity = 101 }, []string{"track.capacity capacity.range"}},
		{"bad room", func(tr *Track) { tr.RoomID = "room" }, []string{"track.room_id id.uuid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := valid
			tr.Weekdays = slices.Clone(valid.Weekdays)
			tt.mutate(&tr)
			_, err := NewTrack(tr)
			checkViolations(t, err, tt.want...)
		})
	}
	got, err := NewTrack(Track{ClinicID: strings.ToUpper(clinicA), ProgramCode: "adult-iop", Code: "adult-day", TimeOfDay: TimeOfDayDay,
		Weekdays: []int{4, 1, 3}, Start: "09:00", End: "12:00", Capacity: 12})
	if err != nil {
		t.Fatal(err)
	}
	if got.ClinicID != clinicA || !slices.Equal(got.Weekdays, []int{1, 3, 4}) {
		t.Fatalf("track not normalised: %+v", got)
	}
}

func TestTrackOverlaps(t *testing.T) {
	tr := func(days []int, start, end Clock) Track { return Track{Weekdays: days, Start: start, End: end} }
	evening := tr([]int{1, 3, 4}, "18:00", "21:00")
	tests := []struct {
		name  string
		other Track
		want  bool
	}{
		{"same slot", evening, true},
		{"one shared day, later start inside", tr([]int{4, 5}, "20:00", "22:00"), true},
		{"contains it", tr([]int{3}, "17:00", "22:00"), true},
		{"other days", tr([]int{2, 5}, "18:00", "21:00"), false},
		{"touching after", tr([]int{1}, "21:00", "22:00"), false},
		{"touching before", tr([]int{1}, "16:00", "18:00"), false},
		{"morning", tr([]int{1, 3, 4}, "09:00", "12:00"), false},
	}
	for _, tt := range tests {
		if got := evening.Overlaps(tt.other); got != tt.want {
			t.Errorf("%s: Overlaps = %v, want %v", tt.name, got, tt.want)
		}
		if got := tt.other.Overlaps(evening); got != tt.want {
			t.Errorf("%s (reversed): Overlaps = %v, want %v", tt.name, got, tt.want)
		}
	}
}
