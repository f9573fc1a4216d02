package web

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/trellis-health/trellis/services/dashboard/internal/kpi"
	"github.com/trellis-health/trellis/services/dashboard/internal/store"
)

// TotalID is the data-clinic-id of the overview's network row.
const TotalID = "total"

// KPIRow is one row of the overview: a clinic's figures, or the total of the user's clinics.
type KPIRow struct {
	ClinicID string              `json:"clinic_id"`
	Name     string              `json:"name"`
	KPIs     map[string]string   `json:"kpis"`   // as shown, keyed by data-kpi name
	Values   map[string]*float64 `json:"values"` // the same as numbers (rates 0..1; null: unknown)
}

// Overview is the overview's data (GET /api/overview.json).
type Overview struct {
	From    string   `json:"from"`
	To      string   `json:"to"`
	KPIs    []string `json:"kpi_names"`
	Clinics []KPIRow `json:"clinics"`
	Total   KPIRow   `json:"total"`
	Trends  Trends   `json:"trends"`
	// How the rows are sorted and filtered (the request's sort, dir, q and tz, defaults filled in).
	Sort string `json:"sort"`
	Dir  string `json:"dir"`
	Q    string `json:"q"`
	TZ   string `json:"tz"`
	// The time zones of the user's clinics (the tz filter's choices).
	TimeZones []string `json:"time_zones"`
}

// SortKeys are the overview's sort keys: the clinic's name, then every figure.
var SortKeys = append([]string{"clinic"}, kpi.Names...)

// overviewQuery reads and checks the overview's sort and filter parameters.
func overviewQuery(q url.Values) (sortKey, dir, text, tz string, err error) {
	sortKey, dir, text, tz = q.Get("sort"), q.Get("dir"), strings.TrimSpace(q.Get("q")), q.Get("tz")
	if sortKey == "" {
		sortKey = "clinic"
	}
	if !slices.Contains(SortKeys, sortKey) {
		return "", "", "", "", badRequest{"sort: want one of " + strings.Join(SortKeys, ", ")}
	}
	switch dir {
	case "":
		dir = "asc"
	case "asc", "desc":
	default:
		return "", "", "", "", badRequest{"dir: want asc or desc"}
	}
	if len(text) > 200 {
		return "", "", "", "", badRequest{"q: at most 200 characters"}
	}
	if tz != "" {
		if _, lerr := time.LoadLocation(tz); lerr != nil || tz == "Local" {
			return "", "", "", "", badRequest{"tz: want an IANA time zone such as America/Chicago"}
		}
	}
	return sortKey, dir, text, tz, nil
}

// sortRows orders rows by key (unknown figures last in either direction, then by name).
func sortRows(rows []KPIRow, key, dir string) {
	slices.SortStableFunc(rows, func(a, b KPIRow) int {
		c := 0
		if key == "clinic" {
			c = strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
		} else {
			va, vb := a.Values[key], b.Values[key]
			switch {
			case va == nil && vb == nil:
			case va == nil:
				return 1
			case vb == nil:
				return -1
			default:
				c = cmp.Compare(*va, *vb)
			}
		}
		if dir == "desc" {
			c = -c
		}
		if c == 0 {
			c = strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
		}
		return c
	})
}

// Trends are the overview's figures per Monday-start week of the range, for the clinics shown
// or for one clinic (?clinic=).
type Trends struct {
	ClinicID string     `json:"clinic_id"` // "" for the clinics shown together
	Name     string     `json:"name"`
	KPIs     []string   `json:"kpi_names"`
	Weeks    []TrendRow `json:"weeks"`
}

// TrendRow is one week's figures: the week's Monday (clinic-local) and its days in the range.
type TrendRow struct {
	Week   string              `json:"week"`
	From   string              `json:"from"`
	To     string              `json:"to"`
	KPIs   map[string]string   `json:"kpis"`
	Values map[string]*float64 `json:"values"`
}

// TrendLabels are the trend table's column headings.
var TrendLabels = map[string]string{"attendance_rate": "Attendance rate", "no_show_rate": "No-show rate",
	"admissions": "Admissions", "census": "Census at week end", "meeting_minimum": "Meeting weekly minimum"}

// trends pools the weekly inputs of the clinics ids (every week of the range, empty ones too).
func trends(r kpi.Range, weeks map[string]store.ClinicWeeks, ids []string) []TrendRow {
	out := []TrendRow{}
	for _, w := range kpi.Weeks(r) {
		var in kpi.WeekInputs
		for _, id := range ids {
			if x := weeks[id][w.Monday]; x != nil {
				in.Add(*x)
			}
		}
		f := kpi.ComputeWeek(in)
		out = append(out, TrendRow{Week: w.Monday.Format(time.DateOnly), From: w.From.Format(time.DateOnly), To: w.To.Format(time.DateOnly),
			KPIs: f.Map(), Values: f.Values()})
	}
	return out
}

func row(id, name string, f kpi.Figures) KPIRow {
	n := func(i int) *float64 { x := float64(i); return &x }
	return KPIRow{ClinicID: id, Name: name, KPIs: f.Map(), Values: map[string]*float64{
		"census": n(f.Census), "capacity": n(f.Capacity), "attendance_rate": f.AttendanceRate,
		"no_show_rate": f.NoShowRate, "meeting_minimum": f.MeetingMinimum, "days_to_admission": f.DaysToAdmission,
		"completion_rate": f.CompletionRate, "median_length_of_stay": f.MedianLengthOfStay,
	}}
}

func clinicName(c store.Clinic) string {
	if c.Name != "" {
		return c.Name
	}
	return "Clinic " + c.ID[:min(8, len(c.ID))]
}

func (h *Handler) overviewData(ctx context.Context, rq *request) (any, error) {
	return h.overviewOf(ctx, rq)
}

func (h *Handler) overviewOf(ctx context.Context, rq *request) (Overview, error) {
	// The clinics, the figures' inputs, the trends' and the program weeks (which feed both) are
	// read concurrently, each in a transaction of its own; the weeks are added afterwards.
	var clinics []store.Clinic
	var inputs map[string]*kpi.Inputs
	var weeks map[string]store.ClinicWeeks
	var minimum store.MinimumCounts
	var wg sync.WaitGroup
	var clinicsErr, minimumErr, trendErr error
	wg.Go(func() { clinics, clinicsErr = h.store.Clinics(ctx, rq.scope) })
	wg.Go(func() { minimum, minimumErr = h.store.MinimumWeeks(ctx, rq.scope, rq.rng, h.cfg.Now()) })
	wg.Go(func() { weeks, trendErr = h.store.Trends(ctx, rq.scope, rq.rng) })
	inputs, err := h.store.Inputs(ctx, rq.scope, rq.rng)
	wg.Wait()
	if err = cmp.Or(clinicsErr, minimumErr, err, trendErr); err != nil {
		return Overview{}, err
	}
	minimum.AddToInputs(inputs)
	minimum.AddToTrends(weeks)
	o := Overview{From: rq.rng.From.Format(time.DateOnly), To: rq.rng.To.Format(time.DateOnly), KPIs: kpi.Names, Clinics: []KPIRow{},
		TimeZones: []string{}}
	if o.Sort, o.Dir, o.Q, o.TZ, err = overviewQuery(rq.r.URL.Query()); err != nil {
		return o, err
	}
	var total kpi.Inputs
	for _, c := range clinics {
		if c.TimeZone != "" && !slices.Contains(o.TimeZones, c.TimeZone) {
			o.TimeZones = append(o.TimeZones, c.TimeZone)
		}
		if o.TZ != "" && c.TimeZone != o.TZ {
			continue
		}
		if o.Q != "" && !strings.Contains(strings.ToLower(clinicName(c)), strings.ToLower(o.Q)) {
			continue
		}
		in := kpi.Inputs{}
		if p := inputs[c.ID]; p != nil {
			in = *p
		}
		total.Add(in)
		o.Clinics = append(o.Clinics, row(c.ID, clinicName(c), kpi.Compute(in)))
	}
	slices.Sort(o.TimeZones)
	sortRows(o.Clinics, o.Sort, o.Dir)
	o.Total = row(TotalID, "All your clinics", kpi.Compute(total))
	if o.Q != "" || o.TZ != "" {
		o.Total.Name = "All clinics shown"
	}

	o.Trends = Trends{Name: "All clinics shown", KPIs: kpi.TrendNames}
	ids := make([]string, 0, len(o.Clinics))
	for _, c := range o.Clinics {
		ids = append(ids, c.ClinicID)
	}
	if want := rq.r.URL.Query().Get("clinic"); want != "" {
		i := slices.IndexFunc(clinics, func(c store.Clinic) bool { return c.ID == want })
		if i < 0 {
			return o, badRequest{"clinic: not one of your clinics"}
		}
		o.Trends.ClinicID, o.Trends.Name, ids = want, clinicName(clinics[i]), []string{want}
	}
	o.Trends.Weeks = trends(rq.rng, weeks, ids)
	return o, nil
}

func (h *Handler) overview(ctx context.Context, rq *request) (view, error) {
	o, err := h.overviewOf(ctx, rq)
	if err != nil {
		return view{}, err
	}
	bars := make([]Bar, 0, len(o.Clinics))
	for _, c := range o.Clinics {
		v := 0.0
		if r := c.Values["attendance_rate"]; r != nil {
			v = *r
		}
		bars = append(bars, Bar{Label: c.Name, Value: v, Text: c.KPIs["attendance_rate"]})
	}
	chart := NewChart("attendance-chart", "Attendance rate per clinic",
		"Share of recorded sessions attended (present, late or left early; excused absences left out), "+o.From+" to "+o.To+".", bars, 1)
	labels := make([]string, len(o.Trends.Weeks))
	series := []Series{{Key: "attendance_rate", Label: "Attendance rate"}, {Key: "no_show_rate", Label: "No-show rate"},
		{Key: "meeting_minimum", Label: "Meeting weekly minimum"}}
	for i, w := range o.Trends.Weeks {
		labels[i] = w.Week[5:]
		for j := range series {
			series[j].Values = append(series[j].Values, w.Values[series[j].Key])
		}
	}
	trend := NewLineChart("trend-chart", "Weekly trends: "+o.Trends.Name,
		"Attendance rate, no-show rate and share of program weeks meeting the weekly minimum, per week starting Monday, "+
			o.From+" to "+o.To+"; a gap is a week with nothing to compute the figure from.", labels, series)
	// The parameters a link or form keeps besides the one it changes.
	params := func(except ...string) url.Values {
		v := url.Values{}
		for k, x := range map[string]string{"from": o.From, "to": o.To, "sort": o.Sort, "dir": o.Dir, "q": o.Q, "tz": o.TZ, "clinic": o.Trends.ClinicID} {
			if x != "" && !slices.Contains(except, k) {
				v.Set(k, x)
			}
		}
		return v
	}
	headers := make([]SortHeader, 0, len(SortKeys))
	for _, k := range SortKeys {
		hd := SortHeader{Key: k, Label: ColumnLabels[k]}
		dir := "asc"
		if k == o.Sort {
			hd.AriaSort = map[string]string{"asc": "ascending", "desc": "descending"}[o.Dir]
			if o.Dir == "asc" {
				dir = "desc"
			}
		}
		q := params("sort", "dir")
		q.Set("sort", k)
		q.Set("dir", dir)
		hd.Href = "/overview?" + q.Encode()
		headers = append(headers, hd)
	}
	clinics, err := h.store.Clinics(ctx, rq.scope)
	if err != nil {
		return view{}, err
	}
	choices := make([]KV, 0, len(clinics))
	for _, c := range clinics {
		choices = append(choices, KV{Name: clinicName(c), Value: c.ID})
	}
	v := view{Title: "Network overview", Page: "overview", API: "/api/overview.json", Clinics: clinics,
		Data: overviewView{Overview: o, Chart: chart, TrendChart: trend, TrendLabels: TrendLabels, Headers: headers,
			Filtered: o.Q != "" || o.TZ != "", ClearHref: "/overview?" + params("q", "tz").Encode(), SortText: sortText(o.Sort, o.Dir), TrendChoices: choices}}
	for _, k := range []string{"sort", "dir", "q", "tz", "clinic"} {
		if x := params("from", "to").Get(k); x != "" {
			v.Keep = append(v.Keep, KV{k, x})
		}
	}
	return v, nil
}

// sortText says how the rows are sorted, for the table's caption.
func sortText(key, dir string) string {
	order := map[string]string{"asc": "lowest first", "desc": "highest first"}[dir]
	if key == "clinic" {
		order = map[string]string{"asc": "A to Z", "desc": "Z to A"}[dir]
	}
	return strings.ToLower(ColumnLabels[key][:1]) + ColumnLabels[key][1:] + ", " + order
}

// ColumnLabels are the overview's column headings, keyed by sort key.
var ColumnLabels = map[string]string{"clinic": "Clinic", "census": "Active census", "capacity": "Seat capacity",
	"attendance_rate": "Attendance rate", "no_show_rate": "No-show rate", "meeting_minimum": "Meeting weekly minimum",
	"days_to_admission": "Days first contact to admission (median)", "completion_rate": "Completion rate",
	"median_length_of_stay": "Length of stay, days (median)"}

// SortHeader is a column heading of the overview: a link sorting by it (the other direction
// when it is the current sort), with aria-sort on the current one.
type SortHeader struct {
	Key, Label, Href string
	AriaSort         string // "ascending", "descending" or "" (not sorted by it)
}

// KV is a query parameter a form keeps as a hidden field.
type KV struct{ Name, Value string }

// overviewView is the overview page's view data.
type overviewView struct {
	Overview
	Chart       Chart
	TrendChart  LineChart
	TrendLabels map[string]string
	Headers     []SortHeader
	Filtered    bool
	ClearHref   string
	SortText    string // "attendance rate, highest first"
	// The trends' clinic choices: every clinic of the user's, filtered out or not.
	TrendChoices []KV
}

// ClinicPage is a clinic's data (GET /api/clinics/{id}.json).
type ClinicPage struct {
	ClinicID string              `json:"clinic_id"`
	Name     string              `json:"name"`
	From     string              `json:"from"`
	To       string              `json:"to"`
	Tracks   []store.Track       `json:"tracks"`
	AtRisk   []RiskRow           `json:"at_risk"`
	Funnel   []store.StatusCount `json:"funnel"`
	// Today's sessions: Today is the clinic-local date in TimeZone (UTC when the clinic's is unknown).
	Today    string       `json:"today"`
	TimeZone string       `json:"time_zone"`
	Sessions []SessionRow `json:"sessions"`
}

// SessionRow is one of today's sessions as shown.
type SessionRow struct {
	store.Session
	Time            string `json:"time"`              // "18:00-21:00", clinic-local
	ServiceTypeText string `json:"service_type_text"` // "medication management"
}

// clinicZone is the clinic's time zone, UTC when unknown or not a zone.
func clinicZone(c store.Clinic) *time.Location {
	if c.TimeZone != "" {
		if loc, err := time.LoadLocation(c.TimeZone); err == nil {
			return loc
		}
	}
	return time.UTC
}

// RiskRow is an open episode of risk as shown.
type RiskRow struct {
	store.Risk
	ReasonsText string `json:"reasons_text"`
	SinceText   string `json:"since_text"`
}

func (h *Handler) clinicOf(ctx context.Context, rq *request, id string) (ClinicPage, error) {
	c, ok, err := h.store.Clinic(ctx, rq.scope, id)
	if err != nil {
		return ClinicPage{}, err
	}
	if !ok {
		return ClinicPage{}, errNotFound
	}
	p := ClinicPage{ClinicID: c.ID, Name: clinicName(c), From: rq.rng.From.Format(time.DateOnly), To: rq.rng.To.Format(time.DateOnly)}
	if p.Tracks, err = h.store.Tracks(ctx, c.ID); err != nil {
		return p, err
	}
	risks, err := h.store.AtRisk(ctx, c.ID)
	if err != nil {
		return p, err
	}
	p.AtRisk = make([]RiskRow, 0, len(risks))
	var patients, records []string
	for _, k := range risks {
		p.AtRisk = append(p.AtRisk, RiskRow{Risk: k, ReasonsText: k.ReasonText(), SinceText: when(k.Since)})
		patients, records = append(patients, k.PatientID), append(records, "enrollment_id="+k.EnrollmentID)
	}
	// The at-risk list names patients: on record before it is shown (page and JSON alike).
	if err := h.recordRead(ctx, rq, patients, records); err != nil {
		return p, err
	}
	if p.Tracks == nil {
		p.Tracks = []store.Track{}
	}
	if p.Funnel, err = h.store.Funnel(ctx, c.ID, rq.rng); err != nil {
		return p, err
	}
	loc := clinicZone(c)
	today := h.cfg.Now().In(loc)
	p.Today, p.TimeZone = today.Format(time.DateOnly), loc.String()
	sessions, err := h.store.Sessions(ctx, c.ID, today)
	if err != nil {
		return p, err
	}
	p.Sessions = make([]SessionRow, 0, len(sessions))
	for _, x := range sessions {
		p.Sessions = append(p.Sessions, SessionRow{Session: x, Time: x.StartTime + "-" + x.EndTime,
			ServiceTypeText: strings.ReplaceAll(x.ServiceType, "_", " ")})
	}
	return p, nil
}

func (h *Handler) clinicData(ctx context.Context, rq *request) (any, error) {
	id, ok := strings.CutSuffix(rq.r.PathValue("file"), ".json")
	if !ok {
		return nil, errNotFound
	}
	return h.clinicOf(ctx, rq, id)
}

func (h *Handler) clinic(ctx context.Context, rq *request) (view, error) {
	id := rq.r.PathValue("id")
	p, err := h.clinicOf(ctx, rq, id)
	if err != nil {
		return view{}, err
	}
	return view{Title: p.Name, Page: "clinic", ClinicID: id, API: "/api/clinics/" + id + ".json", Data: p}, nil
}

// Billing is the billing page's data (GET /api/billing.json).
type Billing struct {
	From      string            `json:"from"`
	To        string            `json:"to"`
	Flow      map[string]string `json:"flow"` // as shown, keyed by stage
	FlowCents store.Flow        `json:"flow_cents"`
	Buckets   []string          `json:"aging_buckets"`
	Aging     []AgingRow        `json:"aging"`
	Holds     []store.Hold      `json:"holds"`
	// Claim rates of the claims adjudicated in the range (kpi.RateNames), as shown and as numbers.
	Rates      map[string]string   `json:"rates"`
	RateValues map[string]*float64 `json:"rate_values"`
	RateInputs kpi.ClaimInputs     `json:"rate_inputs"`
	// From billing's work queues: CARC codes of the denials opened in the range, most first.
	DenialReasons []DenialReason `json:"denial_reasons"`
	// Billing's failure to answer, in plain words (omitted when it answered).
	BillingError string `json:"billing_error,omitempty"`
	// The flow per Monday-start week of the range (clinic-local dates).
	Trends []BillingWeek `json:"trends"`
	// Write-offs made in the range (BalanceWrittenOff), by reason.
	WriteOffs []WriteOffRow `json:"write_offs"`
}

// BillingWeek is one week's billing flow, as shown (keyed by stage) and in cents.
type BillingWeek struct {
	Week    string            `json:"week"`
	From    string            `json:"from"`
	To      string            `json:"to"`
	Amounts map[string]string `json:"amounts"`
	Cents   store.Flow        `json:"cents"`
}

// flowMap is a flow as shown, keyed by stage.
func flowMap(f store.Flow) map[string]string {
	return map[string]string{"charges": kpi.Cents(f.Charges), "claims_submitted": kpi.Cents(f.ClaimsSubmitted),
		"paid": kpi.Cents(f.Paid), "denied": kpi.Cents(f.Denied), "written_off": kpi.Cents(f.WrittenOff)}
}

// WriteOffRow is a write-off reason's write-offs in the range, as shown.
type WriteOffRow struct {
	store.WriteOffReason
	Label  string `json:"label"`
	Amount string `json:"amount"`
}

// RateLabels are the rates' row labels.
var RateLabels = map[string]string{"denial_rate": "Denial rate", "clean_claim_rate": "Clean-claim rate", "net_collection_rate": "Net collection rate"}

// AgingRow is a payer's outstanding claims by bucket, as shown.
type AgingRow struct {
	store.Aging
	Shown map[string]string `json:"buckets"` // as shown, keyed by bucket, plus "total"
}

// FlowStages in order, with their labels.
var FlowStages = []struct{ Key, Label string }{
	{"charges", "Charges"}, {"claims_submitted", "Claims submitted"}, {"paid", "Paid"}, {"denied", "Denied"},
	{"written_off", "Written off"},
}

func (h *Handler) billingOf(ctx context.Context, rq *request) (Billing, error) {
	b, _, err := h.billingWork(ctx, rq)
	return b, err
}

// billingWork reads the projections' figures and billing's work queues.
func (h *Handler) billingWork(ctx context.Context, rq *request) (Billing, Work, error) {
	b, err := h.billingFigures(ctx, rq)
	if err != nil {
		return b, Work{}, err
	}
	w := h.work(ctx, rq)
	b.DenialReasons, b.BillingError = w.DenialReasons, w.Error
	return b, w, nil
}

func (h *Handler) billingFigures(ctx context.Context, rq *request) (Billing, error) {
	f, err := h.store.Flow(ctx, rq.scope, rq.rng)
	if err != nil {
		return Billing{}, err
	}
	b := Billing{From: rq.rng.From.Format(time.DateOnly), To: rq.rng.To.Format(time.DateOnly), FlowCents: f,
		Buckets: kpi.AgingBuckets, Flow: flowMap(f)}
	weeks, err := h.store.FlowWeeks(ctx, rq.scope, rq.rng)
	if err != nil {
		return b, err
	}
	b.Trends = []BillingWeek{}
	for _, w := range kpi.Weeks(rq.rng) {
		var fw store.Flow
		if x := weeks[w.Monday]; x != nil {
			fw = *x
		}
		b.Trends = append(b.Trends, BillingWeek{Week: w.Monday.Format(time.DateOnly), From: w.From.Format(time.DateOnly),
			To: w.To.Format(time.DateOnly), Amounts: flowMap(fw), Cents: fw})
	}
	aging, err := h.store.Aging(ctx, rq.scope, h.cfg.Now())
	if err != nil {
		return b, err
	}
	b.Aging = []AgingRow{}
	for _, a := range aging {
		r := AgingRow{Aging: a, Shown: map[string]string{"total": kpi.Cents(a.Total)}}
		for _, k := range kpi.AgingBuckets {
			r.Shown[k] = kpi.Cents(a.Buckets[k])
		}
		b.Aging = append(b.Aging, r)
	}
	if b.Holds, err = h.store.Holds(ctx, rq.scope); err == nil && b.Holds == nil {
		b.Holds = []store.Hold{}
	}
	if err != nil {
		return b, err
	}
	if b.RateInputs, err = h.store.ClaimRates(ctx, rq.scope, rq.rng); err != nil {
		return b, err
	}
	wos, err := h.store.WriteOffs(ctx, rq.scope, rq.rng)
	if err != nil {
		return b, err
	}
	b.WriteOffs = []WriteOffRow{}
	for _, w := range wos {
		b.WriteOffs = append(b.WriteOffs, WriteOffRow{WriteOffReason: w, Label: writeOffLabel(w.Reason), Amount: kpi.Cents(w.AmountCents)})
	}
	rates := kpi.ComputeClaimRates(b.RateInputs)
	b.Rates, b.RateValues = rates.Map(), rates.Values()
	return b, nil
}

func (h *Handler) billingData(ctx context.Context, rq *request) (any, error) {
	return h.billingOf(ctx, rq)
}

func (h *Handler) billing(ctx context.Context, rq *request) (view, error) {
	b, work, err := h.billingWork(ctx, rq)
	if err != nil {
		return view{}, err
	}
	// The work queues list claims of patients (billing's work items name the claim, not the
	// patient): on record before the page shows them. The JSON endpoint leaves the items out.
	var records []string
	for _, q := range work.Queues {
		for _, it := range q.Items {
			if q.Name == "holds" {
				records = append(records, "charge_id="+it.ID) // a held charge is its own item
			} else {
				records = append(records, "work_item_id="+it.ID)
			}
			if it.ClaimID != "" {
				records = append(records, "claim_id="+it.ClaimID)
			}
		}
	}
	if err := h.recordRead(ctx, rq, nil, records); err != nil {
		return view{}, err
	}
	cents := map[string]int64{"charges": b.FlowCents.Charges, "claims_submitted": b.FlowCents.ClaimsSubmitted,
		"paid": b.FlowCents.Paid, "denied": b.FlowCents.Denied, "written_off": b.FlowCents.WrittenOff}
	top := int64(1)
	for _, v := range cents {
		top = max(top, v)
	}
	bars := make([]Bar, 0, len(FlowStages))
	for _, s := range FlowStages {
		bars = append(bars, Bar{Label: s.Label, Value: float64(cents[s.Key]), Text: b.Flow[s.Key]})
	}
	chart := NewChart("flow-chart", "Billing flow", "Charges, claims submitted, paid, denied and written off, "+b.From+" to "+b.To+", in dollars.", bars, float64(top))
	d := workView{Billing: b, Stages: FlowStages, Chart: chart, Work: work, CanAct: canAct(rq.user), CSRF: csrfToken(rawToken(rq.r)),
		Query: url.Values{"from": {b.From}, "to": {b.To}}.Encode(), RateNames: kpi.RateNames, RateLabels: RateLabels}
	if n, ok := notices[rq.r.URL.Query().Get("done")]; ok && rq.r.Method == http.MethodGet {
		d.Notice = n
	}
	if rq.r.URL.Query().Get("done") == "written_off" && rq.r.Method == http.MethodGet {
		d.Notice = writeOffNotice(rq.r.URL.Query())
	}
	d.WriteOffReasons, d.WriteOffKey = WriteOffReasons, uuid.NewString()
	return view{Title: "Billing", Page: "billing", API: "/api/billing.json", Data: d}, nil
}

// HealthRow is one stream's projection health, as shown.
type HealthRow struct {
	store.StreamHealth
	EventsText  string `json:"events_text"`
	LastText    string `json:"last_event_text"`
	PendingText string `json:"pending_text"`
}

func (h *Handler) healthOf(ctx context.Context) ([]HealthRow, error) {
	hs, err := h.store.Health(ctx, h.cfg.Streams, h.cfg.Consumer)
	if err != nil {
		return nil, err
	}
	out := make([]HealthRow, 0, len(hs))
	for _, s := range hs {
		if h.cfg.Pending != nil {
			s.Pending = h.cfg.Pending(ctx, s.Stream)
		}
		r := HealthRow{StreamHealth: s, EventsText: strconv.Itoa(s.Events), LastText: when(s.LastEventAt), PendingText: kpi.Unknown}
		if s.Pending != nil {
			r.PendingText = strconv.FormatUint(*s.Pending, 10)
		}
		out = append(out, r)
	}
	return out, nil
}

// DeadLetterRow is how many dead letters the DEADLETTER stream holds for one consumer.
type DeadLetterRow struct {
	Consumer  string `json:"consumer"`
	Count     uint64 `json:"count"`
	CountText string `json:"count_text"`
}

// DeadLetterItem is one dead letter as operators see it: where it came from, why, and the
// command that replays it once the cause is fixed. Never its payload.
type DeadLetterItem struct {
	Seq       uint64    `json:"seq"`
	At        time.Time `json:"at"`
	Consumer  string    `json:"consumer"`
	Subject   string    `json:"subject"`
	EventType string    `json:"event_type"`
	Attempts  int       `json:"attempts"`
	Reason    string    `json:"reason"`
	// Replay is the owning service's command, e.g. "billing deadletters replay 42".
	Replay string `json:"replay"`
	AtText string `json:"at_text"`
}

// Health is the event-health page's data (GET /api/health.json).
type Health struct {
	Streams     []HealthRow     `json:"streams"`
	DeadLetters []DeadLetterRow `json:"dead_letters"`
	// The newest dead letters, newest first (at most 50).
	Recent []DeadLetterItem `json:"recent_dead_letters"`
	// Why the dead letters could not be counted (omitted when they were).
	DeadLettersError string `json:"dead_letters_error,omitempty"`
	// DeadLettersHidden: the user's token does not cover every clinic, so the dead letters
	// (null above) are not shown: they come from every clinic's events, and their reasons can
	// quote what an event held (issue 10, finding 7).
	DeadLettersHidden bool `json:"dead_letters_hidden,omitempty"`
}

// healthAll is the event-health page's data; the dead letters only when allClinics.
func (h *Handler) healthAll(ctx context.Context, allClinics bool) (Health, error) {
	rows, err := h.healthOf(ctx)
	if err != nil {
		return Health{}, err
	}
	if !allClinics {
		return Health{Streams: rows, DeadLettersHidden: true}, nil
	}
	out := Health{Streams: rows, DeadLetters: []DeadLetterRow{}}
	if h.cfg.DeadLetters == nil {
		return out, nil
	}
	counts, err := h.cfg.DeadLetters(ctx)
	if err != nil {
		h.cfg.Log.WarnContext(ctx, "dashboard: dead letters not counted", "error", err)
		out.DeadLettersError = "The dead-letter stream could not be read; try again."
		return out, nil
	}
	for c, n := range counts {
		if n > 0 {
			out.DeadLetters = append(out.DeadLetters, DeadLetterRow{Consumer: c, Count: n, CountText: strconv.FormatUint(n, 10)})
		}
	}
	slices.SortFunc(out.DeadLetters, func(a, b DeadLetterRow) int { return strings.Compare(a.Consumer, b.Consumer) })
	out.Recent = []DeadLetterItem{}
	if h.cfg.RecentDeadLetters != nil && len(out.DeadLetters) > 0 {
		recent, err := h.cfg.RecentDeadLetters(ctx)
		if err != nil {
			h.cfg.Log.WarnContext(ctx, "dashboard: dead letters not listed", "error", err)
			out.DeadLettersError = "The dead-letter stream could not be read; try again."
			return out, nil
		}
		for _, d := range recent {
			d.AtText = d.At.UTC().Format("2006-01-02 15:04 MST")
			if svc, _, ok := strings.Cut(d.Consumer, "--"); ok {
				d.Replay = fmt.Sprintf("%s deadletters replay %d", svc, d.Seq)
			}
			out.Recent = append(out.Recent, d)
		}
	}
	return out, nil
}

func (h *Handler) healthData(ctx context.Context, rq *request) (any, error) {
	return h.healthAll(ctx, rq.scope.All)
}

func (h *Handler) health(ctx context.Context, rq *request) (view, error) {
	d, err := h.healthAll(ctx, rq.scope.All)
	return view{Title: "Event health", Page: "health", API: "/api/health.json", Data: d}, err
}
