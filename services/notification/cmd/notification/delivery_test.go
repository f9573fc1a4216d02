package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/testkit"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/sms"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/sms/smsfake"
	"github.com/trellis-health/trellis/services/notification/internal/app"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
	"github.com/trellis-health/trellis/services/notification/internal/notifytest"
	"github.com/trellis-health/trellis/services/notification/internal/smtptest"
)

const (
	dvPublic = "https://notify.example.test" // PUBLIC_BASE_URL: what the provider signs
	dvToken  = "tok3n"
	dvClinic = "+13125550000"
)

// dvStart runs notification with the fake SMS provider; webhooks from the fake reach the
// service through fake.Target, as through a tunnel in front of PUBLIC_BASE_URL.
func dvStart(t *testing.T, extra map[string]string) (*env, *smtptest.Sink, *smsfake.Server) {
	t.Helper()
	sink := smtptest.Start(t, smtptest.Options{})
	fake := smsfake.Start(t, "ACtest", dvToken)
	vars := map[string]string{"SMS_PROVIDER_URL": fake.URL, "SMS_ACCOUNT_SID": "ACtest", "SMS_AUTH_TOKEN": dvToken,
		"SMS_FROM": "+15555550100", "PUBLIC_BASE_URL": dvPublic}
	for k, v := range extra {
		vars[k] = v
	}
	e := start(t, sink.Addr, vars)
	fake.Target = e.URL
	if _, err := e.Pool.Exec(context.Background(), `INSERT INTO clinic_settings (clinic_id, contact_phone) VALUES ($1, $2)
		ON CONFLICT (clinic_id) DO UPDATE SET contact_phone = EXCLUDED.contact_phone`, clinicA, dvClinic); err != nil {
		t.Fatal(err)
	}
	return e, sink, fake
}

// dvConsent publishes a consent version for p and waits until it is applied.
func (e *env) dvConsent(p patient, consentID string, version int32, channels ...intakev1.Channel) {
	e.t.Helper()
	seq := e.publish("trellis.intake.consent.granted.v1", "intake", p.clinic, bus.NewID(), "", "", &intakev1.ConsentGranted{
		ConsentId: consentID, PatientId: p.id, ClinicId: p.clinic, Version: version, Channels: channels,
		Scopes: []intakev1.ConsentScope{intakev1.ConsentScope_CONSENT_SCOPE_TREATMENT}, Language: "en"})
	e.Settled(e.t, "INTAKE", "notification--consents", seq)
}

// dvQueue queues a reminder for p on hint, due in `in`, as the triggers would.
func (e *env) dvQueue(p patient, hint string, in time.Duration) string {
	e.t.Helper()
	ctx := context.Background()
	m := app.NewMessage{ID: bus.NewID(), PatientID: p.id, ClinicID: p.clinic, Kind: domain.KindReminder, Channel: hint,
		Audience: domain.AudiencePatient, DedupeKey: "test:" + bus.NewID(), SubjectRef: bus.NewID(),
		Payload: map[string]string{"date": "Thursday, June 11", "time": "9:00 AM"}, DueAt: time.Now().Add(in)}
	err := pgx.BeginFunc(ctx, e.Pool, func(tx pgx.Tx) error {
		_, err := postgres.New(notifytest.Store(e.Pool), fieldcrypt.Dev()).QueueMessage(ctx, tx, m)
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return m.ID
}

// dvWait waits for message id to reach status and returns its channel and reason.
func (e *env) dvWait(id, status string) (channel, reason string) {
	e.t.Helper()
	testkit.Eventually(e.t, 15*time.Second, "message "+status, func() bool {
		var s string
		err := e.Pool.QueryRow(context.Background(), `SELECT status, channel, status_reason FROM messages WHERE id = $1`, id).
			Scan(&s, &channel, &reason)
		return err == nil && s == status
	})
	return channel, reason
}

func (e *env) dvOptedOut(phone string) bool {
	e.t.Helper()
	h, err := fieldcrypt.Dev().Hash(fieldcrypt.KindPhone, phone)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.Count(e.t, `SELECT count(*) FROM sms_optouts WHERE phone_hash = $1 AND phone IS NULL AND opted_out`, h) == 1
}

// A patient who agreed to texts texts STOP: the next message goes by email; after START it is
// a text again, naming the clinic's number. The provider's delivery reports mark texts
// delivered or failed (with events). Webhooks without a valid signature change nothing.
func TestDeliverySTOPThenSTARTAndStatusCallbacks(t *testing.T) {
	e, sink, fake := dvStart(t, map[string]string{"NOTIFY_SMS_PER_DAY": "3", "NOTIFY_SMS_PER_WEEK": "5"})
	ctx := context.Background()
	p := newPatient(clinicA, "Teodora", "teodora@example.org")
	e.admitWithContact(p) // phone +13125550100
	e.waitRecipient(p.id, "phone_hash IS NOT NULL")
	e.dvConsent(p, bus.NewID(), 1, intakev1.Channel_CHANNEL_EMAIL, intakev1.Channel_CHANNEL_SMS)

	// A forged STOP (wrong signature) is refused.
	form := url.Values{"From": {"+13125550100"}, "To": {"+15555550100"}, "Body": {"STOP"}}
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/webhooks/sms/inbound", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(sms.SignatureHeader, sms.Signature("not-the-token", dvPublic+"/webhooks/sms/inbound", form))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || e.dvOptedOut("+13125550100") {
		t.Fatalf("forged STOP: status %d, opted out %v", resp.StatusCode, e.dvOptedOut("+13125550100"))
	}

	if err := fake.Inbound(ctx, dvPublic+"/webhooks/sms/inbound", "+13125550100", "+15555550100", "Stop"); err != nil {
		t.Fatal(err)
	}
	if !e.dvOptedOut("+13125550100") {
		t.Fatal("STOP did not opt the number out")
	}
	if ch, _ := e.dvWait(e.dvQueue(p, "sms", 0), "sent"); ch != "email" {
		t.Errorf("after STOP the message went by %s, want email", ch)
	}
	testkit.Eventually(t, 5*time.Second, "the email", func() bool { return len(emailsTo(sink, p.email)) == 1 })

	if err := fake.Inbound(ctx, dvPublic+"/webhooks/sms/inbound", "+13125550100", "+15555550100", "START"); err != nil {
		t.Fatal(err)
	}
	if e.dvOptedOut("+13125550100") {
		t.Fatal("START did not opt the number back in")
	}
	first := e.dvQueue(p, "sms", 0)
	if ch, _ := e.dvWait(first, "sent"); ch != "sms" {
		t.Fatalf("after START the message went by %s, want sms", ch)
	}
	texts := fake.Messages()
	if len(texts) != 1 || texts[0].To != "+13125550100" || !strings.Contains(texts[0].Body, "312") ||
		len([]rune(texts[0].Body)) > domain.MaxSMSLength || domain.SensitiveTermsIn(texts[0].Body) != nil {
		t.Fatalf("texts = %+v", texts)
	}

	// Delivery reports: delivered, then a repeat (no change); undelivered for a second text.
	for range 2 {
		if err := fake.Callback(ctx, texts[0].SID, "delivered", ""); err != nil {
			t.Fatal(err)
		}
	}
	e.dvWait(first, "delivered")
	second := e.dvQueue(p, "sms", 0)
	e.dvWait(second, "sent")
	if err := fake.Callback(ctx, fake.Messages()[1].SID, "undelivered", "30003"); err != nil {
		t.Fatal(err)
	}
	if _, reason := e.dvWait(second, "failed"); reason != "undelivered" {
		t.Errorf("undelivered reason = %q", reason)
	}
	testkit.Eventually(t, 10*time.Second, "delivered and failed events", func() bool {
		return e.StreamCount(t, "NOTIFICATION", app.SubjectMessageDelivered) == 1 &&
			e.StreamCount(t, "NOTIFICATION", app.SubjectMessageFailed) == 1
	})
	e.assertNoPHIInLogs(p)
	if strings.Contains(e.Logs.String(), "+13125550100") || strings.Contains(e.Logs.String(), dvToken) {
		t.Error("logs contain the phone number or the token")
	}
}

// The texting cap over the whole service: a second text the same day falls back to email.
func TestDeliveryTextCapFallsBackToEmail(t *testing.T) {
	e, sink, fake := dvStart(t, nil)
	p := newPatient(clinicA, "Wen", "wen@example.org")
	e.admitWithContact(p)
	e.waitRecipient(p.id, "phone_hash IS NOT NULL")
	e.dvConsent(p, bus.NewID(), 1, intakev1.Channel_CHANNEL_EMAIL, intakev1.Channel_CHANNEL_SMS)
	if ch, _ := e.dvWait(e.dvQueue(p, "sms", 0), "sent"); ch != "sms" {
		t.Fatalf("first went by %s", ch)
	}
	if ch, _ := e.dvWait(e.dvQueue(p, "sms", 0), "sent"); ch != "email" {
		t.Errorf("second went by %s, want email", ch)
	}
	if len(fake.Messages()) != 1 || len(emailsTo(sink, p.email)) != 1 {
		t.Errorf("%d texts, %d emails; want 1 each", len(fake.Messages()), len(emailsTo(sink, p.email)))
	}
}

// Revoking the consent cancels the patient's queued messages at once; a later consent version
// lets messages go again, and a revocation of a superseded consent changes nothing.
func TestDeliveryRevokedConsentCancelsPending(t *testing.T) {
	e, _, _ := dvStart(t, nil)
	p := newPatient(clinicA, "Ilse", "ilse@example.org")
	e.admitWithContact(p)
	e.waitRecipient(p.id, "phone_hash IS NOT NULL")
	v1 := bus.NewID()
	e.dvConsent(p, v1, 1, intakev1.Channel_CHANNEL_EMAIL)
	pending := e.dvQueue(p, "email", time.Hour)
	seq := e.publish("trellis.intake.consent.revoked.v1", "intake", p.clinic, bus.NewID(), "", "", &intakev1.ConsentRevoked{
		ConsentId: v1, PatientId: p.id, ClinicId: p.clinic,
		Scopes: []intakev1.ConsentScope{intakev1.ConsentScope_CONSENT_SCOPE_TREATMENT}})
	e.Settled(t, "INTAKE", "notification--consents", seq)
	if _, reason := e.dvWait(pending, "cancelled"); reason != "consent_revoked" {
		t.Errorf("reason = %q", reason)
	}
	// Queued after the revocation: cancelled when due.
	if _, reason := e.dvWait(e.dvQueue(p, "email", 0), "cancelled"); reason != "consent_revoked" {
		t.Errorf("reason = %q", reason)
	}
	e.dvConsent(p, bus.NewID(), 2, intakev1.Channel_CHANNEL_EMAIL)
	seq = e.publish("trellis.intake.consent.revoked.v1", "intake", p.clinic, bus.NewID(), "", "", &intakev1.ConsentRevoked{
		ConsentId: v1, PatientId: p.id, ClinicId: p.clinic})
	e.Settled(t, "INTAKE", "notification--consents", seq)
	if ch, _ := e.dvWait(e.dvQueue(p, "email", 0), "sent"); ch != "email" {
		t.Errorf("after a new consent: %s", ch)
	}
}

// SMS_PROVIDER_URL=fake (dev stack): the fake provider runs on the service's own server,
// records the text instead of sending it, and lists it at /fake-sms/messages.
func TestDeliveryFakeProviderMode(t *testing.T) {
	sink := smtptest.Start(t, smtptest.Options{})
	addr := downAddr(t)
	e := start(t, sink.Addr, map[string]string{"HTTP_ADDR": addr, "SMS_PROVIDER_URL": "fake", "PUBLIC_BASE_URL": "http://" + addr})
	if _, err := e.Pool.Exec(context.Background(), `INSERT INTO clinic_settings (clinic_id, contact_phone) VALUES ($1, $2)`,
		clinicA, dvClinic); err != nil {
		t.Fatal(err)
	}
	p := newPatient(clinicA, "Noor", "noor@example.org")
	e.admitWithContact(p)
	e.waitRecipient(p.id, "phone_hash IS NOT NULL")
	e.dvConsent(p, bus.NewID(), 1, intakev1.Channel_CHANNEL_SMS)
	if ch, _ := e.dvWait(e.dvQueue(p, "sms", 0), "sent"); ch != "sms" {
		t.Fatalf("went by %s", ch)
	}
	resp, err := http.Get(e.URL + "/fake-sms/messages")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = io.Copy(&b, resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(b.String(), `"to":"+13125550100"`) {
		t.Errorf("GET /fake-sms/messages = %d %s", resp.StatusCode, b.String())
	}
	if !strings.Contains(e.Logs.String(), "texts are NOT sent") {
		t.Error("fake mode is not logged")
	}
}
