package intake_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/rpc"
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/services/intake/demo"
)

const subjectDischarged = "trellis.intake.patient.discharged.v1"

// dischargeNote is PHI-like free text that must stay in intake's episodes table.
const dischargeNote = "Moved to Springfield with her aunt Wilhelmina"

// riversideToday is today's date in the Riverside clinic's zone (America/Chicago).
func riversideToday(t *testing.T) time.Time {
	loc, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	y, m, d := time.Now().In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// admitForDischarge admits a patient at Riverside through the API, starting 20 days ago,
// and returns the episode id.
func admitForDischarge(t *testing.T, e *env, key string) (episodeID, patientID, startDate string) {
	t.Helper()
	m := validRequest(key)
	m.StartDate = riversideToday(t).AddDate(0, 0, -20).Format(time.DateOnly)
	resp, err := e.admit(e.intakeToken(t), m)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Msg.GetEpisodeId(), resp.Msg.GetPatientId(), m.StartDate
}

func dischargeCall(e *env, tok string, m *intakev1.DischargePatientRequest) (*connect.Response[intakev1.DischargePatientResponse], error) {
	req := connect.NewRequest(m)
	if tok != "" {
		req.Header().Set("Authorization", "Bearer "+tok)
	}
	return e.client.DischargePatient(context.Background(), req)
}

func dischargeRequest(episodeID, date, key string) *intakev1.DischargePatientRequest {
	return &intakev1.DischargePatientRequest{
		EpisodeId: episodeID, Reason: intakev1.DischargeReason_DISCHARGE_REASON_COMPLETED,
		DischargeDate: date, Note: dischargeNote, IdempotencyKey: key,
	}
}

// episodeState is what a discharge changes: the episode's status and discharge columns, the
// idempotency keys and the outbox.
func episodeState(t *testing.T, e *env, episodeID string) string {
	t.Helper()
	var s string
	if err := e.Pool.QueryRow(context.Background(), `SELECT concat_ws('|', status, discharge_reason, discharge_date::text,
			discharged_at::text, discharge_note, discharged_by) FROM episodes WHERE id = $1`, episodeID).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s keys=%d outbox=%d", s, e.Count(t, "SELECT count(*) FROM idempotency_keys"), e.Count(t, "SELECT count(*) FROM outbox"))
}

func TestDischargePatient(t *testing.T) {
	e := start(t)
	episodeID, patientID, startDate := admitForDischarge(t, e, "discharge-admit-0001")
	tok := e.Token(t, "clinician-7", []string{"clinician"}, []string{demo.RiversideClinicID})
	date := riversideToday(t).AddDate(0, 0, -2).Format(time.DateOnly)

	before := time.Now()
	resp, err := dischargeCall(e, tok, dischargeRequest(episodeID, date, "discharge-0001"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Msg.GetReplayed() {
		t.Error("first discharge reported replayed")
	}
	ctx := context.Background()
	var program string
	if err := e.Pool.QueryRow(ctx, `SELECT program FROM episodes WHERE id = $1`, episodeID).Scan(&program); err != nil {
		t.Fatal(err)
	}
	got := proto.CloneOf(resp.Msg.GetEpisode())
	if got.GetAdmittedAt() == nil {
		t.Error("episode has no admitted_at")
	}
	got.AdmittedAt = nil
	want := &intakev1.Episode{
		EpisodeId: episodeID, PatientId: patientID, ClinicId: demo.RiversideClinicID, Program: program,
		ProgramTrack: "adult-evening", StartDate: startDate, Status: "discharged",
		DischargeReason: intakev1.DischargeReason_DISCHARGE_REASON_COMPLETED, DischargeDate: date,
	}
	if !proto.Equal(got, want) {
		t.Errorf("episode =\n%v\nwant\n%v", got, want)
	}

	// The row keeps the note and who discharged, when.
	var status, reason, rowDate, note, by string
	var at time.Time
	if err := e.Pool.QueryRow(ctx, `SELECT status, discharge_reason, discharge_date::text, discharge_note, discharged_by, discharged_at
		FROM episodes WHERE id = $1`, episodeID).Scan(&status, &reason, &rowDate, &note, &by, &at); err != nil {
		t.Fatal(err)
	}
	if status != "discharged" || reason != "completed" || rowDate != date || note != dischargeNote || by != "clinician-7" {
		t.Errorf("row = %s %s %s %q %s", status, reason, rowDate, note, by)
	}
	if at.Before(before.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
		t.Errorf("discharged_at %v is not the time of the call", at)
	}

	// The event, on INTAKE, with exactly its fields and no note.
	cons, err := e.JS.OrderedConsumer(ctx, "INTAKE", jetstream.OrderedConsumerConfig{FilterSubjects: []string{subjectDischarged}})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatalf("no PatientDischarged on INTAKE: %v", err)
	}
	if bytes.Contains(msg.Data(), []byte("Wilhelmina")) {
		t.Error("the event carries the note")
	}
	var envl eventsv1.Envelope
	if err := proto.Unmarshal(msg.Data(), &envl); err != nil {
		t.Fatal(err)
	}
	if envl.GetEventType() != "trellis.intake.v1.PatientDischarged" || envl.GetClinicId() != demo.RiversideClinicID || envl.GetProducer() != "intake" {
		t.Errorf("envelope = type %q clinic %q producer %q", envl.GetEventType(), envl.GetClinicId(), envl.GetProducer())
	}
	var ev intakev1.PatientDischarged
	if err := envl.GetPayload().UnmarshalTo(&ev); err != nil {
		t.Fatal(err)
	}
	wantEv := &intakev1.PatientDischarged{
		PatientId: patientID, EpisodeId: episodeID, ClinicId: demo.RiversideClinicID,
		Reason: intakev1.DischargeReason_DISCHARGE_REASON_COMPLETED, DischargeDate: date, StartDate: startDate,
	}
	if !proto.Equal(&ev, wantEv) {
		t.Errorf("payload =\n%v\nwant\n%v", &ev, wantEv)
	}

	t.Run("second discharge is failed_precondition and changes nothing", func(t *testing.T) {
		e.Relayed(t)
		was := episodeState(t, e, episodeID)
		m := dischargeRequest(episodeID, date, "discharge-0002")
		m.Reason = intakev1.DischargeReason_DISCHARGE_REASON_DROPPED_OUT
		_, err := dischargeCall(e, tok, m)
		if connect.CodeOf(err) != connect.CodeFailedPrecondition {
			t.Fatalf("code = %v (%v), want failed_precondition", connect.CodeOf(err), err)
		}
		if now := episodeState(t, e, episodeID); now != was {
			t.Errorf("state %s, was %s", now, was)
		}
		if n := e.StreamCount(t, "INTAKE", subjectDischarged); n != 1 {
			t.Errorf("%d PatientDischarged on INTAKE, want 1", n)
		}
	})

	t.Run("repeated idempotency key", func(t *testing.T) {
		again, err := dischargeCall(e, tok, dischargeRequest(episodeID, date, "discharge-0001"))
		if err != nil {
			t.Fatal(err)
		}
		if !again.Msg.GetReplayed() || !proto.Equal(again.Msg.GetEpisode(), resp.Msg.GetEpisode()) {
			t.Fatalf("repeat = %v, want the first episode %v replayed", again.Msg, resp.Msg)
		}
		other := dischargeRequest(episodeID, date, "discharge-0001")
		other.Note = "another note"
		if _, err := dischargeCall(e, tok, other); connect.CodeOf(err) != connect.CodeFailedPrecondition {
			t.Fatalf("same key, other request: code = %v (%v), want failed_precondition", connect.CodeOf(err), err)
		}
		e.Relayed(t)
		if n := e.StreamCount(t, "INTAKE", subjectDischarged); n != 1 {
			t.Errorf("%d PatientDischarged on INTAKE, want 1", n)
		}
	})

	// Logs carry ids, never the note.
	if logs := e.Logs.String(); !strings.Contains(logs, `"msg":"patient discharged"`) || strings.Contains(logs, "Wilhelmina") {
		t.Errorf("want a discharge log line without the note:\n%s", logs)
	}
}

func TestDischargePatientRejects(t *testing.T) {
	e := start(t)
	episodeID, _, startDate := admitForDischarge(t, e, "discharge-admit-0002")
	tok := e.Token(t, "coordinator-3", []string{"intake_coordinator"}, []string{auth.AllClinics})
	today := riversideToday(t)
	day := func(n int) string { return today.AddDate(0, 0, n).Format(time.DateOnly) }
	startDay, _ := time.Parse(time.DateOnly, startDate)

	t.Run("bad input", func(t *testing.T) {
		tests := []struct {
			name   string
			edit   func(*intakev1.DischargePatientRequest)
			fields []string
			rules  []string // checked when set
		}{
			{name: "date does not exist", edit: func(m *intakev1.DischargePatientRequest) { m.DischargeDate = "2026-02-30" },
				fields: []string{"discharge_date"}, rules: []string{"date.valid"}},
			{name: "before the start date", edit: func(m *intakev1.DischargePatientRequest) {
				m.DischargeDate = startDay.AddDate(0, 0, -1).Format(time.DateOnly)
			},
				fields: []string{"discharge_date"}, rules: []string{"discharge_date.not_before_start"}},
			{name: "tomorrow in the clinic's zone", edit: func(m *intakev1.DischargePatientRequest) { m.DischargeDate = day(1) },
				fields: []string{"discharge_date"}, rules: []string{"discharge_date.not_future"}},
			{name: "not YYYY-MM-DD", edit: func(m *intakev1.DischargePatientRequest) { m.DischargeDate = "3/1/2026" }, fields: []string{"discharge_date"}},
			{name: "no reason, no date", edit: func(m *intakev1.DischargePatientRequest) {
				m.Reason, m.DischargeDate = intakev1.DischargeReason_DISCHARGE_REASON_UNSPECIFIED, ""
			}, fields: []string{"discharge_date", "reason"}},
			{name: "bad episode id and key", edit: func(m *intakev1.DischargePatientRequest) { m.EpisodeId, m.IdempotencyKey = "episode-1", "short" },
				fields: []string{"episode_id", "idempotency_key"}},
			{name: "note too long", edit: func(m *intakev1.DischargePatientRequest) { m.Note = strings.Repeat("n", 2001) }, fields: []string{"note"}},
		}
		was := episodeState(t, e, episodeID)
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				m := dischargeRequest(episodeID, day(0), fmt.Sprintf("discharge-bad-%04d", i))
				tt.edit(m)
				_, err := dischargeCall(e, tok, m)
				if connect.CodeOf(err) != connect.CodeInvalidArgument {
					t.Fatalf("code = %v (%v), want invalid_argument", connect.CodeOf(err), err)
				}
				vs := rpc.Violations(err)
				slices.SortStableFunc(vs, func(a, b rpc.FieldViolation) int { return strings.Compare(a.Field, b.Field) })
				var fields, rules []string
				for _, v := range vs {
					fields, rules = append(fields, v.Field), append(rules, v.Rule)
				}
				if !slices.Equal(fields, tt.fields) {
					t.Errorf("fields = %v, want %v (%v)", fields, tt.fields, err)
				}
				if tt.rules != nil && !slices.Equal(rules, tt.rules) {
					t.Errorf("rules = %v, want %v", rules, tt.rules)
				}
				if now := episodeState(t, e, episodeID); now != was {
					t.Errorf("state %s, was %s", now, was)
				}
			})
		}
	})

	t.Run("who may discharge", func(t *testing.T) {
		lakeview := []string{demo.LakeviewClinicID}
		tests := []struct {
			name  string
			token string
			id    string
			want  connect.Code
		}{
			{"no token", "", episodeID, connect.CodeUnauthenticated},
			{"billing role", e.Token(t, "biller", []string{"billing"}, []string{auth.AllClinics}), episodeID, connect.CodePermissionDenied},
			{"operator role", e.Token(t, "op", []string{"operator"}, []string{auth.AllClinics}), episodeID, connect.CodePermissionDenied},
			// The episode is Riverside's: to Lakeview staff it does not exist.
			{"another clinic's episode", e.Token(t, "lv", []string{"clinician"}, lakeview), episodeID, connect.CodeNotFound},
			{"no clinics", e.Token(t, "lv2", []string{"intake_coordinator"}, nil), episodeID, connect.CodeNotFound},
			{"unknown episode", tok, "0190a000-0000-7000-8000-0000000000ee", connect.CodeNotFound},
		}
		was := episodeState(t, e, episodeID)
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := dischargeCall(e, tt.token, dischargeRequest(tt.id, day(0), fmt.Sprintf("discharge-auth-%04d", i)))
				if got := connect.CodeOf(err); got != tt.want {
					t.Fatalf("code = %v (%v), want %v", got, err, tt.want)
				}
				if now := episodeState(t, e, episodeID); now != was {
					t.Errorf("state %s, was %s", now, was)
				}
			})
		}
	})

	t.Run("today in the clinic's zone, by an admin of every clinic", func(t *testing.T) {
		admin := e.Token(t, "admin-2", []string{"admin"}, []string{auth.AllClinics})
		m := dischargeRequest(episodeID, day(0), "discharge-today")
		m.Note, m.Reason = "", intakev1.DischargeReason_DISCHARGE_REASON_TRANSFERRED
		resp, err := dischargeCall(e, admin, m)
		if err != nil {
			t.Fatal(err)
		}
		ep := resp.Msg.GetEpisode()
		if ep.GetDischargeDate() != day(0) || ep.GetDischargeReason() != intakev1.DischargeReason_DISCHARGE_REASON_TRANSFERRED || ep.GetStatus() != "discharged" {
			t.Errorf("episode = %v", ep)
		}
		if n := e.Count(t, "SELECT count(*) FROM episodes WHERE id = $1 AND discharge_note IS NULL AND discharged_by = 'admin-2'", episodeID); n != 1 {
			t.Error("empty note not stored as none, or wrong discharged_by")
		}
	})
}

// Concurrent discharges of one episode: under one key it is discharged once and every caller
// gets the same answer; under different keys exactly one wins and the rest are refused.
func TestDischargePatientConcurrent(t *testing.T) {
	e := start(t)
	tok := e.Token(t, "clinician-8", []string{"clinician"}, []string{demo.RiversideClinicID})
	date := riversideToday(t).Format(time.DateOnly)
	run := func(n int, key func(i int) string, episodeID string) ([]*intakev1.DischargePatientResponse, []error) {
		var wg sync.WaitGroup
		resps, errs := make([]*intakev1.DischargePatientResponse, n), make([]error, n)
		for i := range n {
			wg.Go(func() {
				r, err := dischargeCall(e, tok, dischargeRequest(episodeID, date, key(i)))
				if err == nil {
					resps[i] = r.Msg
				}
				errs[i] = err
			})
		}
		wg.Wait()
		return resps, errs
	}

	t.Run("same key", func(t *testing.T) {
		episodeID, _, _ := admitForDischarge(t, e, "discharge-admit-0003")
		resps, errs := run(6, func(int) string { return "discharge-same-key" }, episodeID)
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		fresh := 0
		for _, r := range resps {
			if !r.GetReplayed() {
				fresh++
			}
			if r.GetEpisode().GetStatus() != "discharged" {
				t.Errorf("episode = %v", r.GetEpisode())
			}
		}
		if fresh != 1 {
			t.Errorf("%d calls discharged, want 1", fresh)
		}
	})

	t.Run("different keys", func(t *testing.T) {
		episodeID, _, _ := admitForDischarge(t, e, "discharge-admit-0004")
		_, errs := run(6, func(i int) string { return fmt.Sprintf("discharge-race-%04d", i) }, episodeID)
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else if connect.CodeOf(err) != connect.CodeFailedPrecondition {
				t.Errorf("unexpected %v", err)
			}
		}
		if ok != 1 {
			t.Errorf("%d discharges succeeded, want 1", ok)
		}
	})

	e.Relayed(t)
	if n := e.StreamCount(t, "INTAKE", subjectDischarged); n != 2 {
		t.Errorf("%d PatientDischarged on INTAKE, want 2", n)
	}
}
