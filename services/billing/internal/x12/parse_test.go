package x12

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func countIDs(segs []Segment) map[string]int {
	n := map[string]int{}
	for _, s := range segs {
		n[s.ID]++
	}
	return n
}

func TestParseSamples837(t *testing.T) {
	tests := []struct {
		file     string
		segments int
		se01     string
		ids      map[string]int
	}{
		{"837P-professional-medicaid.txt", 34, "30", map[string]int{"CLM": 1, "LX": 2, "SV1": 2, "HL": 2, "HI": 1, "NM1": 5}},
		{"837I-institutional-medicaid.txt", 66, "62", map[string]int{"CLM": 1, "LX": 9, "SV2": 9, "HL": 2, "HI": 5, "CL1": 1, "DTP": 12}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			segs, d, err := Parse(readSample(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if d != DefaultDelimiters {
				t.Errorf("delimiters = %q", []byte{d.Element, d.Component, d.Repetition, d.Segment})
			}
			if len(segs) != tt.segments {
				t.Errorf("segments = %d, want %d", len(segs), tt.segments)
			}
			ids := countIDs(segs)
			for id, want := range tt.ids {
				if ids[id] != want {
					t.Errorf("%s count = %d, want %d", id, ids[id], want)
				}
			}
			// SE01 is the true count of ST..SE; the envelope is ISA, GS, GE, IEA.
			st, se := -1, -1
			for i, s := range segs {
				switch s.ID {
				case "ST":
					st = i
				case "SE":
					se = i
					if s.Element(1) != tt.se01 {
						t.Errorf("SE01 = %s", s.Element(1))
					}
				}
			}
			if got := se - st + 1; got != len(segs)-4 || tt.se01 != strconv.Itoa(got) {
				t.Errorf("ST..SE = %d segments", got)
			}
			if segs[0].ID != "ISA" || segs[0].Element(13) != segs[len(segs)-1].Element(2) || segs[len(segs)-1].ID != "IEA" {
				t.Errorf("ISA13/IEA02 differ")
			}
		})
	}
}

func TestParseSample835NoEnvelope(t *testing.T) {
	segs, d, err := Parse(readSample(t, "835-two-claims-service-lines.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if d != DefaultDelimiters || len(segs) != 31 || segs[0].ID != "ST" || segs[30].ID != "SE" || segs[30].Position != 31 {
		t.Fatalf("delimiters %+v, %d segments", d, len(segs))
	}
	if got := segs[1]; got.ID != "BPR" || got.Element(2) != "391.05" || got.Position != 2 {
		t.Errorf("BPR = %+v", got)
	}
}

// The same transaction in every spelling real files use must parse to the same segments.
func TestParseTolerance(t *testing.T) {
	const body = "ST*835*0001~BPR*I*1.5*C*NON~CAS*CO*45*1:2^3~SE*4*0001~"
	want := []Segment{
		{ID: "ST", Elements: []string{"835", "0001"}, Position: 1},
		{ID: "BPR", Elements: []string{"I", "1.5", "C", "NON"}, Position: 2},
		{ID: "CAS", Elements: []string{"CO", "45", "1:2^3"}, Position: 3},
		{ID: "SE", Elements: []string{"4", "0001"}, Position: 4},
	}
	isa := func(el, rep, comp, term string) string {
		f := strings.NewReplacer("*", el, "^", rep, ":", comp, "~", term)
		return f.Replace("ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240101*1200*^*00501*000000001*0*T*:~")
	}
	env := func(el, rep, comp, term, sep string) string {
		f := strings.NewReplacer("*", el, "^", rep, ":", comp, "~", term+sep)
		return isa(el, rep, comp, term) + sep + f.Replace("GS*HP*S*R*20240101*1200*1*X*005010X221A1~"+body+"GE*1*1~IEA*1*000000001~")
	}
	tests := []struct {
		name string
		in   string
		d    Delimiters
		skip int // envelope segments before ST
	}{
		{"no envelope, no newline", body, DefaultDelimiters, 0},
		{"no envelope, newline after ~", strings.ReplaceAll(body, "~", "~\n"), DefaultDelimiters, 0},
		{"no envelope, CRLF after ~", strings.ReplaceAll(body, "~", "~\r\n"), DefaultDelimiters, 0},
		{"no envelope, newline terminator", strings.ReplaceAll(body, "~", "\n"), Delimiters{'*', ':', '^', '\n'}, 0},
		{"no envelope, CRLF terminator, blank lines, indentation", "\r\n  " + strings.ReplaceAll(body, "~", "\r\n\r\n  "), Delimiters{'*', ':', '^', '\n'}, 0},
		{"no envelope, pipe elements", strings.ReplaceAll(body, "*", "|"), Delimiters{'|', ':', '^', '~'}, 0},
		{"envelope, default separators", env("*", "^", ":", "~", ""), DefaultDelimiters, 2},
		{"envelope, newline after each segment", env("*", "^", ":", "~", "\n"), DefaultDelimiters, 2},
		{"envelope, CRLF after each segment", env("*", "^", ":", "~", "\r\n"), DefaultDelimiters, 2},
		{"envelope, pipe elements and > components", env("|", "^", ">", "~", "\n"), Delimiters{'|', '>', '^', '~'}, 2},
		{"envelope, ^ components and | repetitions", env("*", "|", "^", "'", ""), Delimiters{'*', '^', '|', '\''}, 2},
		{"envelope, newline terminator", env("*", "^", ":", "\n", ""), Delimiters{'*', ':', '^', '\n'}, 2},
		{"envelope, CRLF terminator", env("*", "^", ":", "\r", "\n"), Delimiters{'*', ':', '^', '\n'}, 2},
		{"envelope, ISA not fixed width", strings.Replace(env("*", "^", ":", "~", "\n"), "SENDER         ", "SENDER", 1), DefaultDelimiters, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			segs, d, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if d != tt.d {
				t.Errorf("delimiters = %q, want %q", []byte{d.Element, d.Component, d.Repetition, d.Segment}, []byte{tt.d.Element, tt.d.Component, tt.d.Repetition, tt.d.Segment})
			}
			if len(segs) != len(want)+2*tt.skip {
				t.Fatalf("%d segments: %+v", len(segs), segs)
			}
			got := segs[tt.skip : tt.skip+len(want)]
			for i := range got {
				got[i].Position -= tt.skip
				// Components and repetitions stay inside the element; translate them back.
				for j, e := range got[i].Elements {
					got[i].Elements[j] = strings.NewReplacer(string(d.Component), ":", string(d.Repetition), "^").Replace(e)
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("segments\n got %+v\nwant %+v", got, want)
			}
			if tt.skip > 0 && (segs[0].ID != "ISA" || segs[len(segs)-1].ID != "IEA") {
				t.Errorf("envelope: %s .. %s", segs[0].ID, segs[len(segs)-1].ID)
			}
		})
	}
}

func TestParseRepetitionSeparatorOf4010(t *testing.T) {
	in := "ISA*00*          *00*          *ZZ*A              *ZZ*B              *240101*1200*U*00401*000000001*0*T*>~ST*835*1~SE*2*1~"
	_, d, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if d != (Delimiters{Element: '*', Component: '>', Repetition: 0, Segment: '~'}) {
		t.Errorf("delimiters = %+v", d)
	}
}

func TestParseGarbage(t *testing.T) {
	for _, in := range []string{"", "\r\n \t", "hello world", "lorem~ipsum~dolor", "{\"json\": true}", "\xff\xfe\x00garbage"} {
		segs, _, err := Parse([]byte(in))
		if !errors.Is(err, ErrUnreadable) || segs != nil {
			t.Errorf("Parse(%q) = %d segments, %v", in, len(segs), err)
		}
	}
	// A file with one readable segment is readable; the unreadable piece is kept for the reader.
	segs, _, err := Parse([]byte("ST*835*1~what is this~SE*3*1~"))
	if err != nil || len(segs) != 3 || segs[1].ID != "what is this" {
		t.Fatalf("segments %+v, %v", segs, err)
	}
	era, err := ParseERA([]byte("ST*835*1~what is this~SE*3*1~"))
	if err != nil || era.Deviations[0].Rule != RuleSegmentID || era.Deviations[0].Segment != "segment 2" {
		t.Fatalf("era %+v, %v", era, err)
	}
}

func TestParseCents(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"391.05", 39105, true}, {"-12", -1200, true}, {".5", 50, true}, {"12.3", 1230, true},
		{"0", 0, true}, {"+7.00", 700, true}, {"12.", 1200, true}, {"-.05", -5, true}, {"1.500", 150, true},
		{" 3.25 ", 325, true}, {"999999999999999.99", 99999999999999999, true},
		{"", 0, false}, {"-", 0, false}, {".", 0, false}, {"1.005", 0, false}, {"1e3", 0, false},
		{"12,50", 0, false}, {"1.2.3", 0, false}, {"abc", 0, false}, {"--1", 0, false}, {"1 000", 0, false},
		{"1000000000000000", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseCents(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseCents(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestFormatCents(t *testing.T) {
	tests := map[int64]string{0: "0", 25000: "250", 9550: "95.5", 9505: "95.05", 5: "0.05", -1234: "-12.34", -100: "-1", 39105: "391.05"}
	for in, want := range tests {
		if got := FormatCents(in); got != want {
			t.Errorf("FormatCents(%d) = %q, want %q", in, got, want)
		}
		if back, err := ParseCents(want); err != nil || back != in {
			t.Errorf("ParseCents(FormatCents(%d)) = %d, %v", in, back, err)
		}
	}
}
