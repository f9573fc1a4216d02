package x12

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// This file renders ERA models as 835 text for the property tests and the benchmark: the
// generator builds a balanced model, the renderer writes it with chosen separators and
// envelope, and ParseERA must read back exactly the model.

// renderOpts are the textual choices of a rendered 835.
type renderOpts struct {
	envelope bool
	d        Delimiters
	newline  string // after each terminator: "", "\n" or "\r\n"
	r        *rand.Rand
	// seCountDelta is added to every SE01 (0: correct counts).
	seCountDelta int
}

// amount writes cents in one of the forms X12 allows, chosen at random.
func (o renderOpts) amount(c int64) string {
	if o.r == nil {
		return FormatCents(c)
	}
	switch o.r.IntN(3) {
	case 0:
		return FormatCents(c)
	case 1: // always two decimals: "12.30", "-0.05"
		sign := ""
		if c < 0 {
			sign, c = "-", -c
		}
		return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
	default: // no leading zero below a dollar: ".5", "-.05"
		s := FormatCents(c)
		if strings.HasPrefix(s, "0.") || strings.HasPrefix(s, "-0.") {
			s = strings.Replace(s, "0.", ".", 1)
		}
		return s
	}
}

func renderERA(e *ERA, o renderOpts) string {
	var b strings.Builder
	el, comp := string(o.d.Element), string(o.d.Component)
	put := func(elems ...string) {
		b.WriteString(strings.Join(trimTrailing(elems), el))
		b.WriteByte(o.d.Segment)
		b.WriteString(o.newline)
	}
	if o.envelope {
		fmt.Fprintf(&b, "ISA%[1]s00%[1]s          %[1]s00%[1]s          %[1]sZZ%[1]s%-15[2]s%[1]sZZ%[1]s%-15[3]s%[1]s240115%[1]s1200%[1]s%[4]c%[1]s00501%[1]s%09[5]d%[1]s0%[1]sT%[1]s%[6]c%[7]c%[8]s",
			el, "PAYERSENDER", "TRELLIS", o.d.Repetition, 4711, o.d.Component, o.d.Segment, o.newline)
		put("GS", "HP", "PAYERSENDER", "TRELLIS", "20240115", "1200", "4711", "X", ImplRemittance)
	}
	for _, t := range e.Transactions {
		var segs [][]string
		seg := func(elems ...string) { segs = append(segs, elems) }
		seg("ST", "835", t.ControlNumber, ImplRemittance)
		cd, total := "C", t.TotalPaidCents
		if total < 0 {
			cd, total = "D", -total
		}
		seg("BPR", "I", o.amount(total), cd, t.PaymentMethod, "CCP", "01", "999999999", "DA", "123456", "1512345678", "", "01", "999988880", "DA", "98765", t.PaymentDate)
		seg("TRN", "1", t.TraceNumber, "1512345678")
		seg("N1", "PR", t.PayerName, "XV", t.PayerID)
		seg("N3", "1 PAYER WAY")
		seg("N4", "SPRINGFIELD", "IL", "62701")
		seg("N1", "PE", t.PayeeName, "XX", t.PayeeID)
		for i, c := range t.Claims {
			seg("LX", strconv.Itoa(i+1))
			clp05 := ""
			if c.PatientResponsibilityCents != 0 {
				clp05 = o.amount(c.PatientResponsibilityCents)
			}
			seg("CLP", c.PatientControlNumber, c.StatusCode, o.amount(c.ChargedCents), o.amount(c.PaidCents), clp05, "MC", c.PayerClaimNumber, "11", "1")
			segs = append(segs, o.cas(c.Adjustments)...)
			seg("NM1", "QC", "1", "DOE", "JANE", "", "", "", "MI", "M123")
			seg("DTM", "232", "20240101")
			for _, l := range c.Lines {
				proc := strings.Join(append([]string{l.ProcedureQualifier, l.ProcedureCode}, l.Modifiers...), comp)
				units := ""
				if l.Units != 1 {
					units = strconv.Itoa(l.Units)
				}
				seg("SVC", proc, o.amount(l.ChargedCents), o.amount(l.PaidCents), l.RevenueCode, units)
				seg("DTM", "472", l.ServiceDate)
				segs = append(segs, o.cas(l.Adjustments)...)
				seg("REF", "6R", l.LineControlNumber)
				for _, rm := range l.Remarks {
					seg("LQ", "HE", rm)
				}
			}
		}
		for i := 0; i < len(t.ProviderAdjustments); i += 6 {
			pa := t.ProviderAdjustments[i]
			plb := []string{"PLB", pa.ProviderID, pa.FiscalPeriod}
			for _, a := range t.ProviderAdjustments[i:min(i+6, len(t.ProviderAdjustments))] {
				reason := a.Reason
				if a.Reference != "" {
					reason += comp + a.Reference
				}
				plb = append(plb, reason, o.amount(a.AmountCents))
			}
			segs = append(segs, plb)
		}
		seg("SE", strconv.Itoa(len(segs)+1+o.seCountDelta), t.ControlNumber)
		for _, s := range segs {
			put(s...)
		}
	}
	if o.envelope {
		put("GE", strconv.Itoa(len(e.Transactions)), "4711")
		put("IEA", "1", "000004711")
	}
	return b.String()
}

// cas writes adjustments as CAS segments: one per run of the same group, six triplets at most.
func (o renderOpts) cas(adj []Adjustment) [][]string {
	var out [][]string
	for i := 0; i < len(adj); {
		s := []string{"CAS", adj[i].Group}
		j := i
		for ; j < len(adj) && j < i+6 && adj[j].Group == adj[i].Group; j++ {
			q := ""
			if adj[j].Quantity != 0 {
				q = strconv.Itoa(adj[j].Quantity)
			}
			s = append(s, adj[j].Reason, o.amount(adj[j].AmountCents), q)
		}
		out = append(out, s)
		i = j
	}
	return out
}

// randomERA builds a balanced ERA: every line, claim and transaction balances and CLP05 is the
// sum of the PR adjustments. Reversals (status 22) carry negative amounts.
func randomERA(r *rand.Rand, transactions, maxClaims, maxLines int) *ERA {
	e := &ERA{Deviations: []Deviation{}}
	for ti := range transactions {
		t := Transaction{
			ControlNumber: fmt.Sprintf("%04d", ti+1),
			PaymentMethod: []string{"ACH", "CHK", "NON"}[r.IntN(3)],
			PaymentDate:   "20240115",
			TraceNumber:   fmt.Sprintf("TRACE%d", r.IntN(1000000)),
			PayerName:     "ACME HEALTH",
			PayerID:       "ACME01",
			PayeeName:     "TRELLIS CLINIC",
			PayeeID:       "1234567893",
		}
		var paid int64
		for ci := range 1 + r.IntN(maxClaims) {
			c := randomClaim(r, ci, maxLines)
			paid += c.PaidCents
			t.Claims = append(t.Claims, c)
		}
		for range r.IntN(8) {
			pa := ProviderAdjustment{ProviderID: "1234567893", FiscalPeriod: "20241231",
				Reason: []string{"WO", "L6", "90", "72"}[r.IntN(4)], AmountCents: r.Int64N(20001) - 10000}
			if r.IntN(2) == 0 {
				pa.Reference = fmt.Sprintf("REF%d", r.IntN(1000))
			}
			t.ProviderAdjustments = append(t.ProviderAdjustments, pa)
			paid -= pa.AmountCents
		}
		t.TotalPaidCents = paid
		t.CreditDebit = "C"
		if paid < 0 {
			t.CreditDebit = "D"
		}
		e.Transactions = append(e.Transactions, t)
	}
	return e
}

func randomClaim(r *rand.Rand, i, maxLines int) ClaimPayment {
	c := ClaimPayment{
		PatientControlNumber: fmt.Sprintf("PCN%05d", i+1),
		StatusCode:           []string{"1", "1", "2", "3", "4", "22"}[r.IntN(6)],
		PayerClaimNumber:     fmt.Sprintf("PAY%07d", r.IntN(10000000)),
	}
	sign := int64(1)
	if c.StatusCode == "22" {
		sign = -1
	}
	var adjSum, pr int64
	c.Adjustments = randomAdjustments(r, sign, 2, 5000)
	s, p, _ := sumAdjustments(c.Adjustments)
	adjSum, pr = adjSum+s, pr+p
	var lineCharges int64
	for li := range r.IntN(maxLines + 1) {
		charged := sign * (1 + r.Int64N(100000))
		l := ServiceLinePayment{
			ProcedureQualifier: "HC",
			ProcedureCode:      []string{"H0015", "90853", "90834", "99213"}[r.IntN(4)],
			ChargedCents:       charged,
			Units:              1 + r.IntN(3),
			ServiceDate:        fmt.Sprintf("202401%02d", 1+r.IntN(28)),
			LineControlNumber:  fmt.Sprintf("L%d-%d", i+1, li+1),
		}
		if r.IntN(3) == 0 {
			l.Modifiers = []string{"HQ", "UK"}[:1+r.IntN(2)]
		}
		if r.IntN(4) == 0 {
			l.RevenueCode = "0906"
		}
		l.Adjustments = randomAdjustments(r, sign, 8, charged*sign/3+1)
		ls, lp, _ := sumAdjustments(l.Adjustments)
		l.PaidCents = charged - ls
		adjSum, pr = adjSum+ls, pr+lp
		if r.IntN(3) == 0 {
			l.Remarks = []string{"N130", "M15"}[:1+r.IntN(2)]
		}
		lineCharges += charged
		c.Lines = append(c.Lines, l)
	}
	c.ChargedCents = lineCharges
	if len(c.Lines) == 0 {
		c.ChargedCents = sign * (1 + r.Int64N(100000))
	}
	c.PaidCents = c.ChargedCents - adjSum
	c.PatientResponsibilityCents = pr
	return c
}

func randomAdjustments(r *rand.Rand, sign int64, maxN int, maxAmount int64) []Adjustment {
	var out []Adjustment
	for range r.IntN(maxN + 1) {
		a := Adjustment{
			Group:       []string{"CO", "PR", "OA", "PI", "CR"}[r.IntN(5)],
			Reason:      []string{"45", "1", "2", "3", "97", "253"}[r.IntN(6)],
			AmountCents: sign * r.Int64N(maxAmount+1),
		}
		if r.IntN(4) == 0 {
			a.Quantity = 1 + r.IntN(3)
		}
		out = append(out, a)
	}
	return out
}

// separatorSets are declared separator choices: element, component, repetition, terminator.
var separatorSets = []Delimiters{
	DefaultDelimiters,
	{Element: '|', Component: '>', Repetition: '^', Segment: '~'},
	{Element: '*', Component: '^', Repetition: '|', Segment: '\''},
	{Element: '!', Component: '\\', Repetition: '{', Segment: '\n'},
}
