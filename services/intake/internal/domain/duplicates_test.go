package domain

import (
	"slices"
	"testing"
)

func TestMatchOn(t *testing.T) {
	dob := NewDate(1988, 4, 12)
	base := Person{GivenName: "Anna Maria", FamilyName: "O'Neil", DateOfBirth: dob, Phone: "+13125550100", Email: "anna@example.com"}
	tests := []struct {
		name string
		b    Person
		want []Match
	}{
		{"same person", base, []Match{MatchNameAndDateOfBirth, MatchPhone, MatchEmail}},
		{"name case and spacing", Person{GivenName: "  anna   MARIA ", FamilyName: "o'neil", DateOfBirth: dob}, []Match{MatchNameAndDateOfBirth}},
		{"name with another date of birth", Person{GivenName: "Anna Maria", FamilyName: "O'Neil", DateOfBirth: NewDate(1988, 4, 13)}, nil},
		{"name without a date of birth", Person{GivenName: "Anna Maria", FamilyName: "O'Neil"}, nil},
		{"same date of birth, another family name", Person{GivenName: "Anna Maria", FamilyName: "ONeil", DateOfBirth: dob}, nil},
		{"same date of birth, another given name", Person{GivenName: "Anna", FamilyName: "O'Neil", DateOfBirth: dob}, nil},
		{"given and family swapped", Person{GivenName: "O'Neil", FamilyName: "Anna Maria", DateOfBirth: dob}, nil},
		{"phone formatted differently", Person{Phone: "+1 (312) 555-0100"}, []Match{MatchPhone}},
		{"another phone", Person{Phone: "+13125550101"}, nil},
		{"email case and spaces", Person{Email: " ANNA@Example.COM "}, []Match{MatchEmail}},
		{"another email", Person{Email: "anna@example.org"}, nil},
		{"phone and email", Person{GivenName: "Ann", Phone: "13125550100", Email: "anna@example.com"}, []Match{MatchPhone, MatchEmail}},
		{"nothing in common", Person{GivenName: "Bo", FamilyName: "Lee", DateOfBirth: NewDate(1970, 1, 1), Phone: "+442071234567", Email: "bo@x.org"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MatchOn(base, tt.b); !slices.Equal(got, tt.want) {
				t.Errorf("MatchOn = %v, want %v", got, tt.want)
			}
			if got := MatchOn(tt.b, base); !slices.Equal(got, tt.want) {
				t.Errorf("MatchOn reversed = %v, want %v (the rules are symmetric)", got, tt.want)
			}
		})
	}
	// Empty values never match each other.
	if got := MatchOn(Person{}, Person{}); got != nil {
		t.Errorf("two empty persons match on %v", got)
	}
}

func TestFindDuplicates(t *testing.T) {
	p := Person{GivenName: "Alex", FamilyName: "Rivera", DateOfBirth: NewDate(1988, 4, 12), Phone: "+13125550100", Email: "alex@example.com"}
	cands := []Candidate{
		{Kind: DuplicateReferral, ID: "self", ClinicID: "c1", Person: p},                                // the new referral itself
		{Kind: DuplicateReferral, ID: "r1", ClinicID: "c1", Person: Person{Phone: "+13125550100"}},      // phone
		{Kind: DuplicatePatient, ID: "p1", ClinicID: "c2", Person: Person{Email: "ALEX@example.com"}},   // email, other clinic
		{Kind: DuplicateReferral, ID: "r2", ClinicID: "c1", Person: Person{DateOfBirth: p.DateOfBirth}}, // same dob only: no
		{Kind: DuplicateReferral, ID: "r1", ClinicID: "c1", Person: Person{Phone: "+13125550100"}},      // returned twice
		{Kind: DuplicatePatient, ID: "r1", ClinicID: "c1", Person: Person{GivenName: "alex", FamilyName: "RIVERA", DateOfBirth: p.DateOfBirth}},
		// The same records again, matching on other rules: merged into their first entries.
		{Kind: DuplicateReferral, ID: "r1", ClinicID: "c1", Person: Person{Email: " alex@EXAMPLE.com"}},
		{Kind: DuplicatePatient, ID: "p1", ClinicID: "c2", Person: Person{GivenName: "Alex", FamilyName: "Rivera", DateOfBirth: p.DateOfBirth, Phone: "1 312 555 0100"}},
		// r2 matches nothing the first time, the name and date of birth the second.
		{Kind: DuplicateReferral, ID: "r2", ClinicID: "c1", Person: Person{GivenName: "alex", FamilyName: "rivera", DateOfBirth: p.DateOfBirth}},
		{Kind: DuplicateReferral, ID: "self", ClinicID: "c1", Person: p}, // self, again
	}
	got := FindDuplicates("self", p, cands)
	want := []Duplicate{
		{Kind: DuplicateReferral, ID: "r1", ClinicID: "c1", MatchedOn: []Match{MatchPhone, MatchEmail}},
		{Kind: DuplicatePatient, ID: "p1", ClinicID: "c2", MatchedOn: []Match{MatchNameAndDateOfBirth, MatchPhone, MatchEmail}},
		{Kind: DuplicatePatient, ID: "r1", ClinicID: "c1", MatchedOn: []Match{MatchNameAndDateOfBirth}},
		{Kind: DuplicateReferral, ID: "r2", ClinicID: "c1", MatchedOn: []Match{MatchNameAndDateOfBirth}},
	}
	if !slices.EqualFunc(got, want, func(a, b Duplicate) bool {
		return a.Kind == b.Kind && a.ID == b.ID && a.ClinicID == b.ClinicID && slices.Equal(a.MatchedOn, b.MatchedOn)
	}) {
		t.Errorf("FindDuplicates =\n%v\nwant\n%v", got, want)
	}
}

func TestMatchKeys(t *testing.T) {
	if got := NameKey("  Jean-Luc \t  PICARD "); got != "jean-luc picard" {
		t.Errorf("NameKey = %q", got)
	}
	if got := PhoneKey("+1 (312) 555-0100"); got != "13125550100" {
		t.Errorf("PhoneKey = %q", got)
	}
	if got := EmailKey(" A@B.Org\n"); got != "a@b.org" {
		t.Errorf("EmailKey = %q", got)
	}
}

// Two persons that match on any rule share a match key (so creating them at once serializes
// on its lock), and persons that match on nothing share none.
func TestMatchKeysOfMatchingPersons(t *testing.T) {
	dob := NewDate(1988, 4, 12)
	base := Person{GivenName: "Anna Maria", FamilyName: "O'Neil", DateOfBirth: dob, Phone: "+13125550100", Email: "anna@example.com"}
	if got := MatchKeys(base); len(got) != 3 || !slices.IsSorted(got) {
		t.Errorf("MatchKeys = %q, want three, sorted", got)
	}
	for _, p := range []Person{{}, {GivenName: "Anna", FamilyName: "Lee"}, {GivenName: "Anna", DateOfBirth: dob}} {
		if got := MatchKeys(p); len(got) != 0 {
			t.Errorf("MatchKeys(%+v) = %q, want none", p, got)
		}
	}
	others := []Person{
		{GivenName: "  anna   MARIA ", FamilyName: "o'neil", DateOfBirth: dob},
		{Phone: "+1 (312) 555-0100"},
		{Email: " ANNA@Example.COM "},
		{GivenName: "Anna Maria", FamilyName: "O'Neil", DateOfBirth: NewDate(1988, 4, 13)},
		{GivenName: "Anna Maria", FamilyName: "O'Neil"},
		{Phone: "+13125550101", Email: "anna@example.org"},
	}
	for _, o := range others {
		shared := slices.ContainsFunc(MatchKeys(o), func(k string) bool { return slices.Contains(MatchKeys(base), k) })
		if matched := len(MatchOn(base, o)) > 0; shared != matched {
			t.Errorf("%+v: shares a key %t, matches %t", o, shared, matched)
		}
	}
}
