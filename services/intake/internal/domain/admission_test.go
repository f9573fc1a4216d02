package domain

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// now is 03:00 UTC on 15 March 2026: still 14 March in Chicago (UTC-5 since 8 March), so
// "today" differs between the clinic's calendar and UTC.
var now = time.Date(2026, 3, 15, 3, 0, 0, 0, time.UTC)

func chicago(t *testing.T) *Clinic {
	t.Helper()
	c, err := NewClinic("0190a000-0000-7000-8000-000000000001", "Riverside", "America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

func validInput() AdmissionInput {
	return AdmissionInput{
		GivenName: "Alex", FamilyName: "Rivera", DateOfBirth: "1988-04-12",
		ContactEmail: "alex@example.com", ClinicID: "0190a000-0000-7000-8000-000000000001",
		ProgramTrack: "adult-evening", StartDate: "2026-03-16",
	}
}

type fr struct{ field, rule string }

func TestNewAdmissionRules(t *testing.T) {
	tests := []struct {
		name          string
		edit          func(*AdmissionInput)
		unknownClinic bool
		want          []fr
	}{
		{name: "valid", edit: func(*AdmissionInput) {}},
		{name: "dob 30 February", edit: func(in *AdmissionInput) { in.DateOfBirth = "1990-02-30" }, want: []fr{{"date_of_birth", RuleDateValid}}},
		{name: "dob month 13", edit: func(in *AdmissionInput) { in.DateOfBirth = "1990-13-01" }, want: []fr{{"date_of_birth", RuleDateValid}}},
		{name: "dob day 00", edit: func(in *AdmissionInput) { in.DateOfBirth = "1990-01-00" }, want: []fr{{"date_of_birth", RuleDateValid}}},
		{name: "dob 29 February leap year", edit: func(in *AdmissionInput) { in.DateOfBirth = "2004-02-29" }},
		{name: "dob 29 February common year", edit: func(in *AdmissionInput) { in.DateOfBirth = "2005-02-29" }, want: []fr{{"date_of_birth", RuleDateValid}}},
		{name: "dob today in clinic zone", edit: func(in *AdmissionInput) { in.DateOfBirth = "2026-03-14" }, want: []fr{{"date_of_birth", RuleBirthInPast}}},
		{name: "dob yesterday in clinic zone", edit: func(in *AdmissionInput) { in.DateOfBirth = "2026-03-13" }},
		{name: "dob in the future", edit: func(in *AdmissionInput) { in.DateOfBirth = "2030-01-01" }, want: []fr{{"date_of_birth", RuleBirthInPast}}},
		{name: "dob exactly 120 years back", edit: func(in *AdmissionInput) { in.DateOfBirth = "1906-03-14" }},
		{name: "dob more than 120 years back", edit: func(in *AdmissionInput) { in.DateOfBirth = "1906-03-13" }, want: []fr{{"date_of_birth", RuleBirthMaxAge}}},
		{name: "dob year 0000", edit: func(in *AdmissionInput) { in.DateOfBirth = "0000-01-01" }, want: []fr{{"date_of_birth", RuleBirthMaxAge}}},
		{name: "start 31 April", edit: func(in *AdmissionInput) { in.StartDate = "2026-04-31" }, want: []fr{{"start_date", RuleDateValid}}},
		{name: "start 30 February", edit: func(in *AdmissionInput) { in.StartDate = "2026-02-30" }, want: []fr{{"start_date", RuleDateValid}}},
		{name: "start today", edit: func(in *AdmissionInput) { in.StartDate = "2026-03-14" }},
		{name: "start exactly 90 days back (clinic calendar)", edit: func(in *AdmissionInput) { in.StartDate = "2025-12-14" }},
		{name: "start 91 days back", edit: func(in *AdmissionInput) { in.StartDate = "2025-12-13" }, want: []fr{{"start_date", RuleStartBackdate}}},
		{name: "start exactly 365 days ahead", edit: func(in *AdmissionInput) { in.StartDate = "2027-03-14" }},
		{name: "start 366 days ahead", edit: func(in *AdmissionInput) { in.StartDate = "2027-03-15" }, want: []fr{{"start_date", RuleStartLead}}},
		{name: "blank names", edit: func(in *AdmissionInput) { in.GivenName, in.FamilyName = "  ", "\t" },
			want: []fr{{"given_name", RuleNameNotBlank}, {"family_name", RuleNameNotBlank}}},
		{name: "unknown clinic", edit: func(*AdmissionInput) {}, unknownClinic: true, want: []fr{{"clinic_id", RuleClinicKnown}}},
		{
			name: "all together", unknownClinic: true,
			edit: func(in *AdmissionInput) { in.DateOfBirth, in.StartDate, in.GivenName = "2026-02-30", "2020-01-01", " " },
			want: []fr{{"clinic_id", RuleClinicKnown}, {"given_name", RuleNameNotBlank}, {"date_of_birth", RuleDateValid}, {"start_date", RuleStartBackdate}},
		},
		// Without a clinic "today" is the UTC date, 15 March: 90 days back is then 15 December.
		{name: "unknown clinic judges dates in UTC", unknownClinic: true, edit: func(in *AdmissionInput) { in.StartDate = "2025-12-14" },
			want: []fr{{"clinic_id", RuleClinicKnown}, {"start_date", RuleStartBackdate}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := validInput()
			tt.edit(&in)
			clinic := chicago(t)
			if tt.unknownClinic {
				clinic = nil
			}
			a, err := NewAdmission(in, clinic, now, "p1", "e1")
			var got []fr
			var ve *ValidationError
			if errors.As(err, &ve) {
				for _, v := range ve.Violations {
					if v.Msg == "" {
						t.Errorf("violation %s/%s has no message", v.Field, v.Rule)
					}
					got = append(got, fr{v.Field, v.Rule})
				}
			} else if err != nil {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("violations = %v, want %v", got, tt.want)
			}
			if len(tt.want) == 0 && (a.PatientID != "p1" || a.EpisodeID != "e1" || a.StartDate.String() != in.StartDate || a.DateOfBirth.String() != in.DateOfBirth) {
				t.Fatalf("admission not filled: %+v", a)
			}
		})
	}
}

func TestNewAdmissionNormalizes(t *testing.T) {
	in := validInput()
	in.GivenName, in.FamilyName = "  Alex ", " Rivera"
	at := time.Date(2026, 3, 15, 4, 0, 0, 123456789, time.FixedZone("X", 3600))
	a, err := NewAdmission(in, chicago(t), at, "p1", "e1")
	if err != nil {
		t.Fatal(err)
	}
	if a.GivenName != "Alex" || a.FamilyName != "Rivera" {
		t.Errorf("names not trimmed: %q %q", a.GivenName, a.FamilyName)
	}
	// UTC, truncated to Postgres' microseconds so the stored row and the event agree.
	if want := time.Date(2026, 3, 15, 3, 0, 0, 123456000, time.UTC); a.AdmittedAt != want {
		t.Errorf("admitted at %v, want %v", a.AdmittedAt, want)
	}
	if a.Clinic.TimeZone != "America/Chicago" || a.ProgramTrack != "adult-evening" {
		t.Errorf("clinic or track not carried: %+v", a)
	}
}

func TestValidationErrorDoesNotQuoteValues(t *testing.T) {
	in := validInput()
	in.DateOfBirth, in.GivenName = "1990-02-30", " "
	_, err := NewAdmission(in, nil, now, "p1", "e1")
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError, got %v", err)
	}
	for _, v := range ve.Violations {
		for _, s := range []string{v.Msg, err.Error()} {
			if slices.ContainsFunc([]string{"1990-02-30", "Rivera", "alex@example.com"}, func(phi string) bool { return strings.Contains(s, phi) }) {
				t.Errorf("message quotes a value: %q", s)
			}
		}
	}
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"2026-02-28", true}, {"2028-02-29", true}, {"2000-02-29", true}, {"1900-02-29", false},
		{"2026-02-30", false}, {"2026-04-31", false}, {"2026-12-31", true}, {"2026-00-10", false},
		{"2026-1-5", false}, {"26-01-05", false}, {"2026-01-05T00:00:00Z", false}, {"", false},
	}
	for _, tt := range tests {
		d, err := ParseDate(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseDate(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if tt.ok && d.String() != tt.in {
			t.Errorf("ParseDate(%q).String() = %q", tt.in, d.String())
		}
	}
}

func TestDateIn(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	phx, _ := time.LoadLocation("America/Phoenix")
	at := time.Date(2026, 7, 1, 5, 30, 0, 0, time.UTC) // 01:30 in New York, 22:30 the day before in Phoenix
	if got := DateIn(at, ny).String(); got != "2026-07-01" {
		t.Errorf("New York date = %s", got)
	}
	if got := DateIn(at, phx).String(); got != "2026-06-30" {
		t.Errorf("Phoenix date = %s", got)
	}
}

func TestNewClinicZone(t *testing.T) {
	for _, tz := range []string{"America/Chicago", "America/New_York", "America/Phoenix", "UTC"} {
		if _, err := NewClinic("id", "n", tz); err != nil {
			t.Errorf("NewClinic(%q): %v", tz, err)
		}
	}
	for _, tz := range []string{"", "Local", "America/Atlantis", "+02:00", "CST6"} {
		if _, err := NewClinic("id", "n", tz); err == nil {
			t.Errorf("NewClinic(%q) accepted an invalid zone", tz)
		}
	}
}
