package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/rpc"
	notificationv1 "github.com/trellis-health/trellis/proto/gen/trellis/notification/v1"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/notification/internal/app"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
	"github.com/trellis-health/trellis/services/notification/internal/notifytest"
)

// authed wraps msg in a request carrying tok.
func authed[T any](tok string, msg *T) *connect.Request[T] {
	req := connect.NewRequest(msg)
	if tok != "" {
		req.Header().Set("Authorization", "Bearer "+tok)
	}
	return req
}

// hasViolation reports whether err is invalid_argument naming field and rule.
func hasViolation(err error, field, rule string) bool {
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		return false
	}
	for _, v := range rpc.Violations(err) {
		if v.Field == field && v.Rule == rule {
			return true
		}
	}
	return false
}

func TestTemplatesVersionsAndFallback(t *testing.T) {
	e := start(t, downAddr(t), map[string]string{"NOTIFY_BLOCKED_WORDS": "Lakeside, Northgate"})
	ctx := context.Background()
	c := e.client()
	network := e.Token(t, "ops-1", []string{"operator"}, []string{auth.AllClinics})
	adminA := e.Token(t, "admin-a", []string{"admin"}, []string{clinicA})

	save := func(tok, clinic, channel, locale, subject, body string) (int32, error) {
		resp, err := c.SaveTemplate(ctx, authed(tok, &notificationv1.SaveTemplateRequest{ClinicId: clinic,
			Kind: domain.KindReminder, Channel: channel, Locale: locale, Subject: subject, Body: body}))
		if err != nil {
			return 0, err
		}
		return resp.Msg.GetVersion(), nil
	}
	mustSave := func(tok, clinic, channel, locale, subject, body string, want int32) {
		t.Helper()
		v, err := save(tok, clinic, channel, locale, subject, body)
		if err != nil || v != want {
			t.Fatalf("save %s/%s/%s: version %d, %v; want %d", clinic, channel, locale, v, err, want)
		}
	}
	// The renderer the dispatcher uses, over the service's database, in system scope as the
	// dispatcher runs.
	content := app.NewContent(postgres.NewContent(notifytest.Store(e.Pool)), domain.NewChecker(nil), e.Log, nil)
	render := func(clinic, locale string) (domain.Rendered, int) {
		t.Helper()
		r, v, err := content.Render(auth.WithSystemScope(ctx), domain.RenderInput{ClinicID: clinic, Kind: domain.KindReminder,
			Channel: domain.ChannelSMS, Locale: locale, ClinicPhone: "+13125550100",
			Payload: map[string]string{"date": "Monday, March 2", "time": "6:00 PM"}})
		if err != nil {
			t.Fatalf("render %s/%s: %v", clinic, locale, err)
		}
		return r, v
	}

	// Built-in first.
	if r, v := render(clinicA, "es-MX"); v != 0 || !strings.HasPrefix(r.Body, "Recordatorio:") {
		t.Fatalf("built-in es: v%d %q", v, r.Body)
	}
	if r, v := render(clinicA, "fr"); v != 0 || !strings.HasPrefix(r.Body, "Reminder:") {
		t.Fatalf("no fr template falls back to English: v%d %q", v, r.Body)
	}

	// Network default, then the clinic's own; each save is the next version of its owner.
	mustSave(network, "", "sms", "en", "", "Network v1: visit {{.Payload.date}} {{.Payload.time}}. Call {{.ClinicPhone}}", 1)
	mustSave(network, "", "sms", "en", "", "Network v2: visit {{.Payload.date}} {{.Payload.time}}. Call {{.ClinicPhone}}", 2)
	if r, v := render(clinicA, "en"); v != 2 || !strings.HasPrefix(r.Body, "Network v2:") {
		t.Fatalf("network default: v%d %q", v, r.Body)
	}
	if r, v := render(clinicA, "fr"); v != 2 || !strings.HasPrefix(r.Body, "Network v2:") {
		t.Fatalf("fr falls back to the English network default: v%d %q", v, r.Body)
	}
	if _, v := render(clinicA, "es"); v != 0 {
		t.Fatalf("es keeps the built-in Spanish text over the English network default: v%d", v)
	}
	mustSave(adminA, clinicA, "sms", "en", "", "Clinic A v1: visit {{.Payload.date}} {{.Payload.time}}. Call {{.ClinicPhone}}", 1)
	if r, v := render(clinicA, "en"); v != 1 || !strings.HasPrefix(r.Body, "Clinic A v1:") {
		t.Fatalf("clinic template: v%d %q", v, r.Body)
	}
	if r, v := render(clinicB, "en"); v != 2 || !strings.HasPrefix(r.Body, "Network v2:") {
		t.Fatalf("another clinic keeps the network default: v%d %q", v, r.Body)
	}
	mustSave(network, "", "sms", "fr", "", "Rappel : visite le {{.Payload.date}} à {{.Payload.time}}. {{.ClinicPhone}}", 1)
	if r, v := render(clinicA, "fr"); v != 1 || !strings.HasPrefix(r.Body, "Rappel") {
		t.Fatalf("a saved fr network template: v%d %q", v, r.Body)
	}

	// A template that lacks a payload key the message has not: an error, never blank text.
	mustSave(network, clinicB, "sms", "en", "", "Visit {{.Payload.date}}. Call {{.ClinicPhone}}", 1)
	_, _, err := content.Render(ctx, domain.RenderInput{ClinicID: clinicB, Kind: domain.KindReminder,
		Channel: domain.ChannelSMS, Locale: "en", ClinicPhone: "+13125550100", Payload: map[string]string{"time": "6:00 PM"}})
	if !errors.Is(err, app.ErrNoTemplate) || !errors.Is(err, domain.ErrRender) {
		t.Fatalf("missing key: err = %v", err)
	}

	// A rejected template changes nothing, and each problem names the field and the rule.
	before := e.Count(t, `SELECT count(*) FROM templates`)
	rejected := []struct {
		name, clinic, channel, subject, body, field, rule string
	}{
		{"sensitive word", clinicA, "email", "Your Therapy visit", "See you {{.Payload.date}}", "subject", domain.RuleSensitiveWord},
		{"configured word", clinicA, "sms", "", "Lakeside visit {{.Payload.date}}. Call {{.ClinicPhone}}", "body", domain.RuleSensitiveWord},
		{"long text", clinicA, "sms", "", strings.Repeat("Please come. ", 12) + "{{.Payload.date}} {{.ClinicPhone}}", "body", domain.RuleSMSLength},
		{"text without the number", clinicA, "sms", "", "Visit {{.Payload.date}}.", "body", domain.RuleSMSClinicPhone},
		{"bad syntax", clinicA, "email", "Visit", "See you {{.Payload.date", "body", domain.RuleSyntax},
		{"unknown key", clinicA, "email", "Visit", "See you in {{.Payload.room}}", "body", domain.RuleRenders},
	}
	for _, tc := range rejected {
		_, err := save(adminA, tc.clinic, tc.channel, "en", tc.subject, tc.body)
		if !hasViolation(err, tc.field, tc.rule) {
			t.Errorf("%s: err = %v (%v), want %s [%s]", tc.name, err, rpc.Violations(err), tc.field, tc.rule)
		}
	}
	if _, err := save(adminA, clinicA, "sms", "english", "", "x {{.ClinicPhone}}"); !hasViolation(err, "locale", "string.pattern") {
		t.Errorf("bad locale: %v", err)
	}
	if after := e.Count(t, `SELECT count(*) FROM templates`); after != before {
		t.Errorf("rejected templates stored: %d -> %d rows", before, after)
	}

	// ListTemplates: the template in effect per kind, channel and locale, with its source.
	list, err := c.ListTemplates(ctx, authed(adminA, &notificationv1.ListTemplatesRequest{ClinicId: clinicA}))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*notificationv1.Template{}
	for _, tp := range list.Msg.GetTemplates() {
		got[tp.GetKind()+"/"+tp.GetChannel()+"/"+tp.GetLocale()] = tp
	}
	for key, want := range map[string]struct {
		v      int32
		source notificationv1.TemplateSource
	}{
		"reminder/sms/en":            {1, notificationv1.TemplateSource_TEMPLATE_SOURCE_CLINIC},
		"reminder/sms/fr":            {1, notificationv1.TemplateSource_TEMPLATE_SOURCE_NETWORK},
		"reminder/sms/es":            {0, notificationv1.TemplateSource_TEMPLATE_SOURCE_BUILTIN},
		"reminder/email/en":          {0, notificationv1.TemplateSource_TEMPLATE_SOURCE_BUILTIN},
		"staff_dead_letter/email/es": {0, notificationv1.TemplateSource_TEMPLATE_SOURCE_BUILTIN},
	} {
		tp := got[key]
		if tp.GetVersion() != want.v || tp.GetSource() != want.source {
			t.Errorf("%s: version %d source %s; want %d %s", key, tp.GetVersion(), tp.GetSource(), want.v, want.source)
		}
	}
	if len(got) != 35 { // 34 built-in + the fr network template
		t.Errorf("ListTemplates returned %d templates, want 35", len(got))
	}
	if tp := got["reminder/sms/en"]; tp.GetCreatedBy() != "admin-a" || tp.GetCreatedAt() == nil {
		t.Errorf("clinic template audit: %q %v", tp.GetCreatedBy(), tp.GetCreatedAt())
	}
}

func TestPreviewTemplate(t *testing.T) {
	e := start(t, downAddr(t), nil)
	ctx := context.Background()
	tok := e.Token(t, "ops-1", []string{"operator"}, []string{clinicA})
	preview := func(r *notificationv1.PreviewTemplateRequest) *notificationv1.PreviewTemplateResponse {
		t.Helper()
		resp, err := e.client().PreviewTemplate(ctx, authed(tok, r))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Msg
	}
	// The template in effect (built-in) with sample data.
	p := preview(&notificationv1.PreviewTemplateRequest{ClinicId: clinicA, Kind: "reminder", Channel: "sms", Locale: "es"})
	if len(p.GetProblems()) != 0 || p.GetSource() != notificationv1.TemplateSource_TEMPLATE_SOURCE_BUILTIN ||
		!strings.Contains(p.GetBody(), domain.SamplePhone) || int(p.GetCharacterCount()) != len([]rune(p.GetBody())) ||
		p.GetCharacterCount() > 160 {
		t.Errorf("built-in preview: %v", p)
	}
	p = preview(&notificationv1.PreviewTemplateRequest{Kind: "statement", Channel: "email", Locale: "en"})
	if !strings.Contains(p.GetBody(), "$1,234.56") || p.GetSubject() != "Your statement is ready" {
		t.Errorf("statement preview: %q %q", p.GetSubject(), p.GetBody())
	}
	// A given template: rendered, with the check's problems (nothing stored).
	p = preview(&notificationv1.PreviewTemplateRequest{ClinicId: clinicA, Kind: "reminder", Channel: "sms", Locale: "en",
		Body: "Your recovery visit is on {{.Payload.date}} at {{.Payload.time}}."})
	rules := map[string]bool{}
	for _, pr := range p.GetProblems() {
		rules[pr.GetField()+" "+pr.GetRule()] = true
	}
	if !rules["body "+domain.RuleSensitiveWord] || !rules["body "+domain.RuleSMSClinicPhone] ||
		!strings.HasPrefix(p.GetBody(), "Your recovery visit is on Wednesday") || p.GetVersion() != 0 {
		t.Errorf("given preview: %v", p)
	}
	p = preview(&notificationv1.PreviewTemplateRequest{Kind: "reminder", Channel: "email", Locale: "en", Subject: "Hi", Body: "{{.Payload.nope}}"})
	if p.GetBody() != "" || len(p.GetProblems()) != 1 || p.GetProblems()[0].GetRule() != domain.RuleRenders {
		t.Errorf("unrenderable preview: %v", p)
	}
	if e.Count(t, `SELECT count(*) FROM templates`) != 0 {
		t.Error("preview stored a template")
	}
}

func TestClinicSettingsAPI(t *testing.T) {
	e := start(t, downAddr(t), nil)
	ctx := context.Background()
	c := e.client()
	tok := e.Token(t, "admin-a", []string{"admin"}, []string{clinicA})

	got, err := c.GetClinicSettings(ctx, authed(tok, &notificationv1.GetClinicSettingsRequest{ClinicId: clinicA}))
	if err != nil || got.Msg.GetConfigured() || len(got.Msg.GetSettings().GetReminderOffsetsMinutes()) != 2 {
		t.Fatalf("defaults: %v %v", got, err)
	}
	set := func(tok string, s *notificationv1.ClinicSettings) error {
		_, err := c.SetClinicSettings(ctx, authed(tok, &notificationv1.SetClinicSettingsRequest{Settings: s}))
		return err
	}
	good := &notificationv1.ClinicSettings{ClinicId: clinicA, ReminderOffsetsMinutes: []int32{2880, 1440, 60},
		ContactPhone: "+13125550100", CareTeamEmail: "care@clinic.example", BillingEmail: "billing@clinic.example"}
	if err := set(tok, good); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name        string
		s           *notificationv1.ClinicSettings
		field, rule string
	}{
		{"offset too large", &notificationv1.ClinicSettings{ClinicId: clinicA, ReminderOffsetsMinutes: []int32{10081}}, "settings.reminder_offsets_minutes[0]", "int32.gte_lte"},
		{"offset zero", &notificationv1.ClinicSettings{ClinicId: clinicA, ReminderOffsetsMinutes: []int32{0}}, "settings.reminder_offsets_minutes[0]", "int32.gte_lte"},
		{"five offsets", &notificationv1.ClinicSettings{ClinicId: clinicA, ReminderOffsetsMinutes: []int32{1, 2, 3, 4, 5}}, "settings.reminder_offsets_minutes", "repeated.max_items"},
		{"repeated offset", &notificationv1.ClinicSettings{ClinicId: clinicA, ReminderOffsetsMinutes: []int32{60, 60}}, "settings.reminder_offsets_minutes", "repeated.unique"},
		{"phone not E.164", &notificationv1.ClinicSettings{ClinicId: clinicA, ContactPhone: "312-555-0100"}, "settings.contact_phone", "string.pattern"},
		{"bad email", &notificationv1.ClinicSettings{ClinicId: clinicA, BillingEmail: "billing at clinic"}, "settings.billing_email", "string.email"},
		{"no clinic", &notificationv1.ClinicSettings{}, "settings.clinic_id", "string.uuid_empty"},
	}
	for _, tc := range bad {
		if err := set(tok, tc.s); !hasViolation(err, tc.field, tc.rule) {
			t.Errorf("%s: err = %v (%v), want %s [%s]", tc.name, err, rpc.Violations(err), tc.field, tc.rule)
		}
	}
	if err := set(tok, &notificationv1.ClinicSettings{ClinicId: clinicB}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("another clinic's settings: %v", err)
	}
	if err := set(e.Token(t, "c-1", []string{"clinician"}, []string{clinicA}), good); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("clinician sets settings: %v", err)
	}
	got, err = c.GetClinicSettings(ctx, authed(tok, &notificationv1.GetClinicSettingsRequest{ClinicId: clinicA}))
	if err != nil {
		t.Fatal(err)
	}
	s := got.Msg.GetSettings()
	if !got.Msg.GetConfigured() || len(s.GetReminderOffsetsMinutes()) != 3 || s.GetReminderOffsetsMinutes()[0] != 2880 ||
		s.GetContactPhone() != good.GetContactPhone() || s.GetCareTeamEmail() != good.GetCareTeamEmail() || s.GetUpdatedAt() == nil {
		t.Errorf("after the rejected changes the saved settings are: %v", s)
	}
	// The row the reminders and the dispatcher read.
	var offsets []int32
	var phone string
	if err := e.Pool.QueryRow(ctx, `SELECT reminder_offsets_minutes, contact_phone FROM clinic_settings WHERE clinic_id = $1`, clinicA).
		Scan(&offsets, &phone); err != nil || len(offsets) != 3 || phone != "+13125550100" {
		t.Errorf("clinic_settings row: %v %q %v", offsets, phone, err)
	}
}

func TestGetPreferences(t *testing.T) {
	e := start(t, downAddr(t), nil)
	ctx := context.Background()
	patientID := bus.NewID()
	if _, err := e.Pool.Exec(ctx, `
		INSERT INTO preferences (patient_id, clinic_id, consent_id, version, channels, confidential_email,
			confidential_phone, quiet_start, quiet_end, time_zone, language, updated_at)
		VALUES ($1, $2, $3, 2, '{email,sms}', 'hidden.inbox@example.org', '+13125550177', '21:00', '08:00',
			'America/Chicago', 'es', now())`, patientID, clinicA, bus.NewID()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Pool.Exec(ctx, `INSERT INTO sms_optouts (phone, opted_out, updated_at) VALUES ('+13125550177', true, now())`); err != nil {
		t.Fatal(err)
	}
	// Rows as an older binary wrote them: the pass notification runs at start seals and hashes
	// them (the opt-out is found by the hash of the confidential number).
	if _, err := postgres.EncryptFields(auth.WithSystemScope(ctx), e.Pool, fieldcrypt.Dev(), postgres.EncryptOptions{}); err != nil {
		t.Fatal(err)
	}
	get := func(tok, id string) (*notificationv1.Preferences, error) {
		resp, err := e.client().GetPreferences(ctx, authed(tok, &notificationv1.GetPreferencesRequest{PatientId: id}))
		if err != nil {
			return nil, err
		}
		return resp.Msg.GetPreferences(), nil
	}
	p, err := get(e.Token(t, "c-1", []string{"clinician"}, []string{clinicA}), patientID)
	if err != nil {
		t.Fatal(err)
	}
	if !p.GetHasConfidentialEmail() || !p.GetHasConfidentialPhone() || !p.GetSmsOptedOut() || p.GetLanguage() != "es" ||
		p.GetQuietStart() != "21:00" || len(p.GetChannels()) != 2 || p.GetConsentVersion() != 2 || p.GetRevoked() {
		t.Errorf("preferences: %v", p)
	}
	raw, _ := protojson.Marshal(p)
	for _, secret := range []string{"hidden.inbox", "5550177"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the preferences view shows %q: %s", secret, raw)
		}
	}
	cases := []struct {
		name string
		tok  string
		id   string
		want connect.Code
	}{
		{"intake coordinator", e.Token(t, "i-1", []string{"intake_coordinator"}, []string{clinicA}), patientID, 0},
		{"network admin", e.Token(t, "a-1", []string{"admin"}, []string{auth.AllClinics}), patientID, 0},
		// Another clinic's patient looks exactly like an unknown one.
		{"clinician of another clinic", e.Token(t, "c-2", []string{"clinician"}, []string{clinicB}), patientID, connect.CodeNotFound},
		{"unknown patient", e.Token(t, "c-1", []string{"clinician"}, []string{clinicA}), bus.NewID(), connect.CodeNotFound},
		{"billing role", e.Token(t, "b-1", []string{"billing"}, []string{clinicA}), patientID, connect.CodePermissionDenied},
		{"operator role", e.Token(t, "o-1", []string{"operator"}, []string{clinicA}), patientID, connect.CodePermissionDenied},
		{"not a uuid", e.Token(t, "c-1", []string{"clinician"}, []string{clinicA}), "p-1", connect.CodeInvalidArgument},
	}
	for _, tc := range cases {
		_, err := get(tc.tok, tc.id)
		if connect.CodeOf(err) != tc.want && !(tc.want == 0 && err == nil) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestTemplateRolesAndClinics(t *testing.T) {
	e := start(t, downAddr(t), nil)
	ctx := context.Background()
	c := e.client()
	body := "Visit {{.Payload.date}} at {{.Payload.time}}. Call {{.ClinicPhone}}"
	cases := []struct {
		name   string
		tok    string
		clinic string
		want   connect.Code
	}{
		{"clinic admin, own clinic", e.Token(t, "a", []string{"admin"}, []string{clinicA}), clinicA, 0},
		{"operator, own clinic", e.Token(t, "o", []string{"operator"}, []string{clinicA}), clinicA, 0},
		{"network operator, network default", e.Token(t, "o", []string{"operator"}, []string{auth.AllClinics}), "", 0},
		{"clinic admin, network default", e.Token(t, "a", []string{"admin"}, []string{clinicA, clinicB}), "", connect.CodePermissionDenied},
		{"clinic admin, other clinic", e.Token(t, "a", []string{"admin"}, []string{clinicA}), clinicB, connect.CodePermissionDenied},
		{"clinician", e.Token(t, "c", []string{"clinician"}, []string{clinicA}), clinicA, connect.CodePermissionDenied},
		{"no token", "", clinicA, connect.CodeUnauthenticated},
	}
	for _, tc := range cases {
		_, err := c.SaveTemplate(ctx, authed(tc.tok, &notificationv1.SaveTemplateRequest{ClinicId: tc.clinic,
			Kind: "reminder", Channel: "sms", Locale: "en", Body: body}))
		if connect.CodeOf(err) != tc.want && !(tc.want == 0 && err == nil) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	if n := e.Count(t, `SELECT count(*) FROM templates`); n != 3 {
		t.Errorf("%d templates stored, want 3", n)
	}
	other := e.Token(t, "a", []string{"admin"}, []string{clinicB})
	if _, err := c.ListTemplates(ctx, authed(other, &notificationv1.ListTemplatesRequest{ClinicId: clinicA})); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("list another clinic's templates: %v", err)
	}
	if _, err := c.PreviewTemplate(ctx, authed(other, &notificationv1.PreviewTemplateRequest{ClinicId: clinicA, Kind: "reminder",
		Channel: "sms", Locale: "en"})); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("preview another clinic's template: %v", err)
	}
	if _, err := c.GetClinicSettings(ctx, authed(other, &notificationv1.GetClinicSettingsRequest{ClinicId: clinicA})); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("read another clinic's settings: %v", err)
	}
	// A staff kind is sent by email only.
	_, err := c.SaveTemplate(ctx, authed(e.Token(t, "a", []string{"admin"}, []string{clinicA}), &notificationv1.SaveTemplateRequest{
		ClinicId: clinicA, Kind: domain.KindStaffDeadLetter, Channel: "sms", Locale: "en", Body: body}))
	if !hasViolation(err, "channel", domain.RuleChannelAllowed) {
		t.Errorf("staff alert by text: %v", err)
	}
}

func TestListMessagesHistory(t *testing.T) {
	e := start(t, downAddr(t), nil)
	ctx := context.Background()
	patientID, id := bus.NewID(), bus.NewID()
	due := time.Date(2026, 3, 1, 18, 0, 0, 0, time.UTC)
	if _, err := e.Pool.Exec(ctx, `
		INSERT INTO messages (id, patient_id, clinic_id, kind, channel, status, dedupe_key, status_reason, due_at,
			payload, sent_to, attempts, template_version, locale)
		VALUES ($1, $2, $3, 'reminder', 'sms', 'skipped', 'reminder:x', 'text_limit', $4,
			'{"date": "Monday, March 2", "time": "6:00 PM"}', '+13125550177', 1, 3, 'es')`, id, patientID, clinicA, due); err != nil {
		t.Fatal(err)
	}
	resp, err := e.client().ListMessages(ctx, authed(e.Token(t, "c", []string{"clinician"}, []string{clinicA}),
		&notificationv1.ListMessagesRequest{PatientId: patientID}))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Msg.GetMessages()) != 1 {
		t.Fatalf("%d messages", len(resp.Msg.GetMessages()))
	}
	m := resp.Msg.GetMessages()[0]
	if m.GetMessageId() != id || m.GetStatus() != "skipped" || m.GetStatusReason() != "text_limit" || m.GetChannel() != "sms" ||
		m.GetAudience() != "patient" || !m.GetDueAt().AsTime().Equal(due) || m.GetDeliveredAt() != nil || m.GetSentAt() != nil ||
		m.GetAttempts() != 1 || m.GetTemplateVersion() != 3 || m.GetLocale() != "es" {
		t.Errorf("history entry: %v", m)
	}
	raw, _ := protojson.Marshal(resp.Msg)
	for _, secret := range []string{"5550177", "March"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the history shows %q: %s", secret, raw)
		}
	}
}
