package domain

import (
	"slices"
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

// MatchKeys are the values on which p can match another record, one per rule p can match on,
// sorted: the normalized name and date of birth (when p has a date of birth and both names),
// the phone digits and the lower-cased email. Two persons that MatchOn matches share at least
// one key. Creating calls lock these (hashed) while they look for duplicates, so two records
// of one person created at the same time are still matched with each other. They hold PHI:
// never log them.
func MatchKeys(p Person) []string {
	var keys []string
	if given, family := NameKey(p.GivenName), NameKey(p.FamilyName); !p.DateOfBirth.IsZero() && given != "" && family != "" {
		keys = append(keys, string(MatchNameAndDateOfBirth)+"\x00"+given+"\x00"+family+"\x00"+p.DateOfBirth.String())
	}
	if d := PhoneKey(p.Phone); d != "" {
		keys = append(keys, string(MatchPhone)+"\x00"+d)
	}
	if e := EmailKey(p.Email); e != "" {
		keys = append(keys, string(MatchEmail)+"\x00"+e)
	}
	slices.Sort(keys)
	return keys
}

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

// FindDuplicates keeps the candidates that match p on at least one rule, skipping self. The
// store's search may return more than the rules accept, or a record more than once (even with
// different details): the matches of one record (kind and id) are merged into one Duplicate,
// each rule once, in MatchOn's order. Duplicates come in the order they are first matched.
func FindDuplicates(self string, p Person, cands []Candidate) []Duplicate {
	var ds []Duplicate
	at := map[[2]string]int{} // (kind, id) -> index in ds
	for _, c := range cands {
		k := [2]string{c.Kind, c.ID}
		if k == [2]string{DuplicateReferral, self} {
			continue
		}
		ms := MatchOn(p, c.Person)
		if len(ms) == 0 {
			continue
		}
		i, seen := at[k]
		if !seen {
			at[k] = len(ds)
			ds = append(ds, Duplicate{Kind: c.Kind, ID: c.ID, ClinicID: c.ClinicID, MatchedOn: ms})
			continue
		}
		ds[i].MatchedOn = mergeMatches(ds[i].MatchedOn, ms)
	}
	return ds
}

// matchOrder is the order of MatchOn's rules.
var matchOrder = []Match{MatchNameAndDateOfBirth, MatchPhone, MatchEmail}

// mergeMatches is the rules of a or b, each once, in matchOrder.
func mergeMatches(a, b []Match) []Match {
	var out []Match
	for _, m := range matchOrder {
		if slices.Contains(a, m) || slices.Contains(b, m) {
			out = append(out, m)
		}
	}
	return out
}
