package domain

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestCareEpisodeDischarge(t *testing.T) {
	chi, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	// 03:30 UTC on 15 March is still 14 March in Chicago.
	at := time.Date(2026, 3, 15, 3, 30, 0, 987654321, time.UTC)
	admitted := CareEpisode{ID: "e1", PatientID: "p1", ClinicID: "c1", Status: EpisodeAdmitted, StartDate: NewDate(2026, 1, 10)}
	type fr struct{ field, rule string }
	tests := []struct {
		name     string
		episode  func(*CareEpisode)
		in       DischargeInput
		want     []fr
		precond  bool
		wantNote string
	}{
		{name: "on the start date", in: DischargeInput{Reason: DischargeCompleted, DischargeDate: "2026-01-10"}},
		{name: "today in the clinic's zone", in: DischargeInput{Reason: DischargeDroppedOut, DischargeDate: "2026-03-14", Note: "  left  "}, wantNote: "left"},
		{name: "tomorrow in the clinic's zone (today in UTC)", in: DischargeInput{Reason: DischargeOther, DischargeDate: "2026-03-15"},
			want: []fr{{"discharge_date", RuleDischargeNotFuture}}},
		{name: "the day before the start", in: DischargeInput{Reason: DischargeTransferred, DischargeDate: "2026-01-09"},
			want: []fr{{"discharge_date", RuleDischargeNotBeforeStart}}},
		{name: "not a date", in: DischargeInput{Reason: DischargeTerminated, DischargeDate: "2026-02-30"},
			want: []fr{{"discharge_date", RuleDateValid}}},
		{name: "unknown reason and not a date", in: DischargeInput{Reason: "", DischargeDate: "2026-13-01"},
			want: []fr{{"reason", RuleDischargeReasonKnown}, {"discharge_date", RuleDateValid}}},
		{name: "start still ahead: before the start and in the future", episode: func(e *CareEpisode) { e.StartDate = NewDate(2026, 3, 20) },
			in:   DischargeInput{Reason: DischargeDroppedOut, DischargeDate: "2026-03-16"},
			want: []fr{{"discharge_date", RuleDischargeNotBeforeStart}, {"discharge_date", RuleDischargeNotFuture}}},
		{name: "already discharged", episode: func(e *CareEpisode) { e.Status = EpisodeDischarged },
			in: DischargeInput{Reason: DischargeCompleted, DischargeDate: "2026-03-01"}, precond: true},
		{name: "already discharged, date not real: the date is reported", episode: func(e *CareEpisode) { e.Status = EpisodeDischarged },
			in: DischargeInput{Reason: DischargeCompleted, DischargeDate: "2026-02-30"}, want: []fr{{"discharge_date", RuleDateValid}}},
		{name: "already discharged, date out of range: the state is reported", episode: func(e *CareEpisode) { e.Status = EpisodeDischarged },
			in: DischargeInput{Reason: DischargeCompleted, DischargeDate: "2025-01-01"}, precond: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := admitted
			if tt.episode != nil {
				tt.episode(&e)
			}
			got, err := e.Discharge(tt.in, chi, at, "clinician-1")
			var pe *PreconditionError
			if errors.As(err, &pe) != tt.precond {
				t.Fatalf("err = %v, want a precondition error: %v", err, tt.precond)
			}
			if tt.precond {
				return
			}
			var vs []fr
			var ve *ValidationError
			if errors.As(err, &ve) {
				for _, v := range ve.Violations {
					vs = append(vs, fr{v.Field, v.Rule})
					if v.Msg == "" {
						t.Errorf("%s/%s has no message", v.Field, v.Rule)
					}
				}
			} else if err != nil {
				t.Fatalf("unexpected error %T: %v", err, err)
			}
			if !slices.Equal(vs, tt.want) {
				t.Fatalf("violations = %v, want %v", vs, tt.want)
			}
			if len(tt.want) > 0 {
				return
			}
			if got.Status != EpisodeDischarged || got.DischargeReason != tt.in.Reason || got.DischargeDate.String() != tt.in.DischargeDate ||
				got.DischargedBy != "clinician-1" || got.DischargeNote != tt.wantNote || got.ID != "e1" || got.StartDate != admitted.StartDate {
				t.Errorf("discharged episode = %+v", got)
			}
			if want := time.Date(2026, 3, 15, 3, 30, 0, 987654000, time.UTC); !got.DischargedAt.Equal(want) || got.DischargedAt.Location() != time.UTC {
				t.Errorf("discharged at %v, want %v UTC", got.DischargedAt, want)
			}
		})
	}
	if admitted.Status != EpisodeAdmitted {
		t.Error("Discharge changed the episode it was called on")
	}
}
