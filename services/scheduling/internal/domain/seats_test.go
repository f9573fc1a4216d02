package domain

import (
	"errors"
	"strings"
	"testing"
)

func TestSeat(t *testing.T) {
	tests := []struct {
		name                     string
		capacity, taken, waiting int
		want                     string
	}{
		{"empty track", 2, 0, 0, StatusActive},
		{"last seat", 2, 1, 0, StatusActive},
		{"full", 2, 2, 0, StatusWaitlisted},
		{"full with a queue", 2, 2, 3, StatusWaitlisted},
		// Seats free while others wait (a capacity just raised): the queue goes first.
		{"free seat but a queue", 3, 2, 1, StatusWaitlisted},
		{"capacity lowered below the seated", 2, 5, 0, StatusWaitlisted},
		{"one-seat track", 1, 0, 0, StatusActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Seat(tt.capacity, tt.taken, tt.waiting); got != tt.want {
				t.Fatalf("Seat(%d, %d, %d) = %s, want %s", tt.capacity, tt.taken, tt.waiting, got, tt.want)
			}
		})
	}
}

func TestPromotions(t *testing.T) {
	tests := []struct {
		name                     string
		capacity, taken, waiting int
		want                     int
	}{
		{"one seat freed, queue", 2, 1, 3, 1},
		{"seats freed, shorter queue", 5, 1, 2, 2},
		{"no queue", 2, 0, 0, 0},
		{"full", 2, 2, 4, 0},
		{"over capacity (lowered)", 2, 4, 4, 0},
		{"capacity raised", 6, 2, 10, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Promotions(tt.capacity, tt.taken, tt.waiting); got != tt.want {
				t.Fatalf("Promotions(%d, %d, %d) = %d, want %d", tt.capacity, tt.taken, tt.waiting, got, tt.want)
			}
		})
	}
}

func TestPlanSwitch(t *testing.T) {
	const (
		day, evening, weekend, teen = "t-day", "t-evening", "t-weekend", "t-teen"
	)
	track := func(id, program string, capacity int, active bool) *Track {
		return &Track{ID: id, ClinicID: clinicA, ProgramCode: program, Code: id, Capacity: capacity, Active: active}
	}
	active := Enrollment{ID: "e-active", ClinicID: clinicA, TrackID: day, ProgramCode: "adult-iop", Status: StatusActive}
	waiting := Enrollment{ID: "e-waiting", ClinicID: clinicA, TrackID: day, ProgramCode: "adult-iop", Status: StatusWaitlisted}
	holder := active
	holder.ReplacedBy = "e-replacement"
	replacement := Enrollment{ID: "e-replacement", ClinicID: clinicA, TrackID: evening, ProgramCode: "adult-iop", Status: StatusWaitlisted, Replaces: "e-active"}
	with := func(e Enrollment, f func(*Enrollment)) Enrollment { f(&e); return e }

	tests := []struct {
		name     string
		in       SwitchInput
		want     SwitchKind
		wantRule string // rule id of the error; empty: no error
		invalid  bool   // a ValidationError (else a PreconditionError)
	}{
		{name: "active to a free seat", in: SwitchInput{Enrollment: active, Holder: &active, Target: track(evening, "adult-iop", 2, true), Taken: 1}, want: SwitchToSeat},
		{name: "active to a full track", in: SwitchInput{Enrollment: active, Holder: &active, Target: track(evening, "adult-iop", 2, true), Taken: 2}, want: SwitchToWaitlist},
		{name: "free seat but a queue", in: SwitchInput{Enrollment: active, Holder: &active, Target: track(evening, "adult-iop", 2, true), Taken: 1, Waiting: 1}, want: SwitchToWaitlist},
		{name: "waitlisted to a free seat", in: SwitchInput{Enrollment: waiting, Target: track(evening, "adult-iop", 2, true)}, want: SwitchToSeat},
		{name: "waitlisted to a full track", in: SwitchInput{Enrollment: waiting, Target: track(evening, "adult-iop", 1, true), Taken: 1}, want: SwitchToWaitlist},
		{name: "pending replacement to a third track", in: SwitchInput{Enrollment: replacement, Holder: &holder, Target: track(weekend, "adult-iop", 2, true)}, want: SwitchToSeat},
		{name: "pending replacement back to the seat's track", in: SwitchInput{Enrollment: replacement, Holder: &holder, Target: track(day, "adult-iop", 1, false), Taken: 1}, want: SwitchCancel},
		{name: "unknown track", in: SwitchInput{Enrollment: active, Holder: &active}, wantRule: RuleTrackCodeKnown, invalid: true},
		{name: "other program", in: SwitchInput{Enrollment: active, Holder: &active, Target: track(teen, "adolescent-iop", 5, true)}, wantRule: RuleTrackCodeSameProgram, invalid: true},
		{name: "same track", in: SwitchInput{Enrollment: active, Holder: &active, Target: track(day, "adult-iop", 5, true)}, wantRule: RuleTrackCodeDifferent, invalid: true},
		{name: "inactive target", in: SwitchInput{Enrollment: active, Holder: &active, Target: track(evening, "adult-iop", 5, false)}, wantRule: RuleTrackActive},
		{name: "switched enrollment", in: SwitchInput{Enrollment: with(active, func(e *Enrollment) { e.Status = StatusSwitched }), Target: track(evening, "adult-iop", 5, true)}, wantRule: RuleEnrollmentCurrent},
		{name: "ended enrollment", in: SwitchInput{Enrollment: with(active, func(e *Enrollment) { e.Status = StatusEnded }), Target: track(evening, "adult-iop", 5, true)}, wantRule: RuleEnrollmentCurrent},
		{name: "enrollment without a track", in: SwitchInput{Enrollment: with(active, func(e *Enrollment) { e.TrackID = "" }), Target: track(evening, "adult-iop", 5, true)}, wantRule: RuleEnrollmentTrack},
		{name: "seat holder of a pending switch", in: SwitchInput{Enrollment: holder, Holder: &holder, Target: track(weekend, "adult-iop", 5, true)}, wantRule: RuleEnrollmentPending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PlanSwitch(tt.in)
			if tt.wantRule == "" {
				if err != nil || got != tt.want {
					t.Fatalf("PlanSwitch = %v, %v; want %v", got, err, tt.want)
				}
				return
			}
			var ve *ValidationError
			var pe *PreconditionError
			switch {
			case tt.invalid && errors.As(err, &ve):
				if len(ve.Violations) != 1 || ve.Violations[0].Field != "track_code" || ve.Violations[0].Rule != tt.wantRule {
					t.Fatalf("violations = %+v, want track_code %s", ve.Violations, tt.wantRule)
				}
				if !errors.Is(err, ErrInvalid) {
					t.Fatal("not ErrInvalid")
				}
			case !tt.invalid && errors.As(err, &pe):
				if pe.Rule != tt.wantRule || !errors.Is(err, ErrFailedPrecondition) {
					t.Fatalf("precondition = %v, want %s", pe, tt.wantRule)
				}
			default:
				t.Fatalf("err = %v (%T), want rule %s (invalid %v)", err, err, tt.wantRule, tt.invalid)
			}
		})
	}
}

func TestDischarge(t *testing.T) {
	const episode2 = "0192f0c0-0000-7000-8000-0000000000d2"
	d, err := NewDischarge(Discharge{PatientID: strings.ToUpper(patient), EpisodeID: episode, ClinicID: clinicA})
	if err != nil || d.PatientID != patient {
		t.Fatalf("NewDischarge = %+v, %v", d, err)
	}
	_, err = NewDischarge(Discharge{PatientID: "x", EpisodeID: "", ClinicID: clinicA})
	for _, f := range []string{"patient_id", "episode_id"} {
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), f) {
			t.Errorf("err = %v, want ErrInvalid naming %s", err, f)
		}
	}
	base := Enrollment{PatientID: patient, ClinicID: clinicA, EpisodeID: episode, Status: StatusActive}
	with := func(f func(*Enrollment)) Enrollment { e := base; f(&e); return e }
	tests := []struct {
		name string
		e    Enrollment
		want bool
	}{
		{"active of the episode", base, true},
		{"waitlisted of the episode", with(func(e *Enrollment) { e.Status = StatusWaitlisted }), true},
		{"older enrollment without an episode", with(func(e *Enrollment) { e.EpisodeID = "" }), true},
		{"already ended", with(func(e *Enrollment) { e.Status = StatusEnded }), false},
		{"switched", with(func(e *Enrollment) { e.Status = StatusSwitched }), false},
		{"a later episode", with(func(e *Enrollment) { e.EpisodeID = episode2 }), false},
		{"another clinic", with(func(e *Enrollment) { e.ClinicID = clinicB }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := d.Ends(tt.e); got != tt.want {
				t.Fatalf("Ends = %v, want %v", got, tt.want)
			}
		})
	}
}
