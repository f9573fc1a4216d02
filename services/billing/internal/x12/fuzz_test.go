package x12

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// The fuzz targets below run as ordinary tests on their seed corpus (f.Add and
// testdata/fuzz/<Target>) in `make test`, and are fuzzed for a bounded time by `make fuzz`
// (CI runs it briefly). A failing input the fuzzer finds is written to testdata/fuzz: commit it
// with the fix so it stays a regression test.

// knownRules are the deviation rules ParseERA may report.
var knownRules = map[string]bool{
	RuleServiceLineBalance: true, RuleClaimBalance: true, RuleTransactionBalance: true,
	RulePatientResponsibility: true, RuleSESegmentCount: true, RuleSEControlNumber: true,
	RuleGETransactionCount: true, RuleGEControlNumber: true, RuleIEAGroupCount: true,
	RuleIEAControlNumber: true, RuleMissingSegment: true, RuleAmountFormat: true,
	RuleSegmentOutOfPlace: true, RuleTransactionType: true, RuleSegmentID: true,
}

// FuzzParseERA feeds arbitrary bytes to the 835 reader, which faces files from outside
// (uploads). It must never panic; its only error is an unreadable file; every deviation names
// a known rule; the summary agrees with the model; and reading is deterministic.
func FuzzParseERA(f *testing.F) {
	for _, name := range []string{"835-two-claims-service-lines.txt"} {
		f.Add(readSample(f, name))
	}
	r := rand.New(rand.NewPCG(7, 835))
	for range 4 {
		f.Add([]byte(renderERA(randomERA(r, 1+r.IntN(2), 3, 3), randomOpts(r))))
	}
	f.Add([]byte("ST*835*1~BPR*I*-1*C~SE*2*1~"))
	f.Add([]byte("ISA*00*"))
	f.Fuzz(func(t *testing.T, data []byte) {
		era, err := ParseERA(data)
		if err != nil {
			if !errors.Is(err, ErrUnreadable) {
				t.Fatalf("error %v is not ErrUnreadable", err)
			}
			return
		}
		for _, d := range era.Deviations {
			if !knownRules[d.Rule] {
				t.Fatalf("deviation with unknown rule %q", d.Rule)
			}
		}
		s := era.Summary()
		claims, lines := 0, 0
		for _, tx := range era.Transactions {
			claims += len(tx.Claims)
			for _, c := range tx.Claims {
				lines += len(c.Lines)
			}
		}
		if s.Transactions != len(era.Transactions) || s.Claims != claims || s.ServiceLines != lines ||
			len(s.Deviations) != len(era.Deviations) {
			t.Fatalf("summary %+v disagrees with the model (%d claims, %d lines)", s, claims, lines)
		}
		again, err := ParseERA(data)
		if err != nil || !reflect.DeepEqual(again, era) {
			t.Fatalf("a second read differs (err %v)", err)
		}
	})
}

// FuzzBalancedERA: for any generator seed, a balanced ERA rendered with any separators and
// amount spellings reads back to the same model with no deviation (the property test of
// era_test.go, driven by the fuzzer's choice of seeds).
func FuzzBalancedERA(f *testing.F) {
	f.Add(uint64(1), uint64(2))
	f.Add(uint64(835), uint64(5010))
	f.Fuzz(func(t *testing.T, a, b uint64) {
		r := rand.New(rand.NewPCG(a, b))
		model := randomERA(r, 1+r.IntN(3), 5, 4)
		text := renderERA(model, randomOpts(r))
		got, err := ParseERA([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Deviations) != 0 {
			t.Fatalf("deviations %+v\n%s", got.Deviations, text)
		}
		clearPositions(got)
		if !reflect.DeepEqual(got.Transactions, model.Transactions) {
			t.Fatalf("parsed model differs\n got %+v\nwant %+v\n%s", got.Transactions, model.Transactions, text)
		}
	})
}

// FuzzCents: FormatCents and ParseCents are exact inverses over every amount X12 can carry, and
// any spelling ParseCents accepts reads back the same after writing it canonically.
func FuzzCents(f *testing.F) {
	f.Add(int64(0), "0")
	f.Add(int64(39105), "391.05")
	f.Add(int64(-5), "-.05")
	f.Add(int64(math.MaxInt64), "+7.000")
	f.Add(int64(math.MinInt64), "12.3")
	f.Fuzz(func(t *testing.T, c int64, s string) {
		// At most 15 integer digits: the largest amount ParseCents reads.
		const limit = 1_000_000_000_000_000 - 1
		if c > -limit && c < limit {
			back, err := ParseCents(FormatCents(c))
			if err != nil || back != c {
				t.Fatalf("ParseCents(FormatCents(%d)) = %d, %v", c, back, err)
			}
		}
		v, err := ParseCents(s)
		if err != nil {
			return
		}
		back, err := ParseCents(FormatCents(v))
		if err != nil || back != v {
			t.Fatalf("%q reads %d, written %q reads %d, %v", s, v, FormatCents(v), back, err)
		}
	})
}
