package asam

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestEditionsLoad(t *testing.T) {
	m, err := load()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m[Current]; !ok {
		t.Fatalf("no level list for the current edition %q", Current)
	}
	if !slices.Equal(Editions(), []string{"asam-3"}) {
		t.Errorf("editions = %v", Editions())
	}
	// Every edition with a rule set has a level list (Recommend checks its levels against it).
	for e := range ruleSets {
		if _, ok := m[e]; !ok {
			t.Errorf("rule set for %q without a level list", e)
		}
	}
}

func TestLevels(t *testing.T) {
	ls, err := Levels("asam-3")
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, l := range ls {
		codes = append(codes, l.Code)
		if l.Name == "" {
			t.Errorf("level %s has no name", l.Code)
		}
	}
	want := []string{"0.5", "1", "2.1", "2.5", "3.1", "3.3", "3.5", "3.7", "4", "1-WM", "2-WM", "3.2-WM", "3.7-WM", "4-WM"}
	if !slices.Equal(codes, want) {
		t.Fatalf("codes = %v, want %v", codes, want)
	}
	if ls[2].Name != "Intensive outpatient services" {
		t.Errorf("2.1 is named %q", ls[2].Name)
	}
	ls[0].Name = "changed"
	if again, _ := Levels("asam-3"); again[0].Name == "changed" {
		t.Error("Levels returned the package's own slice")
	}
	for _, e := range []string{"", "asam-4", "ASAM-3", "asam-3.json"} {
		if ls, err := Levels(e); !errors.Is(err, ErrUnknownEdition) || ls != nil {
			t.Errorf("Levels(%q) = %v, %v; want ErrUnknownEdition", e, ls, err)
		}
	}
}

func TestValidLevel(t *testing.T) {
	tests := []struct {
		edition, code string
		want          bool
	}{
		{"asam-3", "2.1", true}, {"asam-3", "0.5", true}, {"asam-3", "4", true}, {"asam-3", "3.7-WM", true},
		{"asam-3", "3.2-WM", true}, {"asam-3", "1-WM", true},
		{"asam-3", "2", false}, {"asam-3", "2.1 ", false}, {"asam-3", "4.0", false}, {"asam-3", "3.7-wm", false},
		{"asam-3", "3.2", false}, {"asam-3", "", false}, {"asam-4", "2.1", false}, {"", "2.1", false},
	}
	for _, tt := range tests {
		if got := ValidLevel(tt.edition, tt.code); got != tt.want {
			t.Errorf("ValidLevel(%q, %q) = %v", tt.edition, tt.code, got)
		}
	}
}

func TestAddEditionRejectsBadFiles(t *testing.T) {
	tests := []struct{ name, file, body, want string }{
		{"not JSON", "asam-9.json", "{", "asam-9.json"},
		{"name differs from the file", "asam-9.json", `{"edition":"asam-8","levels":[{"code":"1","name":"x"}]}`, "want \"asam-9\""},
		{"no levels", "asam-9.json", `{"edition":"asam-9","levels":[]}`, "no levels"},
		{"bad code", "asam-9.json", `{"edition":"asam-9","levels":[{"code":"II.1","name":"x"}]}`, "needs a code"},
		{"no name", "asam-9.json", `{"edition":"asam-9","levels":[{"code":"1","name":" "}]}`, "needs a code"},
		{"twice", "asam-9.json", `{"edition":"asam-9","levels":[{"code":"1","name":"a"},{"code":"1","name":"b"}]}`, "twice"},
		{"unknown field", "asam-9.json", `{"edition":"asam-9","levels":[{"code":"1","name":"a","nmae":"b"}]}`, "unknown field"},
		{"edition twice", "asam-3.json", `{"edition":"asam-3","levels":[{"code":"1","name":"a"}]}`, "defined twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string][]Level{"asam-3": nil}
			err := addEdition(m, tt.file, []byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	t.Run("a new edition is a file", func(t *testing.T) {
		m := map[string][]Level{}
		if err := addEdition(m, "asam-9.json", []byte(`{"edition":"asam-9","title":"t","levels":[{"code":"1.5","name":"a"},{"code":"3.7-WM","name":"b"}]}`)); err != nil {
			t.Fatal(err)
		}
		if len(m["asam-9"]) != 2 {
			t.Fatalf("levels = %v", m["asam-9"])
		}
	})
}

func TestRecommendWithoutRuleSet(t *testing.T) {
	editions["asam-test"] = []Level{{Code: "1", Name: "x"}}
	defer delete(editions, "asam-test")
	if _, err := Recommend("asam-test", in([6]int{})); !errors.Is(err, ErrNoRuleSet) {
		t.Fatalf("err = %v, want ErrNoRuleSet", err)
	}
}

func TestIntensityOrder(t *testing.T) {
	order := []string{"0.5", "1", "2.1", "2.5", "3.1", "3.3", "3.5", "3.7", "4"}
	for i := 1; i < len(order); i++ {
		if intensity(order[i-1]) >= intensity(order[i]) {
			t.Errorf("%s is not less intensive than %s", order[i-1], order[i])
		}
	}
	wm := []string{"1-WM", "2-WM", "3.2-WM", "3.7-WM", "4-WM"}
	for i := 1; i < len(wm); i++ {
		if intensity(wm[i-1]) >= intensity(wm[i]) {
			t.Errorf("%s is not less intensive than %s", wm[i-1], wm[i])
		}
	}
}
