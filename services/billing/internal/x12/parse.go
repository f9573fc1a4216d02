package x12

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
)

// ErrUnreadable is returned (wrapped) by Parse and ParseERA when the input holds no X12
// segment at all.
var ErrUnreadable = errors.New("x12: no readable segments")

// DefaultDelimiters are the separators of a file without an ISA segment: * : ^ and ~.
var DefaultDelimiters = Delimiters{Element: '*', Component: ':', Repetition: '^', Segment: '~'}

// Parse splits an X12 file into segments.
//
// With an ISA segment the separators are the ones ISA declares: the element separator is the
// byte after "ISA", the repetition separator is ISA11 (0 when ISA11 is not a separator, as in
// 4010 files where it is "U"), the component separator is ISA16 and the segment terminator is
// the byte right after ISA16. ISA is located by counting its 16 element separators, so an ISA
// that is not exactly 106 characters wide is still read. Without ISA the defaults * : ^ are
// used (the element separator is taken from the byte after the first segment id if it is not
// *), with ~ as terminator, or the newline when the file has no ~.
//
// Whitespace (CR, LF, spaces, tabs) around segments and empty segments are ignored. Segments
// whose id is not an X12 segment id (two or three upper-case letters or digits) are kept as
// they are, so a reader can report them; Parse fails only when no segment has a valid id.
func Parse(data []byte) ([]Segment, Delimiters, error) {
	text := bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	text = bytes.TrimLeft(text, " \t\r\n")
	if len(text) == 0 {
		return nil, Delimiters{}, ErrUnreadable
	}
	d, ok := isaDelimiters(text)
	if !ok {
		d = plainDelimiters(text)
	}
	// One conversion: segments and elements are substrings of it.
	str := string(text)
	segs := make([]Segment, 0, strings.Count(str, string(d.Segment))+1)
	valid := 0
	for raw := range strings.SplitSeq(str, string(d.Segment)) {
		raw = strings.TrimSpace(raw)
		if len(raw) == 0 {
			continue
		}
		parts := strings.Split(raw, string(d.Element))
		id := strings.TrimSpace(parts[0])
		if validID(id) {
			valid++
		}
		segs = append(segs, Segment{ID: id, Elements: parts[1:], Position: len(segs) + 1})
	}
	if valid == 0 {
		return nil, Delimiters{}, ErrUnreadable
	}
	return segs, d, nil
}

// isaDelimiters reads the separators an ISA segment at the start of b declares.
func isaDelimiters(b []byte) (Delimiters, bool) {
	if len(b) < 4 || string(b[:3]) != "ISA" {
		return Delimiters{}, false
	}
	el := b[3]
	if isAlnum(el) || isSpace(el) {
		return Delimiters{}, false
	}
	count, isa11, i := 0, -1, 3
	for ; i < len(b); i++ {
		if b[i] != el {
			continue
		}
		count++
		if count == 11 {
			isa11 = i + 1
		}
		if count == 16 {
			break
		}
	}
	if count < 16 || i+2 >= len(b) {
		return Delimiters{}, false
	}
	d := Delimiters{Element: el, Component: b[i+1], Segment: b[i+2]}
	if d.Segment == '\r' {
		// CR LF (or a lone CR) ends the segments: split on LF when there is one, and trim CR.
		if i+3 < len(b) && b[i+3] == '\n' {
			d.Segment = '\n'
		}
	}
	if isa11 >= 0 && isa11+1 < len(b) && b[isa11+1] == el && !isAlnum(b[isa11]) && !isSpace(b[isa11]) {
		d.Repetition = b[isa11]
	}
	return d, true
}

// plainDelimiters are the separators of a file without ISA.
func plainDelimiters(b []byte) Delimiters {
	d := DefaultDelimiters
	if bytes.IndexByte(b, '~') < 0 {
		d.Segment = '\n'
	}
	// The element separator follows the first segment id ("ST*835" or "ST|835").
	i := 0
	for i < len(b) && i < 3 && isAlnum(b[i]) {
		i++
	}
	if i >= 2 && i < len(b) {
		c := b[i]
		if !isAlnum(c) && !isSpace(c) && c != d.Segment && c != d.Component && c != d.Repetition {
			d.Element = c
		}
	}
	return d
}

func validID(id string) bool {
	if len(id) < 2 || len(id) > 3 || id[0] < 'A' || id[0] > 'Z' {
		return false
	}
	for i := 1; i < len(id); i++ {
		c := id[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// Element returns the n-th element of s in X12 numbering (Element(1) is s.Elements[0]), or ""
// when the segment is shorter.
func (s Segment) Element(n int) string {
	if n < 1 || n > len(s.Elements) {
		return ""
	}
	return strings.TrimSpace(s.Elements[n-1])
}

// Describe names s for a deviation: its id, its first element and its position, for example
// "CLP*ABC9001 (segment 12)".
func (s Segment) Describe() string {
	head := s.ID
	if len(s.Elements) > 0 && s.Elements[0] != "" {
		head += "*" + strings.TrimSpace(s.Elements[0])
	}
	return head + " (segment " + strconv.Itoa(s.Position) + ")"
}

// Components splits a composite element on the component separator.
func (d Delimiters) Components(v string) []string {
	if d.Component == 0 {
		return []string{v}
	}
	return strings.Split(v, string(d.Component))
}

// ParseCents reads an X12 decimal amount ("391.05", "-12", ".5", "12.3", "+7.00") as cents,
// exactly and without floating point. More than two decimals are accepted only when the
// extra digits are zeros; anything else (empty, exponent, letters, more than 15 integer
// digits) is an error.
func ParseCents(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty amount")
	}
	neg := false
	switch s[0] {
	case '-':
		neg, s = true, s[1:]
	case '+':
		s = s[1:]
	}
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" && frac == "" {
		return 0, errors.New("no digits")
	}
	if len(whole) > 15 {
		return 0, errors.New("too many digits")
	}
	if !allDigits(whole) || !allDigits(frac) {
		return 0, errors.New("not a decimal amount")
	}
	if len(frac) > 2 {
		if strings.Trim(frac[2:], "0") != "" {
			return 0, errors.New("fraction of a cent")
		}
		frac = frac[:2]
	}
	for len(frac) < 2 {
		frac += "0"
	}
	var c int64
	for _, r := range whole + frac {
		c = c*10 + int64(r-'0')
	}
	if neg {
		c = -c
	}
	return c, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// FormatCents writes cents as an X12 decimal amount: no trailing zeros after the point and no
// point for whole dollars ("250", "95.5", "0.05", "-12.34").
func FormatCents(c int64) string {
	neg := c < 0
	u := uint64(c)
	if neg {
		u = uint64(-(c + 1)) + 1
	}
	s := strconv.FormatUint(u/100, 10)
	if r := u % 100; r != 0 {
		s += "." + strings.TrimRight(string([]byte{byte('0' + r/10), byte('0' + r%10)}), "0")
	}
	if neg {
		s = "-" + s
	}
	return s
}
