package domain

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Charge statuses (the charges table's status column; claims reads it).
const (
	ChargeReady         = "ready"
	ChargeHeld          = "held"
	ChargeSubmitted     = "submitted"
	ChargePaid          = "paid"
	ChargeDenied        = "denied"
	ChargeVoid          = "void"
	ChargePatientBilled = "patient_billed"
)

// Hold reasons (the charges table's hold_reason column), and the reasons of a void.
const (
	HoldCoverage        = "coverage"
	HoldContract        = "contract"
	HoldConsent         = "consent"
	HoldAuthNone        = "authorization: none"
	HoldAuthWindow      = "authorization: outside window"
	HoldAuthExhausted   = "authorization: units exhausted"
	VoidCorrected       = "corrected"
	VoidNoLongerBilling = "no longer billable"
)

// Attendance statuses and service types, as billing stores them.
const (
	AttendPresent   = "present"
	AttendLate      = "late"
	AttendLeftEarly = "left_early"
	AttendAbsent    = "absent"
	AttendExcused   = "excused"
)

// Attendance is billing's copy of the latest version of one appointment's attendance.
type Attendance struct {
	AppointmentID    string
	PatientID        string
	ClinicID         string
	EnrollmentID     string
	ProgramCode      string
	Service          string // group, individual, family, medication_management
	ClinicianID      string
	SessionID        string
	LocalDate        string // clinic-local "YYYY-MM-DD"
	StartsAt         time.Time
	Status           string
	MinutesAttended  int32
	ScheduledMinutes int32
	Version          int32
	SourceEventID    string
}

// ValidateAttendance checks what billing relies on; every problem is reported, wrapped in
// ErrInvalid (messages name fields, never values).
func ValidateAttendance(a Attendance) (Attendance, error) {
	var errs []string
	id := func(field string, v *string) {
		s, err := ParseID(*v)
		if err != nil {
			errs = append(errs, field+": must be a UUID")
		}
		*v = s
	}
	id("appointment_id", &a.AppointmentID)
	id("patient_id", &a.PatientID)
	id("clinic_id", &a.ClinicID)
	id("enrollment_id", &a.EnrollmentID)
	id("source_event_id", &a.SourceEventID)
	switch a.Service {
	case ServiceGroup, ServiceIndividual, ServiceFamily, ServiceMedication:
	default:
		errs = append(errs, "service_type: unknown")
	}
	switch a.Status {
	case AttendPresent, AttendLate, AttendLeftEarly, AttendAbsent, AttendExcused:
	default:
		errs = append(errs, "status: unknown")
	}
	if _, err := time.Parse(time.DateOnly, a.LocalDate); err != nil {
		errs = append(errs, "local_date: must be YYYY-MM-DD")
	}
	if a.StartsAt.IsZero() {
		errs = append(errs, "starts_at: required")
	}
	if a.MinutesAttended < 0 || a.MinutesAttended > 1440 || a.ScheduledMinutes < 0 || a.ScheduledMinutes > 1440 {
		errs = append(errs, "minutes: 0 to 1440")
	}
	if a.Version < 1 {
		errs = append(errs, "version: at least 1")
	}
	if len(errs) > 0 {
		return a, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, ", "))
	}
	return a, nil
}

// Attended reports whether a session counts for billing: the patient was there (present,
// late or left early) for some minutes.
func (a Attendance) Attended() bool {
	switch a.Status {
	case AttendPresent, AttendLate, AttendLeftEarly:
		return a.MinutesAttended > 0
	}
	return false
}

// Line is what one billable unit should be charged, before the gates (coverage, contract,
// authorization, consent) decide its status.
type Line struct {
	BillableUnit   string
	EnrollmentID   string
	Service        string
	ProcedureCode  string
	RevenueCode    string
	Modifiers      []string
	Units          int32
	Minutes        int32
	RateCents      int64
	AmountCents    int64
	SourceEventIDs []string
	AppointmentIDs []string
}

// DayUnit is the billable unit of a patient's program day at a clinic.
func DayUnit(patientID, clinicID, date string) string {
	return "day:" + patientID + ":" + clinicID + ":" + date
}

// SessionUnit is the billable unit of one session.
func SessionUnit(appointmentID string) string { return "session:" + appointmentID }

// DayLines returns the lines of a patient's day at a clinic from that day's attendance (any
// status; only attended sessions count) under contract c (nil: no contract could be found,
// because the patient had no coverage that day or the payer no contract).
//
// Without a contract there is no code nor rate yet: the day is one placeholder line (unit of
// the day, service per_diem, no code, rate 0) listing every attended session, to be held with
// reason "coverage" or "contract" and replaced once a contract applies.
func DayLines(patientID, clinicID, date string, sessions []Attendance, c *Contract) []Line {
	var attended []Attendance
	for _, s := range sessions {
		if s.Attended() {
			attended = append(attended, s)
		}
	}
	if len(attended) == 0 {
		return nil
	}
	slices.SortFunc(attended, func(a, b Attendance) int {
		return cmp.Or(a.StartsAt.Compare(b.StartsAt), cmp.Compare(a.AppointmentID, b.AppointmentID))
	})
	var total int32
	for _, s := range attended {
		total += s.MinutesAttended
	}
	day := func(sc ServiceCode) Line {
		l := Line{BillableUnit: DayUnit(patientID, clinicID, date), EnrollmentID: attended[0].EnrollmentID,
			Service: ServicePerDiem, ProcedureCode: sc.ProcedureCode, RevenueCode: sc.RevenueCode,
			Modifiers: orEmpty(sc.Modifiers), Units: 1, Minutes: total, RateCents: sc.RateCents, AmountCents: sc.RateCents}
		for _, s := range attended {
			l.SourceEventIDs = append(l.SourceEventIDs, s.SourceEventID)
			l.AppointmentIDs = append(l.AppointmentIDs, s.AppointmentID)
		}
		return l
	}
	if c == nil {
		return []Line{day(ServiceCode{})}
	}
	if c.Mode == ModePerDiem {
		if total >= c.PerDiemMinimumMinutes {
			if sc, ok := c.CodeFor(ServicePerDiem, total); ok {
				return []Line{day(sc)}
			}
			return nil
		}
		if c.BelowMinimum != BelowBillPerService {
			return nil
		}
	}
	var out []Line
	for _, s := range attended {
		sc, ok := c.CodeFor(s.Service, s.MinutesAttended)
		if !ok {
			continue // e.g. 10 minutes of individual therapy: no code applies
		}
		out = append(out, Line{BillableUnit: SessionUnit(s.AppointmentID), EnrollmentID: s.EnrollmentID,
			Service: s.Service, ProcedureCode: sc.ProcedureCode, RevenueCode: sc.RevenueCode,
			Modifiers: orEmpty(sc.Modifiers), Units: 1, Minutes: s.MinutesAttended, RateCents: sc.RateCents,
			AmountCents: sc.RateCents, SourceEventIDs: []string{s.SourceEventID}, AppointmentIDs: []string{s.AppointmentID}})
	}
	return out
}

// CodeFor returns the contract's code for service at minutes: the first code of the service
// whose inclusive minute range holds minutes (max 0: no upper bound).
func (c Contract) CodeFor(service string, minutes int32) (ServiceCode, bool) {
	for _, sc := range c.Codes {
		if sc.Service == service && minutes >= sc.MinMinutes && (sc.MaxMinutes == 0 || minutes <= sc.MaxMinutes) {
			return sc, true
		}
	}
	return ServiceCode{}, false
}

// EffectiveOn reports whether the contract is effective on date ("YYYY-MM-DD").
func (c Contract) EffectiveOn(date string) bool {
	return c.EffectiveFrom <= date && (c.EffectiveTo == "" || date <= c.EffectiveTo)
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ChargeWrite is a charge to insert (Insert) or to store a new status, hold reason and
// authorization of, queued to go to the database with the next statement, in one round trip.
type ChargeWrite struct {
	Insert bool
	Charge Charge
}

// Charge is a stored charge (one billable unit; see the charges table).
type Charge struct {
	ID               string
	Line                    // what is charged
	PatientID        string // the patient, clinic and date of service
	ClinicID         string
	ServiceDate      string
	PayerID          string
	ContractID       string // "" when no contract applies
	CoverageID       string
	Status           string
	HoldReason       string
	ReplacesChargeID string
	AuthorizationID  string
	AuthorizedUnits  int32
	ClaimID          string
}

// SameBilling reports whether a stored charge bills exactly what line under payer, contract
// and coverage would: if so a recomputation leaves it alone (only its status may change).
func (c Charge) SameBilling(l Line, payerID, contractID, coverageID string) bool {
	a, b := c.Line, l
	return a.BillableUnit == b.BillableUnit && a.EnrollmentID == b.EnrollmentID && a.Service == b.Service &&
		a.ProcedureCode == b.ProcedureCode && a.RevenueCode == b.RevenueCode && slices.Equal(a.Modifiers, b.Modifiers) &&
		a.Units == b.Units && a.Minutes == b.Minutes && a.RateCents == b.RateCents && a.AmountCents == b.AmountCents &&
		slices.Equal(a.SourceEventIDs, b.SourceEventIDs) && slices.Equal(a.AppointmentIDs, b.AppointmentIDs) &&
		c.PayerID == payerID && c.ContractID == contractID && c.CoverageID == coverageID
}

// Open reports whether the charge's status may still be decided by billing's gates (ready or
// held); a submitted, paid, denied or patient-billed charge is past them.
func (c Charge) Open() bool { return c.Status == ChargeReady || c.Status == ChargeHeld }

// Sent reports whether the charge went to a payer (a replacement must then say what it replaces).
func (c Charge) Sent() bool {
	return c.ClaimID != "" || c.Status == ChargeSubmitted || c.Status == ChargePaid || c.Status == ChargeDenied
}

// OwnHold reports whether reason is one of the charges area's holds (coverage, contract,
// authorization, consent). Claims holds ready charges for reasons of its own (e.g. a missing
// diagnosis) at claim time; a recomputation leaves those as they are.
func OwnHold(reason string) bool {
	return reason == HoldCoverage || reason == HoldContract || reason == HoldConsent || strings.HasPrefix(reason, "authorization")
}

// Gates is what decides a charge's status besides its authorization.
type Gates struct {
	HasCoverage bool
	HasContract bool
	SelfPay     bool
	// AuthHold is the authorization hold reason ("" when none is required or one applies).
	AuthHold   string
	HasConsent bool
}

// Decide returns a charge's status and hold reason. The gates apply in order: coverage,
// contract, self-pay (billed to the patient: no payer sees it, so neither authorization nor
// consent applies), authorization, payment consent.
func Decide(g Gates) (status, holdReason string) {
	switch {
	case !g.HasCoverage:
		return ChargeHeld, HoldCoverage
	case !g.HasContract:
		return ChargeHeld, HoldContract
	case g.SelfPay:
		return ChargePatientBilled, ""
	case g.AuthHold != "":
		return ChargeHeld, g.AuthHold
	case !g.HasConsent:
		return ChargeHeld, HoldConsent
	}
	return ChargeReady, ""
}

// ChargeFilter selects charges to list. After is a page token ("" for the first page).
type ChargeFilter struct {
	ClinicID  string
	PatientID string
	Status    string
	From, To  string
	After     string
	Limit     int
}
