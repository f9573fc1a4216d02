package intake_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/rpc"
	"github.com/trellis-health/trellis/pkg/testkit"
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/services/intake/demo"
)

// Subjects of the referral funnel's events.
const (
	rfSubjectReceived      = "trellis.intake.referral.received.v1"
	rfSubjectStatusChanged = "trellis.intake.referral.status_changed.v1"
	rfSubjectAssessed      = "trellis.intake.assessment.recorded.v1"
	rfSubjectReferredOut   = "trellis.intake.patient.referred_out.v1"
	rfSubjectAdmitted      = "trellis.intake.patient.admitted.v1"
)

// The PHI of the standard test referral; none of it may reach events or logs.
const (
	rfGiven  = "Philippa"
	rfFamily = "Thistlewood"
	rfDOB    = "1979-11-23"
	rfPhone  = "+13125550147"
	rfEmail  = "p.thistlewood@example.net"
	rfNotes  = "Called from the ER at Mercy; prefers evenings after her shift"
)

func rfReq[T any](tok string, m *T) *connect.Request[T] {
	req := connect.NewRequest(m)
	if tok != "" {
		req.Header().Set("Authorization", "Bearer "+tok)
	}
	return req
}

// rfTokens are the callers of the referral tests.
type rfTokens struct {
	coordinator string // intake_coordinator at Riverside
	lakeview    string // intake_coordinator at Lakeview only
	network     string // intake_coordinator at every clinic
	clinician   string // clinician at Riverside
	operator    string // operator at every clinic
	billing     string // billing at every clinic
}

func (e *env) rfTokens(t *testing.T) rfTokens {
	return rfTokens{
		coordinator: e.Token(t, "coordinator-1", []string{"intake_coordinator"}, []string{demo.RiversideClinicID}),
		lakeview:    e.Token(t, "coordinator-lakeview", []string{"intake_coordinator"}, []string{demo.LakeviewClinicID}),
		network:     e.Token(t, "coordinator-network", []string{"intake_coordinator"}, []string{auth.AllClinics}),
		clinician:   e.Token(t, "clinician-1", []string{"clinician"}, []string{demo.RiversideClinicID}),
		operator:    e.Token(t, "operator-1", []string{"operator"}, []string{auth.AllClinics}),
		billing:     e.Token(t, "biller-1", []string{"billing"}, []string{auth.AllClinics}),
	}
}

func rfReferral(key string) *intakev1.CreateReferralRequest {
	return &intakev1.CreateReferralRequest{
		ClinicId: demo.RiversideClinicID, Source: intakev1.ReferralSource_REFERRAL_SOURCE_HOSPITAL,
		GivenName: rfGiven, FamilyName: rfFamily, DateOfBirth: rfDOB, Phone: rfPhone, Email: rfEmail,
		PreferredTrack: intakev1.TrackTime_TRACK_TIME_EVENING, Notes: rfNotes, IdempotencyKey: key,
	}
}

// rfPerson is a referral of someone else entirely (no duplicate of rfReferral), n making it unique.
func rfPerson(key string, n int) *intakev1.CreateReferralRequest {
	return &intakev1.CreateReferralRequest{
		ClinicId: demo.RiversideClinicID, Source: intakev1.ReferralSource_REFERRAL_SOURCE_SELF,
		GivenName: fmt.Sprintf("Person%d", n), FamilyName: "Example", Phone: fmt.Sprintf("+1312555%04d", 2000+n),
		IdempotencyKey: key,
	}
}

func (e *env) rfCreate(t *testing.T, tok string, m *intakev1.CreateReferralRequest) *intakev1.Referral {
	t.Helper()
	resp, err := e.client.CreateReferral(context.Background(), rfReq(tok, m))
	if err != nil {
		t.Fatalf("create referral: %v", err)
	}
	return resp.Msg.GetReferral()
}

func (e *env) rfMove(tok, id string, to intakev1.ReferralStatus, reason string) (*intakev1.Referral, error) {
	resp, err := e.client.ChangeReferralStatus(context.Background(), rfReq(tok, &intakev1.ChangeReferralStatusRequest{ReferralId: id, Status: to, Reason: reason}))
	if err != nil {
		return nil, err
	}
	return resp.Msg.GetReferral(), nil
}

func (e *env) rfGet(tok, id string) (*intakev1.Referral, error) {
	resp, err := e.client.GetReferral(context.Background(), rfReq(tok, &intakev1.GetReferralRequest{ReferralId: id}))
	if err != nil {
		return nil, err
	}
	return resp.Msg.GetReferral(), nil
}

// rfScreened creates a referral and moves it to screened.
func (e *env) rfScreened(t *testing.T, tok string, m *intakev1.CreateReferralRequest) *intakev1.Referral {
	t.Helper()
	r := e.rfCreate(t, tok, m)
	for _, to := range []intakev1.ReferralStatus{intakev1.ReferralStatus_REFERRAL_STATUS_CONTACTED, intakev1.ReferralStatus_REFERRAL_STATUS_SCREENED} {
		var err error
		if r, err = e.rfMove(tok, r.GetReferralId(), to, ""); err != nil {
			t.Fatalf("move to %v: %v", to, err)
		}
	}
	return r
}

// rfEvents waits until the INTAKE stream holds exactly n messages on subject and returns them
// in order, with their raw bodies.
func (e *env) rfEvents(t *testing.T, subject string, n int) ([]*eventsv1.Envelope, [][]byte) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, fmt.Sprintf("%d events on %s", n, subject), func() bool {
		return e.StreamCount(t, "INTAKE", subject) >= uint64(n)
	})
	if got := e.StreamCount(t, "INTAKE", subject); got != uint64(n) {
		t.Fatalf("%d events on %s, want %d", got, subject, n)
	}
	if n == 0 {
		return nil, nil
	}
	cons, err := e.JS.OrderedConsumer(context.Background(), "INTAKE", jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	var envs []*eventsv1.Envelope
	var raw [][]byte
	for range n {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("read %s: %v", subject, err)
		}
		var env eventsv1.Envelope
		if err := proto.Unmarshal(msg.Data(), &env); err != nil {
			t.Fatal(err)
		}
		envs = append(envs, &env)
		raw = append(raw, msg.Data())
	}
	return envs, raw
}

func rfPayload[T proto.Message](t *testing.T, env *eventsv1.Envelope, m T) T {
	t.Helper()
	if err := env.GetPayload().UnmarshalTo(m); err != nil {
		t.Fatalf("payload of %s: %v", env.GetEventType(), err)
	}
	return m
}

// rfNoPHI fails if any of the standard referral's details appear in b.
func rfNoPHI(t *testing.T, what string, b []byte) {
	t.Helper()
	for _, phi := range []string{rfGiven, rfFamily, rfDOB, rfPhone, strings.TrimPrefix(rfPhone, "+"), rfEmail, rfNotes, "Mercy"} {
		if strings.Contains(string(b), phi) {
			t.Errorf("%s contains PHI %q", what, phi)
		}
	}
}

func rfCode(t *testing.T, err error, want connect.Code) {
	t.Helper()
	if got := connect.CodeOf(err); got != want || err == nil {
		t.Fatalf("code = %v (%v), want %v", got, err, want)
	}
}

// rfViolations are the "field rule" pairs of an invalid_argument error, sorted.
func rfViolations(t *testing.T, err error) []string {
	t.Helper()
	rfCode(t, err, connect.CodeInvalidArgument)
	var out []string
	for _, v := range rpc.Violations(err) {
		out = append(out, v.Field+" "+v.Rule)
	}
	slices.Sort(out)
	return out
}

// rfRows counts what the funnel writes: referrals, duplicates, history, assessments, keys, outbox.
func (e *env) rfRows(t *testing.T) [6]int {
	t.Helper()
	n := func(table string) int { return e.Count(t, "SELECT count(*) FROM "+table) }
	return [6]int{n("referrals"), n("referral_duplicates"), n("referral_status_history"), n("assessments"), n("idempotency_keys"), n("outbox")}
}

func TestCreateReferral(t *testing.T) {
	e := start(t)
	tok := e.rfTokens(t)
	m := rfReferral("create-0001")
	firstContact := time.Now().Add(-26 * time.Hour).Truncate(time.Microsecond)
	m.FirstContactAt = timestamppb.New(firstContact)
	before := time.Now()
	resp, err := e.client.CreateReferral(context.Background(), rfReq(tok.coordinator, m))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Msg.GetReplayed() {
		t.Error("first call reported replayed")
	}
	r := resp.Msg.GetReferral()
	if u, err := uuid.Parse(r.GetReferralId()); err != nil || u.Version() != 7 {
		t.Fatalf("referral id %q is not a UUIDv7", r.GetReferralId())
	}
	want := &intakev1.Referral{
		ReferralId: r.GetReferralId(), ClinicId: demo.RiversideClinicID, Source: intakev1.ReferralSource_REFERRAL_SOURCE_HOSPITAL,
		GivenName: rfGiven, FamilyName: rfFamily, DateOfBirth: rfDOB, Phone: rfPhone, Email: rfEmail,
		PreferredTrack: intakev1.TrackTime_TRACK_TIME_EVENING, Notes: rfNotes,
		FirstContactAt: timestamppb.New(firstContact), Status: intakev1.ReferralStatus_REFERRAL_STATUS_NEW,
	}
	got := proto.CloneOf(r)
	got.CreatedAt, got.UpdatedAt = nil, nil
	if !proto.Equal(got, want) {
		t.Errorf("referral =\n%v\nwant\n%v", got, want)
	}
	if c := r.GetCreatedAt().AsTime(); c.Before(before.Add(-time.Second)) || c.After(time.Now().Add(time.Second)) || !r.GetUpdatedAt().AsTime().Equal(c) {
		t.Errorf("created %v updated %v: not the time of the call", c, r.GetUpdatedAt().AsTime())
	}

	// Stored, with its first history entry.
	if got := e.rfRows(t); got != [6]int{1, 0, 1, 0, 1, 1} {
		t.Errorf("rows (referrals, duplicates, history, assessments, keys, outbox) = %v", got)
	}
	var status, by string
	if err := e.Pool.QueryRow(context.Background(), `SELECT to_status, changed_by FROM referral_status_history
		WHERE referral_id = $1 AND from_status IS NULL`, r.GetReferralId()).Scan(&status, &by); err != nil || status != "new" || by != "coordinator-1" {
		t.Errorf("history = %q by %q (%v)", status, by, err)
	}
	// Read back the same.
	again, err := e.rfGet(tok.clinician, r.GetReferralId())
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(again, r) {
		t.Errorf("GetReferral =\n%v\nwant\n%v", again, r)
	}

	// ReferralReceived on INTAKE: ids and codes, no names or contact details.
	envs, raw := e.rfEvents(t, rfSubjectReceived, 1)
	if envs[0].GetClinicId() != demo.RiversideClinicID || envs[0].GetEventType() != "trellis.intake.v1.ReferralReceived" {
		t.Errorf("envelope clinic %q type %q", envs[0].GetClinicId(), envs[0].GetEventType())
	}
	ev := rfPayload(t, envs[0], &intakev1.ReferralReceived{})
	wantEv := &intakev1.ReferralReceived{
		ReferralId: r.GetReferralId(), ClinicId: demo.RiversideClinicID, Source: intakev1.ReferralSource_REFERRAL_SOURCE_HOSPITAL,
		FirstContactAt: timestamppb.New(firstContact), PreferredTrack: intakev1.TrackTime_TRACK_TIME_EVENING,
	}
	if !proto.Equal(ev, wantEv) {
		t.Errorf("event =\n%v\nwant\n%v", ev, wantEv)
	}
	rfNoPHI(t, "ReferralReceived", raw[0])
	rfNoPHI(t, "the logs", []byte(e.Logs.String()))
	if !strings.Contains(e.Logs.String(), r.GetReferralId()) {
		t.Error("no log line with the referral id")
	}

	t.Run("first contact defaults to now", func(t *testing.T) {
		before := time.Now()
		r := e.rfCreate(t, tok.coordinator, rfPerson("create-0002", 1))
		if fc := r.GetFirstContactAt().AsTime(); fc.Before(before.Add(-time.Second)) || fc.After(time.Now().Add(time.Second)) {
			t.Errorf("first contact %v, want now", fc)
		}
		if r.GetDateOfBirth() != "" || r.GetEmail() != "" || r.GetPreferredTrack() != intakev1.TrackTime_TRACK_TIME_UNSPECIFIED {
			t.Errorf("optional fields not empty: %v", r)
		}
	})
}

func TestCreateReferralRejectsBadInput(t *testing.T) {
	e := start(t)
	tok := e.rfTokens(t)
	ago := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(time.Now().Add(-d)) }
	tests := []struct {
		name string
		edit func(*intakev1.CreateReferralRequest)
		want []string // "field rule", sorted
	}{
		{name: "no phone or email", edit: func(m *intakev1.CreateReferralRequest) { m.Phone, m.Email = "", "" },
			want: []string{"email referral.contact", "phone referral.contact"}}, // a rule over two fields names both
		{name: "no source", edit: func(m *intakev1.CreateReferralRequest) { m.Source = 0 }, want: []string{"source enum.not_in"}},
		{name: "malformed phone, email and date", edit: func(m *intakev1.CreateReferralRequest) {
			m.Phone, m.Email, m.DateOfBirth = "312-555-0147", "nope", "23/11/1979"
		}, want: []string{"date_of_birth string.pattern", "email string.email", "phone string.pattern"}},
		{name: "date of birth 30 February", edit: func(m *intakev1.CreateReferralRequest) { m.DateOfBirth = "1990-02-30" },
			want: []string{"date_of_birth date.valid"}},
		{name: "date of birth in the future", edit: func(m *intakev1.CreateReferralRequest) {
			m.DateOfBirth = time.Now().AddDate(1, 0, 0).Format(time.DateOnly)
		},
			want: []string{"date_of_birth date_of_birth.past"}},
		{name: "blank names", edit: func(m *intakev1.CreateReferralRequest) { m.GivenName, m.FamilyName = " ", "\t" },
			want: []string{"family_name name.not_blank", "given_name name.not_blank"}},
		{name: "first contact tomorrow", edit: func(m *intakev1.CreateReferralRequest) { m.FirstContactAt = ago(-24 * time.Hour) },
			want: []string{"first_contact_at first_contact_at.not_future"}},
		{name: "first contact 100 days ago", edit: func(m *intakev1.CreateReferralRequest) { m.FirstContactAt = ago(100 * 24 * time.Hour) },
			want: []string{"first_contact_at first_contact_at.max_backdate"}},
		{name: "unknown clinic", edit: func(m *intakev1.CreateReferralRequest) { m.ClinicId = "0190a000-0000-7000-8000-0000000000ff" },
			want: []string{"clinic_id clinic.known"}},
		{name: "missing idempotency key", edit: func(m *intakev1.CreateReferralRequest) { m.IdempotencyKey = "" },
			want: []string{"idempotency_key string.min_len"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := rfReferral(fmt.Sprintf("bad-referral-%04d", i))
			tt.edit(m)
			_, err := e.client.CreateReferral(context.Background(), rfReq(tok.network, m))
			if got := rfViolations(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("violations = %q, want %q", got, tt.want)
			}
			if got := e.rfRows(t); got != [6]int{} {
				t.Errorf("rows = %v, want none", got)
			}
		})
	}
}

func TestReferralDuplicates(t *testing.T) {
	e := start(t)
	tok := e.rfTokens(t)
	orig := e.rfCreate(t, tok.coordinator, rfReferral("dup-0001"))
	if len(orig.GetPossibleDuplicates()) != 0 {
		t.Fatalf("first referral flagged: %v", orig.GetPossibleDuplicates())
	}
	// A patient admitted directly, to match on email.
	adm := validRequest("dup-admit-01")
	adm.ContactEmail = "zq.dup@example.org"
	admitted, err := e.admit(tok.coordinator, adm)
	if err != nil {
		t.Fatal(err)
	}
	patientID := admitted.Msg.GetPatientId()

	M := func(ms ...intakev1.DuplicateMatch) []intakev1.DuplicateMatch { return ms }
	nameDOB, phone, email := intakev1.DuplicateMatch_DUPLICATE_MATCH_NAME_AND_DATE_OF_BIRTH, intakev1.DuplicateMatch_DUPLICATE_MATCH_PHONE, intakev1.DuplicateMatch_DUPLICATE_MATCH_EMAIL
	tests := []struct {
		name string
		m    *intakev1.CreateReferralRequest
		want []*intakev1.PossibleDuplicate
	}{
		{name: "name in other case and spacing, same date of birth", m: &intakev1.CreateReferralRequest{
			ClinicId: demo.RiversideClinicID, Source: intakev1.ReferralSource_REFERRAL_SOURCE_COURT,
			GivenName: "  philippa ", FamilyName: "THISTLEWOOD", DateOfBirth: rfDOB, Phone: "+13125559999",
		}, want: []*intakev1.PossibleDuplicate{{Kind: "referral", Id: orig.GetReferralId(), MatchedOn: M(nameDOB)}}},
		{name: "same name, another date of birth", m: &intakev1.CreateReferralRequest{
			ClinicId: demo.RiversideClinicID, Source: intakev1.ReferralSource_REFERRAL_SOURCE_SELF,
			GivenName: rfGiven, FamilyName: rfFamily, DateOfBirth: "1980-11-23", Phone: "+13125559998",
		}},
		{name: "same phone", m: &intakev1.CreateReferralRequest{
			ClinicId: demo.RiversideClinicID, Source: intakev1.ReferralSource_REFERRAL_SOURCE_FAMILY,
			GivenName: "Pip", FamilyName: "T", Phone: rfPhone,
		}, want: []*intakev1.PossibleDuplicate{{Kind: "referral", Id: orig.GetReferralId(), MatchedOn: M(phone)}}},
		{name: "same email in capitals", m: &intakev1.CreateReferralRequest{
			ClinicId: demo.RiversideClinicID, Source: intakev1.ReferralSource_REFERRAL_SOURCE_EMPLOYER,
			GivenName: "P", FamilyName: "Thistlewood", Email: strings.ToUpper(rfEmail),
		}, want: []*intakev1.PossibleDuplicate{{Kind: "referral", Id: orig.GetReferralId(), MatchedOn: M(email)}}},
		{name: "a patient's name, date of birth and email", m: &intakev1.CreateReferralRequest{
			ClinicId: demo.RiversideClinicID, Source: intakev1.ReferralSource_REFERRAL_SOURCE_SELF,
			GivenName: "zebulon", FamilyName: "quackenbush", DateOfBirth: "1987-06-05", Email: "ZQ.dup@example.org",
		}, want: []*intakev1.PossibleDuplicate{{Kind: "patient", Id: patientID, MatchedOn: M(nameDOB, email)}}},
	}
	var flagged []string // referrals flagged against orig
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.m.IdempotencyKey = fmt.Sprintf("dup-case-%04d", i)
			r := e.rfCreate(t, tok.coordinator, tt.m)
			got := r.GetPossibleDuplicates()
			if !slices.EqualFunc(got, tt.want, func(a, b *intakev1.PossibleDuplicate) bool { return proto.Equal(a, b) }) {
				t.Errorf("possible duplicates = %v, want %v", got, tt.want)
			}
			if len(tt.want) > 0 && tt.want[0].GetKind() == "referral" {
				flagged = append(flagged, r.GetReferralId())
			}
			// Flagged, not merged: a referral of its own, still new.
			if r.GetReferralId() == orig.GetReferralId() || r.GetStatus() != intakev1.ReferralStatus_REFERRAL_STATUS_NEW {
				t.Errorf("referral %v", r)
			}
		})
	}
	if n := e.Count(t, "SELECT count(*) FROM referrals"); n != 1+len(tests) {
		t.Errorf("%d referrals, want %d (duplicates are never merged)", n, 1+len(tests))
	}
	// The events say a duplicate was flagged, and nothing else about it.
	envs, _ := e.rfEvents(t, rfSubjectReceived, 1+len(tests))
	var possible []bool
	for _, env := range envs {
		possible = append(possible, rfPayload(t, env, &intakev1.ReferralReceived{}).GetPossibleDuplicate())
	}
	if want := []bool{false, true, false, true, true, true}; !slices.Equal(possible, want) {
		t.Errorf("possible_duplicate in events = %v, want %v", possible, want)
	}

	t.Run("the earlier referral lists the later ones", func(t *testing.T) {
		r, err := e.rfGet(tok.coordinator, orig.GetReferralId())
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, d := range r.GetPossibleDuplicates() {
			ids = append(ids, d.GetId())
		}
		slices.Sort(ids)
		slices.Sort(flagged)
		if !slices.Equal(ids, flagged) {
			t.Errorf("duplicates of the first referral = %v, want %v", ids, flagged)
		}
	})

	t.Run("matched across clinics, reported only where the caller may see", func(t *testing.T) {
		m := &intakev1.CreateReferralRequest{
			ClinicId: demo.LakeviewClinicID, Source: intakev1.ReferralSource_REFERRAL_SOURCE_OTHER_CLINIC,
			GivenName: "Philippa", FamilyName: "Thistlewood", Phone: rfPhone, IdempotencyKey: "dup-lakeview-1",
		}
		r := e.rfCreate(t, tok.lakeview, m)
		if len(r.GetPossibleDuplicates()) != 0 {
			t.Errorf("a Lakeview-only caller was shown Riverside records: %v", r.GetPossibleDuplicates())
		}
		// The flag is stored (the network sees it) and the event says so.
		seen, err := e.rfGet(tok.network, r.GetReferralId())
		if err != nil {
			t.Fatal(err)
		}
		if len(seen.GetPossibleDuplicates()) != 2 { // the first referral and the "same phone" one
			var ids []string
			for _, d := range seen.GetPossibleDuplicates() {
				ids = append(ids, d.GetId()+" "+fmt.Sprint(d.GetMatchedOn()))
			}
			t.Errorf("network view of the Lakeview referral's duplicates = %v", ids)
		}
		envs, _ := e.rfEvents(t, rfSubjectReceived, 2+len(tests))
		if !rfPayload(t, envs[len(envs)-1], &intakev1.ReferralReceived{}).GetPossibleDuplicate() {
			t.Error("event does not flag the cross-clinic duplicate")
		}
		// And the Riverside referral does not show the Lakeview one to a Riverside-only caller.
		own, err := e.rfGet(tok.coordinator, orig.GetReferralId())
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range own.GetPossibleDuplicates() {
			if d.GetId() == r.GetReferralId() {
				t.Error("a Riverside-only caller was shown the Lakeview referral")
			}
		}
	})

	t.Run("closed referrals are not matched", func(t *testing.T) {
		a := e.rfCreate(t, tok.coordinator, rfPerson("dup-closed-1", 77))
		if _, err := e.rfMove(tok.coordinator, a.GetReferralId(), intakev1.ReferralStatus_REFERRAL_STATUS_CLOSED, "no answer"); err != nil {
			t.Fatal(err)
		}
		b := e.rfCreate(t, tok.coordinator, rfPerson("dup-closed-2", 77))
		if len(b.GetPossibleDuplicates()) != 0 {
			t.Errorf("matched a closed referral: %v", b.GetPossibleDuplicates())
		}
	})
}

func TestListReferrals(t *testing.T) {
	e := start(t)
	tok := e.rfTokens(t)
	ctx := context.Background()
	daysAgo := func(d float64) *timestamppb.Timestamp {
		return timestamppb.New(time.Now().Add(-time.Duration(d * float64(24*time.Hour))))
	}
	// Riverside: ages 10.5, 5.5, 3.5, 2.5, 1.5, 0.5 days; Lakeview: 4.5 and 0.2 days.
	type made struct {
		id     string
		clinic string
		age    float64
	}
	var all []made
	for i, age := range []float64{2.5, 10.5, 0.5, 5.5, 1.5, 3.5} {
		m := rfPerson(fmt.Sprintf("list-riv-%02d", i), i)
		m.FirstContactAt = daysAgo(age)
		all = append(all, made{e.rfCreate(t, tok.coordinator, m).GetReferralId(), demo.RiversideClinicID, age})
	}
	for i, age := range []float64{4.5, 0.2} {
		m := rfPerson(fmt.Sprintf("list-lak-%02d", i), 50+i)
		m.ClinicId, m.FirstContactAt = demo.LakeviewClinicID, daysAgo(age)
		all = append(all, made{e.rfCreate(t, tok.lakeview, m).GetReferralId(), demo.LakeviewClinicID, age})
	}
	byAge := func(keep func(made) bool) []string { // oldest first contact first
		var ms []made
		for _, m := range all {
			if keep(m) {
				ms = append(ms, m)
			}
		}
		slices.SortFunc(ms, func(a, b made) int {
			if a.age > b.age {
				return -1
			}
			return 1
		})
		var ids []string
		for _, m := range ms {
			ids = append(ids, m.id)
		}
		return ids
	}
	riverside := func(m made) bool { return m.clinic == demo.RiversideClinicID }
	// Move two Riverside referrals on: the 5.5-day one contacted, the 1.5-day one closed.
	if _, err := e.rfMove(tok.coordinator, all[3].id, intakev1.ReferralStatus_REFERRAL_STATUS_CONTACTED, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rfMove(tok.coordinator, all[4].id, intakev1.ReferralStatus_REFERRAL_STATUS_CLOSED, "duplicate call"); err != nil {
		t.Fatal(err)
	}

	list := func(t *testing.T, tok string, m *intakev1.ListReferralsRequest) ([]string, string, error) {
		t.Helper()
		resp, err := e.client.ListReferrals(ctx, rfReq(tok, m))
		if err != nil {
			return nil, "", err
		}
		var ids []string
		for _, r := range resp.Msg.GetReferrals() {
			ids = append(ids, r.GetReferralId())
		}
		return ids, resp.Msg.GetNextPageToken(), nil
	}
	stNew, contacted, closed := intakev1.ReferralStatus_REFERRAL_STATUS_NEW, intakev1.ReferralStatus_REFERRAL_STATUS_CONTACTED, intakev1.ReferralStatus_REFERRAL_STATUS_CLOSED
	tests := []struct {
		name string
		tok  string
		m    *intakev1.ListReferralsRequest
		want []string
	}{
		{"every clinic the caller may see (network)", tok.network, &intakev1.ListReferralsRequest{}, byAge(func(made) bool { return true })},
		{"every clinic the caller may see (Riverside only)", tok.coordinator, &intakev1.ListReferralsRequest{}, byAge(riverside)},
		{"one clinic", tok.operator, &intakev1.ListReferralsRequest{ClinicId: demo.LakeviewClinicID}, byAge(func(m made) bool { return m.clinic == demo.LakeviewClinicID })},
		{"status new", tok.coordinator, &intakev1.ListReferralsRequest{Statuses: []intakev1.ReferralStatus{stNew}},
			byAge(func(m made) bool { return riverside(m) && m.id != all[3].id && m.id != all[4].id })},
		{"statuses contacted and closed", tok.network, &intakev1.ListReferralsRequest{Statuses: []intakev1.ReferralStatus{closed, contacted}},
			[]string{all[3].id, all[4].id}},
		{"at least 3 days old", tok.network, &intakev1.ListReferralsRequest{MinAgeDays: 3}, byAge(func(m made) bool { return m.age >= 3 })},
		{"at most 2 days old (under 3)", tok.network, &intakev1.ListReferralsRequest{MaxAgeDays: 2}, byAge(func(m made) bool { return m.age < 3 })},
		{"0 means no bound", tok.network, &intakev1.ListReferralsRequest{MinAgeDays: 0, MaxAgeDays: 0, ClinicId: demo.LakeviewClinicID},
			byAge(func(m made) bool { return m.clinic == demo.LakeviewClinicID })},
		{"between 2 and 5 days old, Riverside, new", tok.clinician, &intakev1.ListReferralsRequest{
			ClinicId: demo.RiversideClinicID, MinAgeDays: 2, MaxAgeDays: 5, Statuses: []intakev1.ReferralStatus{stNew},
		}, byAge(func(m made) bool { return riverside(m) && m.age >= 2 && m.age < 6 && m.id != all[3].id })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, next, err := list(t, tt.tok, tt.m)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) || next != "" {
				t.Errorf("ids = %v (next %q), want %v", got, next, tt.want)
			}
		})
	}

	t.Run("pages", func(t *testing.T) {
		want := byAge(func(made) bool { return true })
		var got []string
		m := &intakev1.ListReferralsRequest{PageSize: 3}
		pages := 0
		for {
			ids, next, err := list(t, tok.network, m)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if len(ids) > 3 {
				t.Fatalf("page of %d", len(ids))
			}
			got = append(got, ids...)
			if next == "" {
				break
			}
			m.PageToken = next
		}
		if !slices.Equal(got, want) || pages != 3 {
			t.Errorf("%d pages: %v, want %v", pages, got, want)
		}
		// A token is for the listing it came from.
		_, next, _ := list(t, tok.network, &intakev1.ListReferralsRequest{PageSize: 3})
		_, _, err := list(t, tok.network, &intakev1.ListReferralsRequest{PageSize: 3, PageToken: next, MinAgeDays: 1})
		if got := rfViolations(t, err); !slices.Equal(got, []string{"page_token page_token.valid"}) {
			t.Errorf("token with other filters: %v", got)
		}
		_, _, err = list(t, tok.network, &intakev1.ListReferralsRequest{PageToken: "not-a-token"})
		if got := rfViolations(t, err); !slices.Equal(got, []string{"page_token page_token.valid"}) {
			t.Errorf("garbage token: %v", got)
		}
	})

	t.Run("pages of one clinic and of a list of clinics", func(t *testing.T) {
		two := e.Token(t, "coordinator-two", []string{"intake_coordinator"}, []string{demo.RiversideClinicID, demo.LakeviewClinicID})
		for _, tt := range []struct {
			name string
			tok  string
			m    *intakev1.ListReferralsRequest
			want []string
		}{
			{"Riverside named", tok.network, &intakev1.ListReferralsRequest{ClinicId: demo.RiversideClinicID, PageSize: 2}, byAge(riverside)},
			{"the caller's two clinics", two, &intakev1.ListReferralsRequest{PageSize: 2}, byAge(func(made) bool { return true })},
		} {
			t.Run(tt.name, func(t *testing.T) {
				var got []string
				for pages := 1; ; pages++ {
					ids, next, err := list(t, tt.tok, tt.m)
					if err != nil {
						t.Fatal(err)
					}
					if len(ids) > 2 || pages > 10 {
						t.Fatalf("page %d of %d", pages, len(ids))
					}
					got = append(got, ids...)
					if next == "" {
						break
					}
					tt.m.PageToken = next
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("pages = %v, want %v", got, tt.want)
				}
			})
		}
	})

	t.Run("forged tokens", func(t *testing.T) {
		_, next, err := list(t, tok.network, &intakev1.ListReferralsRequest{PageSize: 3})
		if err != nil || next == "" {
			t.Fatalf("first page: next %q, %v", next, err)
		}
		raw, err := base64.RawURLEncoding.DecodeString(next)
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]any // the token's fields, whatever they are named
		if err := json.Unmarshal(raw, &fields); err != nil {
			t.Fatal(err)
		}
		forge := func(edit func(f map[string]any)) string {
			f := maps.Clone(fields)
			edit(f)
			b, _ := json.Marshal(f)
			return base64.RawURLEncoding.EncodeToString(b)
		}
		// Replace every string field that holds a UUID (the keyset id), or every number (a time).
		setIDs := func(v string) func(map[string]any) {
			return func(f map[string]any) {
				for k, x := range f {
					if s, ok := x.(string); ok && uuid.Validate(s) == nil {
						f[k] = v
					}
				}
			}
		}
		setTimes := func(v float64) func(map[string]any) {
			return func(f map[string]any) {
				for k, x := range f {
					if _, ok := x.(float64); ok {
						f[k] = v
					}
				}
			}
		}
		for name, token := range map[string]string{
			"id not a uuid":      forge(setIDs("not-a-uuid")),
			"id empty":           forge(setIDs("")),
			"id a urn":           forge(setIDs("urn:uuid:" + strings.Repeat("z", 36))),
			"times out of range": forge(setTimes(1 << 62)),
			"times far ahead":    forge(setTimes(float64(time.Now().AddDate(1, 0, 0).UnixMicro()))),
			"times negative":     forge(setTimes(-5)),
			"times before 2000":  forge(setTimes(float64(time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC).UnixMicro()))),
			"zero times, bad id": forge(func(f map[string]any) { setTimes(0)(f); setIDs("x")(f) }),
		} {
			t.Run(name, func(t *testing.T) {
				_, _, err := list(t, tok.network, &intakev1.ListReferralsRequest{PageSize: 3, PageToken: token})
				if got := rfViolations(t, err); !slices.Equal(got, []string{"page_token page_token.valid"}) {
					t.Errorf("violations = %v", got)
				}
			})
		}
		// The id in another form of the same UUID reads as the same position.
		var id string
		for _, x := range fields {
			if s, ok := x.(string); ok && uuid.Validate(s) == nil {
				id = s
			}
		}
		want, _, err := list(t, tok.network, &intakev1.ListReferralsRequest{PageSize: 3, PageToken: next})
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := list(t, tok.network, &intakev1.ListReferralsRequest{PageSize: 3, PageToken: forge(setIDs("urn:uuid:" + strings.ToUpper(id)))})
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("urn form of the id: %v, %v; want %v", got, err, want)
		}
	})

	t.Run("default page size is 50", func(t *testing.T) {
		for i := range 45 {
			e.rfCreate(t, tok.coordinator, rfPerson(fmt.Sprintf("list-many-%02d", i), 100+i))
		}
		ids, next, err := list(t, tok.network, &intakev1.ListReferralsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != 50 || next == "" {
			t.Fatalf("%d referrals, next %q: want 50 and a next page", len(ids), next)
		}
		rest, next, err := list(t, tok.network, &intakev1.ListReferralsRequest{PageToken: next})
		if err != nil || len(rest) != 3 || next != "" {
			t.Fatalf("second page: %d, next %q, %v", len(rest), next, err)
		}
	})

	t.Run("bad filters", func(t *testing.T) {
		_, _, err := list(t, tok.network, &intakev1.ListReferralsRequest{MinAgeDays: 5, MaxAgeDays: 2})
		if got := rfViolations(t, err); !slices.Equal(got, []string{"max_age_days age.range"}) {
			t.Errorf("min > max: %v", got)
		}
		_, _, err = list(t, tok.network, &intakev1.ListReferralsRequest{PageSize: 501, MinAgeDays: -1})
		if got := rfViolations(t, err); !slices.Equal(got, []string{"min_age_days int32.gte", "page_size int32.gte_lte"}) {
			t.Errorf("out of range: %v", got)
		}
	})

	t.Run("a named clinic the caller may not see", func(t *testing.T) {
		_, _, err := list(t, tok.lakeview, &intakev1.ListReferralsRequest{ClinicId: demo.RiversideClinicID})
		rfCode(t, err, connect.CodePermissionDenied)
	})
}

func TestChangeReferralStatus(t *testing.T) {
	e := start(t)
	tok := e.rfTokens(t)
	ctx := context.Background()
	r := e.rfCreate(t, tok.coordinator, rfReferral("status-0001"))
	id := r.GetReferralId()
	contacted, screened, closed := intakev1.ReferralStatus_REFERRAL_STATUS_CONTACTED, intakev1.ReferralStatus_REFERRAL_STATUS_SCREENED, intakev1.ReferralStatus_REFERRAL_STATUS_CLOSED

	// Illegal from new: straight to screened.
	rows := e.rfRows(t)
	_, err := e.rfMove(tok.coordinator, id, screened, "")
	rfCode(t, err, connect.CodeFailedPrecondition)
	if got := e.rfRows(t); got != rows {
		t.Errorf("rows after an illegal move = %v, want %v", got, rows)
	}
	if got, _ := e.rfGet(tok.coordinator, id); got.GetStatus() != intakev1.ReferralStatus_REFERRAL_STATUS_NEW {
		t.Errorf("status after an illegal move = %v", got.GetStatus())
	}

	// Legal: new -> contacted -> screened -> closed.
	before := time.Now()
	for _, to := range []intakev1.ReferralStatus{contacted, screened, closed} {
		moved, err := e.rfMove(tok.coordinator, id, to, "step "+to.String())
		if err != nil {
			t.Fatalf("move to %v: %v", to, err)
		}
		if moved.GetStatus() != to || !moved.GetUpdatedAt().AsTime().After(before.Add(-time.Second)) {
			t.Errorf("after move to %v: %v", to, moved)
		}
	}
	// History: created, then three moves, with who and why.
	hist, err := e.Pool.Query(ctx, `SELECT COALESCE(from_status, ''), to_status, reason, changed_by FROM referral_status_history
		WHERE referral_id = $1 ORDER BY changed_at, id`, id)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for hist.Next() {
		var from, to, reason, by string
		if err := hist.Scan(&from, &to, &reason, &by); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprintf("%s>%s %q %s", from, to, reason, by))
	}
	want := []string{
		`>new "" coordinator-1`,
		`new>contacted "step REFERRAL_STATUS_CONTACTED" coordinator-1`,
		`contacted>screened "step REFERRAL_STATUS_SCREENED" coordinator-1`,
		`screened>closed "step REFERRAL_STATUS_CLOSED" coordinator-1`,
	}
	if !slices.Equal(lines, want) {
		t.Errorf("history =\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	// Events: one per legal move, none for the illegal one.
	envs, raw := e.rfEvents(t, rfSubjectStatusChanged, 3)
	var moves []string
	for i, env := range envs {
		ev := rfPayload(t, env, &intakev1.ReferralStatusChanged{})
		if ev.GetReferralId() != id || ev.GetClinicId() != demo.RiversideClinicID || ev.GetChangedAt() == nil {
			t.Errorf("event %v", ev)
		}
		moves = append(moves, ev.GetFrom().String()+">"+ev.GetTo().String())
		rfNoPHI(t, "ReferralStatusChanged", raw[i])
		if strings.Contains(string(raw[i]), "step ") {
			t.Error("the event carries the free-text reason")
		}
	}
	if want := []string{"REFERRAL_STATUS_NEW>REFERRAL_STATUS_CONTACTED", "REFERRAL_STATUS_CONTACTED>REFERRAL_STATUS_SCREENED",
		"REFERRAL_STATUS_SCREENED>REFERRAL_STATUS_CLOSED"}; !slices.Equal(moves, want) {
		t.Errorf("moves = %v", moves)
	}

	// Closed is final: every move out of it, and the same status again, is refused.
	rows = e.rfRows(t)
	for _, to := range []intakev1.ReferralStatus{contacted, screened, closed} {
		_, err := e.rfMove(tok.coordinator, id, to, "")
		rfCode(t, err, connect.CodeFailedPrecondition)
	}
	if got := e.rfRows(t); got != rows {
		t.Errorf("rows after refused moves = %v, want %v", got, rows)
	}
	e.rfEvents(t, rfSubjectStatusChanged, 3)

	t.Run("same status", func(t *testing.T) {
		other := e.rfCreate(t, tok.coordinator, rfPerson("status-0002", 1))
		if _, err := e.rfMove(tok.coordinator, other.GetReferralId(), contacted, ""); err != nil {
			t.Fatal(err)
		}
		_, err := e.rfMove(tok.coordinator, other.GetReferralId(), contacted, "")
		rfCode(t, err, connect.CodeFailedPrecondition)
	})
	t.Run("decisions have their own calls", func(t *testing.T) {
		other := e.rfCreate(t, tok.coordinator, rfPerson("status-0003", 2))
		for _, to := range []intakev1.ReferralStatus{intakev1.ReferralStatus_REFERRAL_STATUS_ASSESSED, intakev1.ReferralStatus_REFERRAL_STATUS_ADMITTED,
			intakev1.ReferralStatus_REFERRAL_STATUS_REFERRED_OUT, intakev1.ReferralStatus_REFERRAL_STATUS_NEW} {
			_, err := e.rfMove(tok.coordinator, other.GetReferralId(), to, "")
			if got := rfViolations(t, err); !slices.Equal(got, []string{"status enum.in"}) {
				t.Errorf("move to %v: %v", to, got)
			}
		}
	})
	t.Run("unknown referral", func(t *testing.T) {
		_, err := e.rfMove(tok.network, "0190a000-0000-7000-8000-00000000beef", contacted, "")
		rfCode(t, err, connect.CodeNotFound)
	})
}

func TestReferralAuth(t *testing.T) {
	e := start(t)
	tok := e.rfTokens(t)
	ctx := context.Background()
	r := e.rfCreate(t, tok.coordinator, rfReferral("auth-ref-0001"))
	id := r.GetReferralId()
	rows := e.rfRows(t)

	t.Run("wrong role", func(t *testing.T) {
		_, err := e.client.CreateReferral(ctx, rfReq(tok.clinician, rfPerson("auth-ref-0002", 1)))
		rfCode(t, err, connect.CodePermissionDenied)
		_, err = e.client.CreateReferral(ctx, rfReq(tok.operator, rfPerson("auth-ref-0003", 2)))
		rfCode(t, err, connect.CodePermissionDenied)
		_, err = e.rfGet(tok.billing, id)
		rfCode(t, err, connect.CodePermissionDenied)
		_, err = e.client.ListReferrals(ctx, rfReq(tok.billing, &intakev1.ListReferralsRequest{}))
		rfCode(t, err, connect.CodePermissionDenied)
		_, err = e.rfMove(tok.clinician, id, intakev1.ReferralStatus_REFERRAL_STATUS_CONTACTED, "")
		rfCode(t, err, connect.CodePermissionDenied)
		_, err = e.rfMove(tok.operator, id, intakev1.ReferralStatus_REFERRAL_STATUS_CONTACTED, "")
		rfCode(t, err, connect.CodePermissionDenied)
		_, err = e.rfGet("", id)
		rfCode(t, err, connect.CodeUnauthenticated)
	})
	t.Run("a named clinic the caller may not see", func(t *testing.T) {
		m := rfPerson("auth-ref-0004", 3)
		_, err := e.client.CreateReferral(ctx, rfReq(tok.lakeview, m))
		rfCode(t, err, connect.CodePermissionDenied)
		// Not invalid_argument for an unknown clinic either: clinic ids are not probed.
		m.ClinicId = "0190a000-0000-7000-8000-0000000000ff"
		_, err = e.client.CreateReferral(ctx, rfReq(tok.lakeview, m))
		rfCode(t, err, connect.CodePermissionDenied)
	})
	t.Run("a referral of a clinic the caller may not see is not found", func(t *testing.T) {
		_, err := e.rfGet(tok.lakeview, id)
		rfCode(t, err, connect.CodeNotFound)
		_, err = e.rfMove(tok.lakeview, id, intakev1.ReferralStatus_REFERRAL_STATUS_CONTACTED, "")
		rfCode(t, err, connect.CodeNotFound)
		ids, err := e.client.ListReferrals(ctx, rfReq(tok.lakeview, &intakev1.ListReferralsRequest{}))
		if err != nil || len(ids.Msg.GetReferrals()) != 0 {
			t.Errorf("Lakeview-only list = %v (%v), want empty", ids.Msg.GetReferrals(), err)
		}
	})
	if got := e.rfRows(t); got != rows {
		t.Errorf("rows after refused calls = %v, want %v", got, rows)
	}
	if r, _ := e.rfGet(tok.coordinator, id); r.GetStatus() != intakev1.ReferralStatus_REFERRAL_STATUS_NEW {
		t.Errorf("status changed by a refused call: %v", r.GetStatus())
	}
}

func TestCreateReferralIdempotency(t *testing.T) {
	e := start(t)
	tok := e.rfTokens(t)
	ctx := context.Background()
	first, err := e.client.CreateReferral(ctx, rfReq(tok.coordinator, rfReferral("idem-ref-0001")))
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.client.CreateReferral(ctx, rfReq(tok.coordinator, rfReferral("idem-ref-0001")))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Msg.GetReplayed() || first.Msg.GetReplayed() || !proto.Equal(again.Msg.GetReferral(), first.Msg.GetReferral()) {
		t.Fatalf("repeat = %v, want the first response %v replayed", again.Msg, first.Msg)
	}
	if got := e.rfRows(t); got != [6]int{1, 0, 1, 0, 1, 1} {
		t.Errorf("rows after a repeat = %v, want one referral, history entry, key and event", got)
	}
	m := rfReferral("idem-ref-0001")
	m.Notes = "something else"
	_, err = e.client.CreateReferral(ctx, rfReq(tok.coordinator, m))
	rfCode(t, err, connect.CodeFailedPrecondition)
	// Keys are per caller: another coordinator's same key is a new referral (a duplicate, flagged).
	other, err := e.client.CreateReferral(ctx, rfReq(tok.network, rfReferral("idem-ref-0001")))
	if err != nil {
		t.Fatal(err)
	}
	if other.Msg.GetReplayed() || other.Msg.GetReferral().GetReferralId() == first.Msg.GetReferral().GetReferralId() ||
		len(other.Msg.GetReferral().GetPossibleDuplicates()) != 1 {
		t.Errorf("another caller's key: %v", other.Msg)
	}
	e.rfEvents(t, rfSubjectReceived, 2)
}

// A referral's phone number stays with the patient it is admitted as, so a later referral with
// that number is flagged against the patient (the admitted referral is no longer open).
func TestDuplicatesMatchPatientsByPhone(t *testing.T) {
	e := start(t)
	tok := e.rfTokens(t)
	ctx := context.Background()
	r, _ := e.rfAssessed(t, tok.coordinator, 41, rfAssessment("", "phone-assess-1"))
	adm := validRequest("phone-admit-01")
	adm.ReferralId = r.GetReferralId()
	resp, err := e.admit(tok.coordinator, adm)
	if err != nil {
		t.Fatal(err)
	}
	patientID := resp.Msg.GetPatientId()
	direct, err := e.admit(tok.coordinator, validRequest("phone-admit-02"))
	if err != nil {
		t.Fatal(err)
	}
	phone := e.sealedField(t, "patients", "phone", patientID)
	var directPhone *string
	if err := e.Pool.QueryRow(ctx, `SELECT phone_enc FROM patients WHERE id = $1`, direct.Msg.GetPatientId()).Scan(&directPhone); err != nil {
		t.Fatal(err)
	}
	if phone != r.GetPhone() || directPhone != nil {
		t.Fatalf("patient phones = %q (want the referral's %s) and %v (direct admission: want NULL)", phone, r.GetPhone(), directPhone)
	}
	// The number reaches notification with the contact details (the only subscriber).
	var body []byte
	if err := e.Pool.QueryRow(ctx, `SELECT payload FROM outbox WHERE subject = $1 ORDER BY seq LIMIT 1`,
		"trellis.intake.patient.contact_recorded.v1").Scan(&body); err != nil {
		t.Fatal(err)
	}
	var env eventsv1.Envelope
	var contact intakev1.PatientContactRecorded
	if err := proto.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	if err := env.GetPayload().UnmarshalTo(&contact); err != nil {
		t.Fatal(err)
	}
	if contact.GetPatientId() != patientID || contact.GetPhone() != r.GetPhone() {
		t.Fatalf("PatientContactRecorded = %v, want the referral's phone", &contact)
	}

	got := e.rfCreate(t, tok.coordinator, &intakev1.CreateReferralRequest{
		ClinicId: demo.RiversideClinicID, Source: intakev1.ReferralSource_REFERRAL_SOURCE_FAMILY,
		GivenName: "Someone", FamilyName: "Else", Phone: r.GetPhone(), IdempotencyKey: "phone-referral-1",
	}).GetPossibleDuplicates()
	want := []*intakev1.PossibleDuplicate{{Kind: "patient", Id: patientID, MatchedOn: []intakev1.DuplicateMatch{intakev1.DuplicateMatch_DUPLICATE_MATCH_PHONE}}}
	if !slices.EqualFunc(got, want, func(a, b *intakev1.PossibleDuplicate) bool { return proto.Equal(a, b) }) {
		t.Errorf("possible duplicates = %v, want %v", got, want)
	}
}
