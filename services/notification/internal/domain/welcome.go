package domain

import (
	"fmt"
	"strings"
	"text/template"
	"time"
)

// Email is a rendered message: what the patient reads, and nothing else.
type Email struct {
	Subject string
	Body    string
}

// The welcome is deliberately neutral (42 CFR Part 2): anyone who sees it, on a shared screen or
// a lock screen, must not learn what kind of care the patient receives. It names no service
// type, program or condition, and the sender is a generic care team.
const welcomeSubject = "Welcome — your first visit"

var welcomeBody = template.Must(template.New("welcome").Parse(`{{if .Name}}Hello {{.Name}},{{else}}Hello,{{end}}

Welcome, and thank you for choosing us. We look forward to seeing you at your first visit on {{.Date}}.

Please plan to arrive a few minutes early. If you need to change the day or have any questions, simply reply to this email and a member of our care team will get back to you.

If you were not expecting this message, you can ignore it.

Warm regards,
The Care Team
`))

// RenderWelcome renders the welcome email for r: greeting by preferred name, and the first
// visit date as the clinic's calendar shows it.
func RenderWelcome(r Recipient) (Email, error) {
	loc, err := time.LoadLocation(r.TimeZone)
	if err != nil {
		return Email{}, fmt.Errorf("render welcome: unknown time zone: %w", err)
	}
	var b strings.Builder
	err = welcomeBody.Execute(&b, struct{ Name, Date string }{
		Name: CleanName(r.PreferredName),
		Date: FormatVisitDate(r.StartDate, loc),
	})
	if err != nil {
		return Email{}, fmt.Errorf("render welcome: %w", err)
	}
	return Email{Subject: welcomeSubject, Body: b.String()}, nil
}

// FormatVisitDate formats a calendar date (only its year, month and day count) as the clinic
// in loc reads it, e.g. "Monday, March 2, 2026". The date is placed in loc rather than
// converted to it: converting midnight UTC would show the previous day west of Greenwich.
func FormatVisitDate(d time.Time, loc *time.Location) string {
	y, m, day := d.Date()
	return time.Date(y, m, day, 12, 0, 0, 0, loc).Format("Monday, January 2, 2006")
}

// SensitiveTerms are words that would reveal the kind of care if they appeared in a message a
// patient receives. Matching is case-insensitive and by substring, so "Recovery" and
// "programs" count.
var SensitiveTerms = []string{
	"addict", "substance", "iop", "intensive outpatient", "outpatient", "recovery", "rehab",
	"detox", "withdrawal", "sober", "sobriety", "alcohol", "drug", "opioid", "opiate",
	"methadone", "buprenorphine", "suboxone", "naloxone", "relapse", "treatment", "therapy",
	"therapist", "counseling", "counselling", "psychiatr", "behavioral",
	"behavioural", "mental health", "program", "sud", "asam", "12-step", "twelve step",
	"dependency", "abuse", "overdose",
	// Spanish (templates exist in "es"): addiction, substance, treatment, therapy, therapist,
	// detox, rehabilitation, abstinence, sobriety, drug, opioid, opiate, methadone, relapse,
	// counselor/counseling, psychiatric, behavioral, mental health, dependence, abuse,
	// overdose, recovery. "program" already matches "programa".
	"adicci", "sustancia", "tratamiento", "terapia", "terapeuta", "desintox", "rehabilit",
	"abstinencia", "sobriedad", "droga", "opioide", "opiáceo", "metadona", "recaída",
	"consejer", "psiquiátr", "conductual", "salud mental", "dependencia", "abuso",
	"sobredosis", "recuperaci",
}

// SensitiveTermsIn lists the SensitiveTerms found in text.
func SensitiveTermsIn(text string) []string {
	lower := strings.ToLower(text)
	var found []string
	for _, t := range SensitiveTerms {
		if strings.Contains(lower, t) {
			found = append(found, t)
		}
	}
	return found
}
