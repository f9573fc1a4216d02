package app_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/sms"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/sms/smsfake"
	"github.com/trellis-health/trellis/services/notification/internal/app"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
	"github.com/trellis-health/trellis/services/notification/internal/smtptest"
)

const clinicPhone = "+13125550000"

// testRenderer renders every kind the same neutral way, as version 3.
type testRenderer struct{}

func (testRenderer) Render(_ context.Context, in domain.RenderInput) (domain.Rendered, int, error) {
	body := "Hi " + in.Name + ", see you " + in.Payload["date"] + "."
	if in.Locale == "es" {
		body = "Hola " + in.Name + ", hasta " + in.Payload["date"] + "."
	}
	if in.Payload["long"] != "" {
		body += strings.Repeat(" more", 40)
	}
	return domain.Rendered{Subject: "A message from your care team", Body: body}, 3, nil
}

// clock is a settable clock for the dispatcher.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

type deliveryFixture struct {
	fixture
	sink  *smtptest.Sink
	fake  *smsfake.Server
	clock *clock
	d     *app.Dispatcher
}

func setupDelivery(t *testing.T, now time.Time) *deliveryFixture {
	t.Helper()
	f := setup(t)
	sink := smtptest.Start(t, smtptest.Options{})
	fake := smsfake.Start(t, "ACtest", "token")
	client, err := sms.New(sms.Config{BaseURL: fake.URL, AccountSID: "ACtest", AuthToken: "token", From: "+15555550100",
		StatusCallback: "https://notify.example.test/webhooks/sms/status", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: now}
	d := app.NewDispatcher(f.store, f.repo, sender(t, sink.Addr), app.DispatcherConfig{
		Renderer: testRenderer{}, SMS: client, Now: c.now, StaffEmail: "care-team@trellis.local",
		Retry: domain.RetryPolicy{MaxAttempts: 3, Base: time.Millisecond, Max: time.Millisecond},
	}, quiet)
	if _, err := f.pool.Exec(sys(), `INSERT INTO clinic_settings (clinic_id, contact_phone) VALUES ($1, $2)
		ON CONFLICT (clinic_id) DO UPDATE SET contact_phone = EXCLUDED.contact_phone`, clinic, clinicPhone); err != nil {
		t.Fatal(err)
	}
	return &deliveryFixture{fixture: f, sink: sink, fake: fake, clock: c, d: d}
}

// patient stores a complete recipient copy (Chicago) and, when channels is not nil, a consent.
func (f *deliveryFixture) patient(t *testing.T, email, phone string, channels []string, quietStart, quietEnd string) string {
	t.Helper()
	ctx := sys()
	pid := bus.NewID()
	adm, err := domain.NewAdmission(pid, clinic, "America/Chicago", "2026-03-02", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	con, err := domain.NewContact(pid, clinic, "Sam", email, phone, "America/Chicago", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	err = f.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		if err := f.repo.UpsertAdmission(ctx, tx, adm); err != nil {
			return err
		}
		if err := f.repo.UpsertContact(ctx, tx, con); err != nil {
			return err
		}
		if channels == nil {
			return nil
		}
		p, err := domain.NewPreferences(pid, clinic, bus.NewID(), 1, channels, "", "", quietStart, quietEnd, "en", time.Now())
		if err != nil {
			return err
		}
		_, err = f.repo.ApplyConsent(ctx, tx, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// queue queues a reminder for pid with the given channel hint, due now (DB time).
func (f *deliveryFixture) queue(t *testing.T, pid, hint string, payload map[string]string, expires *time.Time) string {
	t.Helper()
	m := app.NewMessage{ID: bus.NewID(), PatientID: pid, ClinicID: clinic, Kind: domain.KindReminder, Channel: hint,
		Audience: domain.AudiencePatient, DedupeKey: "test:" + bus.NewID(), Payload: payload, ExpiresAt: expires}
	err := f.store.InTx(sys(), func(ctx context.Context, tx *bus.Tx) error {
		_, err := f.repo.QueueMessage(ctx, tx, m)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m.ID
}

type row struct {
	status, reason, channel, sentTo, locale string
	attempts, version                       int
	due                                     time.Time
}

func (f *deliveryFixture) row(t *testing.T, id string) row {
	t.Helper()
	var r row
	var sealed *string
	err := f.pool.QueryRow(sys(), `SELECT status, status_reason, channel, sent_to, sent_to_enc, locale, attempts,
		template_version, due_at FROM messages WHERE id = $1`, id).
		Scan(&r.status, &r.reason, &r.channel, &r.sentTo, &sealed, &r.locale, &r.attempts, &r.version, &r.due)
	if err != nil {
		t.Fatal(err)
	}
	// The address used is kept sealed (docs/security.md#field-encryption), never in plaintext.
	if r.sentTo != "" {
		t.Fatalf("message %s: sent_to holds plaintext", id)
	}
	if sealed != nil {
		if r.sentTo, err = fieldcrypt.Dev().Open(*sealed, fieldcrypt.AAD("messages", "sent_to", id)); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func (f *deliveryFixture) run(t *testing.T) {
	t.Helper()
	if _, err := f.d.RunOnce(sys()); err != nil {
		t.Fatal(err)
	}
}

func (f *deliveryFixture) outbox(t *testing.T, subject string) int {
	return f.count(t, `SELECT count(*) FROM outbox WHERE subject = '`+subject+`'`)
}

// Texting caps: one text a day; the second message that day falls back to email, and for a
// patient who agreed to texts only it is skipped; the next local day a text goes again.
func TestTextCapFallsBackToEmailOrSkips(t *testing.T) {
	day1 := time.Date(2026, 6, 10, 15, 0, 0, 0, time.UTC) // 10:00 in Chicago
	f := setupDelivery(t, day1)
	both := f.patient(t, "both@example.org", "+13125550101", []string{"email", "sms"}, "", "")
	smsOnly := f.patient(t, "only@example.org", "+13125550102", []string{"sms"}, "", "")

	first := f.queue(t, both, "sms", map[string]string{"date": "Thursday 9:00"}, nil)
	f.run(t)
	if r := f.row(t, first); r.status != "sent" || r.channel != "sms" || r.sentTo != "+13125550101" || r.version != 3 || r.locale != "en" {
		t.Fatalf("first = %+v", r)
	}
	texts := f.fake.Messages()
	if len(texts) != 1 || texts[0].To != "+13125550101" || texts[0].From != "+15555550100" ||
		!strings.Contains(texts[0].Body, "Questions? "+clinicPhone) || len([]rune(texts[0].Body)) > 160 {
		t.Fatalf("texts = %+v", texts)
	}

	f.clock.t = day1.Add(8 * time.Hour) // 18:00 the same local day
	second := f.queue(t, both, "sms", map[string]string{"date": "Friday 9:00"}, nil)
	capped := f.queue(t, smsOnly, "sms", nil, nil)
	f.run(t)
	if r := f.row(t, second); r.status != "sent" || r.channel != "email" || r.sentTo != "both@example.org" {
		t.Errorf("second = %+v, want sent by email", r)
	}
	// The sms-only patient had no text today yet: theirs goes.
	if r := f.row(t, capped); r.status != "sent" || r.channel != "sms" {
		t.Errorf("sms-only first text = %+v", r)
	}
	again := f.queue(t, smsOnly, "sms", nil, nil)
	f.run(t)
	if r := f.row(t, again); r.status != "skipped" || r.reason != "text_limit" {
		t.Errorf("sms-only second text = %+v, want skipped text_limit", r)
	}
	if len(f.sink.Messages()) != 1 || len(f.fake.Messages()) != 2 {
		t.Errorf("%d emails, %d texts; want 1 and 2", len(f.sink.Messages()), len(f.fake.Messages()))
	}
	// 23:30 local is already the next UTC day but the same local day: still capped.
	f.clock.t = time.Date(2026, 6, 11, 4, 30, 0, 0, time.UTC)
	late := f.queue(t, smsOnly, "sms", nil, nil)
	f.run(t)
	if r := f.row(t, late); r.status != "skipped" {
		t.Errorf("late the same local day: %+v", r)
	}
	f.clock.t = time.Date(2026, 6, 11, 14, 0, 0, 0, time.UTC) // the next local day
	next := f.queue(t, smsOnly, "sms", nil, nil)
	f.run(t)
	if r := f.row(t, next); r.status != "sent" || r.channel != "sms" {
		t.Errorf("next day = %+v", r)
	}
}

// Quiet hours (21:00-08:00) across the spring-forward night: a message due at 22:00 is
// deferred, uncounted, to 08:00 CDT, and sent then; a reminder that would expire before
// they end is skipped.
func TestQuietHoursDeferThenSend(t *testing.T) {
	chi, _ := time.LoadLocation("America/Chicago")
	f := setupDelivery(t, time.Date(2026, 3, 7, 22, 0, 0, 0, chi))
	pid := f.patient(t, "q@example.org", "+13125550103", []string{"email"}, "21:00", "08:00")
	id := f.queue(t, pid, "email", map[string]string{"date": "Sunday"}, nil)
	expiring := time.Date(2026, 3, 8, 7, 0, 0, 0, chi)
	reminder := f.queue(t, pid, "email", nil, &expiring)
	f.run(t)
	want := time.Date(2026, 3, 8, 13, 0, 0, 0, time.UTC) // 08:00 CDT
	if r := f.row(t, id); r.status != "queued" || r.attempts != 0 || !r.due.Equal(want) {
		t.Fatalf("deferred = %+v, want queued, 0 attempts, due %v", r, want)
	}
	if r := f.row(t, reminder); r.status != "skipped" || r.reason != "quiet_hours" {
		t.Errorf("reminder = %+v, want skipped quiet_hours", r)
	}
	if len(f.sink.Messages()) != 0 {
		t.Fatal("sent during quiet hours")
	}
	f.clock.t = want
	f.run(t)
	if r := f.row(t, id); r.status != "sent" || r.attempts != 1 {
		t.Errorf("after quiet hours = %+v", r)
	}
	if len(f.sink.Messages()) != 1 {
		t.Errorf("%d emails, want 1", len(f.sink.Messages()))
	}
}

// A provider outage is retried and the text then goes once; an invalid number fails at once
// with MessageFailed; a delivery report marks it delivered once.
func TestProviderFailuresAndReports(t *testing.T) {
	f := setupDelivery(t, time.Date(2026, 6, 10, 15, 0, 0, 0, time.UTC))
	ok := f.patient(t, "a@example.org", "+13125550104", []string{"sms"}, "", "")
	bad := f.patient(t, "b@example.org", "+13125550105", []string{"sms"}, "", "")

	f.fake.FailNext(1, smsfake.Unavailable)
	id := f.queue(t, ok, "sms", nil, nil)
	f.run(t)
	if r := f.row(t, id); r.status != "queued" || r.attempts != 1 {
		t.Fatalf("after the outage = %+v", r)
	}
	var code string
	_ = f.pool.QueryRow(sys(), `SELECT last_error_code FROM messages WHERE id = $1`, id).Scan(&code)
	if code != sms.CodeUnavailable {
		t.Errorf("last_error_code = %q", code)
	}
	time.Sleep(10 * time.Millisecond) // the 1ms backoff
	f.run(t)
	if r := f.row(t, id); r.status != "sent" || r.attempts != 2 {
		t.Fatalf("after the retry = %+v", r)
	}

	f.fake.FailNext(1, smsfake.InvalidNumber)
	failed := f.queue(t, bad, "sms", nil, nil)
	f.run(t)
	if r := f.row(t, failed); r.status != "failed" || r.reason != "invalid_address" || r.attempts != 1 {
		t.Errorf("invalid number = %+v", r)
	}
	if n := f.outbox(t, app.SubjectMessageFailed); n != 1 {
		t.Errorf("%d MessageFailed, want 1", n)
	}

	// Too long for one text: failed, not sent.
	long := f.queue(t, bad, "sms", map[string]string{"long": "y"}, nil)
	f.run(t)
	if r := f.row(t, long); r.status != "failed" || r.reason != "sms_too_long" {
		t.Errorf("long text = %+v", r)
	}

	del := app.NewDelivery(f.store, f.repo, quiet)
	sid := f.fake.Messages()[0].SID
	for range 2 {
		if err := del.ProviderStatus(sys(), sid, "delivered", ""); err != nil {
			t.Fatal(err)
		}
	}
	if r := f.row(t, id); r.status != "delivered" {
		t.Errorf("after the report = %+v", r)
	}
	if n := f.outbox(t, app.SubjectMessageDelivered); n != 1 {
		t.Errorf("%d MessageDelivered, want 1", n)
	}
	if len(f.fake.Messages()) != 1 {
		t.Errorf("%d texts, want 1", len(f.fake.Messages()))
	}
}

// Staff alerts go to the clinic's team address, else the network's.
func TestStaffAlertAddresses(t *testing.T) {
	f := setupDelivery(t, time.Now())
	if _, err := f.pool.Exec(sys(), `UPDATE clinic_settings SET billing_email = 'billing@clinic.example' WHERE clinic_id = $1`, clinic); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, team := range []string{domain.TeamBilling, domain.TeamCareTeam} {
		m := app.NewMessage{ID: bus.NewID(), ClinicID: clinic, Kind: domain.KindStaffAtRisk, Channel: "email",
			Audience: domain.AudienceStaff, Team: team, DedupeKey: "test:" + bus.NewID()}
		err := f.store.InTx(sys(), func(ctx context.Context, tx *bus.Tx) error {
			_, err := f.repo.QueueMessage(ctx, tx, m)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	f.run(t)
	for i, want := range []string{"billing@clinic.example", "care-team@trellis.local"} {
		if r := f.row(t, ids[i]); r.status != "sent" || r.sentTo != want {
			t.Errorf("alert %d = %+v, want sent to %s", i, r, want)
		}
	}
}

// Two replicas deciding texts for the same patient at once cannot both pass the daily cap:
// the decision, the send and its record happen under the patient's texting lock. Each
// patient gets one text and, for the message over the cap, an email.
func TestTextCapHoldsAcrossReplicas(t *testing.T) {
	day := time.Date(2026, 6, 10, 15, 0, 0, 0, time.UTC) // 10:00 in Chicago
	f := setupDelivery(t, day)
	client, err := sms.New(sms.Config{BaseURL: f.fake.URL, AccountSID: "ACtest", AuthToken: "token", From: "+15555550100",
		StatusCallback: "https://notify.example.test/webhooks/sms/status", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	other := app.NewDispatcher(f.store, f.repo, sender(t, f.sink.Addr), app.DispatcherConfig{
		Renderer: testRenderer{}, SMS: client, Now: f.clock.now, StaffEmail: "care-team@trellis.local", Batch: 1,
		Retry: domain.RetryPolicy{MaxAttempts: 3, Base: time.Millisecond, Max: time.Millisecond},
	}, quiet)
	one := app.NewDispatcher(f.store, f.repo, sender(t, f.sink.Addr), app.DispatcherConfig{
		Renderer: testRenderer{}, SMS: client, Now: f.clock.now, StaffEmail: "care-team@trellis.local", Batch: 1,
		Retry: domain.RetryPolicy{MaxAttempts: 3, Base: time.Millisecond, Max: time.Millisecond},
	}, quiet)
	const patients = 8
	phones := map[string]bool{}
	for i := range patients {
		phone := fmt.Sprintf("+1312555%04d", 200+i)
		phones[phone] = true
		pid := f.patient(t, fmt.Sprintf("p%d@example.org", i), phone, []string{"email", "sms"}, "", "")
		f.queue(t, pid, "sms", map[string]string{"date": "Thursday 9:00"}, nil)
		f.queue(t, pid, "sms", map[string]string{"date": "Friday 9:00"}, nil)
		// Both replicas take one message each of this patient at the same moment.
		var wg sync.WaitGroup
		for _, d := range []*app.Dispatcher{one, other} {
			wg.Go(func() {
				if _, err := d.RunOnce(sys()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	texts := map[string]int{}
	for _, m := range f.fake.Messages() {
		texts[m.To]++
	}
	for phone := range phones {
		if texts[phone] != 1 {
			t.Errorf("%s got %d texts, want 1 (the daily cap)", phone, texts[phone])
		}
	}
	if n := len(f.sink.Messages()); n != patients {
		t.Errorf("%d emails, want %d (each patient's message over the cap)", n, patients)
	}
}
