package intake_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-health/trellis/pkg/auth"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/services/intake/demo"
)

func validCoverage(patientID, key string) *intakev1.SetCoverageRequest {
	return &intakev1.SetCoverageRequest{
		PatientId: patientID, PayerId: "medicaid-il", Plan: "Family Health Plan", MemberId: "MBR-884422", GroupNumber: "GRP-17",
		SubscriberRelationship: intakev1.SubscriberRelationship_SUBSCRIBER_RELATIONSHIP_SELF,
		EffectiveFrom:          "2026-01-01", EffectiveTo: "2026-12-31",
		Eligibility: intakev1.Eligibility_ELIGIBILITY_UNVERIFIED, Priority: intakev1.CoveragePriority_COVERAGE_PRIORITY_PRIMARY,
		IdempotencyKey: key,
	}
}

func (e *env) setCoverage(tok string, m *intakev1.SetCoverageRequest) (*connect.Response[intakev1.SetCoverageResponse], error) {
	return e.client.SetCoverage(context.Background(), ccReq(tok, m))
}

func (e *env) listCoverage(tok, patientID string) ([]*intakev1.Coverage, error) {
	resp, err := e.client.ListCoverage(context.Background(), ccReq(tok, &intakev1.ListCoverageRequest{PatientId: patientID}))
	if err != nil {
		return nil, err
	}
	return resp.Msg.GetCoverages(), nil
}

// coverageRows counts coverages, their versions, idempotency keys and outbox rows.
func (e *env) coverageRows(t *testing.T) [4]int {
	t.Helper()
	n := func(table string) int { return e.Count(t, "SELECT count(*) FROM "+table) }
	return [4]int{n("coverages"), n("coverage_versions"), n("idempotency_keys"), n("outbox")}
}

func TestSetCoverage(t *testing.T) {
	e := start(t)
	tok := e.Token(t, "biller-1", []string{"billing"}, []string{demo.RiversideClinicID})
	patient := e.ccPatient(t, demo.RiversideClinicID)

	// Add a primary.
	m := validCoverage(patient, "coverage-0001")
	resp, err := e.setCoverage(tok, m)
	if err != nil {
		t.Fatal(err)
	}
	primary := resp.Msg.GetCoverage()
	if u, err := uuid.Parse(primary.GetCoverageId()); err != nil || u.Version() != 7 {
		t.Errorf("coverage id %q is not a UUIDv7", primary.GetCoverageId())
	}
	want := &intakev1.Coverage{
		CoverageId: primary.GetCoverageId(), PatientId: patient, ClinicId: demo.RiversideClinicID, PayerId: "medicaid-il",
		Plan: m.Plan, MemberId: m.MemberId, GroupNumber: m.GroupNumber, SubscriberRelationship: m.SubscriberRelationship,
		EffectiveFrom: "2026-01-01", EffectiveTo: "2026-12-31", Eligibility: m.Eligibility, Priority: m.Priority,
		UpdatedAt: primary.GetUpdatedAt(),
	}
	if !proto.Equal(primary, want) || resp.Msg.GetReplayed() || primary.GetUpdatedAt() == nil {
		t.Fatalf("coverage =\n%v\nwant\n%v", primary, want)
	}

	// Add an open-ended secondary and a tertiary.
	sec := validCoverage(patient, "coverage-0002")
	sec.PayerId, sec.Priority, sec.EffectiveTo = "bcbs-il", intakev1.CoveragePriority_COVERAGE_PRIORITY_SECONDARY, ""
	sec.SubscriberRelationship = intakev1.SubscriberRelationship_SUBSCRIBER_RELATIONSHIP_SPOUSE
	resp, err = e.setCoverage(tok, sec)
	if err != nil {
		t.Fatal(err)
	}
	secondary := resp.Msg.GetCoverage()
	if secondary.GetEffectiveTo() != "" || secondary.GetPriority() != intakev1.CoveragePriority_COVERAGE_PRIORITY_SECONDARY {
		t.Errorf("secondary = %v", secondary)
	}
	ter := validCoverage(patient, "coverage-0003")
	ter.PayerId, ter.Priority = "aetna", intakev1.CoveragePriority_COVERAGE_PRIORITY_TERTIARY
	if _, err := e.setCoverage(tok, ter); err != nil {
		t.Fatal(err)
	}

	// Change the primary: verified eligible, ending in June.
	ch := validCoverage(patient, "coverage-0004")
	ch.CoverageId, ch.Eligibility, ch.EffectiveTo = primary.GetCoverageId(), intakev1.Eligibility_ELIGIBILITY_ELIGIBLE, "2026-06-30"
	resp, err = e.setCoverage(tok, ch)
	if err != nil {
		t.Fatal(err)
	}
	changed := resp.Msg.GetCoverage()
	if changed.GetCoverageId() != primary.GetCoverageId() || changed.GetEligibility() != intakev1.Eligibility_ELIGIBILITY_ELIGIBLE ||
		changed.GetEffectiveTo() != "2026-06-30" || !changed.GetUpdatedAt().AsTime().After(primary.GetUpdatedAt().AsTime()) {
		t.Errorf("changed = %v", changed)
	}

	// The same terms again, under a new key: nothing changes, no event.
	same := proto.CloneOf(ch)
	same.IdempotencyKey, same.MemberId = "coverage-0005", "  "+ch.MemberId+" "
	rows := e.coverageRows(t)
	resp, err = e.setCoverage(tok, same)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(resp.Msg.GetCoverage(), changed) || resp.Msg.GetReplayed() {
		t.Errorf("unchanged = %v, want %v", resp.Msg.GetCoverage(), changed)
	}
	if got := e.coverageRows(t); got != [4]int{rows[0], rows[1], rows[2] + 1, rows[3]} {
		t.Errorf("rows (coverages, versions, keys, outbox) = %v after a no-op change, want only a key more than %v", got, rows)
	}

	// History: the primary's two states.
	var history []string
	rs, err := e.Pool.Query(context.Background(), `SELECT version || ' ' || eligibility || ' ' || coalesce(effective_to::text, '-') || ' ' || changed_by
		FROM coverage_versions WHERE coverage_id = $1 ORDER BY version`, primary.GetCoverageId())
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var s string
		if err := rs.Scan(&s); err != nil {
			t.Fatal(err)
		}
		history = append(history, s)
	}
	if want := []string{"1 unverified 2026-12-31 biller-1", "2 eligible 2026-06-30 biller-1"}; !slices.Equal(history, want) {
		t.Errorf("history = %q, want %q", history, want)
	}

	// Listed by priority.
	list, err := e.listCoverage(tok, patient)
	if err != nil {
		t.Fatal(err)
	}
	var payers []string
	for _, c := range list {
		payers = append(payers, c.GetPayerId())
	}
	if !slices.Equal(payers, []string{"medicaid-il", "bcbs-il", "aetna"}) || !proto.Equal(list[0], changed) {
		t.Errorf("list = %v, want primary, secondary, tertiary", list)
	}

	// Events: four changes, each with the whole coverage.
	events := e.ccEvents(t, subjectCoverageChanged, 4)
	first := ccPayload(t, events[0], &intakev1.CoverageChanged{}, demo.RiversideClinicID)
	if !proto.Equal(first.GetCoverage(), primary) {
		t.Errorf("first CoverageChanged =\n%v\nwant\n%v", first.GetCoverage(), primary)
	}
	last := ccPayload(t, events[3], &intakev1.CoverageChanged{}, demo.RiversideClinicID)
	if !proto.Equal(last.GetCoverage(), changed) {
		t.Errorf("last CoverageChanged =\n%v\nwant\n%v", last.GetCoverage(), changed)
	}

	t.Run("at most one primary on any day", func(t *testing.T) {
		rows := e.coverageRows(t)
		over := validCoverage(patient, "coverage-0101")
		over.PayerId, over.EffectiveFrom, over.EffectiveTo = "cigna", "2026-06-30", "" // the primary's last day
		_, err := e.setCoverage(tok, over)
		ccCode(t, err, connect.CodeFailedPrecondition)
		var ce *connect.Error
		if !errors.As(err, &ce) {
			t.Fatal(err)
		}
		if msg := ce.Message(); !strings.Contains(msg, "priority primary") || !strings.Contains(msg, primary.GetCoverageId()) {
			t.Errorf("message %q does not name the priority and the coverage in the way", msg)
		}
		if got := e.coverageRows(t); got != rows {
			t.Errorf("rows = %v, want %v", got, rows)
		}
		// The day after the primary ends is free.
		over.IdempotencyKey, over.EffectiveFrom = "coverage-0102", "2026-07-01"
		if _, err := e.setCoverage(tok, over); err != nil {
			t.Fatal(err)
		}
		// Moving the first primary's end later would now overlap the new one.
		back := proto.CloneOf(ch)
		back.IdempotencyKey, back.EffectiveTo = "coverage-0103", ""
		_, err = e.setCoverage(tok, back)
		ccCode(t, err, connect.CodeFailedPrecondition)
		// An ineligible coverage claims no priority.
		inel := validCoverage(patient, "coverage-0104")
		inel.PayerId, inel.Eligibility = "humana", intakev1.Eligibility_ELIGIBILITY_INELIGIBLE
		if _, err := e.setCoverage(tok, inel); err != nil {
			t.Fatalf("ineligible primary: %v", err)
		}
		// Making it eligible is checked again.
		inel.IdempotencyKey, inel.Eligibility = "coverage-0105", intakev1.Eligibility_ELIGIBILITY_ELIGIBLE
		_, err = e.setCoverage(tok, inel)
		ccCode(t, err, connect.CodeFailedPrecondition)
	})

	t.Run("coverage of another patient", func(t *testing.T) {
		other := e.ccPatient(t, demo.RiversideClinicID)
		m := validCoverage(other, "coverage-0201")
		m.CoverageId = primary.GetCoverageId()
		_, err := e.setCoverage(tok, m)
		ccCode(t, err, connect.CodeNotFound)
		m.CoverageId, m.IdempotencyKey = uuid.NewString(), "coverage-0202"
		_, err = e.setCoverage(tok, m)
		ccCode(t, err, connect.CodeNotFound)
		list, err := e.listCoverage(tok, other)
		if err != nil || len(list) != 0 {
			t.Errorf("other patient's coverage = %v, %v; want none", list, err)
		}
	})
}

func TestSetCoverageRejectsBadInput(t *testing.T) {
	e := start(t)
	tok := e.Token(t, "coordinator-1", []string{"intake_coordinator"}, []string{demo.RiversideClinicID})
	patient := e.ccPatient(t, demo.RiversideClinicID)
	tests := []struct {
		name string
		edit func(*intakev1.SetCoverageRequest)
		want []string
	}{
		{name: "ends before it starts", edit: func(m *intakev1.SetCoverageRequest) { m.EffectiveTo = "2025-12-31" },
			want: []string{"effective_to effective_to.not_before_effective_from"}},
		{name: "30 February", edit: func(m *intakev1.SetCoverageRequest) { m.EffectiveFrom = "2026-02-30" },
			want: []string{"effective_from date.valid"}},
		{name: "31 April", edit: func(m *intakev1.SetCoverageRequest) { m.EffectiveTo = "2026-04-31" },
			want: []string{"effective_to date.valid"}},
		{name: "blank member id", edit: func(m *intakev1.SetCoverageRequest) { m.MemberId = "   " },
			want: []string{"member_id member_id.not_blank"}},
		{name: "dates out of range", edit: func(m *intakev1.SetCoverageRequest) {
			m.EffectiveFrom, m.EffectiveTo = "1026-01-01", time.Now().AddDate(6, 0, 0).Format(time.DateOnly)
		}, want: []string{"effective_from date.range", "effective_to date.range"}},
		{name: "shape: payer not a code, dates not dates, no member id", edit: func(m *intakev1.SetCoverageRequest) {
			m.PayerId, m.EffectiveFrom, m.EffectiveTo, m.MemberId = "Medicaid IL", "01/01/2026", "2026-1-1", ""
		}, want: []string{"effective_from string.pattern", "effective_to string.pattern", "member_id string.min_len", "payer_id string.pattern"}},
		{name: "shape: unspecified enums, no key", edit: func(m *intakev1.SetCoverageRequest) {
			m.SubscriberRelationship, m.Eligibility, m.Priority, m.IdempotencyKey = 0, 0, 0, ""
		}, want: []string{"eligibility enum.not_in", "idempotency_key string.min_len", "priority enum.not_in", "subscriber_relationship enum.not_in"}},
		{name: "shape: undefined priority, bad coverage id", edit: func(m *intakev1.SetCoverageRequest) {
			m.Priority, m.CoverageId = 9, "cov-1"
		}, want: []string{"coverage_id string.uuid", "priority enum.defined_only"}},
	}
	rows := e.coverageRows(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validCoverage(patient, fmt.Sprintf("bad-coverage-%04d", i))
			tt.edit(m)
			_, err := e.setCoverage(tok, m)
			if got := ccViolations(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("violations = %q, want %q (%v)", got, tt.want, err)
			}
			if got := e.coverageRows(t); got != rows {
				t.Errorf("rows (coverages, versions, keys, outbox) = %v, want %v", got, rows)
			}
		})
	}
}

func TestCoverageAuthAndIdempotency(t *testing.T) {
	e := start(t)
	biller := e.Token(t, "biller-1", []string{"billing"}, []string{demo.RiversideClinicID})
	patient := e.ccPatient(t, demo.RiversideClinicID)
	first, err := e.setCoverage(biller, validCoverage(patient, "auth-coverage-0000"))
	if err != nil {
		t.Fatal(err)
	}
	rows := e.coverageRows(t)

	lakeview := e.Token(t, "biller-lakeview", []string{"billing"}, []string{demo.LakeviewClinicID})
	clinician := e.Token(t, "clinician-1", []string{"clinician"}, []string{auth.AllClinics})
	operator := e.Token(t, "operator-1", []string{"operator"}, []string{auth.AllClinics})
	tests := []struct {
		name string
		call func() error
		want connect.Code
	}{
		{"set as clinician", func() error {
			_, err := e.setCoverage(clinician, validCoverage(patient, "auth-coverage-0001"))
			return err
		}, connect.CodePermissionDenied},
		{"list as operator", func() error { _, err := e.listCoverage(operator, patient); return err }, connect.CodePermissionDenied},
		{"set at another clinic", func() error {
			_, err := e.setCoverage(lakeview, validCoverage(patient, "auth-coverage-0002"))
			return err
		}, connect.CodeNotFound},
		{"list at another clinic", func() error { _, err := e.listCoverage(lakeview, patient); return err }, connect.CodeNotFound},
		{"set for an unknown patient", func() error {
			_, err := e.setCoverage(biller, validCoverage(uuid.NewString(), "auth-coverage-0003"))
			return err
		}, connect.CodeNotFound},
		// Same key, different request: the key is bound to the first one.
		{"same key, different request", func() error {
			m := validCoverage(patient, "auth-coverage-0000")
			m.Plan = "Another plan"
			_, err := e.setCoverage(biller, m)
			return err
		}, connect.CodeFailedPrecondition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ccCode(t, tt.call(), tt.want)
			if got := e.coverageRows(t); got != rows {
				t.Errorf("rows (coverages, versions, keys, outbox) = %v, want %v", got, rows)
			}
		})
	}

	t.Run("repeated key replays the first result", func(t *testing.T) {
		again, err := e.setCoverage(biller, validCoverage(patient, "auth-coverage-0000"))
		if err != nil {
			t.Fatal(err)
		}
		if !again.Msg.GetReplayed() || !proto.Equal(again.Msg.GetCoverage(), first.Msg.GetCoverage()) {
			t.Fatalf("repeat = %v, want %v replayed", again.Msg, first.Msg)
		}
		if got := e.coverageRows(t); got != rows {
			t.Errorf("rows = %v, want %v", got, rows)
		}
	})

	t.Run("coordinator and admin may set and list", func(t *testing.T) {
		for i, tok := range []string{
			e.intakeToken(t),
			e.Token(t, "admin-1", []string{"admin"}, []string{auth.AllClinics}),
		} {
			m := validCoverage(patient, fmt.Sprintf("auth-coverage-1%03d", i))
			m.CoverageId, m.Plan = first.Msg.GetCoverage().GetCoverageId(), fmt.Sprintf("plan %d", i)
			if _, err := e.setCoverage(tok, m); err != nil {
				t.Fatal(err)
			}
			if _, err := e.listCoverage(tok, patient); err != nil {
				t.Fatal(err)
			}
		}
	})
	if n := e.Count(t, "SELECT count(*) FROM coverage_versions"); n != 3 {
		t.Errorf("%d coverage versions, want 3", n)
	}
	e.ccEvents(t, subjectCoverageChanged, 3)
}
