package domain_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/trellis-health/trellis/services/notification/internal/domain"
)

// TestBuiltinTemplates: every kind has a built-in template on each of its channels (patient
// kinds email and SMS, staff kinds email only) in English and Spanish; each renders with
// sample data, passes the check, names no kind of care, and a text fits one SMS and carries
// the clinic's number.
func TestBuiltinTemplates(t *testing.T) {
	check := domain.NewChecker(nil)
	count := 0
	for _, k := range domain.Kinds() {
		want := []string{domain.ChannelEmail}
		if k.Audience == domain.AudiencePatient {
			want = []string{domain.ChannelEmail, domain.ChannelSMS}
		}
		if !slices.Equal(k.Channels, want) {
			t.Errorf("%s: channels %v, want %v", k.Kind, k.Channels, want)
		}
		for _, ch := range k.Channels {
			for _, loc := range []string{"en", "es"} {
				count++
				tpl, ok := domain.BuiltinTemplate(k.Kind, ch, loc)
				if !ok {
					t.Errorf("%s/%s/%s: no built-in template", k.Kind, ch, loc)
					continue
				}
				if ps := check.Check(tpl); len(ps) > 0 {
					t.Errorf("%s/%s/%s: check: %v", k.Kind, ch, loc, ps)
				}
				in := domain.SampleInput(k.Kind, ch, loc)
				r, err := domain.Render(tpl, in)
				if err != nil {
					t.Errorf("%s/%s/%s: render: %v", k.Kind, ch, loc, err)
					continue
				}
				text := r.Subject + "\n" + r.Body
				lower := strings.ToLower(text)
				for _, w := range forbidden {
					if strings.Contains(lower, w) {
						t.Errorf("%s/%s/%s names %q:\n%s", k.Kind, ch, loc, w, text)
					}
				}
				if strings.Contains(text, "<no value>") {
					t.Errorf("%s/%s/%s: blank value rendered:\n%s", k.Kind, ch, loc, text)
				}
				switch ch {
				case domain.ChannelSMS:
					if n := utf8.RuneCountInString(r.Body); n > domain.MaxSMSLength {
						t.Errorf("%s/sms/%s: %d characters: %s", k.Kind, loc, n, r.Body)
					}
					if !strings.Contains(r.Body, domain.SamplePhone) || r.Subject != "" {
						t.Errorf("%s/sms/%s: phone missing or subject set: %q %q", k.Kind, loc, r.Subject, r.Body)
					}
					if strings.Contains(r.Body, in.Name) {
						t.Errorf("%s/sms/%s: a text must not carry the name: %s", k.Kind, loc, r.Body)
					}
				case domain.ChannelEmail:
					if r.Subject == "" || strings.ContainsAny(r.Subject, "\r\n") {
						t.Errorf("%s/email/%s: bad subject %q", k.Kind, loc, r.Subject)
					}
					if k.Audience == domain.AudiencePatient && !strings.Contains(r.Body, "Alexandra") {
						t.Errorf("%s/email/%s: no greeting by name:\n%s", k.Kind, loc, r.Body)
					}
				}
			}
		}
	}
	if got := len(domain.BuiltinTemplates()); got != count || count != (6*2+5)*2 {
		t.Errorf("BuiltinTemplates() = %d templates, kinds need %d (want 34)", got, count)
	}
}

func TestBuiltinTexts(t *testing.T) {
	tpl, _ := domain.BuiltinTemplate(domain.KindReminder, domain.ChannelSMS, "en")
	r, err := domain.Render(tpl, domain.RenderInput{Name: "Sam", ClinicPhone: "+13125550123",
		Payload: map[string]string{"date": "Monday, March 2, 2026", "time": "6:00 PM"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "Reminder: you have a visit on Monday, March 2, 2026 at 6:00 PM. Questions? Call +13125550123. Reply STOP to opt out."
	if r.Body != want {
		t.Errorf("reminder sms = %q\nwant %q", r.Body, want)
	}
	tpl, _ = domain.BuiltinTemplate(domain.KindReminder, domain.ChannelEmail, "es")
	r, err = domain.Render(tpl, domain.RenderInput{ClinicPhone: "",
		Payload: map[string]string{"date": "lunes, 2 de marzo de 2026", "time": "18:00"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Subject != "Recordatorio: su visita del lunes, 2 de marzo de 2026" || !strings.HasPrefix(r.Body, "Hola:\n") ||
		strings.Contains(r.Body, "llámenos") {
		t.Errorf("reminder email es without name or phone:\n%s\n%s", r.Subject, r.Body)
	}
	// The welcome lists the first week when the trigger gives it, and reads well without it.
	tpl, _ = domain.BuiltinTemplate(domain.KindWelcome, domain.ChannelEmail, "en")
	r, err = domain.Render(tpl, domain.RenderInput{Name: "Lee", Payload: map[string]string{"first_visit_date": "Monday, March 2, 2026"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.Body, "first week") || !strings.Contains(r.Body, "first visit on Monday, March 2, 2026.") {
		t.Errorf("welcome without first week:\n%s", r.Body)
	}
}

func TestRenderErrors(t *testing.T) {
	tpl, _ := domain.BuiltinTemplate(domain.KindReminder, domain.ChannelEmail, "en")
	_, err := domain.Render(tpl, domain.RenderInput{Payload: map[string]string{"date": "Monday, March 2, 2026"}})
	if !errors.Is(err, domain.ErrRender) || !strings.Contains(err.Error(), `"time"`) {
		t.Errorf("missing key: err = %v, want ErrRender naming time", err)
	}
	tpl, _ = domain.BuiltinTemplate(domain.KindReminder, domain.ChannelSMS, "en")
	_, err = domain.Render(tpl, domain.RenderInput{Payload: map[string]string{"date": "x", "time": "y"}})
	if !errors.Is(err, domain.ErrNoClinicPhone) {
		t.Errorf("text without the clinic's number: err = %v", err)
	}
	// A subject never spans lines, whatever the payload holds.
	r, err := domain.Render(domain.Template{Kind: domain.KindReminder, Channel: domain.ChannelEmail, Subject: "On {{.Payload.date}}", Body: "x"},
		domain.RenderInput{Payload: map[string]string{"date": "Monday\r\nBcc: x@y"}})
	if err != nil || r.Subject != "On Monday Bcc: x@y" {
		t.Errorf("subject = %q, %v", r.Subject, err)
	}
}

func TestTemplateCheck(t *testing.T) {
	check := domain.NewChecker([]string{" Lakeside ", ""})
	ok := func(ch, subject, body string) domain.Template {
		return domain.Template{Kind: domain.KindReminder, Channel: ch, Locale: "en", Subject: subject, Body: body}
	}
	long := "Reminder: you have a visit on {{.Payload.date}} at {{.Payload.time}}, please come ten minutes early, bring your card and a list of any questions you have for us. Questions? {{.ClinicPhone}}"
	cases := []struct {
		name        string
		tpl         domain.Template
		field, rule string
		msg         string
	}{
		{"sensitive word in subject, any case", ok("email", "Your THERAPY visit", "See you {{.Payload.date}}"), "subject", domain.RuleSensitiveWord, "therapy"},
		{"sensitive word in body", ok("email", "Visit", "Your Recovery group meets {{.Payload.date}}"), "body", domain.RuleSensitiveWord, "recovery"},
		{"spanish sensitive word", domain.Template{Kind: domain.KindReminder, Channel: "email", Locale: "es", Subject: "Visita", Body: "Su Tratamiento el {{.Payload.date}}"}, "body", domain.RuleSensitiveWord, "tratamiento"},
		{"configured word", ok("sms", "", "Lakeside visit {{.Payload.date}}. {{.ClinicPhone}}"), "body", domain.RuleSensitiveWord, "lakeside"},
		{"word assembled by the template", ok("email", "Visit", `Your {{"thera"}}{{"py"}} visit`), "body", domain.RuleSensitiveWord, "therapy"},
		{"sms too long", ok("sms", "", long), "body", domain.RuleSMSLength, "characters"},
		{"sms without the clinic's number", ok("sms", "", "Reminder: visit {{.Payload.date}} at {{.Payload.time}}."), "body", domain.RuleSMSClinicPhone, "ClinicPhone"},
		{"sms with a subject", ok("sms", "Hi", "Visit {{.Payload.date}}. {{.ClinicPhone}}"), "subject", domain.RuleSMSNoSubject, "no subject"},
		{"bad syntax in body", ok("email", "Visit", "See you {{.Payload.date"), "body", domain.RuleSyntax, "parse"},
		{"bad syntax in subject", ok("email", "Visit {{if}}", "x"), "subject", domain.RuleSyntax, "parse"},
		{"unknown payload key", ok("email", "Visit", "See you {{.Payload.room}}"), "body", domain.RuleRenders, "room"},
		{"unknown field", ok("email", "Visit {{.Address}}", "x"), "subject", domain.RuleRenders, "Address"},
		{"email without subject", ok("email", " ", "x"), "subject", domain.RuleRequired, "subject"},
		{"empty body", ok("email", "Visit", ""), "body", domain.RuleRequired, "empty"},
		{"unknown kind", domain.Template{Kind: "newsletter", Channel: "email", Locale: "en", Subject: "a", Body: "b"}, "kind", domain.RuleKindKnown, "unknown"},
		{"staff alert by sms", domain.Template{Kind: domain.KindStaffAtRisk, Channel: "sms", Locale: "en", Body: "{{.ClinicPhone}}"}, "channel", domain.RuleChannelAllowed, "email"},
		{"bad locale", domain.Template{Kind: domain.KindReminder, Channel: "email", Locale: "english", Subject: "a", Body: "b"}, "locale", domain.RuleLocaleFormat, "two-letter"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := check.Check(tc.tpl)
			found := false
			for _, p := range ps {
				if p.Field == tc.field && p.Rule == tc.rule && strings.Contains(p.Msg, tc.msg) {
					found = true
				}
			}
			if !found {
				t.Errorf("problems %v; want %s [%s] mentioning %q", ps, tc.field, tc.rule, tc.msg)
			}
		})
	}
	// The default check does not block the configured word; an accepted custom template.
	if ps := domain.NewChecker(nil).Check(ok("sms", "", "Lakeside visit {{.Payload.date}}. Call {{.ClinicPhone}}")); len(ps) != 0 {
		t.Errorf("neutral custom text rejected: %v", ps)
	}
}

func TestNormalizeLocale(t *testing.T) {
	for in, want := range map[string]string{"es": "es", "es-MX": "es", "EN_us": "en", "": "en", "spanish": "en", "fr": "fr"} {
		if got := domain.NormalizeLocale(in); got != want {
			t.Errorf("NormalizeLocale(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckClinicSettings(t *testing.T) {
	if ps := domain.CheckClinicSettings([]int{1440, 120}, "+13125550100", "care@clinic.example", ""); len(ps) != 0 {
		t.Errorf("valid settings: %v", ps)
	}
	ps := domain.CheckClinicSettings([]int{0, 10081, 60, 60, 5}, "312-555-0100", "care at clinic", "a@b.example, c@d.example")
	want := map[string]string{
		"reminder_offsets_minutes":    "repeated.max_items",
		"reminder_offsets_minutes[0]": "int32.gte_lte",
		"reminder_offsets_minutes[1]": "int32.gte_lte",
		"reminder_offsets_minutes[3]": "repeated.unique",
		"contact_phone":               "string.e164",
		"care_team_email":             "string.email",
		"billing_email":               "string.email",
	}
	for field, rule := range want {
		if !slices.ContainsFunc(ps, func(p domain.Problem) bool { return p.Field == field && p.Rule == rule }) {
			t.Errorf("no %s [%s] in %v", field, rule, ps)
		}
	}
}
