package domain

import (
	"fmt"
	"strings"
	"time"
)

// Display formats of the payload values the triggers write (English, clinic-local).
const (
	layoutDay      = "Monday, January 2"            // "date" (reminders, notices, check-ins)
	layoutClock    = "3:04 PM"                      // "time"
	layoutDueDate  = "January 2, 2006"              // "due_date" (statements)
	layoutVisit    = "Monday, January 2, 2006"      // "first_visit_date" (welcome)
	layoutWeekLine = "Monday, January 2 at 3:04 PM" // each line of "first_week" (welcome)
)

var (
	weekdaysES = [...]string{"domingo", "lunes", "martes", "miércoles", "jueves", "viernes", "sábado"}
	monthsES   = [...]string{"enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
		"septiembre", "octubre", "noviembre", "diciembre"}
)

// LocalizePayload returns payload with its dates and times written the way readers of locale
// expect: the triggers store them in English ("Monday, March 2", "6:00 PM"), and a Spanish
// message reads "lunes 2 de marzo" and "18:00". Values it does not recognise, and every value
// for locales other than Spanish, are left as they are. payload itself is not changed.
func LocalizePayload(payload map[string]string, locale string) map[string]string {
	if !strings.HasPrefix(strings.ToLower(locale), "es") || len(payload) == 0 {
		return payload
	}
	out := make(map[string]string, len(payload))
	for k, v := range payload {
		out[k] = v
	}
	es := func(key, layout string, format func(time.Time) string) {
		if v, ok := out[key]; ok {
			if t, err := time.Parse(layout, v); err == nil {
				out[key] = format(t)
			}
		}
	}
	// A layout without a year parses into year 0, whose weekdays are not the real date's: the
	// weekday is the one the English text names.
	day := func(t time.Time, text string) string {
		return fmt.Sprintf("%s %d de %s", weekdayES(text), t.Day(), monthsES[t.Month()-1])
	}
	clock := func(t time.Time) string { return t.Format("15:04") }
	es("date", layoutDay, func(t time.Time) string { return day(t, payload["date"]) })
	es("time", layoutClock, clock)
	es("due_date", layoutDueDate, func(t time.Time) string {
		return fmt.Sprintf("%d de %s de %d", t.Day(), monthsES[t.Month()-1], t.Year())
	})
	es("first_visit_date", layoutVisit, func(t time.Time) string {
		return day(t, payload["first_visit_date"]) + fmt.Sprintf(" de %d", t.Year())
	})
	if v, ok := out["first_week"]; ok {
		lines := strings.Split(v, "\n")
		for i, l := range lines {
			if t, err := time.Parse(layoutWeekLine, l); err == nil {
				lines[i] = day(t, l) + " a las " + clock(t)
			}
		}
		out["first_week"] = strings.Join(lines, "\n")
	}
	return out
}

// weekdayES is the Spanish name of the weekday text starts with (in English).
func weekdayES(text string) string {
	for i := range 7 {
		if strings.HasPrefix(text, time.Weekday(i).String()) {
			return weekdaysES[i]
		}
	}
	return ""
}
