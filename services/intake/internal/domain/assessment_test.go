package domain

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// validAssessment rates dimensions 1-6 as 1, 1, 2, 2, 2, 1 (given out of order): the 3rd
// edition rules recommend 2.1.
func validAssessment() AssessmentInput {
	return AssessmentInput{
		Population: PopulationAdult, Withdrawal: WithdrawalDetoxCompleted,
		Dimensions: []DimensionInput{
			{Dimension: 6, Rating: 1, Notes: "lives with a supportive sister"},
			{Dimension: 1, Rating: 1}, {Dimension: 2, Rating: 1}, {Dimension: 3, Rating: 2, Notes: " mild anxiety "},
			{Dimension: 4, Rating: 2}, {Dimension: 5, Rating: 2},
		},
		CoOccurring: []string{"anxiety"},
	}
}

func screened() Referral {
	return Referral{ID: "r1", ClinicID: "c1", Status: StatusScreened}
}

func TestNewAssessmentRules(t *testing.T) {
	tests := []struct {
		name string
		edit func(*AssessmentInput)
		want []fr
	}{
		{name: "valid", edit: func(*AssessmentInput) {}},
		{name: "current edition named", edit: func(in *AssessmentInput) { in.Edition = "asam-3" }},
		{name: "unknown edition", edit: func(in *AssessmentInput) { in.Edition = "asam-9" }, want: []fr{{"edition", RuleEditionKnown}}},
		{name: "no population", edit: func(in *AssessmentInput) { in.Population = "" }, want: []fr{{"population", RulePopulationKnown}}},
		{name: "no withdrawal status", edit: func(in *AssessmentInput) { in.Withdrawal = "" }, want: []fr{{"withdrawal", RuleWithdrawalKnown}}},
		{name: "rating 5", edit: func(in *AssessmentInput) { in.Dimensions[2].Rating = 5 }, want: []fr{{"dimensions[2].rating", RuleRatingRange}}},
		{name: "rating -1", edit: func(in *AssessmentInput) { in.Dimensions[0].Rating = -1 }, want: []fr{{"dimensions[0].rating", RuleRatingRange}}},
		{name: "dimension 7", edit: func(in *AssessmentInput) { in.Dimensions[0].Dimension = 7 },
			want: []fr{{"dimensions[0].dimension", RuleDimensionRange}, {"dimensions", RuleDimensionsEachOnce}}},
		{name: "dimension twice", edit: func(in *AssessmentInput) { in.Dimensions[0].Dimension = 1 }, want: []fr{{"dimensions", RuleDimensionsEachOnce}}},
		{name: "five dimensions", edit: func(in *AssessmentInput) { in.Dimensions = in.Dimensions[1:] }, want: []fr{{"dimensions", RuleDimensionsEachOnce}}},
		{name: "notes too long", edit: func(in *AssessmentInput) { in.Dimensions[1].Notes = strings.Repeat("é", MaxDimensionNotes+1) },
			want: []fr{{"dimensions[1].notes", RuleNotesMaxLen}}},
		{name: "notes at the limit", edit: func(in *AssessmentInput) { in.Dimensions[1].Notes = strings.Repeat("é", MaxDimensionNotes) }},
		{name: "unknown condition", edit: func(in *AssessmentInput) { in.CoOccurring = []string{"anxiety", ""} },
			want: []fr{{"co_occurring[1]", RuleConditionKnown}}},
		{name: "condition twice", edit: func(in *AssessmentInput) { in.CoOccurring = []string{"anxiety", "ptsd", "anxiety"} },
			want: []fr{{"co_occurring[2]", RuleConditionUnique}}},
		{name: "override with reason", edit: func(in *AssessmentInput) { in.OverrideLevel, in.OverrideReason = "2.5", "daily structure" }},
		{name: "override without reason", edit: func(in *AssessmentInput) { in.OverrideLevel, in.OverrideReason = "2.5", "  " },
			want: []fr{{"override_reason", RuleOverrideReason}}},
		{name: "override to an unknown level", edit: func(in *AssessmentInput) { in.OverrideLevel, in.OverrideReason = "2.2", "x" },
			want: []fr{{"override_level", RuleLevelKnown}}},
		{name: "unknown level, no reason", edit: func(in *AssessmentInput) { in.OverrideLevel = "IOP" },
			want: []fr{{"override_level", RuleLevelKnown}, {"override_reason", RuleOverrideReason}}},
		{name: "override to the recommendation", edit: func(in *AssessmentInput) { in.OverrideLevel, in.OverrideReason = "2.1", "agree" },
			want: []fr{{"override_level", RuleOverrideDiffers}}},
		{name: "reason without override", edit: func(in *AssessmentInput) { in.OverrideReason = "agree" },
			want: []fr{{"override_reason", RuleOverrideReasonNoLevel}}},
		{name: "several together", edit: func(in *AssessmentInput) {
			in.Edition, in.Population, in.Dimensions[3].Rating, in.OverrideLevel = "asam-9", "child", 9, "2.5"
		}, want: []fr{{"edition", RuleEditionKnown}, {"population", RulePopulationKnown}, {"dimensions[3].rating", RuleRatingRange},
			{"override_level", RuleLevelKnown}, {"override_reason", RuleOverrideReason}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := validAssessment()
			tt.edit(&in)
			_, err := NewAssessment(in, screened(), now, "a1", "clin")
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
				t.Fatalf("unexpected error %T: %v", err, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("violations = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNewAssessmentRecommendsAndKeepsOverride(t *testing.T) {
	a, err := NewAssessment(validAssessment(), screened(), now, "a1", "clin")
	if err != nil {
		t.Fatal(err)
	}
	if a.Edition != "asam-3" || a.RecommendedLevel != "2.1" || a.FinalLevel != "2.1" || a.Overridden() || len(a.Reasons) == 0 {
		t.Errorf("assessment = %+v", a)
	}
	if a.Ratings != [6]int{1, 1, 2, 2, 2, 1} || a.Notes[5] != "lives with a supportive sister" || a.Notes[2] != "mild anxiety" || a.Notes[0] != "" {
		t.Errorf("ratings %v notes %q: not by dimension", a.Ratings, a.Notes)
	}
	if a.ID != "a1" || a.ReferralID != "r1" || a.ClinicID != "c1" || a.AssessedBy != "clin" || !a.AssessedAt.Equal(now) {
		t.Errorf("ids and stamps = %+v", a)
	}

	in := validAssessment()
	in.OverrideLevel, in.OverrideReason = " 2.5 ", " two relapses after IOP "
	a, err = NewAssessment(in, screened(), now, "a1", "clin")
	if err != nil {
		t.Fatal(err)
	}
	if a.RecommendedLevel != "2.1" || a.OverrideLevel != "2.5" || a.OverrideReason != "two relapses after IOP" || a.FinalLevel != "2.5" || !a.Overridden() {
		t.Errorf("override not kept beside the recommendation: %+v", a)
	}

	// Detox needed: withdrawal management first.
	in = validAssessment()
	in.Withdrawal = WithdrawalDetoxNeeded
	if a, err = NewAssessment(in, screened(), now, "a1", "clin"); err != nil || !strings.HasSuffix(a.FinalLevel, "-WM") {
		t.Errorf("detox needed: final level %q (%v)", a.FinalLevel, err)
	}
}

func TestNewAssessmentNeedsScreenedReferral(t *testing.T) {
	for _, s := range Statuses {
		r := screened()
		r.Status = s
		_, err := NewAssessment(validAssessment(), r, now, "a1", "clin")
		var pe *PreconditionError
		if s == StatusScreened {
			if err != nil {
				t.Errorf("screened: %v", err)
			}
		} else if !errors.As(err, &pe) {
			t.Errorf("%s: err = %v, want a precondition error", s, err)
		}
	}
}
