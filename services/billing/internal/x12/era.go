package x12

import (
	"fmt"
	"strconv"
	"strings"
)

// Deviation rules reported by ParseERA.
const (
	RuleServiceLineBalance    = "service_line_balance"   // SVC02 - sum(line CAS) = SVC03
	RuleClaimBalance          = "claim_balance"          // CLP03 - sum(claim and line CAS) = CLP04
	RuleTransactionBalance    = "transaction_balance"    // sum(CLP04) - sum(PLB) = BPR02 (signed)
	RulePatientResponsibility = "patient_responsibility" // CLP05 = sum(PR adjustments)
	RuleSESegmentCount        = "se_segment_count"       // SE01 = segments ST..SE
	RuleSEControlNumber       = "se_control_number"      // SE02 = ST02
	RuleGETransactionCount    = "ge_transaction_count"   // GE01 = ST count in the group
	RuleGEControlNumber       = "ge_control_number"      // GE02 = GS06
	RuleIEAGroupCount         = "iea_group_count"        // IEA01 = GS count in the interchange
	RuleIEAControlNumber      = "iea_control_number"     // IEA02 = ISA13
	RuleMissingSegment        = "missing_segment"        // a segment the 835 needs is absent
	RuleAmountFormat          = "amount_format"          // an amount or quantity is not a number
	RuleSegmentOutOfPlace     = "segment_out_of_place"   // a segment where the 835 has no place for it
	RuleTransactionType       = "transaction_type"       // ST01 is not 835
	RuleSegmentID             = "segment_id"             // not an X12 segment id
)

// ParseERA reads an 835 (005010X221A1) remittance advice. Reading is tolerant (see Parse) and
// checking strict: every broken rule is a Deviation in the result. The only error is a file
// with nothing readable in it.
//
// Sign conventions: BPR03 "D" (debit: the payer takes money back) makes TotalPaidCents
// negative, so transaction_balance compares sum(CLP04) - sum(PLB amounts) with the signed
// BPR02, and Summary.TotalPaidCents is the sum of the signed totals. PLB amounts keep the
// file's sign: positive reduces the payment.
func ParseERA(data []byte) (*ERA, error) {
	segs, d, err := Parse(data)
	if err != nil {
		return nil, err
	}
	p := &eraParser{d: d, era: &ERA{Transactions: []Transaction{}, Deviations: []Deviation{}}}
	for _, s := range segs {
		p.segment(s)
	}
	p.end()
	return p.era, nil
}

// Summary counts what the ERA holds and sums the BPR totals.
func (e *ERA) Summary() Summary {
	s := Summary{Transactions: len(e.Transactions), Deviations: append([]Deviation{}, e.Deviations...)}
	for _, t := range e.Transactions {
		s.TotalPaidCents += t.TotalPaidCents
		s.Claims += len(t.Claims)
		for _, c := range t.Claims {
			s.ServiceLines += len(c.Lines)
		}
	}
	return s
}

type lineWork struct {
	ServiceLinePayment
	seg     Segment
	bad     bool // an amount could not be read: no balancing
	sawDate bool // DTM*472 seen (it wins over DTM*150)
}

type claimWork struct {
	ClaimPayment
	seg      Segment
	bad      bool
	hasCLP05 bool
	lines    []lineWork
}

type txWork struct {
	Transaction
	st          Segment
	count       int // segments from ST on
	skip        bool
	bad         bool
	bpr         *Segment
	sawTRN      bool
	sawPayer    bool
	sawPayee    bool
	ref2U, trn3 string
	claims      bool // a claim has started: header segments are over
}

type eraParser struct {
	d   Delimiters
	era *ERA

	isa       *Segment
	groups    int
	gs        *Segment
	txInGroup int
	tx        *txWork
	claim     *claimWork
	line      *lineWork
}

func (p *eraParser) deviate(rule string, s Segment, expected, actual int64, detail string) {
	p.deviateAt(rule, s.Describe(), expected, actual, detail)
}

func (p *eraParser) deviateAt(rule, where string, expected, actual int64, detail string) {
	p.era.Deviations = append(p.era.Deviations, Deviation{
		Rule: rule, Segment: where, Expected: expected, Actual: actual, Detail: detail,
	})
}

// amount reads element n of s as cents; a bad amount is reported and marks *bad.
func (p *eraParser) amount(s Segment, n int, bad *bool) int64 {
	v := s.Element(n)
	c, err := ParseCents(v)
	if err != nil {
		what := "is not a decimal amount"
		if v == "" {
			what = "is missing"
		}
		p.deviate(RuleAmountFormat, s, 0, 0, fmt.Sprintf("%s%02d %s", s.ID, n, what))
		*bad = true
		return 0
	}
	return c
}

// quantity reads element n of s as a whole number (def when empty).
func (p *eraParser) quantity(s Segment, n, def int) int {
	v := s.Element(n)
	if v == "" {
		return def
	}
	q, err := parseQuantity(v)
	if err != nil {
		p.deviate(RuleAmountFormat, s, 0, 0, fmt.Sprintf("%s%02d is not a whole quantity", s.ID, n))
		return def
	}
	return q
}

func parseQuantity(v string) (int, error) {
	whole, frac, _ := strings.Cut(strings.TrimPrefix(v, "+"), ".")
	if strings.Trim(frac, "0") != "" || !allDigits(frac) {
		return 0, fmt.Errorf("not whole")
	}
	neg := strings.HasPrefix(whole, "-")
	whole = strings.TrimPrefix(whole, "-")
	if whole == "" || len(whole) > 9 || !allDigits(whole) {
		return 0, fmt.Errorf("not a number")
	}
	q, _ := strconv.Atoi(whole)
	if neg {
		q = -q
	}
	return q, nil
}

func (p *eraParser) segment(s Segment) {
	if p.tx != nil {
		p.tx.count++
	}
	if !validID(s.ID) {
		p.deviateAt(RuleSegmentID, fmt.Sprintf("segment %d", s.Position), 0, 0, "not an X12 segment id")
		return
	}
	switch s.ID {
	case "ISA":
		p.closeTransaction(nil)
		p.closeGroup(nil)
		p.closeInterchange(nil)
		isa := s
		p.isa, p.groups = &isa, 0
		return
	case "IEA":
		p.closeTransaction(nil)
		p.closeGroup(nil)
		p.closeInterchange(&s)
		return
	case "GS":
		p.closeTransaction(nil)
		p.closeGroup(nil)
		gs := s
		p.gs, p.txInGroup = &gs, 0
		p.groups++
		return
	case "GE":
		p.closeTransaction(nil)
		p.closeGroup(&s)
		return
	case "ST":
		p.closeTransaction(nil)
		p.txInGroup++
		p.tx = &txWork{st: s, count: 1}
		p.tx.ControlNumber = s.Element(2)
		if s.Element(1) != "835" {
			p.tx.skip = true
			p.deviate(RuleTransactionType, s, 835, int64(atoi(s.Element(1))), "not an 835 transaction set")
		}
		return
	case "SE":
		p.closeTransaction(&s)
		return
	}
	if p.tx == nil {
		p.deviate(RuleSegmentOutOfPlace, s, 0, 0, "outside a transaction set (ST..SE)")
		return
	}
	if p.tx.skip {
		return
	}
	p.txSegment(s)
}

func (p *eraParser) txSegment(s Segment) {
	t := p.tx
	switch s.ID {
	case "BPR":
		if t.bpr != nil {
			p.deviate(RuleSegmentOutOfPlace, s, 0, 0, "second BPR in the transaction")
			return
		}
		bpr := s
		t.bpr = &bpr
		t.TotalPaidCents = p.amount(s, 2, &t.bad)
		t.CreditDebit = s.Element(3)
		if t.CreditDebit == "D" {
			t.TotalPaidCents = -t.TotalPaidCents
		}
		t.PaymentMethod = s.Element(4)
		t.PaymentDate = s.Element(16)
	case "TRN":
		t.sawTRN = true
		if t.TraceNumber == "" {
			t.TraceNumber = s.Element(2)
			t.trn3 = s.Element(3)
		}
	case "N1":
		if t.claims {
			p.deviate(RuleSegmentOutOfPlace, s, 0, 0, "N1 after the first claim")
			return
		}
		switch s.Element(1) {
		case "PR":
			t.sawPayer = true
			t.PayerName, t.PayerID = s.Element(2), s.Element(4)
		case "PE":
			t.sawPayee = true
			t.PayeeName, t.PayeeID = s.Element(2), s.Element(4)
		}
	case "REF":
		switch {
		case p.line != nil:
			if s.Element(1) == "6R" {
				p.line.LineControlNumber = s.Element(2)
			}
		case !t.claims && s.Element(1) == "2U":
			t.ref2U = s.Element(2)
		}
	case "LX":
		p.closeClaim()
		t.claims = true
	case "CLP":
		p.closeClaim()
		t.claims = true
		c := &claimWork{seg: s}
		c.Position = s.Position
		c.PatientControlNumber = s.Element(1)
		c.StatusCode = s.Element(2)
		c.ChargedCents = p.amount(s, 3, &c.bad)
		c.PaidCents = p.amount(s, 4, &c.bad)
		if s.Element(5) != "" {
			c.hasCLP05 = true
			var bad bool
			c.PatientResponsibilityCents = p.amount(s, 5, &bad)
			c.hasCLP05 = !bad
		}
		c.PayerClaimNumber = s.Element(7)
		p.claim = c
	case "CAS":
		adj := p.adjustments(s)
		switch {
		case p.line != nil:
			p.line.Adjustments = append(p.line.Adjustments, adj...)
		case p.claim != nil:
			p.claim.Adjustments = append(p.claim.Adjustments, adj...)
		default:
			p.deviate(RuleSegmentOutOfPlace, s, 0, 0, "CAS outside a claim")
		}
	case "SVC":
		if p.claim == nil {
			p.deviate(RuleSegmentOutOfPlace, s, 0, 0, "SVC outside a claim")
			return
		}
		p.closeLine()
		l := &lineWork{seg: s}
		l.Position = s.Position
		comp := p.d.Components(s.Element(1))
		l.ProcedureQualifier = strings.TrimSpace(comp[0])
		if len(comp) > 1 {
			l.ProcedureCode = strings.TrimSpace(comp[1])
		}
		for i := 2; i < len(comp) && i < 6; i++ {
			if m := strings.TrimSpace(comp[i]); m != "" {
				l.Modifiers = append(l.Modifiers, m)
			}
		}
		l.ChargedCents = p.amount(s, 2, &l.bad)
		l.PaidCents = p.amount(s, 3, &l.bad)
		l.RevenueCode = s.Element(4)
		l.Units = p.quantity(s, 5, 1)
		p.line = l
	case "DTM":
		if p.line != nil {
			switch s.Element(1) {
			case "472":
				p.line.ServiceDate, p.line.sawDate = s.Element(2), true
			case "150":
				if !p.line.sawDate {
					p.line.ServiceDate = s.Element(2)
				}
			}
		}
	case "LQ":
		if p.line != nil && s.Element(1) == "HE" {
			p.line.Remarks = append(p.line.Remarks, s.Element(2))
		}
	case "PLB":
		p.closeClaim()
		t.claims = true
		for n := 3; n+1 <= 14; n += 2 {
			if s.Element(n) == "" && s.Element(n+1) == "" {
				continue
			}
			comp := p.d.Components(s.Element(n))
			pa := ProviderAdjustment{ProviderID: s.Element(1), FiscalPeriod: s.Element(2), Reason: strings.TrimSpace(comp[0])}
			if len(comp) > 1 {
				pa.Reference = strings.TrimSpace(comp[1])
			}
			pa.AmountCents = p.amount(s, n+1, &t.bad)
			t.ProviderAdjustments = append(t.ProviderAdjustments, pa)
		}
	}
}

// adjustments reads the up to six reason/amount/quantity triplets of a CAS segment.
func (p *eraParser) adjustments(s Segment) []Adjustment {
	var out []Adjustment
	bad := false
	for n := 2; n+1 <= 19; n += 3 {
		if s.Element(n) == "" && s.Element(n+1) == "" {
			continue
		}
		a := Adjustment{Group: s.Element(1), Reason: s.Element(n)}
		a.AmountCents = p.amount(s, n+1, &bad)
		a.Quantity = p.quantity(s, n+2, 0)
		out = append(out, a)
	}
	if bad {
		if p.line != nil {
			p.line.bad = true
		} else if p.claim != nil {
			p.claim.bad = true
		}
	}
	return out
}

func sumAdjustments(a []Adjustment) (sum, pr int64, hasPR bool) {
	for _, x := range a {
		sum += x.AmountCents
		if x.Group == "PR" {
			pr += x.AmountCents
			hasPR = true
		}
	}
	return sum, pr, hasPR
}

func (p *eraParser) closeLine() {
	l := p.line
	if l == nil {
		return
	}
	p.line = nil
	if !l.bad {
		sum, _, _ := sumAdjustments(l.Adjustments)
		if want := l.ChargedCents - sum; want != l.PaidCents {
			p.deviate(RuleServiceLineBalance, l.seg, want, l.PaidCents, "SVC02 - line CAS = SVC03")
		}
	}
	p.claim.lines = append(p.claim.lines, *l)
}

func (p *eraParser) closeClaim() {
	c := p.claim
	if c == nil {
		return
	}
	p.closeLine()
	p.claim = nil
	sum, pr, hasPR := sumAdjustments(c.Adjustments)
	bad := c.bad
	for _, l := range c.lines {
		s, lpr, lhas := sumAdjustments(l.Adjustments)
		sum, pr, hasPR = sum+s, pr+lpr, hasPR || lhas
		bad = bad || l.bad
		c.Lines = append(c.Lines, l.ServiceLinePayment)
	}
	if !bad {
		if want := c.ChargedCents - sum; want != c.PaidCents {
			p.deviate(RuleClaimBalance, c.seg, want, c.PaidCents, "CLP03 - claim and line CAS = CLP04")
		}
	}
	if c.hasCLP05 && hasPR && pr != c.PatientResponsibilityCents {
		p.deviate(RulePatientResponsibility, c.seg, pr, c.PatientResponsibilityCents, "sum of PR adjustments = CLP05")
	}
	if c.bad {
		p.tx.bad = true
	}
	p.tx.Claims = append(p.tx.Claims, c.ClaimPayment)
}

// closeTransaction ends the open transaction at its SE (se nil: the SE is missing).
func (p *eraParser) closeTransaction(se *Segment) {
	t := p.tx
	if t == nil {
		if se != nil {
			p.deviate(RuleSegmentOutOfPlace, *se, 0, 0, "SE without ST")
		}
		return
	}
	if !t.skip {
		p.closeClaim()
	}
	p.tx = nil
	if se == nil {
		p.deviate(RuleMissingSegment, t.st, 0, 0, "SE")
	} else {
		if n, err := strconv.ParseInt(se.Element(1), 10, 64); err != nil || n != int64(t.count) {
			p.deviate(RuleSESegmentCount, *se, int64(t.count), n, "SE01 = segments from ST to SE")
		}
		if !sameControl(se.Element(2), t.st.Element(2)) {
			p.deviate(RuleSEControlNumber, *se, atoi(t.st.Element(2)), atoi(se.Element(2)), "SE02 = ST02")
		}
	}
	if t.skip {
		return
	}
	for _, m := range []struct {
		ok   bool
		name string
	}{{t.bpr != nil, "BPR"}, {t.sawTRN, "TRN"}, {t.sawPayer, "N1*PR"}, {t.sawPayee, "N1*PE"}} {
		if !m.ok {
			p.deviate(RuleMissingSegment, t.st, 0, 0, m.name)
		}
	}
	if t.PayerID == "" {
		t.PayerID = t.ref2U
	}
	if t.PayerID == "" {
		t.PayerID = t.trn3
	}
	if t.bpr != nil && !t.bad {
		var want int64
		for _, c := range t.Claims {
			want += c.PaidCents
		}
		for _, a := range t.ProviderAdjustments {
			want -= a.AmountCents
		}
		if want != t.TotalPaidCents {
			p.deviate(RuleTransactionBalance, *t.bpr, want, t.TotalPaidCents, "sum(CLP04) - sum(PLB) = BPR02")
		}
	}
	p.era.Transactions = append(p.era.Transactions, t.Transaction)
}

func (p *eraParser) closeGroup(ge *Segment) {
	if p.gs == nil {
		if ge != nil {
			p.deviate(RuleSegmentOutOfPlace, *ge, 0, 0, "GE without GS")
		}
		return
	}
	gs := *p.gs
	p.gs = nil
	if ge == nil {
		p.deviate(RuleMissingSegment, gs, 0, 0, "GE")
		return
	}
	if n, err := strconv.ParseInt(ge.Element(1), 10, 64); err != nil || n != int64(p.txInGroup) {
		p.deviate(RuleGETransactionCount, *ge, int64(p.txInGroup), n, "GE01 = transaction sets in the group")
	}
	if !sameControl(ge.Element(2), gs.Element(6)) {
		p.deviate(RuleGEControlNumber, *ge, atoi(gs.Element(6)), atoi(ge.Element(2)), "GE02 = GS06")
	}
}

func (p *eraParser) closeInterchange(iea *Segment) {
	if p.isa == nil {
		if iea != nil {
			p.deviate(RuleSegmentOutOfPlace, *iea, 0, 0, "IEA without ISA")
		}
		return
	}
	isa := *p.isa
	p.isa = nil
	if iea == nil {
		p.deviate(RuleMissingSegment, isa, 0, 0, "IEA")
		return
	}
	if n, err := strconv.ParseInt(iea.Element(1), 10, 64); err != nil || n != int64(p.groups) {
		p.deviate(RuleIEAGroupCount, *iea, int64(p.groups), n, "IEA01 = functional groups in the interchange")
	}
	if !sameControl(iea.Element(2), isa.Element(13)) {
		p.deviate(RuleIEAControlNumber, *iea, atoi(isa.Element(13)), atoi(iea.Element(2)), "IEA02 = ISA13")
	}
}

func (p *eraParser) end() {
	p.closeTransaction(nil)
	p.closeGroup(nil)
	p.closeInterchange(nil)
	if len(p.era.Transactions) == 0 {
		p.deviateAt(RuleMissingSegment, "file", 0, 0, "no 835 transaction set (ST*835)")
	}
}

// sameControl compares control numbers: numerically when both are numbers (ISA13 000001507 and
// IEA02 1507 match), otherwise as text.
func sameControl(a, b string) bool {
	x, errA := strconv.ParseInt(a, 10, 64)
	y, errB := strconv.ParseInt(b, 10, 64)
	if errA == nil && errB == nil {
		return x == y
	}
	return a == b
}

func atoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
