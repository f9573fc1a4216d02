package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Coverage codes, as stored.
const (
	SubscriberSelf   = "self"
	SubscriberSpouse = "spouse"
	SubscriberChild  = "child"
	SubscriberOther  = "other"

	EligibilityUnverified = "unverified"
	EligibilityEligible   = "eligible"
	EligibilityIneligible = "ineligible"

	CoveragePrimary   = "primary"
	CoverageSecondary = "secondary"
	CoverageTertiary  = "tertiary"
)

// Coverage dates lie between MinCoverageDate and MaxCoverageLeadYears from today (UTC): a date
// outside is almost always a mistyped year (1026 for 2026), and billing would take it at face
// value.
var MinCoverageDate = NewDate(1990, time.January, 1)

// MaxCoverageLeadYears: see MinCoverageDate.
const MaxCoverageLeadYears = 5

// Rule ids of coverage violations (besides "date.valid" and "code.known").
const (
	RuleCoverageDateRange      = "date.range"
	RuleCoverageEndBeforeStart = "effective_to.not_before_effective_from"
	RuleMemberIDNotBlank       = "member_id.not_blank"
	RuleCoverageFieldMaxLen    = "coverage.max_len"
)

// Request field names, as in SetCoverageRequest.
const (
	coverageFieldPayerID       = "payer_id"
	coverageFieldPlan          = "plan"
	coverageFieldMemberID      = "member_id"
	coverageFieldGroupNumber   = "group_number"
	coverageFieldRelationship  = "subscriber_relationship"
	coverageFieldEffectiveFrom = "effective_from"
	coverageFieldEffectiveTo   = "effective_to"
	coverageFieldEligibility   = "eligibility"
	coverageFieldPriority      = "priority"
)

var (
	coverageRelationships = []string{SubscriberSelf, SubscriberSpouse, SubscriberChild, SubscriberOther}
	coverageEligibilities = []string{EligibilityUnverified, EligibilityEligible, EligibilityIneligible}
	// CoveragePriorities in order: primary is billed first.
	CoveragePriorities = []string{CoveragePrimary, CoverageSecondary, CoverageTertiary}
)

// CoverageInput is a coverage as set (already checked for shape by protovalidate: payer code
// pattern, "YYYY-MM-DD" patterns, lengths, defined enums).
type CoverageInput struct {
	PayerID                string
	Plan                   string
	MemberID               string
	GroupNumber            string
	SubscriberRelationship string
	EffectiveFrom          string
	EffectiveTo            string // "" means open-ended
	Eligibility            string
	Priority               string
}

// Coverage is a patient's insurance coverage. EffectiveTo is the last covered day, inclusive;
// the zero Date means open-ended. Version counts its states: 1 as added, then one more per change.
type Coverage struct {
	ID                     string
	PatientID              string
	ClinicID               string
	PayerID                string
	Plan                   string
	MemberID               string
	GroupNumber            string
	SubscriberRelationship string
	EffectiveFrom          Date
	EffectiveTo            Date
	Eligibility            string
	Priority               string
	Version                int
	UpdatedAt              time.Time
	UpdatedBy              string
	CreatedAt              time.Time
}

// NewCoverage applies the coverage rules to a coverage being added (version 1).
func NewCoverage(in CoverageInput, patientID, clinicID, id, by string, now time.Time) (Coverage, error) {
	c, err := coverageTerms(in, now)
	if err != nil {
		return Coverage{}, err
	}
	now = consentTime(now)
	c.ID, c.PatientID, c.ClinicID, c.Version = id, patientID, clinicID, 1
	c.UpdatedAt, c.UpdatedBy, c.CreatedAt = now, by, now
	return c, nil
}

// Change applies the coverage rules to new terms for c. It returns the changed coverage (one
// version more) and true, or c and false when the terms are the same as c's (nothing changes:
// no new version, no event).
func (c Coverage) Change(in CoverageInput, by string, now time.Time) (Coverage, bool, error) {
	n, err := coverageTerms(in, now)
	if err != nil {
		return Coverage{}, false, err
	}
	if n.sameTerms(c) {
		return c, false, nil
	}
	n.ID, n.PatientID, n.ClinicID, n.Version, n.CreatedAt = c.ID, c.PatientID, c.ClinicID, c.Version+1, c.CreatedAt
	n.UpdatedAt, n.UpdatedBy = consentTime(now), by
	return n, true, nil
}

// CheckPriority enforces: at most one coverage of each priority in effect for a patient on any
// day. others are the patient's other coverages (c itself, if stored, is skipped by id). An
// ineligible coverage is never billed, so it claims no priority: it neither conflicts nor is
// conflicted with. A conflict is a *PreconditionError naming the priority and the other
// coverage's id (not invalid_argument: the request is well formed; what is stored forbids it).
func CheckPriority(c Coverage, others []Coverage) error {
	if c.Eligibility == EligibilityIneligible {
		return nil
	}
	for _, o := range others {
		if o.ID == c.ID || o.Priority != c.Priority || o.Eligibility == EligibilityIneligible {
			continue
		}
		if c.Overlaps(o) {
			return Precondition(fmt.Sprintf("priority %s: coverage %s is already %s on overlapping dates; end it (effective_to) or choose another priority",
				c.Priority, o.ID, c.Priority))
		}
	}
	return nil
}

// Overlaps reports whether c and o are in effect on at least one common day (both ends
// inclusive, an open end reaching forever).
func (c Coverage) Overlaps(o Coverage) bool {
	return (o.EffectiveTo.IsZero() || !c.EffectiveFrom.After(o.EffectiveTo)) &&
		(c.EffectiveTo.IsZero() || !o.EffectiveFrom.After(c.EffectiveTo))
}

func (c Coverage) sameTerms(o Coverage) bool {
	return c.PayerID == o.PayerID && c.Plan == o.Plan && c.MemberID == o.MemberID && c.GroupNumber == o.GroupNumber &&
		c.SubscriberRelationship == o.SubscriberRelationship && c.EffectiveFrom.Time().Equal(o.EffectiveFrom.Time()) &&
		c.EffectiveTo.Time().Equal(o.EffectiveTo.Time()) && c.Eligibility == o.Eligibility && c.Priority == o.Priority
}

// coverageTerms checks in and returns a Coverage holding its terms (no ids or times).
func coverageTerms(in CoverageInput, now time.Time) (Coverage, error) {
	var vs []Violation
	add := func(field, rule, msg string) { vs = append(vs, Violation{Field: field, Rule: rule, Msg: msg}) }
	c := Coverage{
		PayerID: in.PayerID, Plan: strings.TrimSpace(in.Plan), MemberID: strings.TrimSpace(in.MemberID),
		GroupNumber: strings.TrimSpace(in.GroupNumber), SubscriberRelationship: in.SubscriberRelationship,
		Eligibility: in.Eligibility, Priority: in.Priority,
	}
	if !coveragePayerCode(c.PayerID) {
		add(coverageFieldPayerID, RuleCodeKnown, "must be a payer code such as medicaid-il")
	}
	if c.MemberID == "" {
		add(coverageFieldMemberID, RuleMemberIDNotBlank, "must not be blank")
	}
	for _, f := range []struct {
		field, value string
		max          int
	}{{coverageFieldPlan, c.Plan, 200}, {coverageFieldMemberID, c.MemberID, 80}, {coverageFieldGroupNumber, c.GroupNumber, 80}} {
		if len([]rune(f.value)) > f.max {
			add(f.field, RuleCoverageFieldMaxLen, fmt.Sprintf("must be at most %d characters", f.max))
		}
	}
	for _, f := range []struct {
		field, value string
		codes        []string
	}{
		{coverageFieldRelationship, c.SubscriberRelationship, coverageRelationships},
		{coverageFieldEligibility, c.Eligibility, coverageEligibilities},
		{coverageFieldPriority, c.Priority, CoveragePriorities},
	} {
		if !slices.Contains(f.codes, f.value) {
			add(f.field, RuleCodeKnown, "unknown code")
		}
	}
	latest := DateIn(now, time.UTC).AddYears(MaxCoverageLeadYears)
	inRange := func(d Date) bool { return !d.Before(MinCoverageDate) && !d.After(latest) }
	rangeMsg := fmt.Sprintf("must be from %s to %d years from today", MinCoverageDate, MaxCoverageLeadYears)
	from, err := ParseDate(in.EffectiveFrom)
	switch {
	case err != nil:
		add(coverageFieldEffectiveFrom, RuleDateValid, "must be a real calendar date YYYY-MM-DD")
	case !inRange(from):
		add(coverageFieldEffectiveFrom, RuleCoverageDateRange, rangeMsg)
		from = Date{} // no end-before-start check against it
	}
	var to Date
	if in.EffectiveTo != "" {
		to, err = ParseDate(in.EffectiveTo)
		switch {
		case err != nil:
			add(coverageFieldEffectiveTo, RuleDateValid, "must be a real calendar date YYYY-MM-DD")
		case !inRange(to):
			add(coverageFieldEffectiveTo, RuleCoverageDateRange, rangeMsg)
		case !from.IsZero() && to.Before(from):
			add(coverageFieldEffectiveTo, RuleCoverageEndBeforeStart, "must not be before effective_from")
		}
	}
	if len(vs) > 0 {
		return Coverage{}, &ValidationError{Violations: vs}
	}
	c.EffectiveFrom, c.EffectiveTo = from, to
	return c, nil
}

// coveragePayerCode: lowercase letters, digits and hyphens, 2 to 63 characters, not starting
// with a hyphen (the pattern of SetCoverageRequest.payer_id and of the column's CHECK).
func coveragePayerCode(s string) bool {
	if len(s) < 2 || len(s) > 63 || s[0] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}
