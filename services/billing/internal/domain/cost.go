package domain

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Cost report groupings and the keys of rows that are not a program, clinic or payer.
const (
	GroupByProgram = "program"
	GroupByClinic  = "clinic"
	GroupByPayer   = "payer"

	// KeyUnbilled: attended days without a charge (payer grouping).
	KeyUnbilled = "unbilled"
	// KeyUnallocated: costs of a clinic (or clinic and program) without attended days in the
	// range, which have nothing to be shared by.
	KeyUnallocated = "unallocated"
	// KeyTotal is the key of a report's total row.
	KeyTotal = "total"

	// MaxReportDays bounds a report's range.
	MaxReportDays = 366
)

// CostRate is the hourly cost of a clinician at a clinic ("" clinician: the clinic default).
type CostRate struct {
	ClinicID        string
	ClinicianID     string
	HourlyCostCents int64
}

// FixedCost is one fixed monthly cost of a clinic. Month is the first day, "YYYY-MM-01".
type FixedCost struct {
	ClinicID    string
	Month       string
	Label       string
	AmountCents int64
}

// ValidateCostRate checks r and returns it normalized.
func ValidateCostRate(r CostRate) (CostRate, error) {
	var vs violations
	id, err := ParseID(r.ClinicID)
	if err != nil {
		vs.add("clinic_id", "clinic_id.uuid", "must be a UUID")
	}
	r.ClinicID = id
	r.ClinicianID = strings.TrimSpace(r.ClinicianID)
	if len(r.ClinicianID) > 100 {
		vs.add("clinician_id", "clinician_id.length", "at most 100 characters, or empty for the clinic default")
	}
	if r.HourlyCostCents < 0 || r.HourlyCostCents > 10_000_000 {
		vs.add("hourly_cost_cents", "hourly_cost_cents.range", "0 to 10,000,000 cents an hour")
	}
	return r, vs.err()
}

// ValidateFixedCost checks c (Month given as "YYYY-MM") and returns it with Month as the
// month's first day.
func ValidateFixedCost(c FixedCost) (FixedCost, error) {
	var vs violations
	id, err := ParseID(c.ClinicID)
	if err != nil {
		vs.add("clinic_id", "clinic_id.uuid", "must be a UUID")
	}
	c.ClinicID = id
	m, err := time.Parse("2006-01", c.Month)
	if err != nil {
		vs.add("month", "month.format", "a month, YYYY-MM")
	} else {
		c.Month = m.Format(time.DateOnly)
	}
	c.Label = strings.TrimSpace(c.Label)
	if c.Label == "" || len(c.Label) > 100 {
		vs.add("label", "label.length", "1 to 100 characters")
	}
	if c.AmountCents < 0 || c.AmountCents > 100_000_000_000 {
		vs.add("amount_cents", "amount_cents.range", "0 (removes the cost) to 100,000,000,000 cents")
	}
	return c, vs.err()
}

// ValidateReportRange checks a report's inclusive date range and group.
func ValidateReportRange(from, to, groupBy string) error {
	var vs violations
	f, errF := time.Parse(time.DateOnly, from)
	if errF != nil {
		vs.add("from", "from.date", "a real date, YYYY-MM-DD")
	}
	t, errT := time.Parse(time.DateOnly, to)
	switch {
	case errT != nil:
		vs.add("to", "to.date", "a real date, YYYY-MM-DD")
	case errF == nil && t.Before(f):
		vs.add("to", "to.after_from", "on or after from")
	case errF == nil && DaysBetween(f, t) >= MaxReportDays:
		vs.add("to", "to.max_range", fmt.Sprintf("the range spans at most %d days", MaxReportDays))
	}
	if groupBy != GroupByProgram && groupBy != GroupByClinic && groupBy != GroupByPayer {
		vs.add("group_by", "group_by.known", "program, clinic or payer")
	}
	return vs.err()
}

// DaysBetween is the number of days from a to b (dates at midnight UTC).
func DaysBetween(a, b time.Time) int64 { return int64(b.Sub(a).Hours()) / 24 }

// DivRoundHalfUp divides n by d (d > 0), rounding half away from zero.
func DivRoundHalfUp(n, d int64) int64 {
	q, r := n/d, n%d
	switch {
	case 2*r >= d:
		q++
	case -2*r >= d:
		q--
	}
	return q
}

// ClinicianCostCents is the cost of minutes at an hourly cost: minutes x hourly / 60, half
// a cent up. Reports sum minutes x hourly exactly ("minute-cents") and round once per clinic
// and program, so the totals of every grouping agree to the cent.
func ClinicianCostCents(minuteCents int64) int64 { return DivRoundHalfUp(minuteCents, 60) }

// ProrateMonth is the share of a monthly amount for the days of month (its first day) inside
// [from, to]: amount x days inside / days of the month, half a cent up.
func ProrateMonth(amount int64, month, from, to time.Time) int64 {
	end := month.AddDate(0, 1, -1)
	lo, hi := month, end
	if from.After(lo) {
		lo = from
	}
	if to.Before(hi) {
		hi = to
	}
	if hi.Before(lo) {
		return 0
	}
	inside := DaysBetween(lo, hi) + 1
	return DivRoundHalfUp(amount*inside, DaysBetween(month, end)+1)
}

// AllocateByWeight splits total into parts proportional to weights by the largest-remainder method:
// the parts sum to total exactly; ties go to the earlier weight. All-zero weights give nil.
func AllocateByWeight(total int64, weights []int64) []int64 {
	var sum int64
	for _, w := range weights {
		sum += w
	}
	if sum == 0 {
		return nil
	}
	parts := make([]int64, len(weights))
	rems := make([]int64, len(weights))
	var given int64
	for i, w := range weights {
		parts[i] = total * w / sum
		rems[i] = total * w % sum
		given += parts[i]
	}
	order := make([]int, len(weights))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(rems[b], rems[a]) })
	for i := 0; given < total; i++ {
		parts[order[i%len(order)]]++
		given++
	}
	return parts
}

// Report inputs, each already summed by clinic, program and payer (payer "" = unbilled).

// SessionMinutes is clinician time delivered at a clinic for a program in the range.
type SessionMinutes struct {
	ClinicID, ProgramCode string
	Minutes               int64
	MinuteCents           int64 // sum of minutes x hourly cost
}

// DayCount counts attended patient-days (or completed episodes) in the range.
type DayCount struct {
	ClinicID, ProgramCode, PayerID string
	Count                          int64
}

// Revenue is what was charged and paid for service dates in the range.
type Revenue struct {
	ClinicID, ProgramCode, PayerID string
	ChargedCents, PaidCents        int64
}

// ReportInput is everything a cost report is computed from.
type ReportInput struct {
	From, To   time.Time
	GroupBy    string
	Sessions   []SessionMinutes
	FixedCosts []FixedCost
	Days       []DayCount
	Episodes   []DayCount
	Revenue    []Revenue
}

// CostRow is one row of a cost report. Money in cents.
type CostRow struct {
	Key                          string
	AttendedPatientDays          int64
	CompletedEpisodes            int64
	ClinicianMinutes             int64
	ClinicianCostCents           int64
	FixedCostCents               int64
	TotalCostCents               int64
	CostPerPatientDayCents       int64
	CostPerCompletedEpisodeCents int64
	ChargedCents                 int64
	PaidCents                    int64
	MarginCents                  int64
	PaidMarginCents              int64
}

// BuildCostReport computes the rows (by key) and their total.
//
// Clinician cost is rounded once per clinic and program; fixed costs once per cost and month.
// Grouped by clinic, both go to their clinic. Grouped by program, clinician cost goes to its
// program and a clinic's fixed costs are shared among its programs by attended patient-days.
// Grouped by payer, clinician cost of a clinic and program is shared among payers by the
// attended patient-days of that clinic and program, and fixed costs by the clinic's days. A
// share is computed with AllocateByWeight (parts sum to the cost exactly); a cost with no days to be
// shared by goes to KeyUnallocated.
func BuildCostReport(in ReportInput) (rows []CostRow, total CostRow) {
	byKey := map[string]*CostRow{}
	row := func(k string) *CostRow {
		if r, ok := byKey[k]; ok {
			return r
		}
		r := &CostRow{Key: k}
		byKey[k] = r
		return r
	}
	key := func(clinic, program, payer string) string {
		switch in.GroupBy {
		case GroupByClinic:
			return clinic
		case GroupByProgram:
			return program
		}
		if payer == "" {
			return KeyUnbilled
		}
		return payer
	}
	// share spreads amount over the keys of the days matching keep, by their counts.
	share := func(amount int64, keep func(DayCount) bool, add func(*CostRow, int64)) {
		weights := map[string]int64{}
		for _, d := range in.Days {
			if keep(d) {
				weights[key(d.ClinicID, d.ProgramCode, d.PayerID)] += d.Count
			}
		}
		keys := make([]string, 0, len(weights))
		for k := range weights {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		ws := make([]int64, len(keys))
		for i, k := range keys {
			ws[i] = weights[k]
		}
		parts := AllocateByWeight(amount, ws)
		if parts == nil {
			add(row(KeyUnallocated), amount)
			return
		}
		for i, k := range keys {
			add(row(k), parts[i])
		}
	}
	addClinician := func(r *CostRow, c int64) { r.ClinicianCostCents += c }
	addFixed := func(r *CostRow, c int64) { r.FixedCostCents += c }

	for _, s := range in.Sessions {
		cost := ClinicianCostCents(s.MinuteCents)
		if in.GroupBy != GroupByPayer {
			r := row(key(s.ClinicID, s.ProgramCode, ""))
			r.ClinicianCostCents += cost
			r.ClinicianMinutes += s.Minutes
			continue
		}
		sameProgram := func(d DayCount) bool { return d.ClinicID == s.ClinicID && d.ProgramCode == s.ProgramCode }
		share(cost, sameProgram, addClinician)
		// Clinician minutes follow the same shares (whole minutes).
		share(s.Minutes, sameProgram, func(r *CostRow, m int64) { r.ClinicianMinutes += m })
	}
	fixed := map[string]int64{}
	for _, f := range in.FixedCosts {
		m, err := time.Parse(time.DateOnly, f.Month)
		if err != nil {
			continue
		}
		fixed[f.ClinicID] += ProrateMonth(f.AmountCents, m, in.From, in.To)
	}
	clinics := make([]string, 0, len(fixed))
	for c := range fixed {
		clinics = append(clinics, c)
	}
	slices.Sort(clinics)
	for _, c := range clinics {
		if fixed[c] == 0 {
			continue
		}
		if in.GroupBy == GroupByClinic {
			addFixed(row(c), fixed[c])
		} else {
			share(fixed[c], func(d DayCount) bool { return d.ClinicID == c }, addFixed)
		}
	}
	for _, d := range in.Days {
		row(key(d.ClinicID, d.ProgramCode, d.PayerID)).AttendedPatientDays += d.Count
	}
	for _, e := range in.Episodes {
		row(key(e.ClinicID, e.ProgramCode, e.PayerID)).CompletedEpisodes += e.Count
	}
	for _, r := range in.Revenue {
		x := row(key(r.ClinicID, r.ProgramCode, r.PayerID))
		x.ChargedCents += r.ChargedCents
		x.PaidCents += r.PaidCents
	}
	total = CostRow{Key: KeyTotal}
	for _, r := range byKey {
		finishCostRow(r)
		rows = append(rows, *r)
		total.AttendedPatientDays += r.AttendedPatientDays
		total.CompletedEpisodes += r.CompletedEpisodes
		total.ClinicianMinutes += r.ClinicianMinutes
		total.ClinicianCostCents += r.ClinicianCostCents
		total.FixedCostCents += r.FixedCostCents
		total.ChargedCents += r.ChargedCents
		total.PaidCents += r.PaidCents
	}
	finishCostRow(&total)
	slices.SortFunc(rows, func(a, b CostRow) int { return cmp.Compare(a.Key, b.Key) })
	return rows, total
}

// finishCostRow computes a row's derived figures from its sums.
func finishCostRow(r *CostRow) {
	r.TotalCostCents = r.ClinicianCostCents + r.FixedCostCents
	r.CostPerPatientDayCents, r.CostPerCompletedEpisodeCents = 0, 0
	if r.AttendedPatientDays > 0 {
		r.CostPerPatientDayCents = DivRoundHalfUp(r.TotalCostCents, r.AttendedPatientDays)
	}
	if r.CompletedEpisodes > 0 {
		r.CostPerCompletedEpisodeCents = DivRoundHalfUp(r.TotalCostCents, r.CompletedEpisodes)
	}
	r.MarginCents = r.ChargedCents - r.TotalCostCents
	r.PaidMarginCents = r.PaidCents - r.TotalCostCents
}

// AttendanceFact is what the costs consumer keeps of one appointment's attendance (its
// latest version).
type AttendanceFact struct {
	AppointmentID    string
	PatientID        string
	ClinicID         string
	ProgramCode      string
	ClinicianID      string
	SessionKey       string // the session id, or the appointment id without one
	LocalDate        string
	AttendedMinutes  int32
	ScheduledMinutes int32
	Version          int32
	SourceEventID    string
}

// Attendance statuses (as billing stores them).
const (
	AttendancePresent   = "present"
	AttendanceLate      = "late"
	AttendanceLeftEarly = "left_early"
	AttendanceAbsent    = "absent"
	AttendanceExcused   = "excused"
)

// NewAttendanceFact validates one attendance version. An absent or excused patient attended 0
// minutes, whatever the event says. Errors wrap ErrInvalid and name fields, never values.
func NewAttendanceFact(f AttendanceFact, status string) (AttendanceFact, error) {
	var errs []string
	id := func(field, v string) string {
		out, err := ParseID(v)
		if err != nil {
			errs = append(errs, field+" must be a UUID")
		}
		return out
	}
	f.AppointmentID = id("appointment_id", f.AppointmentID)
	f.PatientID = id("patient_id", f.PatientID)
	f.ClinicID = id("clinic_id", f.ClinicID)
	f.SourceEventID = id("event_id", f.SourceEventID)
	if f.SessionKey == "" {
		f.SessionKey = f.AppointmentID
	}
	if len(f.SessionKey) > 200 || len(f.ClinicianID) > 200 || len(f.ProgramCode) > 200 {
		errs = append(errs, "session_id, clinician_id and program_code must be at most 200 characters")
	}
	if _, err := time.Parse(time.DateOnly, f.LocalDate); err != nil {
		errs = append(errs, "local_date must be a date, YYYY-MM-DD")
	}
	switch status {
	case AttendancePresent, AttendanceLate, AttendanceLeftEarly:
	case AttendanceAbsent, AttendanceExcused:
		f.AttendedMinutes = 0
	default:
		errs = append(errs, "status must be known")
	}
	if f.AttendedMinutes < 0 || f.AttendedMinutes > 1440 || f.ScheduledMinutes < 0 || f.ScheduledMinutes > 1440 {
		errs = append(errs, "minutes must be 0 to 1440")
	}
	if f.Version < 1 {
		errs = append(errs, "version must be at least 1")
	}
	if len(errs) > 0 {
		return AttendanceFact{}, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "; "))
	}
	return f, nil
}

// Episode is a completed episode of care.
type Episode struct {
	EnrollmentID  string
	PatientID     string
	ClinicID      string
	ProgramCode   string
	CompletedOn   string
	SourceEventID string
}

// ValidateEpisode checks a completed episode; errors wrap ErrInvalid.
func ValidateEpisode(e Episode) (Episode, error) {
	var errs []string
	id := func(field, v string) string {
		out, err := ParseID(v)
		if err != nil {
			errs = append(errs, field+" must be a UUID")
		}
		return out
	}
	e.EnrollmentID = id("enrollment_id", e.EnrollmentID)
	e.PatientID = id("patient_id", e.PatientID)
	e.ClinicID = id("clinic_id", e.ClinicID)
	e.SourceEventID = id("event_id", e.SourceEventID)
	if len(e.ProgramCode) > 200 {
		errs = append(errs, "program_code must be at most 200 characters")
	}
	if _, err := time.Parse(time.DateOnly, e.CompletedOn); err != nil {
		errs = append(errs, "completed_on must be a date, YYYY-MM-DD")
	}
	if len(errs) > 0 {
		return Episode{}, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "; "))
	}
	return e, nil
}
