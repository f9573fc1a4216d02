package domain

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReferralStateMachine checks every (from, to, call) triple: exactly the moves listed here
// are legal, each only through its own call; everything else is a *PreconditionError.
func TestReferralStateMachine(t *testing.T) {
	legal := map[string]bool{
		"new>contacted ChangeReferralStatus":      true,
		"contacted>screened ChangeReferralStatus": true,
		"screened>assessed RecordAssessment":      true,
		"assessed>admitted AdmitPatient":          true,
		"screened>referred_out ReferOut":          true,
		"assessed>referred_out ReferOut":          true,
		"new>closed ChangeReferralStatus":         true,
		"contacted>closed ChangeReferralStatus":   true,
		"screened>closed ChangeReferralStatus":    true,
		"assessed>closed ChangeReferralStatus":    true,
	}
	if len(Statuses) != 7 || len(Vias) != 4 {
		t.Fatalf("%d statuses and %d calls: update this table", len(Statuses), len(Vias))
	}
	n, ok := 0, 0
	for _, from := range Statuses {
		for _, to := range Statuses {
			for _, via := range Vias {
				key := fmt.Sprintf("%s>%s %s", from, to, via)
				n++
				err := CheckMove(from, to, via)
				if legal[key] {
					ok++
					if err != nil {
						t.Errorf("%s: refused: %v", key, err)
					}
					continue
				}
				var pe *PreconditionError
				if !errors.As(err, &pe) {
					t.Errorf("%s: got %v, want a *PreconditionError", key, err)
				}
			}
		}
	}
	if n != 196 || ok != len(legal) {
		t.Errorf("checked %d triples, %d legal; want 196 and %d", n, ok, len(legal))
	}
	for _, s := range Statuses {
		final := s == StatusAdmitted || s == StatusReferredOut || s == StatusClosed
		if s.Final() != final {
			t.Errorf("%s.Final() = %v", s, s.Final())
		}
	}
}

func TestReferralMove(t *testing.T) {
	r := Referral{ID: "r1", ClinicID: "c1", Status: StatusNew}
	at := time.Date(2026, 3, 15, 3, 0, 0, 123456789, time.FixedZone("X", 3600))
	moved, c, err := r.Move(StatusContacted, ViaChangeStatus, "  left a voicemail ", "coord", "h1", at)
	if err != nil {
		t.Fatal(err)
	}
	wantAt := time.Date(2026, 3, 15, 2, 0, 0, 123456000, time.UTC)
	if moved.Status != StatusContacted || !moved.UpdatedAt.Equal(wantAt) || r.Status != StatusNew {
		t.Errorf("moved = %+v (original %s)", moved, r.Status)
	}
	want := StatusChange{ID: "h1", ReferralID: "r1", ClinicID: "c1", From: StatusNew, To: StatusContacted, Reason: "left a voicemail", By: "coord", At: wantAt}
	if c != want {
		t.Errorf("change = %+v, want %+v", c, want)
	}
	if _, _, err := moved.Move(StatusContacted, ViaChangeStatus, "", "coord", "h2", at); err == nil {
		t.Error("same-status move accepted")
	}
}

func validReferral() ReferralInput {
	return ReferralInput{
		ClinicID: "0190a000-0000-7000-8000-000000000001", Source: SourceHospital, GivenName: "Alex", FamilyName: "Rivera",
		DateOfBirth: "1988-04-12", Phone: "+13125550100", Email: "alex@example.com", PreferredTrack: TrackEvening,
	}
}

func TestNewReferralRules(t *testing.T) {
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	tests := []struct {
		name          string
		edit          func(*ReferralInput)
		unknownClinic bool
		want          []fr
	}{
		{name: "valid", edit: func(*ReferralInput) {}},
		{name: "no date of birth", edit: func(in *ReferralInput) { in.DateOfBirth = "" }},
		{name: "phone only", edit: func(in *ReferralInput) { in.Email = "" }},
		{name: "email only", edit: func(in *ReferralInput) { in.Phone = "" }},
		{name: "no track preference", edit: func(in *ReferralInput) { in.PreferredTrack = "" }},
		{name: "no contact", edit: func(in *ReferralInput) { in.Phone, in.Email = "", " " }, want: []fr{{"phone", RuleContactRequired}, {"email", RuleContactRequired}}},
		{name: "unknown source", edit: func(in *ReferralInput) { in.Source = "" }, want: []fr{{"source", RuleSourceKnown}}},
		{name: "unknown track", edit: func(in *ReferralInput) { in.PreferredTrack = "night" }, want: []fr{{"preferred_track", RuleTrackKnown}}},
		{name: "blank names", edit: func(in *ReferralInput) { in.GivenName, in.FamilyName = " ", "" },
			want: []fr{{"given_name", RuleNameNotBlank}, {"family_name", RuleNameNotBlank}}},
		{name: "dob 31 April", edit: func(in *ReferralInput) { in.DateOfBirth = "1990-04-31" }, want: []fr{{"date_of_birth", RuleDateValid}}},
		{name: "dob today in clinic zone", edit: func(in *ReferralInput) { in.DateOfBirth = "2026-03-14" }, want: []fr{{"date_of_birth", RuleBirthInPast}}},
		{name: "dob more than 120 years back", edit: func(in *ReferralInput) { in.DateOfBirth = "1906-03-13" }, want: []fr{{"date_of_birth", RuleBirthMaxAge}}},
		{name: "first contact an hour ago", edit: func(in *ReferralInput) { in.FirstContactAt = at(-time.Hour) }},
		{name: "first contact within clock skew", edit: func(in *ReferralInput) { in.FirstContactAt = at(MaxClockSkew) }},
		{name: "first contact in the future", edit: func(in *ReferralInput) { in.FirstContactAt = at(MaxClockSkew + time.Second) },
			want: []fr{{"first_contact_at", RuleFirstContactFuture}}},
		{name: "first contact exactly 90 days back", edit: func(in *ReferralInput) { in.FirstContactAt = at(-90 * 24 * time.Hour) }},
		{name: "first contact more than 90 days back", edit: func(in *ReferralInput) { in.FirstContactAt = at(-90*24*time.Hour - time.Second) },
			want: []fr{{"first_contact_at", RuleFirstContactBackdate}}},
		{name: "unknown clinic", edit: func(*ReferralInput) {}, unknownClinic: true, want: []fr{{"clinic_id", RuleClinicKnown}}},
		{
			name: "all together", unknownClinic: true,
			edit: func(in *ReferralInput) {
				in.Source, in.GivenName, in.DateOfBirth, in.Phone, in.Email = "fax", "", "2026-02-30", "", ""
				in.FirstContactAt = at(time.Hour)
			},
			want: []fr{{"clinic_id", RuleClinicKnown}, {"source", RuleSourceKnown}, {"given_name", RuleNameNotBlank},
				{"date_of_birth", RuleDateValid}, {"phone", RuleContactRequired}, {"email", RuleContactRequired}, {"first_contact_at", RuleFirstContactFuture}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := validReferral()
			tt.edit(&in)
			clinic := chicago(t)
			if tt.unknownClinic {
				clinic = nil
			}
			r, err := NewReferral(in, clinic, now, "r1", "coord")
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
			if len(tt.want) == 0 && (r.ID != "r1" || r.Status != StatusNew || r.CreatedBy != "coord" || r.ClinicID != in.ClinicID) {
				t.Fatalf("referral not filled: %+v", r)
			}
		})
	}
}

func TestNewReferralNormalizes(t *testing.T) {
	in := validReferral()
	in.GivenName, in.FamilyName, in.Email, in.Notes = " Alex ", "Rivera  ", " Alex@Example.com ", "  called twice \n"
	r, err := NewReferral(in, chicago(t), now, "r1", "coord")
	if err != nil {
		t.Fatal(err)
	}
	if r.GivenName != "Alex" || r.FamilyName != "Rivera" || r.Email != "Alex@Example.com" || r.Notes != "called twice" {
		t.Errorf("not trimmed: %+v", r)
	}
	if !r.FirstContactAt.Equal(now) || r.FirstContactAt.Location() != time.UTC || !r.CreatedAt.Equal(now) {
		t.Errorf("first contact %v, created %v: want now in UTC", r.FirstContactAt, r.CreatedAt)
	}
	if r.DateOfBirth.String() != "1988-04-12" {
		t.Errorf("dob = %s", r.DateOfBirth)
	}

	// A first contact a little ahead (a client clock running fast) is taken as now.
	ahead := now.Add(2 * time.Minute)
	in.FirstContactAt = &ahead
	if r, err = NewReferral(in, chicago(t), now, "r1", "coord"); err != nil || !r.FirstContactAt.Equal(now) {
		t.Errorf("first contact 2 minutes ahead = %v (%v), want now", r.FirstContactAt, err)
	}
	// A given first contact in another zone is kept as the same instant, in UTC, to the microsecond.
	earlier := time.Date(2026, 3, 10, 9, 30, 0, 999, time.FixedZone("X", -5*3600))
	in.FirstContactAt = &earlier
	if r, err = NewReferral(in, chicago(t), now, "r1", "coord"); err != nil ||
		r.FirstContactAt != time.Date(2026, 3, 10, 14, 30, 0, 0, time.UTC) {
		t.Errorf("first contact = %v (%v)", r.FirstContactAt, err)
	}
}

func TestReferralViolationsDoNotQuoteValues(t *testing.T) {
	in := validReferral()
	in.DateOfBirth, in.GivenName, in.Phone, in.Email = "1990-02-30", " ", "", ""
	_, err := NewReferral(in, nil, now, "r1", "coord")
	if err == nil {
		t.Fatal("accepted")
	}
	for _, phi := range []string{"1990-02-30", "Rivera", "alex@example.com", "+13125550100"} {
		if strings.Contains(err.Error(), phi) {
			t.Errorf("error quotes %q: %v", phi, err)
		}
	}
}

func TestReferOut(t *testing.T) {
	tests := []struct {
		name   string
		status ReferralStatus
		in     ReferOutInput
		want   []fr // nil: accepted
		pre    bool // a *PreconditionError
	}{
		{name: "assessed", status: StatusAssessed, in: ReferOutInput{"2.5", "Lakeshore PHP", "needs daily care"}},
		{name: "screened, withdrawal level", status: StatusScreened, in: ReferOutInput{"3.7-WM", "County detox", "withdrawal"}},
		{name: "new", status: StatusNew, in: ReferOutInput{"2.5", "x", "y"}, pre: true},
		{name: "contacted", status: StatusContacted, in: ReferOutInput{"2.5", "x", "y"}, pre: true},
		{name: "already referred out", status: StatusReferredOut, in: ReferOutInput{"2.5", "x", "y"}, pre: true},
		{name: "state before input", status: StatusClosed, in: ReferOutInput{"9.9", "", ""}, pre: true},
		{name: "unknown level", status: StatusAssessed, in: ReferOutInput{"2.2", "x", "y"}, want: []fr{{"level", RuleLevelKnown}}},
		{name: "blank destination and reason", status: StatusScreened, in: ReferOutInput{"2.5", " ", "\t"},
			want: []fr{{"destination", RuleTextNotBlank}, {"reason", RuleTextNotBlank}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Referral{ID: "r1", ClinicID: "c1", Status: tt.status}
			moved, c, d, err := r.ReferOut(tt.in, "coord", "h1", now)
			var pe *PreconditionError
			var ve *ValidationError
			switch {
			case tt.pre:
				if !errors.As(err, &pe) {
					t.Fatalf("err = %v, want a precondition error", err)
				}
			case tt.want != nil:
				if !errors.As(err, &ve) {
					t.Fatalf("err = %v, want violations %v", err, tt.want)
				}
				var got []fr
				for _, v := range ve.Violations {
					got = append(got, fr{v.Field, v.Rule})
				}
				if !slices.Equal(got, tt.want) {
					t.Fatalf("violations = %v, want %v", got, tt.want)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if moved.Status != StatusReferredOut || c.From != tt.status || c.To != StatusReferredOut ||
					d.Level != tt.in.Level || d.Destination != tt.in.Destination || d.Reason != tt.in.Reason || !d.At.Equal(now) {
					t.Fatalf("moved %+v, change %+v, decision %+v", moved, c, d)
				}
			}
		})
	}
}
