// Package demonet generates a believable demo network of clinics, patients, attendance,
// claims and remittances through the services' public APIs only (Connect clients; it never
// writes a table). It is split in two: Plan turns a Spec into a pure, deterministic plan
// (people, their stages, their dates, their attendance habits, the payers and contracts);
// Generate carries a plan out against running services, reading back the ids they assign.
// The same generator, scaled up, feeds benchmarks.
//
// Everyone in the plan is fictional: names are drawn from short lists, emails are
// @example.com and phone numbers are in the reserved 555-01xx range.
package demonet

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
)

// Clinic is a clinic of the network. Seeded clinics are those `intake seed-demo` and
// `scheduling seed-demo` configure for the dev stack (with their tracks); the generator
// configures the others itself through scheduling's API (UpsertClinic, rooms, clinicians,
// tracks), and intake learns them from scheduling's ClinicConfigured event.
type Clinic struct {
	Number             int // stable, 1-based: keys and fixed ids derive from it, not from a spec's order
	ID, Name, TimeZone string
	City, State, Zip   string
	AreaCode           string // for the fictional phone numbers of its patients
	Adolescents        bool   // admits to its adolescent track
	Seeded             bool   // configured by the stack's seed-demo, not by the generator
	// Seats, when set, is the capacity of the tracks of a smaller clinic the generator
	// configures (at most the Spec's SeatsPerTrack): its groups fill up sooner, so the
	// default network has waitlists.
	Seats int
}

// TrackSeats is the capacity of clinic c's tracks under spec: SeatsPerTrack, or the clinic's
// own smaller Seats.
func (s Spec) TrackSeats(c Clinic) int {
	s = s.withDefaults()
	if c.Seats > 0 && !c.Seeded {
		return min(c.Seats, s.SeatsPerTrack)
	}
	return s.SeatsPerTrack
}

// KnownClinics are the network's clinics, in the order a Spec takes them: the first five
// are three in America/Chicago and two in America/Los_Angeles (Default); the last two are
// the stack's other seeded clinics. Seeded ones keep the ids of services/intake/demo; the
// generator's have fixed ids of their own (ClinicID). Specs of more clinics get numbered
// ones (Clinics), alternating the two zones.
var KnownClinics = []Clinic{
	{Number: 1, ID: "0190a000-0000-7000-8000-000000000001", Name: "Riverside Health Center", TimeZone: "America/Chicago",
		City: "Chicago", State: "IL", Zip: "60607", AreaCode: "312", Adolescents: true, Seeded: true},
	{Number: 4, ID: ClinicID(4), Name: "Harbor Light Recovery", TimeZone: "America/Los_Angeles",
		City: "Oakland", State: "CA", Zip: "94607", AreaCode: "510", Adolescents: true},
	{Number: 5, ID: ClinicID(5), Name: "Northside Counseling Center", TimeZone: "America/Chicago",
		City: "Milwaukee", State: "WI", Zip: "53212", AreaCode: "414", Seats: 8},
	{Number: 6, ID: ClinicID(6), Name: "Cascade Outpatient", TimeZone: "America/Los_Angeles",
		City: "Portland", State: "OR", Zip: "97209", AreaCode: "503", Seats: 8},
	{Number: 7, ID: ClinicID(7), Name: "Prairie Path Clinic", TimeZone: "America/Chicago",
		City: "Des Moines", State: "IA", Zip: "50309", AreaCode: "515", Adolescents: true},
	{Number: 2, ID: "0190a000-0000-7000-8000-000000000002", Name: "Lakeview Clinic", TimeZone: "America/New_York",
		City: "Cleveland", State: "OH", Zip: "44114", AreaCode: "216", Seeded: true},
	{Number: 3, ID: "0190a000-0000-7000-8000-000000000003", Name: "Desert Bloom", TimeZone: "America/Phoenix",
		City: "Phoenix", State: "AZ", Zip: "85018", AreaCode: "602", Adolescents: true, Seeded: true},
}

// MaxClinics is the most clinics a Spec may ask for.
const MaxClinics = 99

// ClinicID is the fixed id of the generator's clinic of Number n (seeded clinics, 1 to 3,
// keep the ids of services/intake/demo).
func ClinicID(n int) string { return fmt.Sprintf("0190a000-0000-7000-8005-%012d", n) }

// Clinics returns the first n clinics of the network: KnownClinics, then numbered clinics
// the generator configures (alternately America/Chicago and America/Los_Angeles).
func Clinics(n int) []Clinic {
	out := slices.Clone(KnownClinics[:min(n, len(KnownClinics))])
	for i := len(KnownClinics); i < n; i++ {
		num := i + 1
		c := Clinic{Number: num, ID: ClinicID(num), Name: fmt.Sprintf("Trellis Clinic %d", num), TimeZone: "America/Chicago",
			City: "Springfield", State: "IL", Zip: "62701", AreaCode: "217", Adolescents: i%3 == 0}
		if i%2 == 1 {
			c.TimeZone, c.City, c.State, c.Zip, c.AreaCode = "America/Los_Angeles", "Fresno", "CA", "93721", "559"
		}
		out = append(out, c)
	}
	return out
}

// Track codes (scheduling's demo tracks).
const (
	TrackDay        = "adult-day"
	TrackEvening    = "adult-evening"
	TrackAdolescent = "adolescent-afternoon"
)

// Spec says how big the network is. The zero value of a field takes Default's.
type Spec struct {
	Clinics           int   // how many clinics (Clinics(n): KnownClinics first), at most MaxClinics
	PatientsPerClinic int   // people in each clinic's funnel, admitted or not
	Weeks             int   // weeks of history (1 to 12: intake back-dates a start at most 90 days)
	SeatsPerTrack     int   // the tracks' capacity (scheduling's demo: 12; see TrackSeats)
	Seed              int64 // everything random comes from it
	Parallel          int   // API calls in flight at once
	// PayerLagDays: payers answer a claim once its last service is this many days old; the
	// newer claims are still with the payer (submitted, in the receivables).
	PayerLagDays int
	// Prefix scopes idempotency keys and people's emails, so two specs in one database do
	// not collide (default "demonet").
	Prefix string
}

// Default is the network `make run` shows: 5 clinics in 2 time zones (3 in America/Chicago,
// 2 in America/Los_Angeles), 150 people at every stage, 8 weeks of attendance.
func Default() Spec {
	return Spec{Clinics: 5, PatientsPerClinic: 30, Weeks: 8, SeatsPerTrack: 12, Seed: 7, Parallel: 6, PayerLagDays: 14, Prefix: "network"}
}

// Small is for tests: 2 clinics (Riverside, seeded, and Harbor Light, which the generator
// configures: another time zone), 16 people, 3 weeks.
func Small() Spec {
	return Spec{Clinics: 2, PatientsPerClinic: 8, Weeks: 3, SeatsPerTrack: 12, Seed: 11, Parallel: 4, PayerLagDays: 3, Prefix: "demonet-small"}
}

func (s Spec) withDefaults() Spec {
	d := Default()
	if s.Clinics == 0 {
		s.Clinics = d.Clinics
	}
	if s.PatientsPerClinic == 0 {
		s.PatientsPerClinic = d.PatientsPerClinic
	}
	if s.Weeks == 0 {
		s.Weeks = d.Weeks
	}
	if s.SeatsPerTrack == 0 {
		s.SeatsPerTrack = d.SeatsPerTrack
	}
	if s.Parallel == 0 {
		s.Parallel = d.Parallel
	}
	if s.Prefix == "" {
		s.Prefix = d.Prefix
	}
	if s.PayerLagDays == 0 {
		s.PayerLagDays = d.PayerLagDays
	}
	return s
}

// Validate names the first field out of range.
func (s Spec) Validate() error {
	s = s.withDefaults()
	switch {
	case s.Clinics < 1 || s.Clinics > MaxClinics:
		return fmt.Errorf("spec: Clinics must be 1 to %d, got %d", MaxClinics, s.Clinics)
	case s.PatientsPerClinic < 1 || s.PatientsPerClinic > 5000:
		return fmt.Errorf("spec: PatientsPerClinic must be 1 to 5000, got %d", s.PatientsPerClinic)
	case s.Weeks < 1 || s.Weeks > 12:
		return fmt.Errorf("spec: Weeks must be 1 to 12 (intake back-dates a program start at most 90 days), got %d", s.Weeks)
	case s.SeatsPerTrack < 1:
		return fmt.Errorf("spec: SeatsPerTrack must be at least 1, got %d", s.SeatsPerTrack)
	case s.Parallel < 1 || s.Parallel > 64:
		return fmt.Errorf("spec: Parallel must be 1 to 64, got %d", s.Parallel)
	}
	return nil
}

// Stage is where a person's story ends in this network.
type Stage string

// Stages, in funnel order.
const (
	StageNew         Stage = "new"
	StageContacted   Stage = "contacted"
	StageScreened    Stage = "screened"
	StageAssessed    Stage = "assessed"
	StageReferredOut Stage = "referred_out"
	StageClosed      Stage = "closed"
	StageActive      Stage = "admitted"    // admitted and still in the program (or waiting for a seat)
	StageCompleted   Stage = "completed"   // admitted, discharged: completed
	StageDroppedOut  Stage = "dropped_out" // admitted, discharged: dropped out
)

// Stages lists every stage in funnel order.
var Stages = []Stage{StageNew, StageContacted, StageScreened, StageAssessed, StageReferredOut, StageClosed,
	StageActive, StageCompleted, StageDroppedOut}

// Admitted reports whether the stage goes through an admission.
func (s Stage) Admitted() bool {
	return s == StageActive || s == StageCompleted || s == StageDroppedOut
}

// Payer codes the generator configures (self-pay is billing's seeded payer).
const (
	PayerMedicaid   = "heartland-medicaid" // per diem, 837I, prior authorization required
	PayerSummit     = "summit-health"      // commercial, per service, 837P, copay per visit
	PayerBluewater  = "bluewater-mutual"   // commercial, per diem, 837I, deductible and coinsurance
	PayerSelf       = "self-pay"
	MedicaidAllowed = 84 // percent of billed the payers allow (the rest is CO-45)
)

// PayerPlan is a payer and its terms with every clinic.
type PayerPlan struct {
	Code, Name, X12ID string
	Kind              string // "medicaid", "commercial", "self_pay"
	// AllowedPercent of billed is what the payer's fee schedule allows (CO-45 takes the rest).
	AllowedPercent int64
	CopayCents     int64 // PR-3 per claim line
	Coinsurance    int64 // PR-2, percent of allowed
	DeductibleCent int64 // PR-1 on a patient's first claim
}

// Payers are the three insurers of the network, and self-pay.
var Payers = []PayerPlan{
	{Code: PayerMedicaid, Name: "Heartland Medicaid Plan", X12ID: "HMCD1", Kind: "medicaid", AllowedPercent: MedicaidAllowed},
	{Code: PayerSummit, Name: "Summit Health", X12ID: "SUMM1", Kind: "commercial", AllowedPercent: 80, CopayCents: 2000},
	{Code: PayerBluewater, Name: "Bluewater Mutual", X12ID: "BLUW1", Kind: "commercial", AllowedPercent: 90, Coinsurance: 20, DeductibleCent: 25000},
	{Code: PayerSelf, Name: "Self-pay", Kind: "self_pay"},
}

// Person is one fictional person of the plan.
type Person struct {
	Key             string // stable: "<prefix>-c<clinic number>-p<n>"; idempotency keys derive from it
	ClinicIndex     int
	Given, Family   string
	DOB             string
	Email, Phone    string
	Source          string // referral source: self, hospital, detox_unit, court, employer, family, other_clinic
	Track           string
	Adolescent      bool
	Stage           Stage
	FirstContactAgo int // days before today
	// Assessment: the six ASAM ratings and whether detox is needed (refer-outs need it).
	Ratings    [6]int32
	DetoxFirst bool
	// Admitted people only.
	StartAgo     int    // program start, days before today (negative: in the future)
	StopAfter    int    // dropped out: stops coming this many days after the start (0: never)
	DischargeAgo int    // discharged: the discharge date, days before today
	Payer        string // coverage payer code
	MemberID     string
	Diagnosis    string // principal ICD-10-CM, no dot
	AuthUnits    int32  // Medicaid: authorized program days
	// Attendance habits: the chance of missing a session (percent), and of being late or
	// leaving early when coming.
	NoShowPct, LatePct, LeaveEarlyPct int
}

// Plan is everything the generator will make, decided before any call.
type Plan struct {
	Spec    Spec
	Clinics []Clinic
	Payers  []PayerPlan
	People  []Person
}

var givenNames = []string{"Avery", "Blake", "Cameron", "Dakota", "Elliot", "Finley", "Gray", "Harper", "Indigo", "Jesse",
	"Kendall", "Logan", "Marley", "Noel", "Oakley", "Peyton", "Reese", "Rowan", "Sage", "Tatum", "Umi", "Val", "Wren", "Zion",
	"Ari", "Bellamy", "Carmen", "Devon", "Emerson", "Frankie", "Hollis", "Jordan", "Kai", "Lennon", "Milan", "Nico"}

var familyNames = []string{"Abernathy", "Baptiste", "Calloway", "Delacroix", "Eastwood", "Fairbanks", "Galloway", "Hawthorne",
	"Ibarra", "Jablonski", "Kowalczyk", "Lindqvist", "Mbeki", "Nakamura", "Okonkwo", "Pellegrino", "Quintero", "Rasmussen",
	"Szymanski", "Thibodeaux", "Underwood", "Valdivia", "Whitaker", "Xiong", "Yamamoto", "Zielinski", "Achterberg", "Brannigan",
	"Castellanos", "Dunleavy", "Esposito", "Fitzgerald", "Gustafsson", "Haddad", "Iwasaki", "Jovanovic"}

var sources = []string{"self", "hospital", "detox_unit", "court", "employer", "family", "other_clinic", "self", "hospital"}

var diagnoses = []string{"F1020", "F1120", "F1520", "F1220", "F1420", "F1020", "F1120"}

// NewPlan decides the whole network from spec: same spec, same plan.
func NewPlan(spec Spec) (Plan, error) {
	spec = spec.withDefaults()
	if err := spec.Validate(); err != nil {
		return Plan{}, err
	}
	p := Plan{Spec: spec, Clinics: Clinics(spec.Clinics), Payers: slices.Clone(Payers)}
	days := spec.Weeks * 7
	for ci, c := range p.Clinics {
		r := rand.New(rand.NewPCG(uint64(spec.Seed), uint64(ci)+1))
		n := spec.PatientsPerClinic
		stages := clinicStages(n, r)
		for i, st := range stages {
			per := Person{Key: fmt.Sprintf("%s-c%d-p%03d", spec.Prefix, c.Number, i+1), ClinicIndex: ci, Stage: st}
			per.Given = givenNames[r.IntN(len(givenNames))]
			per.Family = familyNames[r.IntN(len(familyNames))]
			per.Email = fmt.Sprintf("%s.%s.%s@example.com", lower(per.Given), lower(per.Family), per.Key)
			if r.IntN(2) == 0 {
				per.Phone = fmt.Sprintf("+1%s555%04d", c.AreaCode, 150+(i%50))
			}
			per.Source = sources[r.IntN(len(sources))]
			per.Adolescent = st.Admitted() && c.Adolescents && r.IntN(100) < 16
			if per.Adolescent {
				per.DOB = fmt.Sprintf("%d-%02d-%02d", 2009+r.IntN(3), 1+r.IntN(12), 1+r.IntN(28))
				per.Track = TrackAdolescent
			} else {
				per.DOB = fmt.Sprintf("%d-%02d-%02d", 1962+r.IntN(42), 1+r.IntN(12), 1+r.IntN(28))
				per.Track = TrackDay
				if r.IntN(100) < 42 {
					per.Track = TrackEvening
				}
			}
			per.Ratings = [6]int32{1, 1, 2, 2, 2, 2}
			switch r.IntN(3) {
			case 1:
				per.Ratings = [6]int32{0, 1, 2, 3, 2, 1}
			case 2:
				per.Ratings = [6]int32{1, 0, 2, 2, 3, 2}
			}
			per.FirstContactAgo = r.IntN(10)
			switch st {
			case StageReferredOut:
				if r.IntN(2) == 0 {
					per.Ratings, per.DetoxFirst = [6]int32{3, 1, 2, 2, 3, 2}, true // 3.7-WM first
				} else {
					per.Ratings = [6]int32{1, 1, 3, 2, 2, 2} // 2.5 partial hospitalization
				}
			case StageActive:
				per.StartAgo = r.IntN(days)
				per.FirstContactAgo = per.StartAgo + 2 + r.IntN(12)
			case StageCompleted:
				per.StartAgo = days - 1 - r.IntN(min(4, days))
				per.DischargeAgo = 1 + r.IntN(3)
				per.FirstContactAgo = per.StartAgo + 3 + r.IntN(10)
			case StageDroppedOut:
				per.StartAgo = days/2 + r.IntN(days-days/2)
				per.StopAfter = 7 + r.IntN(max(1, per.StartAgo/2))
				per.DischargeAgo = max(1, per.StartAgo-per.StopAfter-10)
				per.FirstContactAgo = per.StartAgo + 2 + r.IntN(8)
			}
			// Intake back-dates a first contact at most 90 days.
			per.FirstContactAgo = min(per.FirstContactAgo, 89)
			if st.Admitted() {
				pay := r.IntN(100)
				switch {
				case pay < 45:
					per.Payer = PayerMedicaid
				case pay < 70:
					per.Payer = PayerSummit
				case pay < 90:
					per.Payer = PayerBluewater
				default:
					per.Payer = PayerSelf
				}
				per.MemberID = fmt.Sprintf("%s%d%05d", memberPrefix(per.Payer), c.Number, r.IntN(100000))
				per.Diagnosis = diagnoses[r.IntN(len(diagnoses))]
				if per.Payer == PayerMedicaid {
					per.AuthUnits = 36
					if r.IntN(100) < 15 {
						per.AuthUnits = int32(4 + r.IntN(6)) // runs out: the authorization queue has work
					}
				}
				switch h := r.IntN(100); {
				case h < 50:
					per.NoShowPct = 4
				case h < 85:
					per.NoShowPct = 12
				default:
					per.NoShowPct = 30
				}
				if st == StageDroppedOut {
					per.NoShowPct = 35
				}
				per.LatePct, per.LeaveEarlyPct = 3+r.IntN(6), 2+r.IntN(5)
			}
			p.People = append(p.People, per)
		}
		// Each track is filled by its oldest starts first; whoever is admitted once it is full
		// waits. When a track has more people than seats (one is left for people admitted by
		// hand), the extra ones start in the coming days: the waitlist.
		for _, track := range []string{TrackDay, TrackEvening, TrackAdolescent} {
			extra := countTrack(p.People, ci, track) - (spec.TrackSeats(c) - 1)
			for i := range p.People {
				per := &p.People[i]
				if extra > 0 && per.ClinicIndex == ci && per.Stage == StageActive && per.Track == track {
					extra--
					per.StartAgo = -1 - extra%5
					per.FirstContactAgo = 1 + extra%7
				}
			}
		}
	}
	return p, nil
}

// clinicStages spreads n people over the stages: about 72% admitted (a fifth of them
// discharged, half completed and half dropped out), 6% referred out, 4% closed, and the rest
// open at every step of the funnel.
func clinicStages(n int, r *rand.Rand) []Stage {
	admitted := n * 72 / 100
	discharged := admitted / 5
	if n >= 8 && discharged == 0 {
		discharged = 1
	}
	referred := max(n*6/100, min(1, n/8))
	closed := n * 4 / 100
	var out []Stage
	for i := range discharged {
		if i%2 == 0 {
			out = append(out, StageDroppedOut)
		} else {
			out = append(out, StageCompleted)
		}
	}
	for range admitted - discharged {
		out = append(out, StageActive)
	}
	for range referred {
		out = append(out, StageReferredOut)
	}
	for range closed {
		out = append(out, StageClosed)
	}
	open := []Stage{StageNew, StageContacted, StageScreened, StageAssessed}
	for i := 0; len(out) < n; i++ {
		out = append(out, open[i%len(open)])
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func countTrack(people []Person, ci int, track string) int {
	n := 0
	for _, p := range people {
		if p.ClinicIndex == ci && p.Stage == StageActive && p.Track == track {
			n++
		}
	}
	return n
}

func memberPrefix(payer string) string {
	switch payer {
	case PayerMedicaid:
		return "HM"
	case PayerSummit:
		return "SH"
	case PayerBluewater:
		return "BW"
	}
	return "SP"
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// Outcome is a planned attendance: a status and the minutes attended.
type Outcome struct {
	Status  string // present, late, left_early, absent, excused
	Minutes int
}

// Attendance decides, for person p, the session of the given length on a clinic-local date
// (daysAfterStart days after their start): the same inputs always give the same outcome.
func (p Person) Attendance(seed int64, localDate string, daysAfterStart, scheduled int) Outcome {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d|%s|%s", seed, p.Key, localDate)
	r := rand.New(rand.NewPCG(h.Sum64(), uint64(scheduled)))
	if p.StopAfter > 0 && daysAfterStart >= p.StopAfter {
		return Outcome{Status: "absent"}
	}
	roll := r.IntN(100)
	switch {
	case roll < p.NoShowPct:
		if r.IntN(4) == 0 {
			return Outcome{Status: "excused"}
		}
		return Outcome{Status: "absent"}
	case roll < p.NoShowPct+p.LatePct:
		return Outcome{Status: "late", Minutes: scheduled - 10 - r.IntN(min(30, scheduled/3))}
	case roll < p.NoShowPct+p.LatePct+p.LeaveEarlyPct:
		return Outcome{Status: "left_early", Minutes: scheduled - 20 - r.IntN(min(40, scheduled/3))}
	}
	return Outcome{Status: "present", Minutes: scheduled}
}

// Remit decides how a payer answers one claim line: a number from 0 to 99 drawn from the
// seed and the line (its patient, service date and procedure), so a rerun answers alike.
func (p Plan) roll(parts ...string) int {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d", p.Spec.Seed)
	for _, s := range parts {
		h.Write([]byte{'|'})
		h.Write([]byte(s))
	}
	return int(h.Sum64() % 100)
}

// Count returns how many people of the plan are at each stage.
func (p Plan) Count() map[Stage]int {
	out := map[Stage]int{}
	for _, per := range p.People {
		out[per.Stage]++
	}
	return out
}
