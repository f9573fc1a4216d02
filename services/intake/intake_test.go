package intake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/rpc"
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/pkg/testkit"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/intake/v1/intakev1connect"
	"github.com/trellis-health/trellis/services/intake"
	"github.com/trellis-health/trellis/services/intake/demo"
)

type testConfig struct{ service.Base }

// env is one intake service running in-process on a fresh database and an embedded JetStream,
// with the demo clinics seeded.
type env struct {
	*servicetest.Service
	client intakev1connect.IntakeServiceClient
}

func start(t *testing.T) *env {
	t.Helper()
	spec := intake.Spec(nil)
	var cfg testConfig
	s := servicetest.Start(t, spec, &cfg, map[string]string{"LOG_LEVEL": "debug", "NATS_STREAM_STORAGE": "memory"})
	systemScoped(t, s)
	if err := spec.Commands["seed-demo"](context.Background(), &service.Platform{Pool: s.Pool, Log: s.Log}, nil); err != nil {
		t.Fatal(err)
	}
	return &env{Service: s, client: intakev1connect.NewIntakeServiceClient(http.DefaultClient, s.URL)}
}

func (e *env) intakeToken(t *testing.T) string {
	return e.Token(t, "coordinator-1", []string{"intake_coordinator"}, []string{demo.RiversideClinicID})
}

func (e *env) admit(tok string, m *intakev1.AdmitPatientRequest) (*connect.Response[intakev1.AdmitPatientResponse], error) {
	req := connect.NewRequest(m)
	if tok != "" {
		req.Header().Set("Authorization", "Bearer "+tok)
	}
	return e.client.AdmitPatient(context.Background(), req)
}

func validRequest(key string) *intakev1.AdmitPatientRequest {
	return &intakev1.AdmitPatientRequest{
		GivenName: "Zebulon", FamilyName: "Quackenbush", DateOfBirth: "1987-06-05",
		ContactEmail: "zq.test@example.org", ClinicId: demo.RiversideClinicID, ProgramTrack: "adult-evening",
		StartDate: time.Now().AddDate(0, 0, 3).Format(time.DateOnly), IdempotencyKey: key,
	}
}

// counts are the rows of every table an admission writes, in a fixed order.
// counts is (patients, episodes, idempotency keys, admissions in the outbox). Each admission
// also writes a PatientContactRecorded row, checked where it matters.
func (e *env) counts(t *testing.T) [4]int {
	t.Helper()
	n := func(table string) int { return e.Count(t, "SELECT count(*) FROM "+table) }
	admitted := e.Count(t, "SELECT count(*) FROM outbox WHERE subject = $1", intake.SubjectPatientAdmitted)
	if contacts := e.Count(t, "SELECT count(*) FROM outbox WHERE subject = $1", intake.SubjectPatientContactRecorded); contacts != admitted {
		t.Errorf("outbox holds %d admissions but %d contact records", admitted, contacts)
	}
	return [4]int{n("patients"), n("episodes"), n("idempotency_keys"), admitted}
}

func TestAdmitPatient(t *testing.T) {
	e := start(t)
	m := validRequest("happy-path-0001")
	correlationID := bus.NewID()
	req := connect.NewRequest(m)
	req.Header().Set("Authorization", "Bearer "+e.intakeToken(t))
	req.Header().Set("Correlation-Id", correlationID)
	before := time.Now()
	resp, err := e.client.AdmitPatient(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	patientID, episodeID := resp.Msg.GetPatientId(), resp.Msg.GetEpisodeId()
	for _, id := range []string{patientID, episodeID} {
		if u, err := uuid.Parse(id); err != nil || u.Version() != 7 {
			t.Fatalf("id %q is not a UUIDv7", id)
		}
	}
	if resp.Msg.GetReplayed() {
		t.Error("first call reported replayed")
	}
	if got := resp.Header().Get("Correlation-Id"); got != correlationID {
		t.Errorf("response correlation id = %q, want %q", got, correlationID)
	}

	// Rows.
	ctx := context.Background()
	var clinicID, given, family string
	if err := e.Pool.QueryRow(ctx, `SELECT clinic_id::text, given_name, family_name
		FROM patients WHERE id = $1`, patientID).Scan(&clinicID, &given, &family); err != nil {
		t.Fatalf("patient row: %v", err)
	}
	dob, email := e.sealedField(t, "patients", "date_of_birth", patientID), e.sealedField(t, "patients", "contact_email", patientID)
	if clinicID != m.ClinicId || given != m.GivenName || family != m.FamilyName || dob != m.DateOfBirth || email != m.ContactEmail {
		t.Errorf("patient row = %s %s %s %s %s", clinicID, given, family, dob, email)
	}
	var epPatient, epClinic, track, startDate, status string
	var admittedAt time.Time
	if err := e.Pool.QueryRow(ctx, `SELECT patient_id::text, clinic_id::text, program_track, start_date::text, status, admitted_at
		FROM episodes WHERE id = $1`, episodeID).Scan(&epPatient, &epClinic, &track, &startDate, &status, &admittedAt); err != nil {
		t.Fatalf("episode row: %v", err)
	}
	if epPatient != patientID || epClinic != m.ClinicId || track != m.ProgramTrack || startDate != m.StartDate || status != "admitted" {
		t.Errorf("episode row = %s %s %s %s %s", epPatient, epClinic, track, startDate, status)
	}
	if admittedAt.Before(before.Add(-time.Second)) || admittedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("admitted_at %v is not the time of the call", admittedAt)
	}
	if got := e.counts(t); got != [4]int{1, 1, 1, 1} {
		t.Errorf("rows (patients, episodes, keys, outbox) = %v", got)
	}

	// The event, as published on the INTAKE stream.
	cons, err := e.JS.OrderedConsumer(ctx, "INTAKE", jetstream.OrderedConsumerConfig{FilterSubjects: []string{intake.SubjectPatientAdmitted}})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatalf("no PatientAdmitted on INTAKE: %v", err)
	}
	if msg.Subject() != "trellis.intake.patient.admitted.v1" {
		t.Errorf("subject = %s", msg.Subject())
	}
	var envl eventsv1.Envelope
	if err := proto.Unmarshal(msg.Data(), &envl); err != nil {
		t.Fatal(err)
	}
	if u, err := uuid.Parse(envl.GetEventId()); err != nil || u.Version() != 7 {
		t.Errorf("event id %q is not a UUIDv7", envl.GetEventId())
	}
	if got := msg.Headers().Get(bus.HeaderMsgID); got != envl.GetEventId() {
		t.Errorf("Nats-Msg-Id = %q, want the event id %q", got, envl.GetEventId())
	}
	if envl.GetEventType() != "trellis.intake.v1.PatientAdmitted" || envl.GetClinicId() != demo.RiversideClinicID ||
		envl.GetCorrelationId() != correlationID || envl.GetCausationId() == "" || envl.GetProducer() != "intake" {
		t.Errorf("envelope = type %q clinic %q correlation %q causation %q producer %q", envl.GetEventType(),
			envl.GetClinicId(), envl.GetCorrelationId(), envl.GetCausationId(), envl.GetProducer())
	}
	var ev intakev1.PatientAdmitted
	if err := envl.GetPayload().UnmarshalTo(&ev); err != nil {
		t.Fatal(err)
	}
	want := &intakev1.PatientAdmitted{
		PatientId: patientID, EpisodeId: episodeID, ClinicId: demo.RiversideClinicID, ProgramTrack: "adult-evening",
		StartDate: m.StartDate, ClinicTimeZone: "America/Chicago",
		Program: "adult-iop", // a direct admission: no referral_id or level_of_care; no contact details
	}
	got := proto.CloneOf(&ev)
	got.AdmittedAt, got.FirstContactAt = nil, nil
	if !proto.Equal(got, want) {
		t.Errorf("payload =\n%v\nwant\n%v", got, want)
	}
	if !ev.GetAdmittedAt().AsTime().Equal(admittedAt) {
		t.Errorf("event admitted_at %v, row %v", ev.GetAdmittedAt().AsTime(), admittedAt)
	}
	// A direct admission's first contact is the admission itself.
	if !ev.GetFirstContactAt().AsTime().Equal(admittedAt) {
		t.Errorf("event first_contact_at %v, want admitted_at %v", ev.GetFirstContactAt().AsTime(), admittedAt)
	}
	// The contact details travel on a subject of their own (only notification subscribes).
	ccons, err := e.JS.OrderedConsumer(ctx, "INTAKE", jetstream.OrderedConsumerConfig{FilterSubjects: []string{intake.SubjectPatientContactRecorded}})
	if err != nil {
		t.Fatal(err)
	}
	cmsg, err := ccons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatalf("no PatientContactRecorded on INTAKE: %v", err)
	}
	var cenv eventsv1.Envelope
	var contact intakev1.PatientContactRecorded
	if err := proto.Unmarshal(cmsg.Data(), &cenv); err != nil {
		t.Fatal(err)
	}
	if err := cenv.GetPayload().UnmarshalTo(&contact); err != nil {
		t.Fatal(err)
	}
	if contact.GetPatientId() != patientID || contact.GetPreferredName() != "Zebulon" || contact.GetEmail() != m.ContactEmail ||
		contact.GetClinicTimeZone() != "America/Chicago" || !contact.GetRecordedAt().AsTime().Equal(admittedAt) {
		t.Errorf("contact payload = %v", &contact)
	}
	// The identity a claim needs also has a subject of its own (only billing subscribes).
	icons, err := e.JS.OrderedConsumer(ctx, "INTAKE", jetstream.OrderedConsumerConfig{FilterSubjects: []string{intake.SubjectPatientBillingIdentityRecorded}})
	if err != nil {
		t.Fatal(err)
	}
	imsg, err := icons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatalf("no PatientBillingIdentityRecorded on INTAKE: %v", err)
	}
	var ienv eventsv1.Envelope
	var identity intakev1.PatientBillingIdentityRecorded
	if err := proto.Unmarshal(imsg.Data(), &ienv); err != nil {
		t.Fatal(err)
	}
	if err := ienv.GetPayload().UnmarshalTo(&identity); err != nil {
		t.Fatal(err)
	}
	if identity.GetPatientId() != patientID || identity.GetGivenName() != m.GivenName || identity.GetFamilyName() != m.FamilyName ||
		identity.GetDateOfBirth() != m.DateOfBirth {
		t.Errorf("billing identity payload = %v", &identity)
	}
	testkit.Eventually(t, 5*time.Second, "outbox rows marked published", func() bool {
		var n int
		_ = e.Pool.QueryRow(ctx, "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL").Scan(&n)
		return n == 3
	})

	// Logs carry ids, never the patient's details.
	logs := e.Logs.String()
	if !strings.Contains(logs, `"msg":"patient admitted"`) || !strings.Contains(logs, patientID) {
		t.Errorf("no admission log line with the patient id:\n%s", logs)
	}
	for _, phi := range []string{"Zebulon", "Quackenbush", "zq.test@example.org", "1987-06-05"} {
		if strings.Contains(logs, phi) {
			t.Errorf("logs contain PHI %q", phi)
		}
	}
}

func TestAdmitPatientRejectsBadInput(t *testing.T) {
	e := start(t)
	tok := e.Token(t, "coordinator-2", []string{"intake_coordinator"}, []string{auth.AllClinics})
	unknownClinic := "0190a000-0000-7000-8000-0000000000ff"
	daysAgo := func(n int) string { return time.Now().AddDate(0, 0, -n).Format(time.DateOnly) } // negative: ahead
	tests := []struct {
		name   string
		edit   func(*intakev1.AdmitPatientRequest)
		fields []string
		rules  []string // checked when set (our domain rules), in the order of fields
	}{
		{
			name: "everything missing",
			edit: func(m *intakev1.AdmitPatientRequest) {
				*m = intakev1.AdmitPatientRequest{IdempotencyKey: m.IdempotencyKey}
			},
			fields: []string{"clinic_id", "contact_email", "date_of_birth", "family_name", "given_name", "program_track", "start_date"},
		},
		{name: "missing idempotency key", edit: func(m *intakev1.AdmitPatientRequest) { m.IdempotencyKey = "" }, fields: []string{"idempotency_key"}},
		{
			name: "malformed fields",
			edit: func(m *intakev1.AdmitPatientRequest) {
				m.ContactEmail, m.ClinicId, m.ProgramTrack = "not-an-email", "riverside", "Adult Evening"
				m.DateOfBirth, m.StartDate, m.GivenName = "05/06/1987", "2026-3-1", strings.Repeat("x", 101)
			},
			fields: []string{"clinic_id", "contact_email", "date_of_birth", "given_name", "program_track", "start_date"},
		},
		{name: "date of birth 30 February", edit: func(m *intakev1.AdmitPatientRequest) { m.DateOfBirth = "1990-02-30" },
			fields: []string{"date_of_birth"}, rules: []string{"date.valid"}},
		{name: "start date 30 February", edit: func(m *intakev1.AdmitPatientRequest) { m.StartDate = "2026-02-30" },
			fields: []string{"start_date"}, rules: []string{"date.valid"}},
		{name: "date of birth in the future", edit: func(m *intakev1.AdmitPatientRequest) { m.DateOfBirth = daysAgo(-365) },
			fields: []string{"date_of_birth"}, rules: []string{"date_of_birth.past"}},
		{name: "start date too far back", edit: func(m *intakev1.AdmitPatientRequest) { m.StartDate = daysAgo(120) },
			fields: []string{"start_date"}, rules: []string{"start_date.max_backdate"}},
		{name: "blank names", edit: func(m *intakev1.AdmitPatientRequest) { m.GivenName, m.FamilyName = "   ", "\t" },
			fields: []string{"family_name", "given_name"}, rules: []string{"name.not_blank", "name.not_blank"}},
		{name: "unknown clinic", edit: func(m *intakev1.AdmitPatientRequest) { m.ClinicId = unknownClinic },
			fields: []string{"clinic_id"}, rules: []string{"clinic.known"}},
		{
			name: "unknown clinic and bad dates together",
			edit: func(m *intakev1.AdmitPatientRequest) {
				m.ClinicId, m.DateOfBirth, m.StartDate = unknownClinic, "1990-02-30", daysAgo(400)
			},
			fields: []string{"clinic_id", "date_of_birth", "start_date"},
			rules:  []string{"clinic.known", "date.valid", "start_date.max_backdate"},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validRequest(fmt.Sprintf("bad-input-%04d", i))
			tt.edit(m)
			_, err := e.admit(tok, m)
			if connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Fatalf("code = %v (%v), want invalid_argument", connect.CodeOf(err), err)
			}
			vs := rpc.Violations(err)
			slices.SortStableFunc(vs, func(a, b rpc.FieldViolation) int { return strings.Compare(a.Field, b.Field) })
			var fields, rules []string
			for _, v := range vs {
				fields = append(fields, v.Field)
				rules = append(rules, v.Rule)
			}
			if !slices.Equal(fields, tt.fields) {
				t.Errorf("violated fields = %v, want %v (%v)", fields, tt.fields, err)
			}
			if tt.rules != nil && !slices.Equal(rules, tt.rules) {
				t.Errorf("rules = %v, want %v", rules, tt.rules)
			}
			if got := e.counts(t); got != [4]int{} {
				t.Errorf("rows (patients, episodes, keys, outbox) = %v, want none", got)
			}
		})
	}
	if n := e.StreamCount(t, "INTAKE", ""); n != 0 {
		t.Errorf("INTAKE stream holds %d messages, want 0", n)
	}
}

func TestAdmitPatientAuth(t *testing.T) {
	e := start(t)
	otherKey, err := auth.MintDev([]byte("some-other-key-0123456789"), "trellis-dev", "trellis", "x", []string{"intake_coordinator"}, []string{auth.AllClinics}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := auth.MintDev([]byte(e.DevKey), "trellis-dev", "trellis", "x", []string{"intake_coordinator"}, []string{auth.AllClinics}, -time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	lakeviewOnly := e.Token(t, "coordinator-lakeview", []string{"intake_coordinator"}, []string{demo.LakeviewClinicID})
	tests := []struct {
		name   string
		token  string
		clinic string
		want   connect.Code
	}{
		{"no token", "", demo.RiversideClinicID, connect.CodeUnauthenticated},
		{"garbage token", "not-a-jwt", demo.RiversideClinicID, connect.CodeUnauthenticated},
		{"token signed with another key", otherKey, demo.RiversideClinicID, connect.CodeUnauthenticated},
		{"expired token", expired, demo.RiversideClinicID, connect.CodeUnauthenticated},
		{"billing role", e.Token(t, "biller", []string{"billing"}, []string{auth.AllClinics}), demo.RiversideClinicID, connect.CodePermissionDenied},
		{"no roles", e.Token(t, "nobody", nil, []string{auth.AllClinics}), demo.RiversideClinicID, connect.CodePermissionDenied},
		{"intake role, another clinic", lakeviewOnly, demo.RiversideClinicID, connect.CodePermissionDenied},
		// Not invalid_argument: a caller must not learn which clinic ids exist.
		{"intake role, unknown clinic it may not see", lakeviewOnly, "0190a000-0000-7000-8000-0000000000ff", connect.CodePermissionDenied},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validRequest(fmt.Sprintf("auth-%04d", i))
			m.ClinicId = tt.clinic
			_, err := e.admit(tt.token, m)
			if got := connect.CodeOf(err); got != tt.want {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.want)
			}
			if got := e.counts(t); got != [4]int{} {
				t.Errorf("rows (patients, episodes, keys, outbox) = %v, want none", got)
			}
		})
	}
	t.Run("admin role with every clinic", func(t *testing.T) {
		if _, err := e.admit(e.Token(t, "admin-1", []string{"admin"}, []string{auth.AllClinics}), validRequest("auth-admin")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("intake role at its own clinic, Connect JSON as curl sends it", func(t *testing.T) {
		body := fmt.Sprintf(`{"givenName":"Casey","familyName":"Morgan","dateOfBirth":"1990-06-01",
			"contactEmail":"casey@example.com","clinicId":%q,"programTrack":"adult-day","startDate":%q,
			"idempotencyKey":"auth-lakeview-json"}`, demo.LakeviewClinicID, time.Now().Format(time.DateOnly))
		req, _ := http.NewRequest(http.MethodPost, e.URL+intakev1connect.IntakeServiceAdmitPatientProcedure, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+lakeviewOnly)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			PatientID string `json:"patientId"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.PatientID == "" {
			t.Fatalf("status %d, patientId %q, decode error %v", resp.StatusCode, out.PatientID, err)
		}
	})
}

func TestAdmitPatientIdempotency(t *testing.T) {
	e := start(t)
	tok := e.intakeToken(t)
	first, err := e.admit(tok, validRequest("idem-key-0001"))
	if err != nil {
		t.Fatal(err)
	}
	if first.Msg.GetReplayed() {
		t.Fatal("first call reported replayed")
	}
	again, err := e.admit(tok, validRequest("idem-key-0001"))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Msg.GetReplayed() || again.Msg.GetPatientId() != first.Msg.GetPatientId() || again.Msg.GetEpisodeId() != first.Msg.GetEpisodeId() {
		t.Fatalf("repeat = %v, want the first result %v replayed", again.Msg, first.Msg)
	}
	if got := e.counts(t); got != [4]int{1, 1, 1, 1} {
		t.Fatalf("rows (patients, episodes, keys, outbox) after a repeat = %v, want one each", got)
	}

	t.Run("same key, different request", func(t *testing.T) {
		m := validRequest("idem-key-0001")
		m.StartDate = time.Now().AddDate(0, 0, 4).Format(time.DateOnly)
		_, err := e.admit(tok, m)
		if connect.CodeOf(err) != connect.CodeFailedPrecondition {
			t.Fatalf("code = %v (%v), want failed_precondition", connect.CodeOf(err), err)
		}
		if got := e.counts(t); got != [4]int{1, 1, 1, 1} {
			t.Fatalf("rows = %v, want unchanged", got)
		}
	})

	t.Run("keys are per caller", func(t *testing.T) {
		other, err := e.admit(e.Token(t, "coordinator-other", []string{"intake_coordinator"}, []string{demo.RiversideClinicID}), validRequest("idem-key-0001"))
		if err != nil {
			t.Fatal(err)
		}
		if other.Msg.GetReplayed() || other.Msg.GetPatientId() == first.Msg.GetPatientId() {
			t.Fatalf("another caller's key replayed the first caller's result: %v", other.Msg)
		}
	})

	t.Run("a rejected call does not use up its key", func(t *testing.T) {
		m := validRequest("idem-key-0002")
		m.ClinicId = "0190a000-0000-7000-8000-0000000000ff"
		if _, err := e.admit(e.Token(t, "coordinator-1", []string{"intake_coordinator"}, []string{auth.AllClinics}), m); connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Fatalf("code = %v, want invalid_argument", connect.CodeOf(err))
		}
		resp, err := e.admit(tok, validRequest("idem-key-0002"))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Msg.GetReplayed() {
			t.Fatal("corrected call reported replayed")
		}
	})

	t.Run("concurrent repeats admit once", func(t *testing.T) {
		const n = 8
		var wg sync.WaitGroup
		resps := make([]*intakev1.AdmitPatientResponse, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				r, err := e.admit(tok, validRequest("idem-key-0003"))
				if err == nil {
					resps[i] = r.Msg
				}
				errs[i] = err
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		fresh := 0
		for _, r := range resps {
			if r.GetPatientId() != resps[0].GetPatientId() || r.GetEpisodeId() != resps[0].GetEpisodeId() {
				t.Fatalf("concurrent repeats got different results: %v vs %v", r, resps[0])
			}
			if !r.GetReplayed() {
				fresh++
			}
		}
		if fresh != 1 {
			t.Fatalf("%d calls reported a fresh admission, want 1", fresh)
		}
	})

	// idem-key-0001 twice (two callers), idem-key-0002 and idem-key-0003: four admissions.
	if got := e.counts(t); got != [4]int{4, 4, 4, 4} {
		t.Errorf("rows (patients, episodes, keys, outbox) = %v, want 4 each", got)
	}
	testkit.Eventually(t, 10*time.Second, "four admissions on INTAKE", func() bool {
		return e.StreamCount(t, "INTAKE", intake.SubjectPatientAdmitted) == 4
	})
}

func TestSeedDemoCommand(t *testing.T) {
	dbURL := testkit.Database(t)
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("LOG_LEVEL", "warn")
	spec := intake.Spec(nil)
	run := func(args ...string) (int, string) {
		var cfg testConfig
		var stderr bytes.Buffer
		code := service.Run(context.Background(), spec, &cfg, args, &bytes.Buffer{}, &stderr)
		return code, stderr.String()
	}
	for range 2 { // a second run updates in place
		if code, out := run("seed-demo"); code != 0 {
			t.Fatalf("seed-demo exited %d:\n%s", code, out)
		}
	}
	if code, _ := run("seed-demo", "extra"); code == 0 {
		t.Error("seed-demo accepted an argument")
	}
	pool, err := pg.Open(context.Background(), systemURL(t, dbURL), "intake", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	rows, err := pool.Query(context.Background(), "SELECT id::text, name, time_zone FROM clinics ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	var got []demo.Clinic
	for rows.Next() {
		var c demo.Clinic
		if err := rows.Scan(&c.ID, &c.Name, &c.TimeZone); err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, demo.Clinics) {
		t.Errorf("clinics = %v, want %v", got, demo.Clinics)
	}
}
