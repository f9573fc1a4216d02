package domain

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func validCoverageInput() CoverageInput {
	return CoverageInput{
		PayerID: "medicaid-il", Plan: "Family Health", MemberID: "MBR123", GroupNumber: "G-1",
		SubscriberRelationship: SubscriberSelf, EffectiveFrom: "2026-01-01", EffectiveTo: "2026-12-31",
		Eligibility: EligibilityEligible, Priority: CoveragePrimary,
	}
}

func TestCoverageRules(t *testing.T) {
	tests := []struct {
		name string
		edit func(*CoverageInput)
		want []fr
	}{
		{name: "valid", edit: func(*CoverageInput) {}},
		{name: "open-ended", edit: func(in *CoverageInput) { in.EffectiveTo = "" }},
		{name: "one day", edit: func(in *CoverageInput) { in.EffectiveTo = in.EffectiveFrom }},
		{name: "ends before it starts", edit: func(in *CoverageInput) { in.EffectiveTo = "2025-12-31" },
			want: []fr{{"effective_to", RuleCoverageEndBeforeStart}}},
		{name: "from 30 February", edit: func(in *CoverageInput) { in.EffectiveFrom = "2026-02-30" },
			want: []fr{{"effective_from", RuleDateValid}}},
		{name: "to 31 April", edit: func(in *CoverageInput) { in.EffectiveTo = "2026-04-31" },
			want: []fr{{"effective_to", RuleDateValid}}},
		{name: "to 29 February leap year", edit: func(in *CoverageInput) { in.EffectiveTo = "2028-02-29" }},
		{name: "both dates bad", edit: func(in *CoverageInput) { in.EffectiveFrom, in.EffectiveTo = "2026-13-01", "2026-00-10" },
			want: []fr{{"effective_from", RuleDateValid}, {"effective_to", RuleDateValid}}},
		// consentNow is 2026-03-15: dates run from 1990-01-01 to 2031-03-15.
		{name: "from 1990-01-01 to 5 years ahead", edit: func(in *CoverageInput) { in.EffectiveFrom, in.EffectiveTo = "1990-01-01", "2031-03-15" }},
		{name: "from 1989", edit: func(in *CoverageInput) { in.EffectiveFrom = "1989-12-31" },
			want: []fr{{"effective_from", RuleCoverageDateRange}}},
		{name: "from a mistyped year", edit: func(in *CoverageInput) { in.EffectiveFrom, in.EffectiveTo = "1026-01-01", "" },
			want: []fr{{"effective_from", RuleCoverageDateRange}}},
		{name: "to more than 5 years ahead", edit: func(in *CoverageInput) { in.EffectiveTo = "2031-03-16" },
			want: []fr{{"effective_to", RuleCoverageDateRange}}},
		{name: "from year 9999", edit: func(in *CoverageInput) { in.EffectiveFrom, in.EffectiveTo = "9999-01-01", "" },
			want: []fr{{"effective_from", RuleCoverageDateRange}}},
		{name: "both out of range", edit: func(in *CoverageInput) { in.EffectiveFrom, in.EffectiveTo = "0001-01-01", "3026-12-31" },
			want: []fr{{"effective_from", RuleCoverageDateRange}, {"effective_to", RuleCoverageDateRange}}},
		{name: "blank member id", edit: func(in *CoverageInput) { in.MemberID = "  " },
			want: []fr{{"member_id", RuleMemberIDNotBlank}}},
		{name: "plan too long", edit: func(in *CoverageInput) { in.Plan = strings.Repeat("p", 201) },
			want: []fr{{"plan", RuleCoverageFieldMaxLen}}},
		{name: "payer not a code", edit: func(in *CoverageInput) { in.PayerID = "Medicaid IL" },
			want: []fr{{"payer_id", RuleCodeKnown}}},
		{name: "payer starting with a hyphen", edit: func(in *CoverageInput) { in.PayerID = "-x" },
			want: []fr{{"payer_id", RuleCodeKnown}}},
		{name: "unknown codes", edit: func(in *CoverageInput) {
			in.SubscriberRelationship, in.Eligibility, in.Priority = "", "maybe", "fourth"
		},
			want: []fr{{"subscriber_relationship", RuleCodeKnown}, {"eligibility", RuleCodeKnown}, {"priority", RuleCodeKnown}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := validCoverageInput()
			tt.edit(&in)
			c, err := NewCoverage(in, "p1", "k1", "v1", "biller-1", consentNow)
			if got := consentViolations(t, err); !slices.Equal(got, tt.want) {
				t.Fatalf("violations = %v, want %v", got, tt.want)
			}
			if err == nil && (c.Version != 1 || c.ID != "v1" || c.EffectiveFrom.String() != in.EffectiveFrom || c.UpdatedBy != "biller-1") {
				t.Errorf("coverage = %+v", c)
			}
		})
	}
}

func TestCoverageChange(t *testing.T) {
	c, err := NewCoverage(validCoverageInput(), "p1", "k1", "v1", "biller-1", consentNow)
	if err != nil {
		t.Fatal(err)
	}
	later := consentNow.Add(time.Hour)
	same := validCoverageInput()
	same.MemberID = " MBR123 " // trimmed: the same terms
	if got, changed, err := c.Change(same, "biller-2", later); err != nil || changed || got.Version != 1 || !got.UpdatedAt.Equal(c.UpdatedAt) {
		t.Fatalf("same terms: changed=%v version %d err %v, want unchanged", changed, got.Version, err)
	}
	in := validCoverageInput()
	in.Eligibility, in.EffectiveTo = EligibilityIneligible, ""
	got, changed, err := c.Change(in, "biller-2", later)
	if err != nil || !changed {
		t.Fatalf("changed=%v err %v", changed, err)
	}
	if got.Version != 2 || got.ID != c.ID || got.Eligibility != EligibilityIneligible || !got.EffectiveTo.IsZero() ||
		got.UpdatedBy != "biller-2" || !got.UpdatedAt.Equal(later.Truncate(time.Microsecond)) || !got.CreatedAt.Equal(c.CreatedAt) {
		t.Errorf("changed coverage = %+v", got)
	}
	in.EffectiveTo = "2025-01-01"
	if _, _, err := c.Change(in, "biller-2", later); !slices.Equal(consentViolations(t, err), []fr{{"effective_to", RuleCoverageEndBeforeStart}}) {
		t.Errorf("bad change err = %v", err)
	}
}

func TestCoveragePriorityOverlap(t *testing.T) {
	cov := func(id, prio, from, to, elig string) Coverage {
		in := validCoverageInput()
		in.Priority, in.EffectiveFrom, in.EffectiveTo, in.Eligibility = prio, from, to, elig
		c, err := NewCoverage(in, "p1", "k1", id, "b", consentNow)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	existing := []Coverage{
		cov("a", CoveragePrimary, "2026-01-01", "2026-06-30", EligibilityEligible),
		cov("b", CoverageSecondary, "2026-01-01", "", EligibilityUnverified),
		cov("x", CoveragePrimary, "2027-01-01", "2027-12-31", EligibilityIneligible),
	}
	tests := []struct {
		name     string
		c        Coverage
		conflict bool
	}{
		{"primary starting the day after the other ends", cov("n", CoveragePrimary, "2026-07-01", "", EligibilityEligible), false},
		{"primary starting the day the other ends", cov("n", CoveragePrimary, "2026-06-30", "", EligibilityEligible), true},
		{"primary ending the day before the other starts", cov("n", CoveragePrimary, "2025-01-01", "2025-12-31", EligibilityEligible), false},
		{"primary inside the other", cov("n", CoveragePrimary, "2026-02-01", "2026-02-28", EligibilityUnverified), true},
		{"open-ended primary covering the other", cov("n", CoveragePrimary, "2020-01-01", "", EligibilityEligible), true},
		{"secondary overlapping an open-ended secondary", cov("n", CoverageSecondary, "2030-01-01", "2030-01-01", EligibilityEligible), true},
		{"tertiary overlapping others' dates", cov("n", CoverageTertiary, "2026-01-01", "", EligibilityEligible), false},
		{"ineligible primary overlapping", cov("n", CoveragePrimary, "2026-03-01", "", EligibilityIneligible), false},
		{"primary overlapping only an ineligible one", cov("n", CoveragePrimary, "2027-03-01", "2027-03-31", EligibilityEligible), false},
		{"the stored coverage itself, changed", cov("a", CoveragePrimary, "2026-01-01", "2026-09-30", EligibilityEligible), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPriority(tt.c, existing)
			var pe *PreconditionError
			if got := errors.As(err, &pe); got != tt.conflict {
				t.Fatalf("conflict = %v (%v), want %v", got, err, tt.conflict)
			}
			if tt.conflict && !strings.Contains(err.Error(), "priority "+tt.c.Priority) {
				t.Errorf("message %q does not name the priority", err)
			}
		})
	}
}
