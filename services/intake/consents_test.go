package intake_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
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

// Subjects of the consent and coverage events.
const (
	subjectConsentGranted  = "trellis.intake.consent.granted.v1"
	subjectConsentRevoked  = "trellis.intake.consent.revoked.v1"
	subjectCoverageChanged = "trellis.intake.coverage.changed.v1"
)

// ccReq wraps m in a request carrying tok.
func ccReq[T any](tok string, m *T) *connect.Request[T] {
	req := connect.NewRequest(m)
	if tok != "" {
		req.Header().Set("Authorization", "Bearer "+tok)
	}
	return req
}

// ccPatient admits a patient at clinic through the API and returns its id.
func (e *env) ccPatient(t *testing.T, clinic string) string {
	t.Helper()
	m := validRequest("cc-patient-" + uuid.NewString())
	m.ClinicId = clinic
	resp, err := e.admit(e.Token(t, "admin-seed", []string{"admin"}, []string{auth.AllClinics}), m)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Msg.GetPatientId()
}

// ccEvents reads the first n events on subject from the INTAKE stream, waiting up to 10 s
// for them, and fails if a further one follows within a moment.
func (e *env) ccEvents(t *testing.T, subject string, n int) []*eventsv1.Envelope {
	t.Helper()
	cons, err := e.JS.OrderedConsumer(context.Background(), "INTAKE", jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	var out []*eventsv1.Envelope
	for range n {
		msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatalf("%d of %d events on %s: %v", len(out), n, subject, err)
		}
		var env eventsv1.Envelope
		if err := proto.Unmarshal(msg.Data(), &env); err != nil {
			t.Fatal(err)
		}
		out = append(out, &env)
	}
	e.Relayed(t)
	if got := e.StreamCount(t, "INTAKE", subject); got != uint64(n) {
		t.Fatalf("INTAKE holds %d events on %s, want %d", got, subject, n)
	}
	return out
}

// ccPayload decodes an envelope's payload into m, checking the envelope's type and clinic.
func ccPayload[T proto.Message](t *testing.T, env *eventsv1.Envelope, m T, clinic string) T {
	t.Helper()
	if err := env.GetPayload().UnmarshalTo(m); err != nil {
		t.Fatal(err)
	}
	if want := string(m.ProtoReflect().Descriptor().FullName()); env.GetEventType() != want || env.GetClinicId() != clinic || env.GetProducer() != "intake" {
		t.Errorf("envelope type %q clinic %q producer %q, want %q %q intake", env.GetEventType(), env.GetClinicId(), env.GetProducer(), want, clinic)
	}
	return m
}

// ccCode fails unless err has code want.
func ccCode(t *testing.T, err error, want connect.Code) {
	t.Helper()
	if got := connect.CodeOf(err); got != want {
		t.Fatalf("code = %v (%v), want %v", got, err, want)
	}
}

// ccViolations are the (field, rule) pairs of an invalid_argument error, sorted.
func ccViolations(t *testing.T, err error) []string {
	t.Helper()
	ccCode(t, err, connect.CodeInvalidArgument)
	var out []string
	for _, v := range rpc.Violations(err) {
		out = append(out, v.Field+" "+v.Rule)
	}
	slices.Sort(out)
	return out
}

func validConsent(patientID, key string) *intakev1.GrantConsentRequest {
	return &intakev1.GrantConsentRequest{
		PatientId: patientID,
		Scopes: []intakev1.ConsentScope{intakev1.ConsentScope_CONSENT_SCOPE_PAYMENT, intakev1.ConsentScope_CONSENT_SCOPE_TREATMENT,
			intakev1.ConsentScope_CONSENT_SCOPE_NAMED_RECIPIENTS},
		NamedRecipients:   []*intakev1.NamedRecipient{{Name: "Philomena Quackenbush", Relationship: "sister"}},
		Channels:          []intakev1.Channel{intakev1.Channel_CHANNEL_SMS, intakev1.Channel_CHANNEL_EMAIL},
		ConfidentialEmail: "private.zq@example.org",
		ConfidentialPhone: "+13125550199",
		QuietHours:        &intakev1.QuietHours{Start: "21:30", End: "07:45"},
		Language:          "es",
		IdempotencyKey:    key,
	}
}

func (e *env) grant(tok string, m *intakev1.GrantConsentRequest) (*connect.Response[intakev1.GrantConsentResponse], error) {
	return e.client.GrantConsent(context.Background(), ccReq(tok, m))
}

func (e *env) revoke(tok string, m *intakev1.RevokeConsentRequest) (*connect.Response[intakev1.RevokeConsentResponse], error) {
	return e.client.RevokeConsent(context.Background(), ccReq(tok, m))
}

func (e *env) listConsents(tok, patientID string) ([]*intakev1.Consent, error) {
	resp, err := e.client.ListConsents(context.Background(), ccReq(tok, &intakev1.ListConsentsRequest{PatientId: patientID}))
	if err != nil {
		return nil, err
	}
	return resp.Msg.GetConsents(), nil
}

// consentRows counts consents, idempotency keys and outbox rows.
func (e *env) consentRows(t *testing.T) [3]int {
	t.Helper()
	n := func(table string) int { return e.Count(t, "SELECT count(*) FROM "+table) }
	return [3]int{n("consents"), n("idempotency_keys"), n("outbox")}
}

func TestGrantAndRevokeConsent(t *testing.T) {
	e := start(t)
	tok := e.intakeToken(t)
	patient := e.ccPatient(t, demo.RiversideClinicID)

	// Version 1.
	before := time.Now()
	m := validConsent(patient, "consent-0001")
	expires := time.Now().AddDate(1, 0, 0).UTC().Truncate(time.Microsecond)
	m.ExpiresAt = timestamppb.New(expires)
	resp, err := e.grant(tok, m)
	if err != nil {
		t.Fatal(err)
	}
	v1 := resp.Msg.GetConsent()
	if u, err := uuid.Parse(v1.GetConsentId()); err != nil || u.Version() != 7 {
		t.Errorf("consent id %q is not a UUIDv7", v1.GetConsentId())
	}
	if eff := v1.GetEffectiveFrom().AsTime(); eff.Before(before.Add(-time.Second)) || eff.After(time.Now().Add(time.Second)) {
		t.Errorf("effective_from %v is not the time of the call", eff)
	}
	want := &intakev1.Consent{
		ConsentId: v1.GetConsentId(), PatientId: patient, ClinicId: demo.RiversideClinicID, Version: 1,
		// Stored and shown in a fixed order, whatever order they were given in.
		Scopes: []intakev1.ConsentScope{intakev1.ConsentScope_CONSENT_SCOPE_TREATMENT, intakev1.ConsentScope_CONSENT_SCOPE_PAYMENT,
			intakev1.ConsentScope_CONSENT_SCOPE_NAMED_RECIPIENTS},
		NamedRecipients:   m.NamedRecipients,
		Channels:          []intakev1.Channel{intakev1.Channel_CHANNEL_EMAIL, intakev1.Channel_CHANNEL_SMS},
		ConfidentialEmail: m.ConfidentialEmail, ConfidentialPhone: m.ConfidentialPhone, QuietHours: m.QuietHours, Language: "es",
		EffectiveFrom: v1.GetEffectiveFrom(), ExpiresAt: timestamppb.New(expires),
		Status: intakev1.ConsentStatus_CONSENT_STATUS_ACTIVE, RecordedBy: "coordinator-1", CreatedAt: v1.GetCreatedAt(),
	}
	if !proto.Equal(v1, want) || resp.Msg.GetReplayed() {
		t.Fatalf("consent =\n%v\nwant\n%v (replayed %v)", v1, want, resp.Msg.GetReplayed())
	}

	// Version 2, with the defaults: it supersedes version 1.
	m2 := &intakev1.GrantConsentRequest{PatientId: patient, Scopes: []intakev1.ConsentScope{intakev1.ConsentScope_CONSENT_SCOPE_TREATMENT},
		IdempotencyKey: "consent-0002"}
	resp, err = e.grant(tok, m2)
	if err != nil {
		t.Fatal(err)
	}
	v2 := resp.Msg.GetConsent()
	if v2.GetVersion() != 2 || v2.GetStatus() != intakev1.ConsentStatus_CONSENT_STATUS_ACTIVE || v2.GetLanguage() != "en" ||
		len(v2.GetChannels()) != 0 || v2.GetQuietHours() != nil || v2.GetExpiresAt() != nil {
		t.Errorf("version 2 = %v", v2)
	}
	list, err := e.listConsents(tok, patient)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].GetConsentId() != v2.GetConsentId() || list[1].GetConsentId() != v1.GetConsentId() ||
		list[1].GetStatus() != intakev1.ConsentStatus_CONSENT_STATUS_SUPERSEDED || list[0].GetStatus() != intakev1.ConsentStatus_CONSENT_STATUS_ACTIVE {
		t.Fatalf("list = %v, want version 2 active then version 1 superseded", list)
	}
	if !proto.Equal(list[0], v2) {
		t.Errorf("listed version 2 =\n%v\nresponse\n%v", list[0], v2)
	}

	// The events.
	granted := e.ccEvents(t, subjectConsentGranted, 2)
	g1 := ccPayload(t, granted[0], &intakev1.ConsentGranted{}, demo.RiversideClinicID)
	wantG1 := &intakev1.ConsentGranted{
		ConsentId: v1.GetConsentId(), PatientId: patient, ClinicId: demo.RiversideClinicID, Version: 1,
		Scopes: want.Scopes, Channels: want.Channels, ConfidentialEmail: m.ConfidentialEmail, ConfidentialPhone: m.ConfidentialPhone,
		QuietHours: m.QuietHours, Language: "es", EffectiveFrom: v1.GetEffectiveFrom(), ExpiresAt: timestamppb.New(expires),
	}
	if !proto.Equal(g1, wantG1) {
		t.Errorf("ConsentGranted v1 =\n%v\nwant\n%v", g1, wantG1)
	}
	g2 := ccPayload(t, granted[1], &intakev1.ConsentGranted{}, demo.RiversideClinicID)
	if g2.GetConsentId() != v2.GetConsentId() || g2.GetVersion() != 2 || g2.GetSupersedesConsentId() != v1.GetConsentId() || g2.GetLanguage() != "en" {
		t.Errorf("ConsentGranted v2 = %v, want it to supersede %s", g2, v1.GetConsentId())
	}

	// Only the active consent can be revoked.
	_, err = e.revoke(tok, &intakev1.RevokeConsentRequest{ConsentId: v1.GetConsentId(), WrittenRevocationReceived: true})
	ccCode(t, err, connect.CodeFailedPrecondition)

	// Revoke version 2 from an hour ahead.
	at := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	rr, err := e.revoke(tok, &intakev1.RevokeConsentRequest{ConsentId: v2.GetConsentId(), WrittenRevocationReceived: true,
		EffectiveAt: timestamppb.New(at), Reason: "  letter received at front desk "})
	if err != nil {
		t.Fatal(err)
	}
	rv := rr.Msg.GetConsent()
	if rv.GetStatus() != intakev1.ConsentStatus_CONSENT_STATUS_REVOKED || !rv.GetRevokedAt().AsTime().Equal(at) ||
		rv.GetRevocationReason() != "letter received at front desk" || rv.GetVersion() != 2 {
		t.Errorf("revoked = %v", rv)
	}
	var revokedBy string
	var recordedAt time.Time
	if err := e.Pool.QueryRow(context.Background(), `SELECT revoked_by, revoked_at FROM consents WHERE id = $1`, v2.GetConsentId()).
		Scan(&revokedBy, &recordedAt); err != nil || revokedBy != "coordinator-1" || recordedAt.After(time.Now()) {
		t.Errorf("revoked_by %q revoked_at %v (%v)", revokedBy, recordedAt, err)
	}
	revoked := ccPayload(t, e.ccEvents(t, subjectConsentRevoked, 1)[0], &intakev1.ConsentRevoked{}, demo.RiversideClinicID)
	wantR := &intakev1.ConsentRevoked{ConsentId: v2.GetConsentId(), PatientId: patient, ClinicId: demo.RiversideClinicID,
		Scopes: []intakev1.ConsentScope{intakev1.ConsentScope_CONSENT_SCOPE_TREATMENT}, EffectiveAt: timestamppb.New(at)}
	if !proto.Equal(revoked, wantR) {
		t.Errorf("ConsentRevoked =\n%v\nwant\n%v", revoked, wantR)
	}

	// A second revocation changes nothing.
	rows := e.consentRows(t)
	_, err = e.revoke(tok, &intakev1.RevokeConsentRequest{ConsentId: v2.GetConsentId(), WrittenRevocationReceived: true})
	ccCode(t, err, connect.CodeFailedPrecondition)
	if got := e.consentRows(t); got != rows {
		t.Errorf("rows (consents, keys, outbox) = %v after a second revocation, want %v", got, rows)
	}

	// Until the revocation takes effect, no new version can (versions never overlap); see
	// TestGrantConsentAfterRevocation for the grants after it.
	_, err = e.grant(tok, validConsent(patient, "consent-0003"))
	if got := ccViolations(t, err); !slices.Equal(got, []string{"effective_from effective_from.after_previous"}) {
		t.Errorf("grant before the revocation takes effect: %v", got)
	}
	if got := e.consentRows(t); got != rows {
		t.Errorf("rows (consents, keys, outbox) = %v after a refused grant, want %v", got, rows)
	}
	if n := e.Count(t, "SELECT count(*) FROM consents WHERE status = 'active'"); n != 0 {
		t.Errorf("%d active consents, want 0", n)
	}

	// Logs carry ids, never the consent's details.
	logs := e.Logs.String()
	if !strings.Contains(logs, `"msg":"consent granted"`) || !strings.Contains(logs, `"msg":"consent revoked"`) || !strings.Contains(logs, v2.GetConsentId()) {
		t.Errorf("no grant and revoke log lines with the consent id:\n%s", logs)
	}
	for _, phi := range []string{"Philomena", "private.zq@example.org", "+13125550199", "front desk"} {
		if strings.Contains(logs, phi) {
			t.Errorf("logs contain PHI %q", phi)
		}
	}
}

func TestGrantConsentRejectsBadInput(t *testing.T) {
	e := start(t)
	tok := e.intakeToken(t)
	patient := e.ccPatient(t, demo.RiversideClinicID)
	now := time.Now()
	ts := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(now.Add(d)) }
	tests := []struct {
		name string
		edit func(*intakev1.GrantConsentRequest)
		want []string // "field rule", sorted
	}{
		{name: "named-recipients scope without recipients", edit: func(m *intakev1.GrantConsentRequest) { m.NamedRecipients = nil },
			want: []string{"named_recipients consent.named_recipients"}},
		{name: "recipients without the named-recipients scope", edit: func(m *intakev1.GrantConsentRequest) {
			m.Scopes = []intakev1.ConsentScope{intakev1.ConsentScope_CONSENT_SCOPE_TREATMENT}
		}, want: []string{"named_recipients named_recipients.scope"}},
		{name: "blank recipient name", edit: func(m *intakev1.GrantConsentRequest) { m.NamedRecipients[0].Name = "  " },
			want: []string{"named_recipients[0].name name.not_blank"}},
		{name: "quiet hours 25:00", edit: func(m *intakev1.GrantConsentRequest) { m.QuietHours.End = "25:00" },
			want: []string{"quiet_hours.end quiet_hours.time"}},
		{name: "quiet hours start only", edit: func(m *intakev1.GrantConsentRequest) { m.QuietHours.End = "" },
			want: []string{"quiet_hours.end quiet_hours.time"}},
		{name: "quiet hours empty window", edit: func(m *intakev1.GrantConsentRequest) {
			m.QuietHours = &intakev1.QuietHours{Start: "22:00", End: "22:00"}
		},
			want: []string{"quiet_hours.end quiet_hours.window"}},
		{name: "SMS without a confidential phone", edit: func(m *intakev1.GrantConsentRequest) { m.ConfidentialPhone = "" },
			want: []string{"confidential_phone channels.sms_phone"}},
		{name: "expires before it takes effect", edit: func(m *intakev1.GrantConsentRequest) {
			m.EffectiveFrom, m.ExpiresAt = ts(-time.Hour), ts(-2*time.Hour)
		}, want: []string{"expires_at expires_at.after_effective_from"}},
		{name: "effective in the future", edit: func(m *intakev1.GrantConsentRequest) { m.EffectiveFrom = ts(time.Hour) },
			want: []string{"effective_from effective_from.not_future"}},
		{name: "effective more than 90 days back", edit: func(m *intakev1.GrantConsentRequest) { m.EffectiveFrom = ts(-91 * 24 * time.Hour) },
			want: []string{"effective_from effective_from.max_backdate"}},
		{name: "already expired", edit: func(m *intakev1.GrantConsentRequest) {
			m.EffectiveFrom, m.ExpiresAt = ts(-48*time.Hour), ts(-time.Hour)
		}, want: []string{"expires_at expires_at.future"}},
		{name: "shape: no scopes, bad phone and email, language fr, no key", edit: func(m *intakev1.GrantConsentRequest) {
			m.Scopes, m.NamedRecipients, m.ConfidentialPhone, m.ConfidentialEmail, m.Language, m.IdempotencyKey = nil, nil, "312-555-0199", "nope", "fr", ""
		}, want: []string{"confidential_email string.email", "confidential_phone string.pattern", "idempotency_key string.min_len",
			"language string.in", "scopes repeated.min_items"}},
		{name: "shape: unspecified scope, repeated channel", edit: func(m *intakev1.GrantConsentRequest) {
			m.Scopes = append(m.Scopes, intakev1.ConsentScope_CONSENT_SCOPE_UNSPECIFIED)
			m.Channels = []intakev1.Channel{intakev1.Channel_CHANNEL_SMS, intakev1.Channel_CHANNEL_SMS}
		}, want: []string{"channels repeated.unique", "scopes[3] enum.not_in"}},
		{name: "several rules together", edit: func(m *intakev1.GrantConsentRequest) {
			m.ConfidentialPhone, m.QuietHours.Start = "", "7pm"
			m.EffectiveFrom, m.ExpiresAt = ts(-time.Hour), ts(-2*time.Hour)
		}, want: []string{"confidential_phone channels.sms_phone", "expires_at expires_at.after_effective_from", "quiet_hours.start quiet_hours.time"}},
	}
	rows := e.consentRows(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validConsent(patient, fmt.Sprintf("bad-consent-%04d", i))
			tt.edit(m)
			_, err := e.grant(tok, m)
			if got := ccViolations(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("violations = %q, want %q (%v)", got, tt.want, err)
			}
			if got := e.consentRows(t); got != rows {
				t.Errorf("rows (consents, keys, outbox) = %v, want %v", got, rows)
			}
		})
	}

	t.Run("revocation", func(t *testing.T) {
		m := validConsent(patient, "good-consent-0001")
		m.EffectiveFrom = ts(-time.Hour)
		resp, err := e.grant(tok, m)
		if err != nil {
			t.Fatal(err)
		}
		id := resp.Msg.GetConsent().GetConsentId()
		rows := e.consentRows(t)
		for _, tt := range []struct {
			name string
			req  *intakev1.RevokeConsentRequest
			want []string
		}{
			{"no written revocation", &intakev1.RevokeConsentRequest{ConsentId: id}, []string{"written_revocation_received bool.const"}},
			{"before the consent took effect", &intakev1.RevokeConsentRequest{ConsentId: id, WrittenRevocationReceived: true, EffectiveAt: ts(-2 * time.Hour)},
				[]string{"effective_at effective_at.not_before_effective_from"}},
			{"more than 24 hours ahead", &intakev1.RevokeConsentRequest{ConsentId: id, WrittenRevocationReceived: true, EffectiveAt: ts(25 * time.Hour)},
				[]string{"effective_at effective_at.max_lead"}},
			{"not a uuid", &intakev1.RevokeConsentRequest{ConsentId: "c1", WrittenRevocationReceived: true}, []string{"consent_id string.uuid"}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := e.revoke(tok, tt.req)
				if got := ccViolations(t, err); !slices.Equal(got, tt.want) {
					t.Errorf("violations = %q, want %q", got, tt.want)
				}
				if got := e.consentRows(t); got != rows {
					t.Errorf("rows = %v, want %v", got, rows)
				}
			})
		}
		_, err = e.revoke(tok, &intakev1.RevokeConsentRequest{ConsentId: uuid.NewString(), WrittenRevocationReceived: true})
		ccCode(t, err, connect.CodeNotFound)
		if n := e.Count(t, "SELECT count(*) FROM consents WHERE status = 'active'"); n != 1 {
			t.Errorf("%d active consents, want 1", n)
		}
	})

	t.Run("unknown patient", func(t *testing.T) {
		_, err := e.grant(tok, validConsent(uuid.NewString(), "unknown-patient-0001"))
		ccCode(t, err, connect.CodeNotFound)
		_, err = e.listConsents(tok, uuid.NewString())
		ccCode(t, err, connect.CodeNotFound)
	})
}

func TestConsentAuth(t *testing.T) {
	e := start(t)
	riverside := e.intakeToken(t)
	patient := e.ccPatient(t, demo.RiversideClinicID)
	resp, err := e.grant(riverside, validConsent(patient, "auth-consent-0000"))
	if err != nil {
		t.Fatal(err)
	}
	consentID := resp.Msg.GetConsent().GetConsentId()
	rows := e.consentRows(t)

	lakeview := e.Token(t, "coordinator-lakeview", []string{"intake_coordinator"}, []string{demo.LakeviewClinicID})
	billing := e.Token(t, "biller", []string{"billing"}, []string{auth.AllClinics})
	clinician := e.Token(t, "clinician-1", []string{"clinician"}, []string{demo.RiversideClinicID})
	revokeReq := &intakev1.RevokeConsentRequest{ConsentId: consentID, WrittenRevocationReceived: true}
	tests := []struct {
		name string
		call func() error
		want connect.Code
	}{
		{"grant without a token", func() error { _, err := e.grant("", validConsent(patient, "auth-consent-0001")); return err }, connect.CodeUnauthenticated},
		{"grant as billing", func() error { _, err := e.grant(billing, validConsent(patient, "auth-consent-0002")); return err }, connect.CodePermissionDenied},
		{"grant as clinician", func() error { _, err := e.grant(clinician, validConsent(patient, "auth-consent-0003")); return err }, connect.CodePermissionDenied},
		// Another clinic's patient is not found: the caller must not learn it exists.
		{"grant at another clinic", func() error { _, err := e.grant(lakeview, validConsent(patient, "auth-consent-0004")); return err }, connect.CodeNotFound},
		{"revoke as clinician", func() error { _, err := e.revoke(clinician, revokeReq); return err }, connect.CodePermissionDenied},
		{"revoke at another clinic", func() error { _, err := e.revoke(lakeview, revokeReq); return err }, connect.CodeNotFound},
		{"list as billing", func() error { _, err := e.listConsents(billing, patient); return err }, connect.CodePermissionDenied},
		{"list at another clinic", func() error { _, err := e.listConsents(lakeview, patient); return err }, connect.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ccCode(t, tt.call(), tt.want)
			if got := e.consentRows(t); got != rows {
				t.Errorf("rows (consents, keys, outbox) = %v, want %v", got, rows)
			}
		})
	}
	t.Run("clinician lists at its clinic", func(t *testing.T) {
		list, err := e.listConsents(clinician, patient)
		if err != nil || len(list) != 1 {
			t.Fatalf("list = %v, %v", list, err)
		}
	})
	t.Run("admin revokes", func(t *testing.T) {
		if _, err := e.revoke(e.Token(t, "admin-1", []string{"admin"}, []string{auth.AllClinics}), revokeReq); err != nil {
			t.Fatal(err)
		}
	})
}

func TestGrantConsentIdempotency(t *testing.T) {
	e := start(t)
	tok := e.intakeToken(t)
	patient := e.ccPatient(t, demo.RiversideClinicID)
	first, err := e.grant(tok, validConsent(patient, "idem-consent-0001"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.grant(tok, validConsent(patient, "idem-consent-0001"))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Msg.GetReplayed() || !proto.Equal(again.Msg.GetConsent(), first.Msg.GetConsent()) {
		t.Fatalf("repeat = %v, want the first consent %v replayed", again.Msg, first.Msg)
	}
	// patient admission (PatientAdmitted, PatientContactRecorded, PatientBillingIdentityRecorded) + one grant.
	if got := e.consentRows(t); got != [3]int{1, 2, 4} {
		t.Fatalf("rows (consents, keys, outbox) after a repeat = %v, want [1 2 4]", got)
	}

	t.Run("same key, different request", func(t *testing.T) {
		m := validConsent(patient, "idem-consent-0001")
		m.Language = "en"
		_, err := e.grant(tok, m)
		ccCode(t, err, connect.CodeFailedPrecondition)
		if got := e.consentRows(t); got != [3]int{1, 2, 4} {
			t.Fatalf("rows = %v, want unchanged", got)
		}
	})

	t.Run("a rejected call does not use up its key", func(t *testing.T) {
		m := validConsent(patient, "idem-consent-0002")
		m.ConfidentialPhone = ""
		_, err := e.grant(tok, m)
		ccCode(t, err, connect.CodeInvalidArgument)
		resp, err := e.grant(tok, validConsent(patient, "idem-consent-0002"))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Msg.GetReplayed() || resp.Msg.GetConsent().GetVersion() != 2 {
			t.Fatalf("corrected call = %v, want a fresh version 2", resp.Msg)
		}
	})

	t.Run("concurrent grants get consecutive versions, one active", func(t *testing.T) {
		const n = 6
		var wg sync.WaitGroup
		versions := make([]int32, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				r, err := e.grant(tok, validConsent(patient, fmt.Sprintf("idem-consent-1%03d", i)))
				errs[i] = err
				if err == nil {
					versions[i] = r.Msg.GetConsent().GetVersion()
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		slices.Sort(versions)
		if !slices.Equal(versions, []int32{3, 4, 5, 6, 7, 8}) {
			t.Fatalf("versions = %v, want 3 to 8", versions)
		}
		if n := e.Count(t, "SELECT count(*) FROM consents WHERE status = 'active'"); n != 1 {
			t.Fatalf("%d active consents, want 1", n)
		}
		// Each version supersedes the one before it.
		if n := e.Count(t, `SELECT count(*) FROM consents c JOIN consents p ON p.id = c.supersedes_id AND p.version = c.version - 1`); n != 7 {
			t.Fatalf("%d versions supersede their predecessor, want 7", n)
		}
	})

	t.Run("concurrent repeats grant once", func(t *testing.T) {
		const n = 6
		var wg sync.WaitGroup
		resps := make([]*intakev1.GrantConsentResponse, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				r, err := e.grant(tok, validConsent(patient, "idem-consent-0003"))
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
			if r.GetConsent().GetConsentId() != resps[0].GetConsent().GetConsentId() {
				t.Fatalf("concurrent repeats got different consents")
			}
			if !r.GetReplayed() {
				fresh++
			}
		}
		if fresh != 1 {
			t.Fatalf("%d calls reported a fresh grant, want 1", fresh)
		}
	})

	testkit.Eventually(t, 10*time.Second, "nine ConsentGranted on INTAKE", func() bool {
		return e.StreamCount(t, "INTAKE", subjectConsentGranted) == 9
	})
}

// After a revocation there is no active consent, but the next version still may not be
// back-dated over the time the revoked one applied (before its revocation took effect).
func TestGrantConsentAfterRevocation(t *testing.T) {
	e := start(t)
	tok := e.intakeToken(t)
	patient := e.ccPatient(t, demo.RiversideClinicID)
	now := time.Now()
	ts := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(now.Add(d)) }

	v1 := validConsent(patient, "after-revoke-0001")
	v1.EffectiveFrom = ts(-10 * 24 * time.Hour)
	first, err := e.grant(tok, v1)
	if err != nil {
		t.Fatal(err)
	}
	// Revoked from three days ago.
	if _, err := e.revoke(tok, &intakev1.RevokeConsentRequest{ConsentId: first.Msg.GetConsent().GetConsentId(),
		WrittenRevocationReceived: true, EffectiveAt: ts(-3 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	rows := e.consentRows(t)
	for i, tt := range []struct {
		name string
		from time.Duration
	}{
		{"back-dated to just before the revocation took effect", -3*24*time.Hour - time.Minute},
		{"back-dated to while the revoked version applied", -5 * 24 * time.Hour},
		{"back-dated to before the revoked version took effect", -20 * 24 * time.Hour},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := validConsent(patient, fmt.Sprintf("after-revoke-1%03d", i))
			m.EffectiveFrom = ts(tt.from)
			_, err := e.grant(tok, m)
			if got := ccViolations(t, err); !slices.Equal(got, []string{"effective_from effective_from.after_previous"}) {
				t.Errorf("violations = %q", got)
			}
			if got := e.consentRows(t); got != rows {
				t.Errorf("rows (consents, keys, outbox) = %v, want %v", got, rows)
			}
		})
	}
	t.Run("from the revocation on", func(t *testing.T) {
		m := validConsent(patient, "after-revoke-0002")
		m.EffectiveFrom = ts(-3*24*time.Hour + time.Minute)
		resp, err := e.grant(tok, m)
		if err != nil {
			t.Fatal(err)
		}
		if c := resp.Msg.GetConsent(); c.GetVersion() != 2 || c.GetStatus() != intakev1.ConsentStatus_CONSENT_STATUS_ACTIVE {
			t.Errorf("consent = %v, want an active version 2", c)
		}
		// It supersedes nothing: the revoked version stays revoked.
		g := ccPayload(t, e.ccEvents(t, subjectConsentGranted, 2)[1], &intakev1.ConsentGranted{}, demo.RiversideClinicID)
		if g.GetVersion() != 2 || g.GetSupersedesConsentId() != "" {
			t.Errorf("ConsentGranted v2 = %v", g)
		}
		list, err := e.listConsents(tok, patient)
		if err != nil || len(list) != 2 || list[1].GetStatus() != intakev1.ConsentStatus_CONSENT_STATUS_REVOKED {
			t.Errorf("list = %v, %v; want version 1 still revoked", list, err)
		}
	})
}
