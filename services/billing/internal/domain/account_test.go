package domain

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	accountID  = "0192f0c0-0000-7000-8000-00000000000a"
	patient    = "0192f0c0-0000-7000-8000-0000000000b1"
	clinicA    = "0192f0c0-0000-7000-8000-0000000000c1"
	clinicB    = "0192f0c0-0000-7000-8000-0000000000c2"
	enrollment = "0192f0c0-0000-7000-8000-0000000000d1"
	eventA     = "0192f0c0-0000-7000-8000-0000000000e1"
)

func TestOpenAccount(t *testing.T) {
	valid := Enrollment{EnrollmentID: enrollment, PatientID: patient, ClinicID: clinicA}
	tests := []struct {
		name    string
		event   string
		mutate  func(*Enrollment)
		wantErr string // substring naming the field; empty: valid
	}{
		{name: "valid", event: eventA, mutate: func(*Enrollment) {}},
		{name: "uppercase uuid is normalised", event: eventA, mutate: func(e *Enrollment) { e.ClinicID = strings.ToUpper(clinicA) }},
		{name: "bad patient id", event: eventA, mutate: func(e *Enrollment) { e.PatientID = "p-1" }, wantErr: "patient_id"},
		{name: "empty clinic id", event: eventA, mutate: func(e *Enrollment) { e.ClinicID = "" }, wantErr: "clinic_id"},
		{name: "nil enrollment id", event: eventA, mutate: func(e *Enrollment) { e.EnrollmentID = "00000000-0000-0000-0000-000000000000" }, wantErr: "enrollment_id"},
		{name: "urn enrollment id", event: eventA, mutate: func(e *Enrollment) { e.EnrollmentID = "urn:uuid:" + enrollment }, wantErr: "enrollment_id"},
		{name: "bad source event", event: "", mutate: func(*Enrollment) {}, wantErr: "source_event_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := valid
			tt.mutate(&e)
			a, err := OpenAccount(accountID, tt.event, e)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrInvalid naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Account{ID: accountID, PatientID: patient, ClinicID: clinicA, EnrollmentID: enrollment,
				BalanceCents: 0, Status: StatusOpen, SourceEventID: eventA}
			if a != want {
				t.Fatalf("account = %+v\nwant %+v", a, want)
			}
		})
	}
}

func TestOpenAccountReportsEveryProblem(t *testing.T) {
	_, err := OpenAccount(accountID, eventA, Enrollment{EnrollmentID: "x", PatientID: "y", ClinicID: "z"})
	for _, f := range []string{"patient_id", "clinic_id", "enrollment_id"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("error %v does not name %s", err, f)
		}
	}
}

type clinics []string

func (c clinics) CanSeeClinic(id string) bool {
	for _, x := range c {
		if x == "*" || x == id {
			return true
		}
	}
	return false
}

func TestVisible(t *testing.T) {
	at := func(s int) time.Time { return time.Date(2026, 2, 1, 0, 0, s, 0, time.UTC) }
	a := Account{ID: "a", ClinicID: clinicA, OpenedAt: at(1)}
	b := Account{ID: "b", ClinicID: clinicB, OpenedAt: at(5)}
	tests := []struct {
		name   string
		viewer clinics
		all    []Account
		want   string // account id; empty: none
	}{
		{"none", clinics{"*"}, nil, ""},
		{"own clinic", clinics{clinicA}, []Account{a, b}, "a"},
		{"other clinic only", clinics{clinicA}, []Account{b}, ""},
		{"no clinics", clinics{}, []Account{a}, ""},
		{"all clinics: latest opened", clinics{"*"}, []Account{a, b}, "b"},
		{"both clinics, any order", clinics{clinicB, clinicA}, []Account{b, a}, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Visible(tt.viewer, tt.all)
			if ok != (tt.want != "") || got.ID != tt.want {
				t.Fatalf("Visible = %q, %v; want %q", got.ID, ok, tt.want)
			}
		})
	}
}
