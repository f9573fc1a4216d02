// Package kpi computes the dashboard's figures from counts and samples read from the
// projections, and formats them for people: pure functions, no I/O.
package kpi

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Unknown is what a figure shows when there is nothing to compute it from.
const Unknown = "—"

// Names of the overview's figures, in column order (the pages' data-kpi attributes).
var Names = []string{"census", "capacity", "attendance_rate", "no_show_rate", "meeting_minimum",
	"days_to_admission", "completion_rate", "median_length_of_stay"}

// Inputs are what one clinic's (or the network's) figures are computed from.
type Inputs struct {
	Census   int // active enrollments
	Capacity int // seats of active tracks
	// Attendance in the range, latest version per appointment, by status
	// (present, late, left_early, absent, excused).
	Attendance map[string]int
	// Days from first contact to admission of each admission in the range.
	DaysToAdmission []float64
	// Discharges in the range by reason (completed, dropped_out, terminated, transferred, other).
	Discharges map[string]int
	// Length of stay in days (discharge date - start date) of each discharge in the range.
	LengthsOfStay []float64
	// Complete program weeks in the range (MinimumWeeks) and those meeting the weekly minimum.
	MinimumWeeks, MinimumMet int
}

// Add merges o into in (for the network total: counts add up, samples pool).
func (in *Inputs) Add(o Inputs) {
	in.Census += o.Census
	in.Capacity += o.Capacity
	if in.Attendance == nil {
		in.Attendance = map[string]int{}
	}
	for k, v := range o.Attendance {
		in.Attendance[k] += v
	}
	if in.Discharges == nil {
		in.Discharges = map[string]int{}
	}
	for k, v := range o.Discharges {
		in.Discharges[k] += v
	}
	in.DaysToAdmission = append(in.DaysToAdmission, o.DaysToAdmission...)
	in.LengthsOfStay = append(in.LengthsOfStay, o.LengthsOfStay...)
	in.MinimumWeeks += o.MinimumWeeks
	in.MinimumMet += o.MinimumMet
}

// Figures are the computed KPIs; nil means unknown.
type Figures struct {
	Census             int
	Capacity           int
	AttendanceRate     *float64
	NoShowRate         *float64
	MeetingMinimum     *float64 // share of complete program weeks meeting the weekly minimum
	DaysToAdmission    *float64
	CompletionRate     *float64
	MedianLengthOfStay *float64
}

// Compute derives the figures from in.
func Compute(in Inputs) Figures {
	return Figures{
		Census:             in.Census,
		Capacity:           in.Capacity,
		AttendanceRate:     AttendanceRate(in.Attendance),
		NoShowRate:         NoShowRate(in.Attendance),
		MeetingMinimum:     Ratio(in.MinimumMet, in.MinimumWeeks),
		DaysToAdmission:    Median(in.DaysToAdmission),
		CompletionRate:     CompletionRate(in.Discharges),
		MedianLengthOfStay: Median(in.LengthsOfStay),
	}
}

// Recorded is the attendance that counts: everything recorded except excused absences.
func Recorded(att map[string]int) int {
	return att["present"] + att["late"] + att["left_early"] + att["absent"]
}

// AttendanceRate is attended (present, late, left early) over recorded (excused excluded).
func AttendanceRate(att map[string]int) *float64 {
	return Ratio(att["present"]+att["late"]+att["left_early"], Recorded(att))
}

// NoShowRate is absent over recorded (excused excluded).
func NoShowRate(att map[string]int) *float64 { return Ratio(att["absent"], Recorded(att)) }

// CompletionRate is completed over completed, dropped out and terminated discharges
// (transfers and other reasons are neither).
func CompletionRate(byReason map[string]int) *float64 {
	c := byReason["completed"]
	return Ratio(c, c+byReason["dropped_out"]+byReason["terminated"])
}

// Ratio is num/den, nil when den is 0.
func Ratio(num, den int) *float64 {
	if den <= 0 {
		return nil
	}
	r := float64(num) / float64(den)
	return &r
}

// Median of xs, nil when empty.
func Median(xs []float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return &m
}

// Map is the figures as display strings keyed by Names.
func (f Figures) Map() map[string]string {
	return map[string]string{
		"census":                strconv.Itoa(f.Census),
		"capacity":              strconv.Itoa(f.Capacity),
		"attendance_rate":       Percent(f.AttendanceRate),
		"no_show_rate":          Percent(f.NoShowRate),
		"meeting_minimum":       Percent(f.MeetingMinimum),
		"days_to_admission":     Days(f.DaysToAdmission),
		"completion_rate":       Percent(f.CompletionRate),
		"median_length_of_stay": Days(f.MedianLengthOfStay),
	}
}

// Percent formats a rate as "87.5%" (one decimal), Unknown when nil.
func Percent(r *float64) string {
	if r == nil {
		return Unknown
	}
	return strconv.FormatFloat(math.Round(*r*1000)/10, 'f', 1, 64) + "%"
}

// Days formats a number of days with one decimal ("3.5"), Unknown when nil.
func Days(d *float64) string {
	if d == nil {
		return Unknown
	}
	return strconv.FormatFloat(math.Round(*d*10)/10, 'f', 1, 64)
}

// Cents formats integer cents as dollars: 123456 -> "$1,234.56", -5 -> "-$0.05".
func Cents(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	whole, frac := strconv.FormatInt(c/100, 10), c%100
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return fmt.Sprintf("%s$%s.%02d", sign, b.String(), frac)
}

// Range is an inclusive range of clinic-local dates.
type Range struct{ From, To time.Time }

// DefaultDays is the length of the default range: the last 28 days, today included.
const DefaultDays = 28

// ParseRange reads "from" and "to" ("YYYY-MM-DD", either may be empty) against today: the
// default is the last 28 days ending today; a missing end is filled in from the other. From
// after To, or a range over 366 days, is an error.
func ParseRange(from, to string, today time.Time) (Range, error) {
	today = time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, time.UTC)
	r := Range{From: today.AddDate(0, 0, -(DefaultDays - 1)), To: today}
	var err error
	if to != "" {
		if r.To, err = time.Parse(time.DateOnly, to); err != nil {
			return Range{}, fmt.Errorf("to: want a date YYYY-MM-DD")
		}
		r.From = r.To.AddDate(0, 0, -(DefaultDays - 1))
	}
	if from != "" {
		if r.From, err = time.Parse(time.DateOnly, from); err != nil {
			return Range{}, fmt.Errorf("from: want a date YYYY-MM-DD")
		}
		if to == "" && r.From.After(r.To) {
			r.To = r.From.AddDate(0, 0, DefaultDays-1)
		}
	}
	if r.From.After(r.To) {
		return Range{}, fmt.Errorf("from is after to")
	}
	if r.To.Sub(r.From) > 366*24*time.Hour {
		return Range{}, fmt.Errorf("the range is longer than a year")
	}
	return r, nil
}

// AgingBucket names the receivables bucket of a claim outstanding for days.
func AgingBucket(days int) string {
	switch {
	case days <= 30:
		return "0-30"
	case days <= 60:
		return "31-60"
	case days <= 90:
		return "61-90"
	default:
		return "91+"
	}
}

// AgingBuckets in column order.
var AgingBuckets = []string{"0-30", "31-60", "61-90", "91+"}

// ClaimInputs are the counts and sums of the claims adjudicated in a range (see store.ClaimRates).
type ClaimInputs struct {
	Adjudicated int // claims whose newest adjudication is in the range: paid, partially paid or denied
	Denied      int // of those, denied
	// Of those, paid in full on their first submission: status paid, never denied, partially
	// paid or reversed, not a correction and not corrected.
	Clean            int
	ChargedCents     int64 // what those claims charged
	ContractualCents int64 // their contractual adjustments (CO, a denial's left out)
	PaidCents        int64 // what the payers paid on them
}

// Add merges o into in.
func (in *ClaimInputs) Add(o ClaimInputs) {
	in.Adjudicated += o.Adjudicated
	in.Denied += o.Denied
	in.Clean += o.Clean
	in.ChargedCents += o.ChargedCents
	in.ContractualCents += o.ContractualCents
	in.PaidCents += o.PaidCents
}

// RateNames are the billing page's rates, in row order (data-kpi names).
var RateNames = []string{"denial_rate", "clean_claim_rate", "net_collection_rate"}

// ClaimRates are the billing rates; nil means unknown.
type ClaimRates struct {
	DenialRate        *float64
	CleanClaimRate    *float64
	NetCollectionRate *float64
}

// ComputeClaimRates derives the rates: denied / adjudicated, clean / adjudicated, and
// paid / (charged - contractual).
func ComputeClaimRates(in ClaimInputs) ClaimRates {
	return ClaimRates{
		DenialRate:        Ratio(in.Denied, in.Adjudicated),
		CleanClaimRate:    Ratio(in.Clean, in.Adjudicated),
		NetCollectionRate: NetCollectionRate(in.PaidCents, in.ChargedCents, in.ContractualCents),
	}
}

// NetCollectionRate is paid / (charged - contractual), nil when that is not positive.
func NetCollectionRate(paid, charged, contractual int64) *float64 {
	den := charged - contractual
	if den <= 0 {
		return nil
	}
	r := float64(paid) / float64(den)
	return &r
}

// Map is the rates as display strings keyed by RateNames.
func (r ClaimRates) Map() map[string]string {
	return map[string]string{
		"denial_rate":         Percent(r.DenialRate),
		"clean_claim_rate":    Percent(r.CleanClaimRate),
		"net_collection_rate": Percent(r.NetCollectionRate),
	}
}

// Values is the rates as numbers keyed by RateNames (nil: unknown).
func (r ClaimRates) Values() map[string]*float64 {
	return map[string]*float64{
		"denial_rate": r.DenialRate, "clean_claim_rate": r.CleanClaimRate, "net_collection_rate": r.NetCollectionRate,
	}
}
