package asam

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Co-occurring condition codes (CoOccurringCondition in the API, lower case without prefix).
const (
	CoDepression  = "depression"
	CoAnxiety     = "anxiety"
	CoPTSD        = "ptsd"
	CoBipolar     = "bipolar"
	CoPsychosis   = "psychosis"
	CoSuicideRisk = "suicide_risk"
	CoOther       = "other"
)

// CoOccurringCodes are the condition codes Recommend accepts.
var CoOccurringCodes = []string{CoDepression, CoAnxiety, CoPTSD, CoBipolar, CoPsychosis, CoSuicideRisk, CoOther}

// conditionWords names each condition code in the reasons.
var conditionWords = map[string]string{
	CoDepression: "depression", CoAnxiety: "anxiety", CoPTSD: "PTSD", CoBipolar: "bipolar disorder",
	CoPsychosis: "psychosis", CoSuicideRisk: "suicide risk", CoOther: "another condition",
}

// ErrInvalidInput: the input is not a possible assessment (a rating outside 0-4, an unknown
// population, withdrawal status or condition code). The message names the part, never a value.
var ErrInvalidInput = errors.New("invalid ASAM input")

// ErrNoRuleSet: the edition's levels are known but no rule set is written for it yet.
var ErrNoRuleSet = errors.New("no recommendation rules for this ASAM edition")

// ruleSets holds the recommendation rules of each edition that has them.
var ruleSets = map[string]func(in Input, name func(code string) string) Recommendation{
	"asam-3": rules3,
}

// Recommend applies the edition's rule set to an assessment. It is a recommendation for the
// clinician, who may override it with a reason; the rules are documented on rules3.
func Recommend(edition string, in Input) (Recommendation, error) {
	levels, ok := editions[edition]
	if !ok {
		return Recommendation{}, ErrUnknownEdition
	}
	rules, ok := ruleSets[edition]
	if !ok {
		return Recommendation{}, ErrNoRuleSet
	}
	if err := validate(in); err != nil {
		return Recommendation{}, err
	}
	name := func(code string) string {
		i := slices.IndexFunc(levels, func(l Level) bool { return l.Code == code })
		if i < 0 {
			panic("asam: rule set of " + edition + " names level " + code + " missing from its level list")
		}
		return levels[i].Name
	}
	return rules(in, name), nil
}

func validate(in Input) error {
	var bad []string
	if in.Population != Adult && in.Population != Adolescent {
		bad = append(bad, "population is not adult or adolescent")
	}
	if in.Withdrawal != NoDetoxNeeded && in.Withdrawal != DetoxCompleted && in.Withdrawal != DetoxNeeded {
		bad = append(bad, "withdrawal status is unknown")
	}
	for i, r := range in.Ratings {
		if r < 0 || r > 4 {
			bad = append(bad, fmt.Sprintf("dimension %d rating is outside 0-4", i+1))
		}
	}
	for _, c := range in.CoOccurring {
		if _, ok := conditionWords[c]; !ok {
			bad = append(bad, "a co-occurring condition code is unknown")
			break
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidInput, strings.Join(bad, "; "))
	}
	return nil
}

var dimensionNames = [6]string{
	"acute intoxication / withdrawal potential",
	"biomedical conditions",
	"emotional, behavioural or cognitive conditions",
	"readiness to change",
	"relapse / continued-use potential",
	"recovery / living environment",
}

var ratingWords = [5]string{"none", "mild", "moderate", "significant", "severe"}

// dim describes dimension d (1-6) and its rating in words, e.g. "Dimension 6 (recovery /
// living environment) is rated 3 (significant)".
func dim(in Input, d int) string {
	r := in.Ratings[d-1]
	return fmt.Sprintf("Dimension %d (%s) is rated %d (%s)", d, dimensionNames[d-1], r, ratingWords[r])
}

// rules3 is the rule set of the 3rd edition. D1..D6 are the six dimension ratings (0 none to 4
// severe); "co-occurring" is the list of flagged mental-health conditions.
//
//	W  Withdrawal first. If detox is needed, or D1 >= 3, the recommendation is a withdrawal
//	   management level and no other rule applies (the rest is reassessed once withdrawal is
//	   managed). The level is the most intensive of:
//	     by D1:  4 -> 4-WM;  3 -> 3.7-WM;  0-2 -> 2-WM (ambulatory, with extended on-site monitoring)
//	     by D2:  4 -> 4-WM;  3 -> 3.7-WM  (serious medical problems need medical care during withdrawal)
//	Otherwise every rule below that applies proposes a level, and the recommendation is the
//	most intensive one proposed (intensity = ASAM numbering, 1 < 2.1 < 2.5 < 3.1 < 3.5 < 3.7):
//	B  Base: 1 (outpatient) when every rating is 0 or 1 and no co-occurring condition is
//	   flagged; otherwise 2.1 (IOP, living at home).
//	S  D2 == 4 -> 3.7;  D3 == 4 -> 3.7 (severe: 24-hour medically monitored care).
//	P  D2 == 3 -> 2.5;  D3 == 3 -> 2.5 (significant: partial hospitalization, daily care).
//	X  Suicide risk flagged and D3 >= 3 -> 3.7. Suicide risk flagged with D3 <= 2 proposes no
//	   level but adds a reason: confirm a safety plan.
//	H  D6 == 3 -> 3.1; D6 == 4 -> 3.5 (home is not a safe place to recover: residential).
//	R  D5 == 4 -> 2.5 (high relapse risk needs daily structure); D5 == 3 -> 2.1, with a reason
//	   flagging the relapse risk for the clinician to weigh.
//	Reasons only (no level): any co-occurring condition (the program must treat it too); D4 >= 3
//	(low readiness: motivational work; not by itself a reason for a more intensive level);
//	detox completed; adolescent population.
//
// 0.5 (early intervention), 3.3, 4, 1-WM and 3.2-WM are never recommended: the assessment does
// not record a diagnosis (0.5 is for people without one); 3.3 and 3.2-WM answer needs
// (cognitive impairment, social-setting detox) the ratings do not capture; severe D2 or D3
// outside withdrawal stops at 3.7, and whether it needs a hospital (4) instead is the
// clinician's call; 1-WM is left to the clinician for mild withdrawal. They pick them by override. Adolescents get the same rules and levels (3.3 is adult-only and never recommended
// anyway); the only difference is a reason reminding to use the adolescent program.
func rules3(in Input, name func(string) string) Recommendation {
	d := func(n int) int { return in.Ratings[n-1] }
	label := func(code string) string { return fmt.Sprintf("%s (%s)", name(code), code) }
	suicide := slices.Contains(in.CoOccurring, CoSuicideRisk)

	// W: withdrawal management first.
	if in.Withdrawal == DetoxNeeded || d(1) >= 3 {
		var why []string
		if in.Withdrawal == DetoxNeeded {
			why = append(why, "Detoxification is needed: withdrawal management comes first.")
		}
		if d(1) >= 3 {
			why = append(why, dim(in, 1)+": withdrawal management comes first.")
		}
		level := "2-WM"
		switch d(1) {
		case 4:
			level = "4-WM"
		case 3:
			level = "3.7-WM"
		}
		switch {
		case d(2) == 4:
			level = "4-WM"
			why = append(why, dim(in, 2)+": withdrawal needs medically managed inpatient care.")
		case d(2) == 3 && intensity(level) < intensity("3.7-WM"):
			level = "3.7-WM"
			why = append(why, dim(in, 2)+": withdrawal needs medical monitoring around the clock.")
		}
		reasons := append([]string{"Recommended " + label(level) + "."}, why...)
		reasons = append(reasons, "Reassess the other dimensions once withdrawal is managed, to choose the level of care that follows.")
		return Recommendation{Level: level, Reasons: reasons}
	}

	type proposal struct{ level, reason string }
	var ps []proposal
	propose := func(level, reason string) { ps = append(ps, proposal{level, reason}) }

	// B: base level.
	low := !slices.ContainsFunc(in.Ratings[:], func(r int) bool { return r > 1 }) && len(in.CoOccurring) == 0
	base := "2.1"
	if low {
		base = "1"
	}

	// S and P: biomedical and emotional/behavioural severity.
	for _, n := range []int{2, 3} {
		switch d(n) {
		case 4:
			propose("3.7", dim(in, n)+": severe conditions need 24-hour medically monitored care, "+label("3.7")+".")
		case 3:
			propose("2.5", dim(in, n)+": significant conditions need daily structured care, "+label("2.5")+".")
		}
	}
	// X: suicide risk.
	if suicide && d(3) >= 3 {
		propose("3.7", "Suicide risk is flagged with dimension 3 rated 3 or more: 24-hour care, "+label("3.7")+".")
	}
	// H: living environment.
	switch d(6) {
	case 4:
		propose("3.5", dim(in, 6)+": home is not a safe place to recover; a residential setting is needed, "+label("3.5")+".")
	case 3:
		propose("3.1", dim(in, 6)+": home is not a safe place to recover; a residential setting is needed, "+label("3.1")+".")
	}
	// R: relapse potential.
	switch d(5) {
	case 4:
		propose("2.5", dim(in, 5)+": high relapse risk needs daily structure, "+label("2.5")+".")
	case 3:
		propose("2.1", dim(in, 5)+": relapse risk is high; weigh a more intensive level and plan relapse prevention closely.")
	}

	level := base
	for _, p := range ps {
		if intensity(p.level) > intensity(level) {
			level = p.level
		}
	}

	var reasons []string
	switch level {
	case "1":
		reasons = append(reasons, "Recommended "+label("1")+": every dimension is rated 0 or 1 and no co-occurring condition is flagged.")
	case "2.1":
		reasons = append(reasons, "Recommended "+label("2.1")+": the patient can live at home safely (dimension 6 is rated 2 or less) and no rule calls for a more intensive level.")
	default:
		reasons = append(reasons, "Recommended "+label(level)+": the most intensive level the reasons below call for.")
	}
	for _, p := range ps {
		reasons = append(reasons, p.reason)
	}
	if suicide && d(3) < 3 {
		reasons = append(reasons, "Suicide risk is flagged: confirm a safety plan, and check the rating of dimension 3.")
	}
	if len(in.CoOccurring) > 0 {
		words := make([]string, len(in.CoOccurring))
		for i, c := range in.CoOccurring {
			words[i] = conditionWords[c]
		}
		reasons = append(reasons, "Co-occurring conditions are flagged ("+strings.Join(words, ", ")+"): the program must treat them too, and standard outpatient (1) is not enough.")
	}
	if d(4) >= 3 {
		reasons = append(reasons, dim(in, 4)+": plan motivational work; low readiness alone does not call for a more intensive level.")
	}
	if in.Withdrawal == DetoxCompleted {
		reasons = append(reasons, "Withdrawal management is completed.")
	}
	if in.Population == Adolescent {
		reasons = append(reasons, "Adolescent: use the adolescent program of this level.")
	}
	return Recommendation{Level: level, Reasons: reasons}
}
