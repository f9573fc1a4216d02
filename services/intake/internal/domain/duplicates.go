package domain

import (
	"strings"
	"unicode"
)

// Match is why two records may be the same person (stored as this code).
type Match string

// The duplicate matching rules. A pair matches on
//   - name and date of birth: given and family names equal ignoring case and spacing
//     (" anna  MARIA " = "Anna Maria"), and the same date of birth; only when both have one;
//   - phone: the same digits (formatting ignored); only when both have one;
//   - email: equal ignoring case and surrounding spaces; only when both have one.
//
// Matches are flagged for a person to judge, never merged.
const (
	MatchNameAndDateOfBirth Match = "name_and_date_of_birth"
	MatchPhone              Match = "phone"
	MatchEmail              Match = "email"
)

// Kinds of record a referral may duplicate.
const (
	DuplicateReferral = "referral"
	DuplicatePatient  = "patient"
)

// Person is what the matching rules compare.
type Person struct {
	GivenName   string
	FamilyName  string
	DateOfBirth Date // zero: unknown
	Phone       string
	Email       string
}

// NameKey is a name compared ignoring case and spacing.
func NameKey(name string) string { return strings.ToLower(strings.Join(strings.Fields(name), " ")) }

// PhoneKey is a phone number's digits.
func PhoneKey(phone string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, phone)
}

// EmailKey is an email address compared ignoring case and surrounding spaces.
func EmailKey(email string) string { return strings.ToLower(strings.TrimFunc(email, unicode.IsSpace)) }

// MatchOn lists the rules on which a and b match, in a fixed order; nil when none.
func MatchOn(a, b Person) []Match {
	var ms []Match
	if !a.DateOfBirth.IsZero() && a.DateOfBirth == b.DateOfBirth &&
		NameKey(a.GivenName) != "" && NameKey(a.GivenName) == NameKey(b.GivenName) &&
		NameKey(a.FamilyName) != "" && NameKey(a.FamilyName) == NameKey(b.FamilyName) {
		ms = append(ms, MatchNameAndDateOfBirth)
	}
	if p := PhoneKey(a.Phone); p != "" && p == PhoneKey(b.Phone) {
		ms = append(ms, MatchPhone)
	}
	if e := EmailKey(a.Email); e != "" && e == EmailKey(b.Email) {
		ms = append(ms, MatchEmail)
	}
	return ms
}

// Candidate is a record that may duplicate a new referral: an open referral or a patient, of
// any clinic.
type Candidate struct {
	Kind     string // DuplicateReferral or DuplicatePatient
	ID       string
	ClinicID string
	Person   Person
}

// Duplicate is a record flagged as possibly the same person.
type Duplicate struct {
	Kind      string
	ID        string
	ClinicID  string
	MatchedOn []Match
}

// FindDuplicates keeps the candidates that match p on at least one rule (the store's search
// may return more than the rules accept, or a record twice), skipping self.
func FindDuplicates(self string, p Person, cands []Candidate) []Duplicate {
	var ds []Duplicate
	seen := map[[2]string]bool{{DuplicateReferral, self}: true}
	for _, c := range cands {
		if k := [2]string{c.Kind, c.ID}; seen[k] {
			continue
		} else {
			seen[k] = true
		}
		if ms := MatchOn(p, c.Person); len(ms) > 0 {
			ds = append(ds, Duplicate{Kind: c.Kind, ID: c.ID, ClinicID: c.ClinicID, MatchedOn: ms})
		}
	}
	return ds
}
