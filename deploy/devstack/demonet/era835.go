package demonet

import (
	"fmt"
	"strings"
	"time"
)

// This file is the payers' side of the revenue cycle: a small X12 835 (005010X221A1) writer
// that answers the claims billing sent. It writes what billing's reader checks: balanced
// service lines (SVC02 - CAS = SVC03), claims (CLP03 - CAS = CLP04, CLP05 = the PR
// adjustments), the transaction (sum of CLP04 = BPR02), and the envelope counts (SE, GE, IEA).

// Adjustment is one CAS triple: group (CO contractual, PR patient responsibility, OA other),
// reason (a CARC) and amount in cents.
type Adjustment struct {
	Group, Reason string
	Cents         int64
}

// RemitLine answers one claim line.
type RemitLine struct {
	Procedure, RevenueCode string
	Units                  int32
	Date                   string // "YYYY-MM-DD"
	LineControl            string // REF*6R, echoed from the claim
	Charged, Paid          int64
	Adjustments            []Adjustment
}

// RemitClaim answers one claim (CLP).
type RemitClaim struct {
	Control          string // CLP01 = the claim's CLM01
	Status           string // CLP02: 1 processed as primary, 4 denied
	FilingIndicator  string // CLP06: MC Medicaid, 12 PPO, CI commercial
	PayerClaimNumber string // CLP07
	FacilityCode     string // CLP08: 11 office (837P), 89 (837I)
	PatientFamily    string
	PatientGiven     string
	MemberID         string
	Lines            []RemitLine
}

// Charged, Paid and PatientResponsibility are the sums over the claim's lines.
func (c RemitClaim) Charged() (n int64) {
	for _, l := range c.Lines {
		n += l.Charged
	}
	return n
}

// Paid is CLP04.
func (c RemitClaim) Paid() (n int64) {
	for _, l := range c.Lines {
		n += l.Paid
	}
	return n
}

// PatientResponsibility is CLP05: the PR adjustments of the claim's lines.
func (c RemitClaim) PatientResponsibility() (n int64) {
	for _, l := range c.Lines {
		for _, a := range l.Adjustments {
			if a.Group == "PR" {
				n += a.Cents
			}
		}
	}
	return n
}

// Remittance is one 835 file: one payer paying one payee (a clinic).
type Remittance struct {
	PayerName, PayerX12ID string
	PayeeName, PayeeNPI   string
	Control               int // ISA13 / GS06 (1 to 999999999)
	Trace                 string
	Date                  time.Time // payment date (BPR16, DTM*405)
	Claims                []RemitClaim
}

// Total is BPR02: what the payer pays.
func (r Remittance) Total() (n int64) {
	for _, c := range r.Claims {
		n += c.Paid()
	}
	return n
}

// Write835 writes the remittance as one interchange, one group, one 835.
func Write835(r Remittance) []byte {
	date := r.Date.UTC()
	sender := pad(strings.ToUpper(r.PayerX12ID), 15)
	receiver := pad("TRELLIS", 15)
	var head []string
	head = append(head,
		fmt.Sprintf("ISA*00*          *00*          *ZZ*%s*ZZ*%s*%s*%s*^*00501*%09d*0*P*:", sender, receiver,
			date.Format("060102"), date.Format("1504"), r.Control),
		fmt.Sprintf("GS*HP*%s*TRELLIS*%s*%s*%d*X*005010X221A1", strings.ToUpper(r.PayerX12ID), date.Format("20060102"), date.Format("1504"), r.Control))
	st := []string{"ST*835*0001*005010X221A1"}
	total := r.Total()
	if total > 0 {
		st = append(st, fmt.Sprintf("BPR*I*%s*C*ACH*CCP*01*071000013*DA*4410022001*1%s**01*071923909*DA*8830041177*%s",
			amount(total), digits9(r.PayerX12ID), date.Format("20060102")))
	} else {
		st = append(st, fmt.Sprintf("BPR*H*0*C*NON************%s", date.Format("20060102")))
	}
	st = append(st,
		fmt.Sprintf("TRN*1*%s*1%s", r.Trace, digits9(r.PayerX12ID)),
		"DTM*405*"+date.Format("20060102"),
		fmt.Sprintf("N1*PR*%s*XV*%s", clean(r.PayerName), r.PayerX12ID),
		"N3*PO BOX 1450",
		"N4*SPRINGFIELD*IL*627011450",
		"PER*BL*PROVIDER SERVICES*TE*8005550199",
		fmt.Sprintf("N1*PE*%s*XX*%s", clean(r.PayeeName), r.PayeeNPI))
	for i, c := range r.Claims {
		st = append(st, fmt.Sprintf("LX*%d", i+1),
			fmt.Sprintf("CLP*%s*%s*%s*%s*%s*%s*%s*%s*1", c.Control, c.Status, amount(c.Charged()), amount(c.Paid()),
				amount(c.PatientResponsibility()), c.FilingIndicator, c.PayerClaimNumber, c.FacilityCode),
			fmt.Sprintf("NM1*QC*1*%s*%s****MI*%s", clean(c.PatientFamily), clean(c.PatientGiven), c.MemberID))
		for _, l := range c.Lines {
			st = append(st, fmt.Sprintf("SVC*HC:%s*%s*%s*%s*%d", l.Procedure, amount(l.Charged), amount(l.Paid), l.RevenueCode, max(1, l.Units)),
				"DTM*472*"+strings.ReplaceAll(l.Date, "-", ""))
			st = append(st, cas(l.Adjustments)...)
			st = append(st, "REF*6R*"+l.LineControl)
		}
	}
	st = append(st, fmt.Sprintf("SE*%d*0001", len(st)+1))
	out := append(head, st...)
	out = append(out, fmt.Sprintf("GE*1*%d", r.Control), fmt.Sprintf("IEA*1*%09d", r.Control))
	return []byte(strings.Join(out, "~\n") + "~\n")
}

// cas writes a line's adjustments, one CAS per group (up to six reason/amount pairs each).
func cas(adjs []Adjustment) []string {
	var out []string
	var order []string
	byGroup := map[string][]Adjustment{}
	for _, a := range adjs {
		if a.Cents == 0 {
			continue
		}
		if _, ok := byGroup[a.Group]; !ok {
			order = append(order, a.Group)
		}
		byGroup[a.Group] = append(byGroup[a.Group], a)
	}
	for _, g := range order {
		seg := "CAS*" + g
		for i, a := range byGroup[g] {
			if i > 0 {
				seg += "*" // CAS04, CAS07...: the quantity, left empty
			}
			seg += "*" + a.Reason + "*" + amount(a.Cents)
		}
		out = append(out, seg)
	}
	return out
}

// amount writes cents as X12 money: 210, 95.5 would also do; we write 210.00 and 95.50.
func amount(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}

func pad(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s + strings.Repeat(" ", n-len(s))
}

// digits9 makes a 9-digit company id from a payer id (TRN03 and BPR10 take 10 characters,
// the first being 1).
func digits9(s string) string {
	var n uint64 = 7
	for _, c := range s {
		n = n*31 + uint64(c)
	}
	return fmt.Sprintf("%09d", n%1_000_000_000)
}

// clean keeps a name free of the X12 separators.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '*', '~', ':', '^', '\n', '\r':
			return ' '
		}
		return r
	}, strings.ToUpper(s))
}
