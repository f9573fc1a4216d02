package domain

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // clinic time zones resolve the same on every machine, with or without /usr/share/zoneinfo
	"unicode"
	"unicode/utf8"
)

// Clinic configuration: clinics, rooms, clinicians, programs and tracks. Each New* function
// checks one record as an operator sends it and returns it normalised (ids lowercase, text
// trimmed), or a *ValidationError listing every broken rule with the request field path
// (e.g. "track.capacity", "clinician.availability[1].end"). Checks that need other records
// (the program exists, the room is the clinic's) are the app's.

// ErrPermissionDenied: the caller may not act on a clinic it named (the ports answer
// permission_denied; a record of such a clinic is reported as ErrNotFound instead).
var ErrPermissionDenied = errors.New("permission denied")

// Rule ids of configuration violations (the "rule" a client sees next to the field path).
const (
	RuleIDUUID              = "id.uuid"                      // an id that is not a canonical UUID
	RuleNameNotBlank        = "name.not_blank"               // a required name is empty
	RuleNameMaxLen          = "name.max_len"                 // a name over MaxNameLen characters
	RuleTimeZoneIANA        = "time_zone.iana"               // not a loadable IANA zone
	RuleNPIFormat           = "npi.format"                   // not 10 digits
	RuleNPICheckDigit       = "npi.check_digit"              // the Luhn check (prefix 80840) fails
	RulePhoneE164           = "phone.e164"                   // not +<country><number>, 15 digits at most
	RuleAddressLines        = "address.lines"                // too many lines, or a line blank or too long
	RuleAddressCity         = "address.city"                 // city too long
	RuleAddressState        = "address.state"                // not two capital letters
	RuleAddressPostalCode   = "address.postal_code"          // not a ZIP (12345 or 12345-6789)
	RuleSeatsPositive       = "seats.positive"               // a room without seats
	RuleRoleKnown           = "role.known"                   // clinician role missing or unknown
	RuleCredentialFormat    = "credentials.format"           // blank, too long or control characters
	RuleCredentialUnique    = "credentials.unique"           // the same credential twice
	RuleCredentialsMax      = "credentials.max_items"        // more than MaxCredentials
	RuleAvailabilityMax     = "availability.max_items"       // more than MaxWindows
	RuleWeekdayRange        = "weekday.range"                // not 1 (Monday) to 7 (Sunday)
	RuleTimeFormat          = "time.format"                  // not "HH:MM" (00:00 to 23:59)
	RuleTimeOrder           = "time.order"                   // end not after start
	RuleAvailabilityOverlap = "availability.overlap"         // two windows of one weekday overlap
	RuleCodePattern         = "code.pattern"                 // program or track code not ^[a-z0-9][a-z0-9-]{1,62}$
	RulePopulationKnown     = "population.known"             // population missing or unknown
	RuleLengthWeeksRange    = "length_weeks.range"           // not 1 to 52
	RuleWeeklyMinimumRange  = "weekly_minimum_minutes.range" // not 0 to 10080 (a week)
	RuleTimeOfDayKnown      = "time_of_day.known"            // neither day nor evening
	RuleWeekdaysNotEmpty    = "weekdays.not_empty"           // a track that never meets
	RuleWeekdaysUnique      = "weekdays.unique"              // a weekday twice
	RuleCapacityRange       = "capacity.range"               // not 1 to 100 seats

	// Checked by the app against stored records.
	RuleClinicKnown        = "clinic.known"         // the clinic is not configured in scheduling
	RuleProgramKnown       = "program.known"        // no such program
	RuleRoomKnown          = "room.known"           // no such room in the track's clinic
	RuleCapacityRoomSeats  = "capacity.room_seats"  // more seats than the track's room has
	RuleSeatsTrackCapacity = "seats.track_capacity" // fewer room seats than an active track meeting there needs
	RuleRoomBooked         = "room.booked"          // another active track meets in the room at that time
	RuleClinicImmutable    = "clinic_id.immutable"  // an update names another clinic than the record's
	RuleProgramImmutable   = "program_code.immutable"
	RuleCodeImmutable      = "track_code.immutable"
	RuleTrackCodeUnique    = "track_code.unique" // another track of the clinic has the code
	RuleRoomNameUnique     = "name.unique"       // another room of the clinic has the name
)

// Limits of configuration text.
const (
	MaxNameLen       = 200
	MaxCredentialLen = 32
	MaxCredentials   = 10
	MaxWindows       = 56 // eight windows a day
	MaxAddressLines  = 4
	MaxCityLen       = 100
)

// Clinician roles.
const (
	ClinicianCounselor   = "counselor"
	ClinicianTherapist   = "therapist"
	ClinicianPrescriber  = "prescriber"
	ClinicianCaseManager = "case_manager"
)

// Populations of a program.
const (
	PopulationAdult      = "adult"
	PopulationAdolescent = "adolescent"
)

// Times of day of a track.
const (
	TimeOfDayDay     = "day"
	TimeOfDayEvening = "evening"
)

// Default programs (see docs/scheduling.md): 12 weeks each, with the weekly minimum of
// attended time of ASAM level 2.1, 9 hours for adults and 6 for adolescents.
var (
	DefaultAdultIOP      = Program{Code: "adult-iop", Name: "Adult IOP", Population: PopulationAdult, LengthWeeks: 12, WeeklyMinimumMinutes: 540}
	DefaultAdolescentIOP = Program{Code: "adolescent-iop", Name: "Adolescent IOP", Population: PopulationAdolescent, LengthWeeks: 12, WeeklyMinimumMinutes: 360}
)

// Violation is one broken rule on one request field. Messages never quote the value.
type Violation struct {
	Field string // request field path, e.g. "track.capacity"
	Rule  string // rule id, e.g. RuleCapacityRange
	Msg   string
}

// ValidationError lists every violation of one request. errors.Is(err, ErrInvalid) holds.
type ValidationError struct{ Violations []Violation }

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.Field + ": " + v.Rule
	}
	return "invalid: " + strings.Join(parts, ", ")
}

// Unwrap makes a ValidationError an ErrInvalid.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// Invalid returns a ValidationError of one violation.
func Invalid(field, rule, msg string) error {
	return &ValidationError{Violations: []Violation{{Field: field, Rule: rule, Msg: msg}}}
}

// violations collects the problems of one record.
type violations []Violation

func (vs *violations) add(field, rule, msg string) {
	*vs = append(*vs, Violation{Field: field, Rule: rule, Msg: msg})
}

func (vs violations) err() error {
	if len(vs) == 0 {
		return nil
	}
	return &ValidationError{Violations: vs}
}

// id checks a required id and returns it lowercase.
func (vs *violations) id(field, s string) string {
	v, err := ParseID(s)
	if err != nil {
		vs.add(field, RuleIDUUID, "must be a UUID")
		return s
	}
	return v
}

// optionalID checks an id that may be empty.
func (vs *violations) optionalID(field, s string) string {
	if s == "" {
		return ""
	}
	return vs.id(field, s)
}

// name checks a required name and returns it trimmed.
func (vs *violations) name(field, s string) string {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		vs.add(field, RuleNameNotBlank, "must not be blank")
	case utf8.RuneCountInString(s) > MaxNameLen || hasControl(s):
		vs.add(field, RuleNameMaxLen, fmt.Sprintf("must be at most %d printable characters", MaxNameLen))
	}
	return s
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl) || !utf8.ValidString(s)
}

// Address is a clinic's postal address (US).
type Address struct {
	Lines      []string
	City       string
	State      string // two capital letters
	PostalCode string // ZIP or ZIP+4
}

// Clinic is a clinic's scheduling settings. ID is network-wide (intake uses the same ids).
type Clinic struct {
	ID       string
	Name     string
	TimeZone string // IANA, e.g. "America/Chicago"
	Address  Address
	NPI      string // 10 digits, or empty
	Phone    string // E.164, or empty
}

var (
	npiRE   = regexp.MustCompile(`^[0-9]{10}$`)
	e164RE  = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
	stateRE = regexp.MustCompile(`^[A-Z]{2}$`)
	zipRE   = regexp.MustCompile(`^[0-9]{5}(-[0-9]{4})?$`)
)

// NewClinic checks a clinic. An empty ID is allowed (the app assigns one).
func NewClinic(c Clinic) (Clinic, error) {
	var vs violations
	c.ID = vs.optionalID("clinic.clinic_id", c.ID)
	c.Name = vs.name("clinic.name", c.Name)
	c.TimeZone = strings.TrimSpace(c.TimeZone)
	if _, err := LoadZone(c.TimeZone); err != nil {
		vs.add("clinic.time_zone", RuleTimeZoneIANA, "must be an IANA time zone, e.g. America/Chicago")
	}
	c.NPI = strings.TrimSpace(c.NPI)
	switch {
	case c.NPI == "":
	case !npiRE.MatchString(c.NPI):
		vs.add("clinic.npi", RuleNPIFormat, "must be 10 digits")
	case !ValidNPI(c.NPI):
		vs.add("clinic.npi", RuleNPICheckDigit, "check digit does not match")
	}
	c.Phone = strings.TrimSpace(c.Phone)
	if c.Phone != "" && !e164RE.MatchString(c.Phone) {
		vs.add("clinic.phone", RulePhoneE164, "must be E.164, e.g. +13125550100")
	}
	c.Address = vs.address("clinic.address", c.Address)
	return c, vs.err()
}

func (vs *violations) address(field string, a Address) Address {
	if len(a.Lines) > MaxAddressLines {
		vs.add(field+".lines", RuleAddressLines, fmt.Sprintf("at most %d lines", MaxAddressLines))
	}
	lines := make([]string, 0, len(a.Lines))
	for i, l := range a.Lines {
		l = strings.TrimSpace(l)
		if l == "" || utf8.RuneCountInString(l) > MaxNameLen || hasControl(l) {
			vs.add(fmt.Sprintf("%s.lines[%d]", field, i), RuleAddressLines,
				fmt.Sprintf("must be 1 to %d printable characters", MaxNameLen))
		}
		lines = append(lines, l)
	}
	if len(a.Lines) == 0 {
		lines = nil
	}
	a.Lines = lines
	a.City = strings.TrimSpace(a.City)
	if utf8.RuneCountInString(a.City) > MaxCityLen || hasControl(a.City) {
		vs.add(field+".city", RuleAddressCity, fmt.Sprintf("must be at most %d printable characters", MaxCityLen))
	}
	a.State = strings.TrimSpace(a.State)
	if a.State != "" && !stateRE.MatchString(a.State) {
		vs.add(field+".state", RuleAddressState, "must be a two-letter state code, e.g. IL")
	}
	a.PostalCode = strings.TrimSpace(a.PostalCode)
	if a.PostalCode != "" && !zipRE.MatchString(a.PostalCode) {
		vs.add(field+".postal_code", RuleAddressPostalCode, "must be a ZIP code, 12345 or 12345-6789")
	}
	return a
}

// LoadZone loads an IANA time zone by name. Unlike time.LoadLocation it refuses "" and
// "Local" (which mean UTC and the server's own zone, never a clinic's).
func LoadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, errors.New("not an IANA time zone")
	}
	return time.LoadLocation(name)
}

// ValidNPI reports whether a 10-digit National Provider Identifier passes its check: the
// Luhn algorithm over the digits prefixed with 80840 (the card issuer prefix CMS uses).
func ValidNPI(npi string) bool {
	if !npiRE.MatchString(npi) {
		return false
	}
	s := "80840" + npi
	sum := 0
	for i := len(s) - 1; i >= 0; i-- {
		d := int(s[i] - '0')
		if (len(s)-1-i)%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// Room is a room of a clinic where groups meet.
type Room struct {
	ID       string
	ClinicID string
	Name     string
	Seats    int
}

// NewRoom checks a room. An empty ID is allowed (the app assigns one).
func NewRoom(r Room) (Room, error) {
	var vs violations
	r.ID = vs.optionalID("room.room_id", r.ID)
	r.ClinicID = vs.id("room.clinic_id", r.ClinicID)
	r.Name = vs.name("room.name", r.Name)
	if r.Seats <= 0 {
		vs.add("room.seats", RuleSeatsPositive, "must be more than 0")
	}
	return r, vs.err()
}

// Clock is a clinic-local wall-clock time, "HH:MM" from 00:00 to 23:59.
type Clock string

var clockRE = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)

// Minutes is the number of minutes after midnight; -1 if c is not a valid "HH:MM".
func (c Clock) Minutes() int {
	if !clockRE.MatchString(string(c)) {
		return -1
	}
	h, _ := strconv.Atoi(string(c[:2]))
	m, _ := strconv.Atoi(string(c[3:]))
	return h*60 + m
}

// span checks a start and end time ("<field>.<startName>" and "<field>.<endName>"): each
// "HH:MM", start before end. It reports whether both are valid.
func (vs *violations) span(field, startName, endName string, start, end Clock) bool {
	ok := true
	if start.Minutes() < 0 {
		vs.add(field+startName, RuleTimeFormat, `must be "HH:MM", 00:00 to 23:59`)
		ok = false
	}
	if end.Minutes() < 0 {
		vs.add(field+endName, RuleTimeFormat, `must be "HH:MM", 00:00 to 23:59`)
		ok = false
	}
	if ok && end.Minutes() <= start.Minutes() {
		vs.add(field+endName, RuleTimeOrder, "must be after the start, on the same day")
		ok = false
	}
	return ok
}

// Window is a weekly availability window in the clinic's local time.
type Window struct {
	Weekday int // ISO: 1 Monday ... 7 Sunday
	Start   Clock
	End     Clock
}

// Clinician is a member of staff who runs sessions.
type Clinician struct {
	ID           string
	ClinicID     string
	DisplayName  string
	Role         string // ClinicianCounselor, ...
	Credentials  []string
	Availability []Window // replaced as a whole on every update
	Active       bool
}

// NewClinician checks a clinician and their availability: windows of one weekday may touch
// (09:00-12:00 and 12:00-15:00) but not overlap. Availability is returned sorted by weekday
// and start.
func NewClinician(c Clinician) (Clinician, error) {
	var vs violations
	c.ID = vs.optionalID("clinician.clinician_id", c.ID)
	c.ClinicID = vs.id("clinician.clinic_id", c.ClinicID)
	c.DisplayName = vs.name("clinician.display_name", c.DisplayName)
	switch c.Role {
	case ClinicianCounselor, ClinicianTherapist, ClinicianPrescriber, ClinicianCaseManager:
	default:
		vs.add("clinician.role", RuleRoleKnown, "must be counselor, therapist, prescriber or case manager")
	}
	c.Credentials = vs.credentials(c.Credentials)
	c.Availability = vs.availability(c.Availability)
	return c, vs.err()
}

func (vs *violations) credentials(in []string) []string {
	if len(in) > MaxCredentials {
		vs.add("clinician.credentials", RuleCredentialsMax, fmt.Sprintf("at most %d credentials", MaxCredentials))
	}
	out := make([]string, 0, len(in))
	seen := map[string]bool{}
	for i, c := range in {
		c = strings.TrimSpace(c)
		field := fmt.Sprintf("clinician.credentials[%d]", i)
		switch key := strings.ToUpper(c); {
		case c == "" || utf8.RuneCountInString(c) > MaxCredentialLen || hasControl(c):
			vs.add(field, RuleCredentialFormat, fmt.Sprintf("must be 1 to %d printable characters", MaxCredentialLen))
		case seen[key]:
			vs.add(field, RuleCredentialUnique, "listed twice")
		default:
			seen[key] = true
		}
		out = append(out, c)
	}
	return out
}

func (vs *violations) availability(in []Window) []Window {
	if len(in) > MaxWindows {
		vs.add("clinician.availability", RuleAvailabilityMax, fmt.Sprintf("at most %d windows", MaxWindows))
	}
	type indexed struct {
		i int
		w Window
	}
	var valid []indexed
	for i, w := range in {
		field := fmt.Sprintf("clinician.availability[%d]", i)
		ok := true
		if w.Weekday < 1 || w.Weekday > 7 {
			vs.add(field+".weekday", RuleWeekdayRange, "must be 1 (Monday) to 7 (Sunday)")
			ok = false
		}
		if vs.span(field, ".start", ".end", w.Start, w.End) && ok {
			valid = append(valid, indexed{i, w})
		}
	}
	// Overlaps, reported on the window that starts later (or, for equal starts, comes later
	// in the request).
	slices.SortStableFunc(valid, func(a, b indexed) int {
		if a.w.Weekday != b.w.Weekday {
			return a.w.Weekday - b.w.Weekday
		}
		return a.w.Start.Minutes() - b.w.Start.Minutes()
	})
	for k := 1; k < len(valid); k++ {
		prev, cur := valid[k-1], valid[k]
		if prev.w.Weekday == cur.w.Weekday && cur.w.Start.Minutes() < prev.w.End.Minutes() {
			vs.add(fmt.Sprintf("clinician.availability[%d]", cur.i), RuleAvailabilityOverlap,
				fmt.Sprintf("overlaps availability[%d] on the same weekday", prev.i))
			if cur.w.End.Minutes() < prev.w.End.Minutes() {
				valid[k] = prev // keep comparing against the window that ends later
			}
		}
	}
	out := slices.Clone(in)
	slices.SortStableFunc(out, func(a, b Window) int {
		if a.Weekday != b.Weekday {
			return a.Weekday - b.Weekday
		}
		return a.Start.Minutes() - b.Start.Minutes()
	})
	if len(out) == 0 {
		out = nil
	}
	return out
}

// Program is a program, the same in every clinic of the network.
type Program struct {
	Code                 string // e.g. "adult-iop"
	Name                 string
	Population           string // PopulationAdult or PopulationAdolescent
	LengthWeeks          int    // 1 to 52
	WeeklyMinimumMinutes int    // 0 to 10080
}

// CodeRE is the pattern of program and track codes.
var CodeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)

// NewProgram checks a program.
func NewProgram(p Program) (Program, error) {
	var vs violations
	if !CodeRE.MatchString(p.Code) {
		vs.add("program.program_code", RuleCodePattern, "must be 2 to 63 lowercase letters, digits or hyphens")
	}
	p.Name = vs.name("program.name", p.Name)
	if p.Population != PopulationAdult && p.Population != PopulationAdolescent {
		vs.add("program.population", RulePopulationKnown, "must be adult or adolescent")
	}
	if p.LengthWeeks < 1 || p.LengthWeeks > 52 {
		vs.add("program.length_weeks", RuleLengthWeeksRange, "must be 1 to 52 weeks")
	}
	if p.WeeklyMinimumMinutes < 0 || p.WeeklyMinimumMinutes > 7*24*60 {
		vs.add("program.weekly_minimum_minutes", RuleWeeklyMinimumRange, "must be 0 to 10080 minutes")
	}
	return p, vs.err()
}

// Track is one program's group schedule at one clinic.
type Track struct {
	ID          string
	ClinicID    string
	ProgramCode string
	Code        string // e.g. "adult-evening", unique in the clinic
	TimeOfDay   string // TimeOfDayDay or TimeOfDayEvening
	Weekdays    []int  // ISO weekdays, returned sorted
	Start       Clock  // clinic-local
	End         Clock
	Capacity    int    // seats, 1 to 100
	RoomID      string // or empty
	Active      bool
}

// TrackFill is a track with how many hold a seat and how many wait for one.
type TrackFill struct {
	Track
	Enrolled   int
	Waitlisted int
}

// NewTrack checks a track on its own (that its program exists and its room is its clinic's is
// the app's check).
func NewTrack(t Track) (Track, error) {
	var vs violations
	t.ID = vs.optionalID("track.track_id", t.ID)
	t.ClinicID = vs.id("track.clinic_id", t.ClinicID)
	if !CodeRE.MatchString(t.ProgramCode) {
		vs.add("track.program_code", RuleCodePattern, "must be 2 to 63 lowercase letters, digits or hyphens")
	}
	if !CodeRE.MatchString(t.Code) {
		vs.add("track.track_code", RuleCodePattern, "must be 2 to 63 lowercase letters, digits or hyphens")
	}
	if t.TimeOfDay != TimeOfDayDay && t.TimeOfDay != TimeOfDayEvening {
		vs.add("track.time_of_day", RuleTimeOfDayKnown, "must be day or evening")
	}
	if len(t.Weekdays) == 0 {
		vs.add("track.weekdays", RuleWeekdaysNotEmpty, "must name at least one weekday")
	}
	seen := map[int]bool{}
	for i, d := range t.Weekdays {
		field := fmt.Sprintf("track.weekdays[%d]", i)
		switch {
		case d < 1 || d > 7:
			vs.add(field, RuleWeekdayRange, "must be 1 (Monday) to 7 (Sunday)")
		case seen[d]:
			vs.add(field, RuleWeekdaysUnique, "listed twice")
		}
		seen[d] = true
	}
	t.Weekdays = slices.Sorted(slices.Values(t.Weekdays))
	vs.span("track", ".start_time", ".end_time", t.Start, t.End)
	if t.Capacity < 1 || t.Capacity > 100 {
		vs.add("track.capacity", RuleCapacityRange, "must be 1 to 100 seats")
	}
	t.RoomID = vs.optionalID("track.room_id", t.RoomID)
	return t, vs.err()
}

// Overlaps reports whether t and o meet at the same time on some weekday (touching, one
// ending when the other starts, is not overlapping).
func (t Track) Overlaps(o Track) bool {
	for _, d := range t.Weekdays {
		if slices.Contains(o.Weekdays, d) && t.Start.Minutes() < o.End.Minutes() && o.Start.Minutes() < t.End.Minutes() {
			return true
		}
	}
	return false
}
