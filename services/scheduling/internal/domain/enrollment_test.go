package domain

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	idA     = "0192f0c0-0000-7000-8000-00000000000a"
	patient = "0192f0c0-0000-7000-8000-0000000000b1"
	clinicA = "0192f0c0-0000-7000-8000-0000000000c1"
	clinicB = "0192f0c0-0000-7000-8000-0000000000c2"
	eventA  = "0192f0c0-0000-7000-8000-0000000000e1"
	episode = "0192f0c0-0000-7000-8000-0000000000d1"
)

func TestNewEnrollment(t *testing.T) {
	valid := Admission{PatientID: patient, EpisodeID: episode, ClinicID: clinicA, ProgramTrack: "adult-evening", StartDate: "2026-03-02"}
	tests := []struct {
		name    string
		id      string
		event   string
		mutate  func(*Admission)
		wantErr string // substring naming the field; empty: valid
	}{
		{name: "valid", id: idA, event: eventA, mutate: func(*Admission) {}},
		{name: "uppercase uuid is normalised", id: idA, event: eventA, mutate: func(a *Admission) { a.PatientID = strings.ToUpper(patient) }},
		{name: "bad patient id", id: idA, event: eventA, mutate: func(a *Admission) { a.PatientID = "not-a-uuid" }, wantErr: "patient_id"},
		{name: "empty clinic id", id: idA, event: eventA, mutate: func(a *Admission) { a.ClinicID = "" }, wantErr: "clinic_id"},
		{name: "nil uuid clinic", id: idA, event: eventA, mutate: func(a *Admission) { a.ClinicID = "00000000-0000-0000-0000-000000000000" }, wantErr: "clinic_id"},
		{name: "braced uuid", id: idA, event: eventA, mutate: func(a *Admission) { a.ClinicID = "{" + clinicA + "}" }, wantErr: "clinic_id"},
		{name: "bad episode id", id: idA, event: eventA, mutate: func(a *Admission) { a.EpisodeID = "" }, wantErr: "episode_id"},
		{name: "bad source event", id: idA, event: "x", mutate: func(*Admission) {}, wantErr: "source_event_id"},
		{name: "empty track", id: idA, event: eventA, mutate: func(a *Admission) { a.ProgramTrack = "" }, wantErr: "program_track"},
		{name: "track with spaces", id: idA, event: eventA, mutate: func(a *Admission) { a.ProgramTrack = "Adult Evening" }, wantErr: "program_track"},
		{name: "impossible date", id: idA, event: eventA, mutate: func(a *Admission) { a.StartDate = "2026-02-30" }, wantErr: "start_date"},
		{name: "date with time", id: idA, event: eventA, mutate: func(a *Admission) { a.StartDate = "2026-03-02T10:00:00Z" }, wantErr: "start_date"},
		{name: "short date", id: idA, event: eventA, mutate: func(a *Admission) { a.StartDate = "2026-3-2" }, wantErr: "start_date"},
		{name: "empty date", id: idA, event: eventA, mutate: func(a *Admission) { a.StartDate = "" }, wantErr: "start_date"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := valid
			tt.mutate(&a)
			e, err := NewEnrollment(tt.id, tt.event, a)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrInvalid naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Enrollment{ID: idA, PatientID: patient, EpisodeID: episode, ClinicID: clinicA, ProgramTrack: "adult-evening",
				StartDate: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), SourceEventID: eventA}
			if e != want {
				t.Fatalf("enrollment = %+v\nwant %+v", e, want)
			}
		})
	}
}

func TestNewEnrollmentReportsEveryProblem(t *testing.T) {
	_, err := NewEnrollment(idA, eventA, Admission{PatientID: "x", EpisodeID: "w", ClinicID: "y", ProgramTrack: "", StartDate: "z"})
	for _, f := range []string{"patient_id", "episode_id", "clinic_id", "program_track", "start_date"} {
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

func TestCurrentFor(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 3, d, 0, 0, 0, 0, time.UTC) }
	at := func(s int) time.Time { return time.Date(2026, 2, 1, 0, 0, s, 0, time.UTC) }
	early := Enrollment{ID: "early", ClinicID: clinicA, StartDate: day(2), CreatedAt: at(1), Status: StatusActive}
	late := Enrollment{ID: "late", ClinicID: clinicA, StartDate: day(9), CreatedAt: at(0), Status: StatusActive}
	lateNewer := Enrollment{ID: "late-newer", ClinicID: clinicA, StartDate: day(9), CreatedAt: at(5), Status: StatusWaitlisted}
	otherClinic := Enrollment{ID: "other", ClinicID: clinicB, StartDate: day(20), CreatedAt: at(9), Status: StatusActive}
	ended := Enrollment{ID: "ended", ClinicID: clinicA, StartDate: day(25), CreatedAt: at(9), Status: StatusEnded}
	switched := Enrollment{ID: "switched", ClinicID: clinicA, StartDate: day(25), CreatedAt: at(9), Status: StatusSwitched, ReplacedBy: "late"}
	// A pending switch: the seat holder names its waitlisted replacement, created later.
	holder := Enrollment{ID: "holder", ClinicID: clinicA, StartDate: day(2), CreatedAt: at(1), Status: StatusActive, ReplacedBy: "replacement"}
	replacement := Enrollment{ID: "replacement", ClinicID: clinicA, StartDate: day(2), CreatedAt: at(8), Status: StatusWaitlisted}
	tests := []struct {
		name   string
		viewer clinics
		all    []Enrollment
		want   string // enrollment id; empty: none
	}{
		{"none", clinics{clinicA}, nil, ""},
		{"single", clinics{clinicA}, []Enrollment{early}, "early"},
		{"latest start wins", clinics{clinicA}, []Enrollment{early, late}, "late"},
		{"same start: latest created wins", clinics{clinicA}, []Enrollment{lateNewer, early, late}, "late-newer"},
		{"waitlisted is current", clinics{clinicA}, []Enrollment{lateNewer}, "late-newer"},
		{"ended and switched are not current", clinics{clinicA}, []Enrollment{ended, switched, early}, "early"},
		{"only ended: none", clinics{clinicA}, []Enrollment{ended, switched}, ""},
		{"pending switch: the seat holder", clinics{clinicA}, []Enrollment{replacement, holder}, "holder"},
		{"invisible clinic skipped", clinics{clinicA}, []Enrollment{early, otherClinic}, "early"},
		{"only invisible: none", clinics{clinicA}, []Enrollment{otherClinic}, ""},
		{"no clinics: none", clinics{}, []Enrollment{early}, ""},
		{"all clinics", clinics{"*"}, []Enrollment{early, otherClinic}, "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := CurrentFor(tt.viewer, tt.all)
			if ok != (tt.want != "") || got.ID != tt.want {
				t.Fatalf("CurrentFor = %q, %v; want %q", got.ID, ok, tt.want)
			}
		})
	}
}
