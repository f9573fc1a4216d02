package domain

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"unicode/utf8"
)

// Locales with built-in templates. A stored template may add another two-letter locale; a
// message in a locale without a template falls back to English.
const (
	LocaleEnglish = "en"
	LocaleSpanish = "es"
)

// Locales lists the locales every kind has a built-in template in.
var Locales = []string{LocaleEnglish, LocaleSpanish}

// Template sources, from the most to the least specific: a clinic's own template, the
// network default (stored with no clinic), the built-in text in the code (version 0).
const (
	SourceClinic  = "clinic"
	SourceNetwork = "network"
	SourceBuiltin = "builtin"
)

// MaxSMSLength (channel.go) bounds what an SMS template may render to.

// SamplePhone is the clinic contact number used to render templates with sample data.
const SamplePhone = "+13125550100"

// Template is the text of one message kind on one channel in one locale: Go text/template
// sources rendered with {{.Name}}, {{.ClinicPhone}} and {{.Payload.<key>}}. SMS templates
// have no subject.
type Template struct {
	Kind    string
	Channel string
	Locale  string
	Subject string
	Body    string
}

// KindInfo describes a message kind: who it goes to, on which channels, and the payload keys
// the built-in templates use (with a realistic sample value each, for previews and checks).
type KindInfo struct {
	Kind     string
	Audience string
	Channels []string
	Sample   map[string]string
}

// The longest realistic values: dates are formatted by the trigger ("Wednesday, September
// 30, 2026"), so the SMS length check uses the longest weekday and month names.
const (
	sampleDate = "Wednesday, September 30, 2026"
	sampleTime = "10:30 AM"
	sampleID   = "0190a000-0000-7000-8000-000000000001"
)

var kindInfos = []KindInfo{
	{KindWelcome, AudiencePatient, []string{ChannelEmail, ChannelSMS}, map[string]string{
		"first_visit_date": sampleDate,
		"first_week":       "- Monday, March 2, 2026 at 6:00 PM\n- Wednesday, March 4, 2026 at 6:00 PM\n- Friday, March 6, 2026 at 6:00 PM"}},
	{KindReminder, AudiencePatient, []string{ChannelEmail, ChannelSMS}, map[string]string{
		"date": sampleDate, "time": sampleTime, "offset_minutes": "1440"}},
	{KindAppointmentMoved, AudiencePatient, []string{ChannelEmail, ChannelSMS}, map[string]string{
		"date": sampleDate, "time": sampleTime}},
	{KindAppointmentCancelled, AudiencePatient, []string{ChannelEmail, ChannelSMS}, map[string]string{
		"date": sampleDate, "time": sampleTime}},
	{KindCheckIn, AudiencePatient, []string{ChannelEmail, ChannelSMS}, map[string]string{
		"date": sampleDate}},
	{KindStatement, AudiencePatient, []string{ChannelEmail, ChannelSMS}, map[string]string{
		"balance": "$1,234.56", "due_date": sampleDate}},
	{KindStaffAtRisk, AudienceStaff, []string{ChannelEmail}, map[string]string{
		"patient_ref": "0190a000", "enrollment_id": sampleID, "reasons": "consecutive_absences,no_contact",
		"since": "2026-03-02"}},
	{KindStaffAuthorization, AudienceStaff, []string{ChannelEmail}, map[string]string{
		"authorization_id": sampleID, "patient_ref": "0190a000", "level": "nearly_used",
		"authorized_units": "24", "used_units": "20", "ends_on": "2026-06-30"}},
	{KindStaffConsentHold, AudienceStaff, []string{ChannelEmail}, map[string]string{
		"patient_ref": "0190a000", "charge_id": sampleID, "date": "2026-03-02"}},
	{KindStaffUndeliverable, AudienceStaff, []string{ChannelEmail}, map[string]string{
		"message_id": sampleID, "patient_ref": "0190a000", "kind": KindReminder, "channel": ChannelSMS,
		"reason": "invalid_address"}},
	{KindStaffDeadLetter, AudienceStaff, []string{ChannelEmail}, map[string]string{
		"consumer": "notification-appointments", "original_subject": "trellis.scheduling.appointment.booked.v1",
		"original_stream": "SCHEDULING", "original_sequence": "42", "deliveries": "5", "reason": "handler_error"}},
}

// Kinds lists every message kind, patient kinds first.
func Kinds() []KindInfo { return slices.Clone(kindInfos) }

// KindOf returns the description of kind.
func KindOf(kind string) (KindInfo, bool) {
	for _, k := range kindInfos {
		if k.Kind == kind {
			return k, true
		}
	}
	return KindInfo{}, false
}

// NormalizeLocale returns the language of a locale tag ("es-MX" → "es"), or "en" when s is
// empty or not a language tag.
func NormalizeLocale(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if i := strings.IndexAny(s, "-_"); i >= 0 {
		s = s[:i]
	}
	if !localeRE.MatchString(s) {
		return LocaleEnglish
	}
	return s
}

var localeRE = regexp.MustCompile(`^[a-z]{2}$`)

// SampleInput is the data templates of kind are previewed and checked with: a sample name,
// the sample contact number and the kind's sample payload.
func SampleInput(kind, channel, locale string) RenderInput {
	info, _ := KindOf(kind)
	payload := make(map[string]string, len(info.Sample))
	for k, v := range info.Sample {
		payload[k] = v
	}
	name := "Alexandra"
	if info.Audience == AudienceStaff {
		name = ""
	}
	return RenderInput{Kind: kind, Channel: channel, Locale: locale, Name: name,
		ClinicPhone: SamplePhone, Payload: payload}
}

// ErrRender marks a template that does not render with the data given (a syntax error, or a
// payload key the message lacks).
var ErrRender = errors.New("template does not render")

// ErrNoClinicPhone means a text was to be rendered without the clinic's contact number, which
// every text must carry.
var ErrNoClinicPhone = errors.New("no clinic contact number for a text")

// renderData is what templates see.
type renderData struct {
	Name        string
	ClinicPhone string
	Payload     map[string]string
}

// Render renders t with in. A payload key the template uses but the message lacks is an
// error (ErrRender), never blank text; a text needs the clinic's contact number
// (ErrNoClinicPhone). The subject is one line; an SMS has no subject.
func Render(t Template, in RenderInput) (Rendered, error) {
	if t.Channel == ChannelSMS && strings.TrimSpace(in.ClinicPhone) == "" {
		return Rendered{}, ErrNoClinicPhone
	}
	// Dates and times read the way the template's language writes them.
	data := renderData{Name: CleanName(in.Name), ClinicPhone: in.ClinicPhone, Payload: LocalizePayload(in.Payload, t.Locale)}
	if data.Payload == nil {
		data.Payload = map[string]string{}
	}
	var out Rendered
	var err error
	if t.Channel != ChannelSMS {
		if out.Subject, err = execute("subject", t.Subject, data); err != nil {
			return Rendered{}, err
		}
		out.Subject = strings.Join(strings.Fields(out.Subject), " ") // no header injection
	}
	if out.Body, err = execute("body", t.Body, data); err != nil {
		return Rendered{}, err
	}
	if t.Channel == ChannelSMS {
		out.Body = strings.TrimSpace(out.Body)
	}
	return out, nil
}

func parse(field, text string) (*template.Template, error) {
	return template.New(field).Option("missingkey=error").Parse(text)
}

func execute(field, text string, data renderData) (string, error) {
	tpl, err := parse(field, text)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrRender, field, err)
	}
	var b strings.Builder
	if err := tpl.Execute(&b, data); err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrRender, field, err)
	}
	return b.String(), nil
}

// Problem is one rule a template breaks, naming the field (kind, channel, locale, subject or
// body) and the rule.
type Problem struct {
	Field string
	Rule  string
	Msg   string
}

func (p Problem) String() string { return p.Field + ": " + p.Msg + " [" + p.Rule + "]" }

// Rules the template check applies.
const (
	RuleKindKnown       = "kind.known"
	RuleChannelAllowed  = "channel.allowed"
	RuleLocaleFormat    = "locale.format"
	RuleRequired        = "template.required"
	RuleSMSNoSubject    = "sms.no_subject"
	RuleSyntax          = "template.syntax"
	RuleRenders         = "template.renders"
	RuleSensitiveWord   = "template.sensitive_word"
	RuleSMSLength       = "sms.length"
	RuleSMSClinicPhone  = "sms.clinic_phone"
	RuleTooLong         = "template.too_long"
	maxTemplateTextSize = 20000
)

// Checker is the template check: neutral wording (no blocked word, whether written out or
// produced by rendering), SMS of at most MaxSMSLength characters with the clinic's number,
// valid syntax. It is pure and safe for concurrent use.
type Checker struct{ blocked []string }

// NewChecker returns a check blocking SensitiveTerms plus extra words (matched
// case-insensitively as substrings; blank entries are ignored).
func NewChecker(extra []string) *Checker {
	words := slices.Clone(SensitiveTerms)
	for _, w := range extra {
		if w = strings.ToLower(strings.TrimSpace(w)); w != "" && !slices.Contains(words, w) {
			words = append(words, w)
		}
	}
	return &Checker{blocked: words}
}

// Words returns the blocked words.
func (c *Checker) Words() []string { return slices.Clone(c.blocked) }

// BlockedIn lists the blocked words found in text.
func (c *Checker) BlockedIn(text string) []string {
	lower := strings.ToLower(text)
	var found []string
	for _, w := range c.blocked {
		if strings.Contains(lower, w) {
			found = append(found, w)
		}
	}
	return found
}

// Check returns every problem of t (none: t may be saved and used).
func (c *Checker) Check(t Template) []Problem {
	var ps []Problem
	add := func(field, rule, format string, args ...any) {
		ps = append(ps, Problem{Field: field, Rule: rule, Msg: fmt.Sprintf(format, args...)})
	}
	info, known := KindOf(t.Kind)
	if !known {
		add("kind", RuleKindKnown, "unknown message kind")
	}
	switch {
	case t.Channel != ChannelEmail && t.Channel != ChannelSMS:
		add("channel", RuleChannelAllowed, "must be email or sms")
	case known && !slices.Contains(info.Channels, t.Channel):
		add("channel", RuleChannelAllowed, "%s messages are sent by %s only", t.Kind, strings.Join(info.Channels, ", "))
	}
	if !localeRE.MatchString(t.Locale) {
		add("locale", RuleLocaleFormat, "must be a two-letter language code, e.g. en or es")
	}
	sms := t.Channel == ChannelSMS
	if strings.TrimSpace(t.Body) == "" {
		add("body", RuleRequired, "must not be empty")
	}
	if sms && t.Subject != "" {
		add("subject", RuleSMSNoSubject, "a text has no subject; leave it empty")
	}
	if !sms && strings.TrimSpace(t.Subject) == "" {
		add("subject", RuleRequired, "an email needs a subject")
	}
	fields := []struct{ name, text string }{{"subject", t.Subject}, {"body", t.Body}}
	parsed := true
	for _, f := range fields {
		if len(f.text) > maxTemplateTextSize {
			add(f.name, RuleTooLong, "must be at most %d bytes", maxTemplateTextSize)
			parsed = false
			continue
		}
		if words := c.BlockedIn(f.text); len(words) > 0 {
			add(f.name, RuleSensitiveWord, "names the kind of care (%s); patient messages must stay neutral", strings.Join(words, ", "))
		}
		if _, err := parse(f.name, f.text); err != nil {
			add(f.name, RuleSyntax, "does not parse: %s", syntaxDetail(err))
			parsed = false
		}
	}
	if !parsed || !known || (t.Channel != ChannelEmail && t.Channel != ChannelSMS) || strings.TrimSpace(t.Body) == "" {
		return ps
	}
	// Render with sample data: missing keys, words assembled by the template, SMS length and
	// the contact number only show in the output.
	in := SampleInput(t.Kind, t.Channel, t.Locale)
	data := renderData{Name: in.Name, ClinicPhone: in.ClinicPhone, Payload: in.Payload}
	for _, f := range fields {
		if sms && f.name == "subject" {
			continue
		}
		out, err := execute(f.name, f.text, data)
		if err != nil {
			add(f.name, RuleRenders, "does not render with sample data: %s", syntaxDetail(err))
			continue
		}
		if words := c.BlockedIn(out); len(words) > 0 && len(c.BlockedIn(f.text)) == 0 {
			add(f.name, RuleSensitiveWord, "renders a word naming the kind of care (%s); patient messages must stay neutral", strings.Join(words, ", "))
		}
		if sms && f.name == "body" {
			out = strings.TrimSpace(out)
			if n := utf8.RuneCountInString(out); n > MaxSMSLength {
				add("body", RuleSMSLength, "renders to %d characters with sample data; a text may have at most %d", n, MaxSMSLength)
			}
			if !strings.Contains(out, SamplePhone) {
				add("body", RuleSMSClinicPhone, "every text must include the clinic's contact number ({{.ClinicPhone}})")
			}
		}
	}
	return ps
}

// syntaxDetail shortens a text/template error to what a template author needs (the template
// name prefix repeats the field).
func syntaxDetail(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, ErrRender.Error()+": ")
	for _, f := range []string{"subject", "body"} {
		s = strings.TrimPrefix(s, f+": ")
		s = strings.TrimPrefix(s, "template: "+f+":")
	}
	return s
}

// BuiltinTemplate returns the built-in template of kind on channel in locale.
func BuiltinTemplate(kind, channel, locale string) (Template, bool) {
	t, ok := builtins[builtinKey{kind, channel, locale}]
	if !ok {
		return Template{}, false
	}
	return Template{Kind: kind, Channel: channel, Locale: locale, Subject: t.subject, Body: t.body}, true
}

// BuiltinTemplates returns every built-in template: each kind on each of its channels in
// each of Locales.
func BuiltinTemplates() []Template {
	var out []Template
	for _, k := range kindInfos {
		for _, ch := range k.Channels {
			for _, l := range Locales {
				if t, ok := BuiltinTemplate(k.Kind, ch, l); ok {
					out = append(out, t)
				}
			}
		}
	}
	return out
}
