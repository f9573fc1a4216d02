package asam

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The level list of each edition is data, not code: one JSON file per edition in editions/,
// named after the edition ("asam-3.json" holds edition "asam-3"), embedded in the binary:
//
//	{"edition": "asam-3", "title": "...", "levels": [{"code": "2.1", "name": "..."}, ...]}
//
// Levels are listed in the order a picker should show them. Adding an edition (say the 4th
// edition of 2023, whose level names differ) is adding its file: Levels and ValidLevel (and so
// ListCareLevels and override checks) then know it at once. Recommend also needs a rule set
// for it (ruleSets in rules.go); until one exists it answers ErrNoRuleSet for that edition.
//
//go:embed editions/*.json
var editionFiles embed.FS

// ErrUnknownEdition: no level list is embedded for the edition.
var ErrUnknownEdition = errors.New("unknown ASAM criteria edition")

// levelCode is the shape of a level code: the ASAM number, with "-WM" for withdrawal
// management. Intensity is read from the number (see intensity).
var levelCode = regexp.MustCompile(`^[0-9](\.[0-9])?(-WM)?$`)

type editionFile struct {
	Edition string  `json:"edition"`
	Title   string  `json:"title"`
	Levels  []Level `json:"levels"`
}

// editions maps an edition to its levels, in file order. Loaded once at start; a malformed
// file is a build mistake and panics (TestEditionsLoad catches it first).
var editions = mustLoad()

func mustLoad() map[string][]Level {
	m, err := load()
	if err != nil {
		panic(err)
	}
	return m
}

func load() (map[string][]Level, error) {
	names, err := editionFiles.ReadDir("editions")
	if err != nil {
		return nil, err
	}
	out := make(map[string][]Level, len(names))
	for _, n := range names {
		b, err := editionFiles.ReadFile(path.Join("editions", n.Name()))
		if err != nil {
			return nil, err
		}
		if err := addEdition(out, n.Name(), b); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// addEdition checks one edition file and adds it to m.
func addEdition(m map[string][]Level, file string, b []byte) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var f editionFile
	if err := dec.Decode(&f); err != nil {
		return fmt.Errorf("asam edition file %s: %w", file, err)
	}
	if want := strings.TrimSuffix(file, ".json"); f.Edition != want {
		return fmt.Errorf("asam edition file %s names edition %q, want %q", file, f.Edition, want)
	}
	if _, dup := m[f.Edition]; dup {
		return fmt.Errorf("asam edition %q defined twice", f.Edition)
	}
	if len(f.Levels) == 0 {
		return fmt.Errorf("asam edition %q has no levels", f.Edition)
	}
	seen := map[string]bool{}
	for _, l := range f.Levels {
		if !levelCode.MatchString(l.Code) || strings.TrimSpace(l.Name) == "" {
			return fmt.Errorf("asam edition %q: level %q needs a code like 2.1 or 3.7-WM and a name", f.Edition, l.Code)
		}
		if seen[l.Code] {
			return fmt.Errorf("asam edition %q: level %q listed twice", f.Edition, l.Code)
		}
		seen[l.Code] = true
	}
	m[f.Edition] = f.Levels
	return nil
}

// Levels returns the levels of care of an edition, in display order (a copy: callers may
// change it). An edition with no embedded file is ErrUnknownEdition.
func Levels(edition string) ([]Level, error) {
	ls, ok := editions[edition]
	if !ok {
		return nil, ErrUnknownEdition
	}
	return slices.Clone(ls), nil
}

// ValidLevel reports whether code is a level of care of edition (false for an unknown edition).
func ValidLevel(edition, code string) bool {
	return slices.ContainsFunc(editions[edition], func(l Level) bool { return l.Code == code })
}

// Editions returns the known editions, sorted.
func Editions() []string {
	out := make([]string, 0, len(editions))
	for e := range editions {
		out = append(out, e)
	}
	slices.Sort(out)
	return out
}

// intensity orders levels of care by the ASAM numbering, which runs from least to most
// intensive: 0.5 < 1 < 2.1 < 2.5 < 3.1 < 3.3 < 3.5 < 3.7 < 4 (and 1-WM < 2-WM < 3.2-WM <
// 3.7-WM < 4-WM among withdrawal management). The rules only ever compare levels of one kind.
func intensity(code string) float64 {
	f, err := strconv.ParseFloat(strings.TrimSuffix(code, "-WM"), 64)
	if err != nil {
		panic("asam: level code without a number: " + code) // codes are checked when loaded
	}
	return f
}
