package domain

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestAdmitReferral(t *testing.T) {
	firstContact := time.Date(2026, 3, 12, 15, 4, 5, 0, time.UTC)
	riverside := "0190a000-0000-7000-8000-000000000001"
	type want struct {
		pre        bool // a *PreconditionError
		violations []fr
		program    string
	}
	tests := []struct {
		name       string
		status     ReferralStatus
		clinicID   string // the referral's; default riverside
		population string
		recommend  string
		override   string
		noAssess   bool
		program    string
		want       want
	}{
		{name: "adult, default program", want: want{program: ProgramAdultIOP}},
		{name: "adult, program named", program: ProgramAdultIOP, want: want{program: ProgramAdultIOP}},
		{name: "adolescent, default program", population: PopulationAdolescent, want: want{program: ProgramAdolescentIOP}},
		{name: "adolescent, program named", population: PopulationAdolescent, program: ProgramAdolescentIOP, want: want{program: ProgramAdolescentIOP}},
		{name: "adolescent to the adult program", population: PopulationAdolescent, program: ProgramAdultIOP,
			want: want{violations: []fr{{"program", RuleProgramPopulation}}}},
		{name: "adult to the adolescent program", program: ProgramAdolescentIOP, want: want{violations: []fr{{"program", RuleProgramPopulation}}}},
		{name: "unknown program", program: "residential", want: want{violations: []fr{{"program", RuleProgramKnown}}}},
		{name: "referral of another clinic", clinicID: "0190a000-0000-7000-8000-000000000002",
			want: want{violations: []fr{{"clinic_id", RuleReferralClinic}}}},
		{name: "recommended 2.5, overridden to 2.1", recommend: "2.5", override: "2.1", want: want{program: ProgramAdultIOP}},
		{name: "assessed for 3.7-WM", recommend: "3.7-WM", want: want{pre: true}},
		{name: "assessed for 1", recommend: "1", want: want{pre: true}},
		{name: "recommended 2.1, overridden to 2.5", override: "2.5", want: want{pre: true}},
		{name: "no assessment", noAssess: true, want: want{pre: true}},
		{name: "screened", status: StatusScreened, want: want{pre: true}},
		{name: "already admitted", status: StatusAdmitted, want: want{pre: true}},
		{name: "closed", status: StatusClosed, want: want{pre: true}},
		{name: "state before fields", status: StatusNew, program: "residential", want: want{pre: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Referral{ID: "r1", ClinicID: riverside, Status: StatusAssessed, FirstContactAt: firstContact, Phone: "+13125550100"}
			if tt.status != "" {
				r.Status = tt.status
			}
			if tt.clinicID != "" {
				r.ClinicID = tt.clinicID
			}
			a := &Assessment{ID: "a1", ReferralID: "r1", Population: PopulationAdult, RecommendedLevel: "2.1", FinalLevel: "2.1"}
			if tt.population != "" {
				a.Population = tt.population
			}
			if tt.recommend != "" {
				a.RecommendedLevel, a.FinalLevel = tt.recommend, tt.recommend
			}
			if tt.override != "" {
				a.OverrideLevel, a.FinalLevel = tt.override, tt.override
			}
			if tt.noAssess {
				a = nil
			}
			in := validInput()
			in.Program = tt.program
			adm, err := AdmitReferral(in, chicago(t), r, a, now, "p1", "e1")
			var pe *PreconditionError
			var ve *ValidationError
			switch {
			case tt.want.pre:
				if !errors.As(err, &pe) {
					t.Fatalf("err = %v, want a precondition error", err)
				}
			case tt.want.violations != nil:
				if !errors.As(err, &ve) {
					t.Fatalf("err = %v, want violations", err)
				}
				var got []fr
				for _, v := range ve.Violations {
					got = append(got, fr{v.Field, v.Rule})
				}
				if !slices.Equal(got, tt.want.violations) {
					t.Fatalf("violations = %v, want %v", got, tt.want.violations)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if adm.Program != tt.want.program || adm.ReferralID != "r1" || adm.LevelOfCare != "2.1" ||
					!adm.FirstContactAt.Equal(firstContact) || adm.PatientID != "p1" || adm.Phone != "+13125550100" {
					t.Fatalf("admission = %+v", adm)
				}
			}
		})
	}
}

func TestDirectAdmissionProgram(t *testing.T) {
	in := validInput()
	a, err := NewAdmission(in, chicago(t), now, "p1", "e1")
	if err != nil {
		t.Fatal(err)
	}
	if a.Program != ProgramAdultIOP || a.ReferralID != "" || a.LevelOfCare != "" || !a.FirstContactAt.Equal(a.AdmittedAt) || a.Phone != "" {
		t.Errorf("direct admission = %+v: want adult-iop, first contact = admission", a)
	}
	in.Program = ProgramAdolescentIOP
	if a, err = NewAdmission(in, chicago(t), now, "p1", "e1"); err != nil || a.Program != ProgramAdolescentIOP {
		t.Errorf("adolescent program: %v %v", a.Program, err)
	}
	in.Program = "php"
	_, err = NewAdmission(in, chicago(t), now, "p1", "e1")
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Violations) != 1 || ve.Violations[0].Field != "program" || ve.Violations[0].Rule != RuleProgramKnown {
		t.Errorf("unknown program: %v", err)
	}
}
