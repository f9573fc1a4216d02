package intake_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/services/intake/demo"
)

// rfDimensionNote is clinical free text that must never leave intake.
const rfDimensionNote = "Sleeps on a cousin's couch in Rogers Park"

// rfAssessment rates the six dimensions 1, 1, 2, 2, 2, 1 with anxiety flagged after completed
// detox: the 3rd edition rules recommend 2.1 (intensive outpatient).
func rfAssessment(referralID, key string) *intakev1.RecordAssessmentRequest {
	m := &intakev1.RecordAssessmentRequest{
		ReferralId: referralID, Population: intakev1.Population_POPULATION_ADULT,
		Withdrawal:     intakev1.WithdrawalStatus_WITHDRAWAL_STATUS_DETOX_COMPLETED,
		CoOccurring:    []intakev1.CoOccurringCondition{intakev1.CoOccurringCondition_CO_OCCURRING_CONDITION_ANXIETY},
		IdempotencyKey: key,
	}
	for i, r := range []int32{1, 1, 2, 2, 2, 1} {
		d := &intakev1.DimensionRating{Dimension: int32(i + 1), Rating: r}
		if i == 5 {
			d.Notes = rfDimensionNote
		}
		m.Dimensions = append(m.Dimensions, d)
	}
	return m
}

func (e *env) rfAssess(tok string, m *intakev1.RecordAssessmentRequest) (*connect.Response[intakev1.RecordAssessmentResponse], error) {
	return e.client.RecordAssessment(context.Background(), rfReq(tok, m))
}

func (e *env) rfReferOut(tok string, m *intakev1.ReferOutRequest) (*connect.Response[intakev1.ReferOutResponse], error) {
	return e.client.ReferOut(context.Background(), rfReq(tok, m))
}

// rfAssessed creates a referral of person n, screens it and records m's assessment of it
// (m's referral id is filled in).
func (e *env) rfAssessed(t *testing.T, tok string, n int, m *intakev1.RecordAssessmentRequest) (*intakev1.Referral, *intakev1.Assessment) {
	t.Helper()
	r := e.rfScreened(t, tok, rfPerson(fmt.Sprintf("assessed-%04d", n), n))
	m.ReferralId = r.GetReferralId()
	resp, err := e.rfAssess(tok, m)
	if err != nil {
		t.Fatalf("record assessment: %v", err)
	}
	return r, resp.Msg.GetAssessment()
}

func TestRecordAssessment(t *testing.T) {
	e := start(t)
	tok := e.rfTokens(t)
	ctx := context.Background()
	r := e.rfScreened(t, tok.coordinator, rfReferral("assess-ref-0001"))
	id := r.GetReferralId()

	// Not screened yet: refused, nothing written.
	early := e.rfCreate(t, tok.coordinator, rfPerson("assess-ref-0002", 1))
	rows := e.rfRows(t)
	_, err := e.rfAssess(tok.clinician, rfAssessment(early.GetReferralId(), "assess-early-1"))
	rfCode(t, err, connect.CodeFailedPrecondition)
	// Wrong role; a referral of a clinic the caller may not see.
	_, err = e.rfAssess(tok.operator, rfAssessment(id, "assess-role-1"))
	rfCode(t, err, connect.CodePermissionDenied)
	_, err = e.rfAssess(tok.billing, rfAssessment(id, "assess-role-2"))
	rfCode(t, err, connect.CodePermissionDenied)
	_, err = e.rfAssess(tok.lakeview, rfAssessment(id, "assess-role-3"))
	rfCode(t, err, connect.CodeNotFound)
	if got := e.rfRows(t); got != rows {
		t.Errorf("rows after a refused assessment = %v, want %v", got, rows)
	}

	before := time.Now()
	resp, err := e.rfAssess(tok.clinician, rfAssessment(id, "assess-0001"))
	if err != nil {
		t.Fatal(err)
	}
	a := resp.Msg.GetAssessment()
	if resp.Msg.GetReplayed() || a.GetRecommendedLevel() != "2.1" || a.GetFinalLevel() != "2.1" || a.GetOverrideLevel() != "" ||
		a.GetEdition() != "asam-3" || a.GetAssessedBy() != "clinician-1" || a.GetReferralId() != id ||
		a.GetClinicId() != demo.RiversideClinicID || len(a.GetRecommendationReasons()) == 0 || a.GetAssessedAt().AsTime().Before(before.Add(-time.Second)) {
		t.Errorf("assessment = %v", a)
	}
	if len(a.GetDimensions()) != 6 || a.GetDimensions()[5].GetNotes() != rfDimensionNote || a.GetDimensions()[2].GetRating() != 2 {
		t.Errorf("dimensions = %v", a.GetDimensions())
	}
	// Stored, and the referral is assessed.
	var ratings []int32
	var recommended, final string
	var reasons []string
	if err := e.Pool.QueryRow(ctx, `SELECT ratings, recommended_level, final_level, recommendation_reasons FROM assessments WHERE id = $1`,
		a.GetAssessmentId()).Scan(&ratings, &recommended, &final, &reasons); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ratings, []int32{1, 1, 2, 2, 2, 1}) || recommended != "2.1" || final != "2.1" || !slices.Equal(reasons, a.GetRecommendationReasons()) {
		t.Errorf("row: ratings %v, recommended %s, final %s, reasons %q", ratings, recommended, final, reasons)
	}
	if got, _ := e.rfGet(tok.coordinator, id); got.GetStatus() != intakev1.ReferralStatus_REFERRAL_STATUS_ASSESSED {
		t.Errorf("referral status = %v", got.GetStatus())
	}

	// AssessmentRecorded: levels only, no ratings or notes; and the status change.
	envs, raw := e.rfEvents(t, rfSubjectAssessed, 1)
	ev := rfPayload(t, envs[0], &intakev1.AssessmentRecorded{})
	want := &intakev1.AssessmentRecorded{
		AssessmentId: a.GetAssessmentId(), ReferralId: id, ClinicId: demo.RiversideClinicID, Edition: "asam-3",
		Population: intakev1.Population_POPULATION_ADULT, RecommendedLevel: "2.1", FinalLevel: "2.1", AssessedAt: a.GetAssessedAt(),
	}
	if !proto.Equal(ev, want) {
		t.Errorf("event =\n%v\nwant\n%v", ev, want)
	}
	if strings.Contains(string(raw[0]), "Rogers Park") || strings.Contains(string(raw[0]), "Dimension") {
		t.Error("AssessmentRecorded carries notes or reasons")
	}
	envs, _ = e.rfEvents(t, rfSubjectStatusChanged, 3) // contacted, screened, assessed
	last := rfPayload(t, envs[2], &intakev1.ReferralStatusChanged{})
	if last.GetFrom() != intakev1.ReferralStatus_REFERRAL_STATUS_SCREENED || last.GetTo() != intakev1.ReferralStatus_REFERRAL_STATUS_ASSESSED ||
		!last.GetChangedAt().AsTime().Equal(a.GetAssessedAt().AsTime()) {
		t.Errorf("status event = %v", last)
	}
	if strings.Contains(e.Logs.String(), "Rogers Park") {
		t.Error("logs carry assessment notes")
	}

	t.Run("repeated key", func(t *testing.T) {
		rows := e.rfRows(t)
		again, err := e.rfAssess(tok.clinician, rfAssessment(id, "assess-0001"))
		if err != nil {
			t.Fatal(err)
		}
		if !again.Msg.GetReplayed() || !proto.Equal(again.Msg.GetAssessment(), a) {
			t.Errorf("repeat = %v, want the first assessment replayed", again.Msg)
		}
		if got := e.rfRows(t); got != rows {
			t.Errorf("rows after a repeat = %v, want %v", got, rows)
		}
		// A new key on an assessed referral: it is no longer screened.
		_, err = e.rfAssess(tok.clinician, rfAssessment(id, "assess-0002"))
		rfCode(t, err, connect.CodeFailedPrecondition)
		// The same key for another request.
		m := rfAssessment(id, "assess-0001")
		m.Dimensions[0].Rating = 0
		_, err = e.rfAssess(tok.clinician, m)
		rfCode(t, err, connect.CodeFailedPrecondition)
		e.rfEvents(t, rfSubjectAssessed, 1)
	})
}

func TestAssessmentOverride(t *testing.T) {
	e := start(t)
	tok := e.rfTokens(t)
	r := e.rfScreened(t, tok.coordinator, rfReferral("override-ref-1"))
	id := r.GetReferralId()

	tests := []struct {
		name string
		edit func(*intakev1.RecordAssessmentRequest)
		want []string
	}{
		// A rule over two fields, reported on the field to fill in.
		{name: "override without reason", edit: func(m *intakev1.RecordAssessmentRequest) { m.OverrideLevel = "2.5" },
			want: []string{"override_reason assessment.override_reason"}},
		{name: "override with a blank reason", edit: func(m *intakev1.RecordAssessmentRequest) { m.OverrideLevel, m.OverrideReason = "2.5", "   " },
			want: []string{"override_reason assessment.override_reason"}},
		{name: "override to an unknown level", edit: func(m *intakev1.RecordAssessmentRequest) { m.OverrideLevel, m.OverrideReason = "2.7", "x" },
			want: []string{"override_level level.known"}},
		{name: "override to the recommendation", edit: func(m *intakev1.RecordAssessmentRequest) { m.OverrideLevel, m.OverrideReason = "2.1", "agree" },
			want: []string{"override_level override_level.differs"}},
		{name: "unknown edition", edit: func(m *intakev1.RecordAssessmentRequest) { m.Edition = "asam-9" },
			want: []string{"edition edition.known"}},
		{name: "rating out of range", edit: func(m *intakev1.RecordAssessmentRequest) { m.Dimensions[1].Rating = 7 },
			want: []string{"dimensions[1].rating rating.range"}},
		{name: "dimension 0", edit: func(m *intakev1.RecordAssessmentRequest) { m.Dimensions[0].Dimension = 0 },
			want: []string{"dimensions assessment.dimensions_unique", "dimensions[0].dimension dimension.range"}},
		{name: "a dimension twice", edit: func(m *intakev1.RecordAssessmentRequest) { m.Dimensions[0].Dimension = 2 },
			want: []string{"dimensions assessment.dimensions_unique"}},
		{name: "five dimensions", edit: func(m *intakev1.RecordAssessmentRequest) { m.Dimensions = m.Dimensions[1:] },
			want: []string{"dimensions repeated.min_items"}},
		{name: "no population or withdrawal status", edit: func(m *intakev1.RecordAssessmentRequest) { m.Population, m.Withdrawal = 0, 0 },
			want: []string{"population enum.not_in", "withdrawal enum.not_in"}},
	}
	rows := e.rfRows(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := rfAssessment(id, fmt.Sprintf("override-bad-%04d", i))
			tt.edit(m)
			_, err := e.rfAssess(tok.clinician, m)
			if got := rfViolations(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("violations = %q, want %q", got, tt.want)
			}
		})
	}
	if got := e.rfRows(t); got != rows {
		t.Errorf("rows after refused assessments = %v, want %v", got, rows)
	}

	m := rfAssessment(id, "override-0001")
	m.OverrideLevel, m.OverrideReason = "2.5", "Two relapses within a month of finishing IOP last year"
	resp, err := e.rfAssess(tok.clinician, m)
	if err != nil {
		t.Fatal(err)
	}
	a := resp.Msg.GetAssessment()
	if a.GetRecommendedLevel() != "2.1" || a.GetOverrideLevel() != "2.5" || a.GetOverrideReason() != m.OverrideReason || a.GetFinalLevel() != "2.5" {
		t.Errorf("assessment = %v: want the recommendation and the override both kept", a)
	}
	var rec, over, reason, final string
	if err := e.Pool.QueryRow(context.Background(), `SELECT recommended_level, override_level, override_reason, final_level FROM assessments WHERE id = $1`,
		a.GetAssessmentId()).Scan(&rec, &over, &reason, &final); err != nil {
		t.Fatal(err)
	}
	if rec != "2.1" || over != "2.5" || reason != m.OverrideReason || final != "2.5" {
		t.Errorf("row = %s %s %q %s", rec, over, reason, final)
	}
	envs, raw := e.rfEvents(t, rfSubjectAssessed, 1)
	ev := rfPayload(t, envs[0], &intakev1.AssessmentRecorded{})
	if !ev.GetOverridden() || ev.GetRecommendedLevel() != "2.1" || ev.GetFinalLevel() != "2.5" {
		t.Errorf("event = %v", ev)
	}
	if strings.Contains(string(raw[0]), "relapses") {
		t.Error("the event carries the override reason")
	}
}

func TestReferOut(t *testing.T) {
	e := start(t)
	tok := e.rfTokens(t)
	ctx := context.Background()

	// From assessed (detox needed: withdrawal management recommended).
	detox := rfAssessment("", "refer-assess-1")
	detox.Withdrawal, detox.Dimensions[0].Rating = intakev1.WithdrawalStatus_WITHDRAWAL_STATUS_DETOX_NEEDED, 3
	r, a := e.rfAssessed(t, tok.coordinator, 1, detox)
	if a.GetFinalLevel() != "3.7-WM" {
		t.Fatalf("final level %q, want 3.7-WM", a.GetFinalLevel())
	}
	m := &intakev1.ReferOutRequest{ReferralId: r.GetReferralId(), Level: "3.7-WM", Destination: "Mercy Detox Unit",
		Reason: "Needs medically monitored withdrawal first", IdempotencyKey: "refer-0001"}
	resp, err := e.rfReferOut(tok.clinician, m)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Msg.GetReplayed() || resp.Msg.GetReferral().GetStatus() != intakev1.ReferralStatus_REFERRAL_STATUS_REFERRED_OUT {
		t.Errorf("response = %v", resp.Msg)
	}
	var level, dest, reason string
	if err := e.Pool.QueryRow(ctx, `SELECT referred_out_level, referred_out_to, referred_out_reason FROM referrals WHERE id = $1`,
		r.GetReferralId()).Scan(&level, &dest, &reason); err != nil || level != "3.7-WM" || dest != m.Destination || reason != m.Reason {
		t.Errorf("stored decision = %q %q %q (%v)", level, dest, reason, err)
	}
	envs, raw := e.rfEvents(t, rfSubjectReferredOut, 1)
	ev := rfPayload(t, envs[0], &intakev1.PatientReferredOut{})
	if ev.GetReferralId() != r.GetReferralId() || ev.GetClinicId() != demo.RiversideClinicID || ev.GetLevel() != "3.7-WM" || ev.GetDecidedAt() == nil {
		t.Errorf("event = %v", ev)
	}
	if strings.Contains(string(raw[0]), "Mercy") || strings.Contains(string(raw[0]), "withdrawal first") {
		t.Error("PatientReferredOut carries the destination or the reason")
	}
	statusEvents, _ := e.rfEvents(t, rfSubjectStatusChanged, 4) // contacted, screened, assessed, referred out
	if last := rfPayload(t, statusEvents[3], &intakev1.ReferralStatusChanged{}); last.GetFrom() != intakev1.ReferralStatus_REFERRAL_STATUS_ASSESSED ||
		last.GetTo() != intakev1.ReferralStatus_REFERRAL_STATUS_REFERRED_OUT {
		t.Errorf("status event = %v", last)
	}

	t.Run("repeated key", func(t *testing.T) {
		rows := e.rfRows(t)
		again, err := e.rfReferOut(tok.clinician, m)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Msg.GetReplayed() || !proto.Equal(again.Msg.GetReferral(), resp.Msg.GetReferral()) {
			t.Errorf("repeat = %v", again.Msg)
		}
		if got := e.rfRows(t); got != rows {
			t.Errorf("rows after a repeat = %v, want %v", got, rows)
		}
		e.rfEvents(t, rfSubjectReferredOut, 1)
	})
	t.Run("referred out is final", func(t *testing.T) {
		m2 := proto.CloneOf(m)
		m2.IdempotencyKey = "refer-0002"
		_, err := e.rfReferOut(tok.clinician, m2)
		rfCode(t, err, connect.CodeFailedPrecondition)
		_, err = e.rfMove(tok.coordinator, r.GetReferralId(), intakev1.ReferralStatus_REFERRAL_STATUS_CLOSED, "")
		rfCode(t, err, connect.CodeFailedPrecondition)
	})
	t.Run("from screened", func(t *testing.T) {
		s := e.rfScreened(t, tok.coordinator, rfPerson("refer-ref-2", 2))
		resp, err := e.rfReferOut(tok.coordinator, &intakev1.ReferOutRequest{ReferralId: s.GetReferralId(), Level: "2.5",
			Destination: "Lakeshore PHP", Reason: "closer to home", IdempotencyKey: "refer-0003"})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Msg.GetReferral().GetStatus() != intakev1.ReferralStatus_REFERRAL_STATUS_REFERRED_OUT {
			t.Errorf("status = %v", resp.Msg.GetReferral().GetStatus())
		}
	})
	t.Run("refused", func(t *testing.T) {
		fresh := e.rfCreate(t, tok.coordinator, rfPerson("refer-ref-3", 3))
		rows := e.rfRows(t)
		req := func(id, level, key string) *intakev1.ReferOutRequest {
			return &intakev1.ReferOutRequest{ReferralId: id, Level: level, Destination: "x", Reason: "y", IdempotencyKey: key}
		}
		_, err := e.rfReferOut(tok.coordinator, req(fresh.GetReferralId(), "2.5", "refer-bad-1"))
		rfCode(t, err, connect.CodeFailedPrecondition) // new: not screened yet
		if got := e.rfRows(t); got != rows {
			t.Errorf("rows after refusing a new referral = %v, want %v", got, rows)
		}
		s := e.rfScreened(t, tok.coordinator, rfPerson("refer-ref-4", 4))
		rows = e.rfRows(t)
		_, err = e.rfReferOut(tok.coordinator, req(s.GetReferralId(), "2.7", "refer-bad-2"))
		if got := rfViolations(t, err); !slices.Equal(got, []string{"level level.known"}) {
			t.Errorf("unknown level: %v", got)
		}
		bad := req(s.GetReferralId(), "2.5", "refer-bad-3")
		bad.Destination, bad.Reason = " ", "\n"
		_, err = e.rfReferOut(tok.coordinator, bad)
		if got := rfViolations(t, err); !slices.Equal(got, []string{"destination text.not_blank", "reason text.not_blank"}) {
			t.Errorf("blank destination and reason: %v", got)
		}
		_, err = e.rfReferOut(tok.operator, req(s.GetReferralId(), "2.5", "refer-bad-4"))
		rfCode(t, err, connect.CodePermissionDenied)
		_, err = e.rfReferOut(tok.lakeview, req(s.GetReferralId(), "2.5", "refer-bad-5"))
		rfCode(t, err, connect.CodeNotFound)
		if got := e.rfRows(t); got != rows {
			t.Errorf("rows after refused calls = %v, want %v", got, rows)
		}
	})
}

func TestAdmitFromReferral(t *testing.T) {
	e := start(t)
	tok := e.rfTokens(t)
	ctx := context.Background()
	admitReq := func(referralID, key string) *intakev1.AdmitPatientRequest {
		m := validRequest(key)
		m.ReferralId = referralID
		return m
	}

	r, a := e.rfAssessed(t, tok.coordinator, 1, rfAssessment("", "admit-assess-1"))
	if a.GetFinalLevel() != "2.1" {
		t.Fatalf("final level %q", a.GetFinalLevel())
	}
	resp, err := e.admit(tok.coordinator, admitReq(r.GetReferralId(), "admit-ref-0001"))
	if err != nil {
		t.Fatal(err)
	}
	patientID, episodeID := resp.Msg.GetPatientId(), resp.Msg.GetEpisodeId()

	// The referral is admitted with the patient's id; the episode keeps where it came from.
	got, err := e.rfGet(tok.coordinator, r.GetReferralId())
	if err != nil {
		t.Fatal(err)
	}
	if got.GetStatus() != intakev1.ReferralStatus_REFERRAL_STATUS_ADMITTED || got.GetPatientId() != patientID {
		t.Errorf("referral = %v", got)
	}
	var refID, program, level string
	var firstContact time.Time
	if err := e.Pool.QueryRow(ctx, `SELECT referral_id::text, program, first_contact_at, level_of_care FROM episodes WHERE id = $1`,
		episodeID).Scan(&refID, &program, &firstContact, &level); err != nil {
		t.Fatal(err)
	}
	if refID != r.GetReferralId() || program != "adult-iop" || !firstContact.Equal(r.GetFirstContactAt().AsTime()) || level != "2.1" {
		t.Errorf("episode = %s %s %v %s", refID, program, firstContact, level)
	}

	// PatientAdmitted carries the referral, the program, the first contact and the level.
	envs, _ := e.rfEvents(t, rfSubjectAdmitted, 1)
	ev := rfPayload(t, envs[0], &intakev1.PatientAdmitted{})
	if ev.GetReferralId() != r.GetReferralId() || ev.GetProgram() != "adult-iop" || ev.GetLevelOfCare() != "2.1" ||
		!ev.GetFirstContactAt().AsTime().Equal(r.GetFirstContactAt().AsTime()) || ev.GetPatientId() != patientID ||
		!ev.GetFirstContactAt().AsTime().Before(ev.GetAdmittedAt().AsTime()) {
		t.Errorf("event = %v", ev)
	}
	statusEvents, _ := e.rfEvents(t, rfSubjectStatusChanged, 4) // contacted, screened, assessed, admitted
	if last := rfPayload(t, statusEvents[3], &intakev1.ReferralStatusChanged{}); last.GetTo() != intakev1.ReferralStatus_REFERRAL_STATUS_ADMITTED ||
		!last.GetChangedAt().AsTime().Equal(ev.GetAdmittedAt().AsTime()) {
		t.Errorf("status event = %v", last)
	}

	t.Run("repeated key", func(t *testing.T) {
		rows := e.rfRows(t)
		again, err := e.admit(tok.coordinator, admitReq(r.GetReferralId(), "admit-ref-0001"))
		if err != nil {
			t.Fatal(err)
		}
		if !again.Msg.GetReplayed() || again.Msg.GetPatientId() != patientID {
			t.Errorf("repeat = %v", again.Msg)
		}
		if got := e.rfRows(t); got != rows {
			t.Errorf("rows = %v, want %v", got, rows)
		}
		// Another key: the referral is admitted already.
		_, err = e.admit(tok.coordinator, admitReq(r.GetReferralId(), "admit-ref-0002"))
		rfCode(t, err, connect.CodeFailedPrecondition)
		if n := e.Count(t, "SELECT count(*) FROM episodes"); n != 1 {
			t.Errorf("%d episodes, want 1", n)
		}
	})

	t.Run("adolescent program", func(t *testing.T) {
		m := rfAssessment("", "admit-assess-2")
		m.Population = intakev1.Population_POPULATION_ADOLESCENT
		r, _ := e.rfAssessed(t, tok.coordinator, 2, m)
		// The adult program does not fit an adolescent assessment.
		wrong := admitReq(r.GetReferralId(), "admit-ref-0003")
		wrong.Program = "adult-iop"
		_, err := e.admit(tok.coordinator, wrong)
		if got := rfViolations(t, err); !slices.Equal(got, []string{"program program.population"}) {
			t.Errorf("mismatch: %v", got)
		}
		resp, err := e.admit(tok.coordinator, admitReq(r.GetReferralId(), "admit-ref-0004"))
		if err != nil {
			t.Fatal(err)
		}
		var program string
		if err := e.Pool.QueryRow(ctx, `SELECT program FROM episodes WHERE id = $1`, resp.Msg.GetEpisodeId()).Scan(&program); err != nil || program != "adolescent-iop" {
			t.Errorf("program = %q (%v)", program, err)
		}
	})

	t.Run("refused", func(t *testing.T) {
		detox := rfAssessment("", "admit-assess-3")
		detox.Withdrawal, detox.Dimensions[0].Rating = intakev1.WithdrawalStatus_WITHDRAWAL_STATUS_DETOX_NEEDED, 3
		wm, _ := e.rfAssessed(t, tok.coordinator, 3, detox)
		ok, _ := e.rfAssessed(t, tok.coordinator, 4, rfAssessment("", "admit-assess-4"))
		screened := e.rfScreened(t, tok.coordinator, rfPerson("admit-ref-s", 5))
		lakeM := rfPerson("admit-ref-l", 6)
		lakeM.ClinicId = demo.LakeviewClinicID
		lake := e.rfCreate(t, tok.network, lakeM)
		rows, episodes := e.rfRows(t), e.Count(t, "SELECT count(*) FROM episodes")

		// Assessed for withdrawal management: not an IOP admission.
		_, err := e.admit(tok.coordinator, admitReq(wm.GetReferralId(), "admit-bad-1"))
		rfCode(t, err, connect.CodeFailedPrecondition)
		// Not assessed yet.
		_, err = e.admit(tok.coordinator, admitReq(screened.GetReferralId(), "admit-bad-2"))
		rfCode(t, err, connect.CodeFailedPrecondition)
		// Another clinic than the referral's.
		other := admitReq(ok.GetReferralId(), "admit-bad-3")
		other.ClinicId = demo.LakeviewClinicID
		_, err = e.admit(tok.network, other)
		if got := rfViolations(t, err); !slices.Equal(got, []string{"clinic_id referral.clinic"}) {
			t.Errorf("other clinic: %v", got)
		}
		// A referral of a clinic the caller may not see (admitting at one it may see).
		_, err = e.admit(tok.coordinator, admitReq(lake.GetReferralId(), "admit-bad-4"))
		rfCode(t, err, connect.CodeNotFound)
		// A referral that does not exist.
		_, err = e.admit(tok.coordinator, admitReq("0190a000-0000-7000-8000-00000000beef", "admit-bad-5"))
		rfCode(t, err, connect.CodeNotFound)
		// Billing may not admit.
		_, err = e.admit(tok.billing, admitReq(ok.GetReferralId(), "admit-bad-6"))
		rfCode(t, err, connect.CodePermissionDenied)
		// A bad referral id.
		_, err = e.admit(tok.coordinator, admitReq("referral-7", "admit-bad-7"))
		if got := rfViolations(t, err); !slices.Equal(got, []string{"referral_id string.uuid"}) {
			t.Errorf("bad id: %v", got)
		}

		if got := e.rfRows(t); got != rows {
			t.Errorf("rows after refused admissions = %v, want %v", got, rows)
		}
		if n := e.Count(t, "SELECT count(*) FROM episodes"); n != episodes {
			t.Errorf("%d episodes, want %d", n, episodes)
		}
		for _, id := range []string{wm.GetReferralId(), ok.GetReferralId()} {
			if r, _ := e.rfGet(tok.coordinator, id); r.GetStatus() != intakev1.ReferralStatus_REFERRAL_STATUS_ASSESSED {
				t.Errorf("referral %s is %v after a refused admission", id, r.GetStatus())
			}
		}
	})
}
