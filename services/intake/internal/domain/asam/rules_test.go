package asam

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// in builds an adult input with no detox needed, the given ratings (D1..D6) and conditions.
func in(ratings [6]int, co ...string) Input {
	return Input{Population: Adult, Ratings: ratings, Withdrawal: NoDetoxNeeded, CoOccurring: co}
}

func with(i Input, edit func(*Input)) Input { edit(&i); return i }

func TestRecommend(t *testing.T) {
	detox := func(i *Input) { i.Withdrawal = DetoxNeeded }
	tests := []struct {
		name    string
		in      Input
		level   string
		reasons []string // each must appear in some reason
		absent  []string // none may appear in any reason
	}{
		// W: withdrawal management first.
		{name: "W detox needed, D1 2 -> 2-WM", in: with(in([6]int{2, 1, 1, 1, 1, 1}), detox), level: "2-WM",
			reasons: []string{"Detoxification is needed", "Reassess the other dimensions"}},
		{name: "W detox needed, D1 0 -> 2-WM", in: with(in([6]int{0, 0, 0, 0, 0, 0}), detox), level: "2-WM"},
		{name: "W D1 3 without detox flag -> 3.7-WM", in: in([6]int{3, 0, 0, 0, 0, 0}), level: "3.7-WM",
			reasons: []string{"Dimension 1 (acute intoxication / withdrawal potential) is rated 3 (significant)"}, absent: []string{"Detoxification is needed"}},
		{name: "W D1 4 even after a completed detox -> 4-WM", in: with(in([6]int{4, 0, 0, 0, 0, 0}), func(i *Input) { i.Withdrawal = DetoxCompleted }), level: "4-WM"},
		{name: "W D2 3 raises ambulatory WM to 3.7-WM", in: with(in([6]int{2, 3, 0, 0, 0, 0}), detox), level: "3.7-WM",
			reasons: []string{"Dimension 2 (biomedical conditions) is rated 3", "medical monitoring around the clock"}},
		{name: "W D2 3 with D1 3 stays 3.7-WM", in: in([6]int{3, 3, 0, 0, 0, 0}), level: "3.7-WM"},
		{name: "W D2 4 raises to 4-WM", in: with(in([6]int{1, 4, 0, 0, 0, 0}), detox), level: "4-WM",
			reasons: []string{"medically managed inpatient care"}},
		{name: "W stops: severe D3, D5, D6 do not change the WM level", in: with(in([6]int{2, 0, 4, 4, 4, 4}, CoSuicideRisk), detox), level: "2-WM",
			absent: []string{"residential", "Suicide risk", "relapse"}},

		// B: base level.
		{name: "B all zero -> 1", in: in([6]int{}), level: "1", reasons: []string{"every dimension is rated 0 or 1"}},
		{name: "B all one -> 1", in: in([6]int{1, 1, 1, 1, 1, 1}), level: "1"},
		{name: "B low ratings but a co-occurring condition -> 2.1", in: in([6]int{1, 0, 1, 0, 0, 0}, CoAnxiety), level: "2.1",
			reasons: []string{"can live at home safely", "Co-occurring conditions are flagged (anxiety)", "standard outpatient (1) is not enough"}},
		{name: "B D1 2 without detox -> 2.1", in: in([6]int{2, 0, 0, 0, 0, 0}), level: "2.1"},
		{name: "B D6 2 still lives at home -> 2.1", in: in([6]int{0, 0, 0, 0, 0, 2}), level: "2.1"},

		// S and P: biomedical and emotional/behavioural.
		{name: "S D2 4 -> 3.7", in: in([6]int{0, 4, 0, 0, 0, 0}), level: "3.7",
			reasons: []string{"Medically monitored intensive inpatient services (3.7)", "Dimension 2 (biomedical conditions) is rated 4 (severe)"}},
		{name: "S D3 4 -> 3.7", in: in([6]int{0, 0, 4, 0, 0, 0}), level: "3.7", reasons: []string{"Dimension 3"}},
		{name: "P D2 3 -> 2.5", in: in([6]int{0, 3, 0, 0, 0, 0}), level: "2.5", reasons: []string{"Partial hospitalization services (2.5)"}},
		{name: "P D3 3 with co-occurring depression and PTSD -> 2.5", in: in([6]int{1, 1, 3, 1, 1, 1}, CoDepression, CoPTSD), level: "2.5",
			reasons: []string{"Dimension 3 (emotional, behavioural or cognitive conditions) is rated 3", "(depression, PTSD)"}},

		// X: suicide risk.
		{name: "X suicide risk with D3 3 -> 3.7", in: in([6]int{0, 0, 3, 0, 0, 0}, CoSuicideRisk), level: "3.7",
			reasons: []string{"Suicide risk is flagged with dimension 3", "suicide risk"}, absent: []string{"suicide_risk", "safety plan"}},
		{name: "X suicide risk with D3 2 -> 2.1 and a safety-plan reason", in: in([6]int{0, 0, 2, 0, 0, 0}, CoSuicideRisk), level: "2.1",
			reasons: []string{"confirm a safety plan"}},

		// H: living environment.
		{name: "H D6 3 -> 3.1", in: in([6]int{0, 0, 0, 0, 0, 3}), level: "3.1", reasons: []string{"home is not a safe place", "(3.1)"}},
		{name: "H D6 4 -> 3.5", in: in([6]int{0, 0, 0, 0, 0, 4}), level: "3.5", reasons: []string{"(3.5)"}},

		// R: relapse potential.
		{name: "R D5 4 -> 2.5", in: in([6]int{0, 0, 0, 0, 4, 0}), level: "2.5", reasons: []string{"high relapse risk needs daily structure"}},
		{name: "R D5 3 -> 2.1 flagging relapse risk", in: in([6]int{0, 0, 0, 0, 3, 0}), level: "2.1",
			reasons: []string{"relapse risk is high; weigh a more intensive level"}},

		// Reasons only.
		{name: "D4 4 -> 2.1 with motivational work", in: in([6]int{0, 0, 0, 4, 0, 0}), level: "2.1", reasons: []string{"plan motivational work"}},
		{name: "detox completed, low ratings -> 1", in: with(in([6]int{1, 0, 0, 0, 0, 0}), func(i *Input) { i.Withdrawal = DetoxCompleted }), level: "1",
			reasons: []string{"Withdrawal management is completed"}},
		{name: "adolescent: same level, reminder of the adolescent program", in: with(in([6]int{0, 0, 0, 2, 2, 0}), func(i *Input) { i.Population = Adolescent }), level: "2.1",
			reasons: []string{"adolescent program"}},
		{name: "other condition in plain words", in: in([6]int{0, 0, 2, 0, 0, 0}, CoOther), level: "2.1", reasons: []string{"(another condition)"}},

		// The most intensive proposal wins; every proposal keeps its reason.
		{name: "most intensive: D3 3 (2.5) and D6 3 (3.1) -> 3.1", in: in([6]int{0, 0, 3, 0, 0, 3}), level: "3.1",
			reasons: []string{"the most intensive level the reasons below call for", "(2.5)", "(3.1)"}},
		{name: "most intensive: D2 3, D5 4 (2.5) and D6 4 (3.5) -> 3.5", in: in([6]int{1, 3, 0, 0, 4, 4}), level: "3.5"},
		{name: "most intensive: D2 4 (3.7) over D6 4 (3.5)", in: in([6]int{0, 4, 0, 0, 0, 4}), level: "3.7", reasons: []string{"(3.5)", "(3.7)"}},
		{name: "most intensive: D3 3 and D5 4 both 2.5 -> 2.5 with both reasons", in: in([6]int{0, 0, 3, 0, 4, 0}), level: "2.5",
			reasons: []string{"Dimension 3", "Dimension 5"}},
		{name: "most intensive: suicide risk (3.7) over D6 4 (3.5)", in: in([6]int{0, 0, 3, 0, 0, 4}, CoSuicideRisk), level: "3.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Recommend(Current, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got.Level != tt.level {
				t.Fatalf("level = %s, want %s; reasons:\n%s", got.Level, tt.level, strings.Join(got.Reasons, "\n"))
			}
			all := strings.Join(got.Reasons, "\n")
			if len(got.Reasons) == 0 || !strings.HasPrefix(got.Reasons[0], "Recommended ") || !strings.Contains(got.Reasons[0], "("+tt.level+")") {
				t.Errorf("first reason does not state the level %s: %q", tt.level, got.Reasons)
			}
			for _, want := range tt.reasons {
				if !strings.Contains(all, want) {
					t.Errorf("no reason mentions %q; reasons:\n%s", want, all)
				}
			}
			for _, not := range tt.absent {
				if strings.Contains(all, not) {
					t.Errorf("a reason mentions %q; reasons:\n%s", not, all)
				}
			}
		})
	}
}

func TestRecommendRejectsInvalidInput(t *testing.T) {
	tests := []struct {
		name string
		in   Input
	}{
		{"rating 5", in([6]int{0, 0, 0, 0, 0, 5})},
		{"rating -1", in([6]int{-1, 0, 0, 0, 0, 0})},
		{"no population", with(in([6]int{}), func(i *Input) { i.Population = 0 })},
		{"unknown population", with(in([6]int{}), func(i *Input) { i.Population = 3 })},
		{"no withdrawal status", with(in([6]int{}), func(i *Input) { i.Withdrawal = 0 })},
		{"unknown withdrawal status", with(in([6]int{}), func(i *Input) { i.Withdrawal = 4 })},
		{"unknown condition", in([6]int{}, CoAnxiety, "suicide-risk")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Recommend(Current, tt.in)
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("err = %v, want ErrInvalidInput", err)
			}
		})
	}
	t.Run("every problem named, no value quoted", func(t *testing.T) {
		_, err := Recommend(Current, Input{Ratings: [6]int{7, 0, 0, 0, 0, 0}, CoOccurring: []string{"zzz-secret"}})
		for _, want := range []string{"population", "withdrawal", "dimension 1", "condition"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v does not name %s", err, want)
			}
		}
		if strings.Contains(err.Error(), "zzz-secret") || strings.Contains(err.Error(), "7") {
			t.Errorf("error quotes a value: %v", err)
		}
	})
	t.Run("unknown edition", func(t *testing.T) {
		if _, err := Recommend("asam-99", in([6]int{})); !errors.Is(err, ErrUnknownEdition) {
			t.Fatalf("err = %v, want ErrUnknownEdition", err)
		}
	})
}

// TestRecommendSweep runs every combination of ratings, withdrawal status, population and a few
// condition sets, and checks what must hold for all of them: a level of the edition, of the
// right kind, with reasons; adults and adolescents get the same level; and rating any
// dimension 2-6 higher never lowers the level (outside withdrawal management).
func TestRecommendSweep(t *testing.T) {
	coSets := [][]string{nil, {CoDepression}, {CoSuicideRisk}}
	withdrawals := []Withdrawal{NoDetoxNeeded, DetoxCompleted, DetoxNeeded}
	n := 0
	for code := range 5 * 5 * 5 * 5 * 5 * 5 {
		var r [6]int
		for i, c := 0, code; i < 6; i, c = i+1, c/5 {
			r[i] = c % 5
		}
		for _, w := range withdrawals {
			for _, co := range coSets {
				n++
				i := Input{Population: Adult, Ratings: r, Withdrawal: w, CoOccurring: co}
				got, err := Recommend(Current, i)
				if err != nil {
					t.Fatalf("%v: %v", i, err)
				}
				if !ValidLevel(Current, got.Level) || len(got.Reasons) == 0 {
					t.Fatalf("%v: level %q not of the edition, or no reasons", i, got.Level)
				}
				wm := w == DetoxNeeded || r[0] >= 3
				if strings.HasSuffix(got.Level, "-WM") != wm {
					t.Fatalf("%v: level %s, withdrawal management expected: %v", i, got.Level, wm)
				}
				i.Population = Adolescent
				if teen, _ := Recommend(Current, i); teen.Level != got.Level {
					t.Fatalf("%v: adolescent %s, adult %s", i, teen.Level, got.Level)
				}
				if wm {
					continue
				}
				for d := 1; d < 6; d++ {
					if r[d] == 4 {
						continue
					}
					up := Input{Population: Adult, Ratings: r, Withdrawal: w, CoOccurring: co}
					up.Ratings[d]++
					higher, _ := Recommend(Current, up)
					if intensity(higher.Level) < intensity(got.Level) {
						t.Fatalf("%v -> %s, but dimension %d one higher -> %s", r, got.Level, d+1, higher.Level)
					}
				}
			}
		}
	}
	if n != 15625*9 {
		t.Fatalf("swept %d inputs", n)
	}
}

func ExampleRecommend() {
	rec, _ := Recommend("asam-3", Input{
		Population:  Adult,
		Ratings:     [6]int{1, 0, 3, 2, 3, 1},
		Withdrawal:  DetoxCompleted,
		CoOccurring: []string{CoDepression},
	})
	fmt.Println(rec.Level)
	for _, r := range rec.Reasons {
		fmt.Println("-", r)
	}
	// Output:
	// 2.5
	// - Recommended Partial hospitalization services (2.5): the most intensive level the reasons below call for.
	// - Dimension 3 (emotional, behavioural or cognitive conditions) is rated 3 (significant): significant conditions need daily structured care, Partial hospitalization services (2.5).
	// - Dimension 5 (relapse / continued-use potential) is rated 3 (significant): relapse risk is high; weigh a more intensive level and plan relapse prevention closely.
	// - Co-occurring conditions are flagged (depression): the program must treat them too, and standard outpatient (1) is not enough.
	// - Withdrawal management is completed.
}
