package domain

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trellis-health/trellis/services/intake/internal/domain/asam"
)

// Populations (stored codes).
const (
	PopulationAdult      = "adult"
	PopulationAdolescent = "adolescent"
)

// Withdrawal statuses (stored codes).
const (
	WithdrawalNoDetoxNeeded  = "no_detox_needed"
	WithdrawalDetoxCompleted = "detox_completed"
	WithdrawalDetoxNeeded    = "detox_needed"
)

var populations = map[string]asam.Population{PopulationAdult: asam.Adult, PopulationAdolescent: asam.Adolescent}

var withdrawals = map[string]asam.Withdrawal{
	WithdrawalNoDetoxNeeded: asam.NoDetoxNeeded, WithdrawalDetoxCompleted: asam.DetoxCompleted, WithdrawalDetoxNeeded: asam.DetoxNeeded,
}

// MaxDimensionNotes is the longest note on one dimension, in characters.
const MaxDimensionNotes = 4000

// Rule ids of assessment violations.
const (
	RuleEditionKnown          = "edition.known"
	RuleEditionRules          = "edition.rules"
	RulePopulationKnown       = "population.known"
	RuleDimensionRange        = "dimension.range"
	RuleDimensionsEachOnce    = "assessment.dimensions_unique" // as protovalidate's rule on dimensions names it
	RuleRatingRange           = "rating.range"
	RuleNotesMaxLen           = "notes.max_len"
	RuleWithdrawalKnown       = "withdrawal.known"
	RuleConditionKnown        = "co_occurring.known"
	RuleConditionUnique       = "co_occurring.unique"
	RuleLevelKnown            = "level.known"
	RuleOverrideDiffers       = "override_level.differs"
	RuleOverrideReason        = "assessment.override_reason" // an override level without a reason, on override_reason
	RuleOverrideReasonNoLevel = "override_reason.without_level"
)

// DimensionInput is one dimension's rating as received.
type DimensionInput struct {
	Dimension int // 1-6
	Rating    int // 0-4
	Notes     string
}

// AssessmentInput is an ASAM assessment as received.
type AssessmentInput struct {
	Edition        string // "" means asam.Current
	Population     string
	Dimensions     []DimensionInput
	Withdrawal     string
	CoOccurring    []string // asam.Co* codes
	OverrideLevel  string
	OverrideReason string
}

// Assessment is a recorded ASAM assessment: the ratings, the rule set's recommendation and
// the clinician's override, if any, with its reason. FinalLevel is the override when there is
// one, else the recommendation.
type Assessment struct {
	ID               string
	ReferralID       string
	ClinicID         string
	Edition          string
	Population       string
	Ratings          [6]int    // Ratings[i] is dimension i+1's
	Notes            [6]string // Notes[i] is dimension i+1's
	Withdrawal       string
	CoOccurring      []string
	RecommendedLevel string
	Reasons          []string
	OverrideLevel    string
	OverrideReason   string
	FinalLevel       string
	AssessedBy       string
	AssessedAt       time.Time
}

// Overridden reports whether the clinician chose another level than the recommendation.
func (a Assessment) Overridden() bool { return a.OverrideLevel != "" }

// NewAssessment records an assessment of referral r: r must be screened (else a
// *PreconditionError), the input must be a possible assessment (else a *ValidationError naming
// every violation), and the recommendation comes from the edition's rule set (asam.Recommend).
// An override must be a level of the edition other than the recommendation, with a reason.
func NewAssessment(in AssessmentInput, r Referral, now time.Time, id, by string) (Assessment, error) {
	if err := CheckMove(r.Status, StatusAssessed, ViaAssessment); err != nil {
		return Assessment{}, err
	}
	var vs []Violation
	add := func(field, rule, msg string) { vs = append(vs, Violation{Field: field, Rule: rule, Msg: msg}) }

	edition := in.Edition
	if edition == "" {
		edition = asam.Current
	}
	if _, err := asam.Levels(edition); err != nil {
		add("edition", RuleEditionKnown, "no level list for this criteria edition")
	}
	pop, ok := populations[in.Population]
	if !ok {
		add("population", RulePopulationKnown, "must be adult or adolescent")
	}

	var ratings [6]int
	var notes [6]string
	seen := [7]bool{}
	for i, d := range in.Dimensions {
		f := fmt.Sprintf("dimensions[%d]", i)
		if d.Dimension < 1 || d.Dimension > 6 {
			add(f+".dimension", RuleDimensionRange, "must be a dimension from 1 to 6")
		} else {
			seen[d.Dimension] = true
			ratings[d.Dimension-1] = d.Rating
			notes[d.Dimension-1] = strings.TrimSpace(d.Notes)
		}
		if d.Rating < 0 || d.Rating > 4 {
			add(f+".rating", RuleRatingRange, "must be a risk rating from 0 (none) to 4 (severe)")
		}
		if len([]rune(d.Notes)) > MaxDimensionNotes {
			add(f+".notes", RuleNotesMaxLen, fmt.Sprintf("must be at most %d characters", MaxDimensionNotes))
		}
	}
	if slices.Contains(seen[1:], false) || len(in.Dimensions) != 6 {
		add("dimensions", RuleDimensionsEachOnce, "rate each of the six dimensions exactly once")
	}

	wd, ok := withdrawals[in.Withdrawal]
	if !ok {
		add("withdrawal", RuleWithdrawalKnown, "must be no_detox_needed, detox_completed or detox_needed")
	}
	for i, c := range in.CoOccurring {
		f := fmt.Sprintf("co_occurring[%d]", i)
		if !slices.Contains(asam.CoOccurringCodes, c) {
			add(f, RuleConditionKnown, "must be a known co-occurring condition")
		} else if slices.Index(in.CoOccurring, c) < i {
			add(f, RuleConditionUnique, "must not repeat a condition")
		}
	}

	level, reason := strings.TrimSpace(in.OverrideLevel), strings.TrimSpace(in.OverrideReason)
	switch {
	case level != "" && !asam.ValidLevel(edition, level):
		add("override_level", RuleLevelKnown, "must be a level of care of the edition")
	case level == "" && reason != "":
		add("override_reason", RuleOverrideReasonNoLevel, "give an override level with the reason, or no reason")
	}
	if level != "" && reason == "" {
		add("override_reason", RuleOverrideReason, "an override needs a reason")
	}
	if len(vs) > 0 {
		return Assessment{}, &ValidationError{Violations: vs}
	}

	rec, err := asam.Recommend(edition, asam.Input{Population: pop, Ratings: ratings, Withdrawal: wd, CoOccurring: in.CoOccurring})
	switch {
	case errors.Is(err, asam.ErrNoRuleSet):
		return Assessment{}, &ValidationError{Violations: []Violation{{Field: "edition", Rule: RuleEditionRules, Msg: "no recommendation rules for this criteria edition yet"}}}
	case err != nil:
		return Assessment{}, fmt.Errorf("recommend a level of care: %w", err)
	}
	if level == rec.Level {
		return Assessment{}, &ValidationError{Violations: []Violation{{Field: "override_level", Rule: RuleOverrideDiffers,
			Msg: "is the recommended level; leave it empty to accept the recommendation"}}}
	}
	final := rec.Level
	if level != "" {
		final = level
	}
	return Assessment{
		ID: id, ReferralID: r.ID, ClinicID: r.ClinicID, Edition: edition, Population: in.Population,
		Ratings: ratings, Notes: notes, Withdrawal: in.Withdrawal, CoOccurring: slices.Clone(in.CoOccurring),
		RecommendedLevel: rec.Level, Reasons: rec.Reasons, OverrideLevel: level, OverrideReason: reason,
		FinalLevel: final, AssessedBy: by, AssessedAt: now.UTC().Truncate(time.Microsecond),
	}, nil
}
