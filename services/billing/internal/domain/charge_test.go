package domain

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

const (
	tPatient = "0192f0c0-0000-7000-8000-0000000000a1"
	tClinic  = "0192f0c0-0000-7000-8000-0000000000c1"
	tDate    = "2026-03-02"
)

func chPerDiem(below string) *Contract {
	return &Contract{ID: "c1", Mode: ModePerDiem, PerDiemMinimumMinutes: 180, BelowMinimum: below,
		Codes: []ServiceCode{
			{Service: ServicePerDiem, ProcedureCode: "H0015", RevenueCode: "0906", RateCents: 25000},
			{Service: ServiceGroup, ProcedureCode: "90853", RevenueCode: "0906", RateCents: 8500},
			{Service: ServiceIndividual, ProcedureCode: "90834", RevenueCode: "0906", RateCents: 9500, MinMinutes: 16},
		}}
}

func chPerService() *Contract {
	return &Contract{ID: "c2", Mode: ModePerService, Codes: []ServiceCode{
		{Service: ServiceGroup, ProcedureCode: "90853", RateCents: 8500},
		{Service: ServiceIndividual, ProcedureCode: "90832", RateCents: 7000, MinMinutes: 16, MaxMinutes: 37},
		{Service: ServiceIndividual, ProcedureCode: "90834", RateCents: 9500, MinMinutes: 38, MaxMinutes: 52},
		{Service: ServiceIndividual, ProcedureCode: "90837", RateCents: 13000, MinMinutes: 53},
		{Service: ServiceFamily, ProcedureCode: "90847", RateCents: 11000, Modifiers: []string{"HF"}},
	}}
}

// sess is an attended session n (appointment "a<n>", event "e<n>") starting at hour 9+n.
func sess(n int, service, status string, minutes int32) Attendance {
	return Attendance{AppointmentID: fmt.Sprintf("a%d", n), EnrollmentID: "enr", Service: service, Status: status,
		MinutesAttended: minutes, SourceEventID: fmt.Sprintf("e%d", n),
		StartsAt: time.Date(2026, 3, 2, 14+n, 0, 0, 0, time.UTC)}
}

// brief renders lines as "unit code amount minutes [appointments]".
func brief(ls []Line) []string {
	var out []string
	for _, l := range ls {
		out = append(out, fmt.Sprintf("%s %s %d %d %v", l.BillableUnit, l.ProcedureCode, l.AmountCents, l.Minutes, l.AppointmentIDs))
	}
	return out
}

func TestDayLines(t *testing.T) {
	day := DayUnit(tPatient, tClinic, tDate)
	tests := []struct {
		name     string
		sessions []Attendance
		contract *Contract
		want     []string
	}{
		{"per diem: three sessions reach 180 minutes, one charge",
			[]Attendance{sess(2, ServiceGroup, AttendPresent, 60), sess(1, ServiceGroup, AttendPresent, 60), sess(3, ServiceIndividual, AttendLate, 60)},
			chPerDiem(BelowBillNothing), []string{day + " H0015 25000 180 [a1 a2 a3]"}},
		{"per diem: 179 minutes, bill nothing",
			[]Attendance{sess(1, ServiceGroup, AttendPresent, 120), sess(2, ServiceGroup, AttendLeftEarly, 59)},
			chPerDiem(BelowBillNothing), nil},
		{"per diem: below the minimum, bill per service",
			[]Attendance{sess(1, ServiceGroup, AttendPresent, 120), sess(2, ServiceIndividual, AttendLeftEarly, 40)},
			chPerDiem(BelowBillPerService), []string{"session:a1 90853 8500 120 [a1]", "session:a2 90834 9500 40 [a2]"}},
		{"per diem: absent and excused sessions do not count",
			[]Attendance{sess(1, ServiceGroup, AttendPresent, 120), sess(2, ServiceGroup, AttendAbsent, 60), sess(3, ServiceGroup, AttendExcused, 60)},
			chPerDiem(BelowBillNothing), nil},
		{"per diem: present with 0 minutes does not count",
			[]Attendance{sess(1, ServiceGroup, AttendPresent, 0)}, chPerDiem(BelowBillPerService), nil},
		{"per service: 90832 at 16 and 37", []Attendance{sess(1, ServiceIndividual, AttendPresent, 16), sess(2, ServiceIndividual, AttendPresent, 37)},
			chPerService(), []string{"session:a1 90832 7000 16 [a1]", "session:a2 90832 7000 37 [a2]"}},
		{"per service: 90834 at 38 and 52", []Attendance{sess(1, ServiceIndividual, AttendPresent, 38), sess(2, ServiceIndividual, AttendLate, 52)},
			chPerService(), []string{"session:a1 90834 9500 38 [a1]", "session:a2 90834 9500 52 [a2]"}},
		{"per service: 90837 from 53", []Attendance{sess(1, ServiceIndividual, AttendPresent, 53), sess(2, ServiceIndividual, AttendPresent, 90)},
			chPerService(), []string{"session:a1 90837 13000 53 [a1]", "session:a2 90837 13000 90 [a2]"}},
		{"per service: 10 minutes of individual therapy, no code, no charge",
			[]Attendance{sess(1, ServiceIndividual, AttendLeftEarly, 10)}, chPerService(), nil},
		{"per service: family and group use their codes",
			[]Attendance{sess(1, ServiceFamily, AttendPresent, 50), sess(2, ServiceGroup, AttendPresent, 90)},
			chPerService(), []string{"session:a1 90847 11000 50 [a1]", "session:a2 90853 8500 90 [a2]"}},
		{"per service: a service without a code is not billed",
			[]Attendance{sess(1, ServiceMedication, AttendPresent, 20)}, chPerService(), nil},
		{"no contract: one placeholder for the day",
			[]Attendance{sess(1, ServiceGroup, AttendPresent, 60), sess(2, ServiceIndividual, AttendPresent, 30)},
			nil, []string{day + "  0 90 [a1 a2]"}},
		{"no contract, nothing attended: nothing", []Attendance{sess(1, ServiceGroup, AttendAbsent, 0)}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := brief(DayLines(tPatient, tClinic, tDate, tt.sessions, tt.contract))
			if !slices.Equal(got, tt.want) {
				t.Fatalf("lines = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDayLinesCarryCodesAndSources(t *testing.T) {
	ls := DayLines(tPatient, tClinic, tDate, []Attendance{sess(1, ServiceFamily, AttendPresent, 50)}, chPerService())
	if len(ls) != 1 || !slices.Equal(ls[0].Modifiers, []string{"HF"}) || !slices.Equal(ls[0].SourceEventIDs, []string{"e1"}) ||
		ls[0].Units != 1 || ls[0].Service != ServiceFamily || ls[0].EnrollmentID != "enr" {
		t.Fatalf("line = %+v", ls)
	}
	ls = DayLines(tPatient, tClinic, tDate, []Attendance{sess(1, ServiceGroup, AttendPresent, 180)}, chPerDiem(BelowBillNothing))
	if len(ls) != 1 || ls[0].Service != ServicePerDiem || ls[0].RevenueCode != "0906" || ls[0].RateCents != 25000 {
		t.Fatalf("line = %+v", ls)
	}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name       string
		g          Gates
		status, on string
	}{
		{"no coverage", Gates{HasContract: true, HasConsent: true}, ChargeHeld, HoldCoverage},
		{"no contract", Gates{HasCoverage: true, HasConsent: true}, ChargeHeld, HoldContract},
		{"self-pay: billed to the patient, no consent needed", Gates{HasCoverage: true, HasContract: true, SelfPay: true}, ChargePatientBilled, ""},
		{"authorization before consent", Gates{HasCoverage: true, HasContract: true, AuthHold: HoldAuthExhausted}, ChargeHeld, HoldAuthExhausted},
		{"no consent", Gates{HasCoverage: true, HasContract: true}, ChargeHeld, HoldConsent},
		{"ready", Gates{HasCoverage: true, HasContract: true, HasConsent: true}, ChargeReady, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, r := Decide(tt.g); s != tt.status || r != tt.on {
				t.Fatalf("Decide = %s %q, want %s %q", s, r, tt.status, tt.on)
			}
		})
	}
}

func TestPickAuthorization(t *testing.T) {
	march := Authorization{ID: "m", AuthorizedUnits: 2, StartsOn: "2026-03-01", EndsOn: "2026-03-31"}
	april := Authorization{ID: "a", AuthorizedUnits: 5, StartsOn: "2026-04-01", EndsOn: "2026-04-30"}
	tests := []struct {
		name     string
		auths    []Authorization
		used     map[string]int32
		date     string
		id, hold string
	}{
		{"none at all", nil, nil, tDate, "", HoldAuthNone},
		{"outside every window", []Authorization{march, april}, nil, "2026-05-01", "", HoldAuthWindow},
		{"in the window with units", []Authorization{march, april}, nil, tDate, "m", ""},
		{"the window's last day", []Authorization{march, april}, nil, "2026-03-31", "m", ""},
		{"units exhausted", []Authorization{march, april}, map[string]int32{"m": 2}, tDate, "", HoldAuthExhausted},
		{"used in the stored row", []Authorization{{ID: "m", AuthorizedUnits: 2, UsedUnits: 2, StartsOn: "2026-03-01", EndsOn: "2026-03-31"}}, nil, tDate, "", HoldAuthExhausted},
		{"next one of the window", []Authorization{march, {ID: "m2", AuthorizedUnits: 1, StartsOn: "2026-03-01", EndsOn: "2026-06-30"}}, map[string]int32{"m": 2}, tDate, "m2", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, hold := PickAuthorization(tt.auths, tt.used, tt.date, 1)
			if id != tt.id || hold != tt.hold {
				t.Fatalf("Pick = %q %q, want %q %q", id, hold, tt.id, tt.hold)
			}
		})
	}
}

func TestUsageThresholds(t *testing.T) {
	tests := []struct {
		authorized, used  int32
		nearly, exhausted bool
	}{{10, 7, false, false}, {10, 8, true, false}, {10, 10, true, true}, {5, 4, true, false}, {3, 2, false, false}, {1, 1, true, true}}
	for _, tt := range tests {
		if NearlyUsed(tt.authorized, tt.used) != tt.nearly || Exhausted(tt.authorized, tt.used) != tt.exhausted {
			t.Errorf("%d of %d: want nearly %v exhausted %v", tt.used, tt.authorized, tt.nearly, tt.exhausted)
		}
	}
}

func TestHasPaymentConsent(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	hour := time.Hour
	c := func(id string, payment bool, edit func(*Consent)) Consent {
		x := Consent{ID: id, Payment: payment, EffectiveFrom: now.Add(-hour)}
		if edit != nil {
			edit(&x)
		}
		return x
	}
	tests := []struct {
		name string
		cs   []Consent
		want bool
	}{
		{"none", nil, false},
		{"payment scope", []Consent{c("1", true, nil)}, true},
		{"treatment only", []Consent{c("1", false, nil)}, false},
		{"not yet effective", []Consent{c("1", true, func(x *Consent) { x.EffectiveFrom = now.Add(hour) })}, false},
		{"expired", []Consent{c("1", true, func(x *Consent) { x.ExpiresAt = now })}, false},
		{"revoked", []Consent{c("1", true, func(x *Consent) { x.RevokedAt = now.Add(-time.Minute) })}, false},
		{"revocation later", []Consent{c("1", true, func(x *Consent) { x.RevokedAt = now.Add(hour) })}, true},
		{"superseded by a version without payment", []Consent{c("1", true, nil), c("2", false, func(x *Consent) { x.Supersedes = "1" })}, false},
		{"superseded by a version with payment", []Consent{c("1", false, nil), c("2", true, func(x *Consent) { x.Supersedes = "1" })}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HasPaymentConsent(tt.cs, now); got != tt.want {
				t.Fatalf("HasPaymentConsent = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestValidateAttendance(t *testing.T) {
	ok := Attendance{AppointmentID: tPatient, PatientID: tPatient, ClinicID: tClinic, EnrollmentID: tPatient,
		SourceEventID: tClinic, Service: ServiceGroup, Status: AttendPresent, LocalDate: tDate,
		StartsAt: time.Now(), MinutesAttended: 60, Version: 1}
	if _, err := ValidateAttendance(ok); err != nil {
		t.Fatal(err)
	}
	bad := ok
	bad.PatientID, bad.Service, bad.LocalDate, bad.Version = "x", "", "2026-02-30", 0
	_, err := ValidateAttendance(bad)
	if err == nil || err.Error() != "invalid: patient_id: must be a UUID, service_type: unknown, local_date: must be YYYY-MM-DD, version: at least 1" {
		t.Fatalf("err = %v", err)
	}
}

func TestValidateAuthorization(t *testing.T) {
	a := Authorization{PatientID: tPatient, ClinicID: tClinic, PayerID: "medicaid-il", Service: ServicePerDiem,
		AuthorizedUnits: 10, StartsOn: "2026-03-01", EndsOn: "2026-03-31"}
	if _, err := ValidateAuthorization(a, true); err != nil {
		t.Fatal(err)
	}
	a.Service, a.AuthorizedUnits, a.EndsOn = "", 0, "2026-02-01"
	_, err := ValidateAuthorization(a, false)
	if err == nil || err.Error() != "invalid: authorization.payer_id: payer_id.exists, authorization.service: service.known, "+
		"authorization.authorized_units: authorized_units.range, authorization.ends_on: ends_on.after_starts_on" {
		t.Fatalf("err = %v", err)
	}
}

func TestOwnHold(t *testing.T) {
	for reason, want := range map[string]bool{HoldCoverage: true, HoldContract: true, HoldConsent: true, HoldAuthNone: true,
		HoldAuthWindow: true, HoldAuthExhausted: true, "diagnosis": false, "identity": false, "": false} {
		if OwnHold(reason) != want {
			t.Errorf("OwnHold(%q) = %v", reason, !want)
		}
	}
}
