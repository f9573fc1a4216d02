package domain

import (
	"maps"
	"strings"
	"testing"
)

func TestLocalizePayload(t *testing.T) {
	in := map[string]string{
		"date": "Monday, March 2", "time": "6:00 PM", "due_date": "March 30, 2026",
		"first_visit_date": "Wednesday, March 4, 2026",
		"first_week":       "Monday, March 2 at 6:00 PM\nWednesday, March 4 at 9:00 AM",
		"balance":          "$15.00",
	}
	orig := maps.Clone(in)
	es := LocalizePayload(in, "es-MX")
	want := map[string]string{
		"date": "lunes 2 de marzo", "time": "18:00", "due_date": "30 de marzo de 2026",
		"first_visit_date": "miércoles 4 de marzo de 2026",
		"first_week":       "lunes 2 de marzo a las 18:00\nmiércoles 4 de marzo a las 09:00",
		"balance":          "$15.00",
	}
	if !maps.Equal(es, want) {
		t.Errorf("es = %v\nwant %v", es, want)
	}
	if !maps.Equal(in, orig) {
		t.Errorf("the input changed: %v", in)
	}
	if en := LocalizePayload(in, "en"); !maps.Equal(en, orig) {
		t.Errorf("en = %v, want unchanged", en)
	}
	// Values it does not recognise stay as they are.
	odd := LocalizePayload(map[string]string{"date": "2 March", "time": "18h"}, "es")
	if odd["date"] != "2 March" || odd["time"] != "18h" {
		t.Errorf("unrecognised values changed: %v", odd)
	}
}

// A Spanish text reads its date and time in Spanish, from the English payload the triggers store.
func TestSpanishReminderReadsSpanishDates(t *testing.T) {
	tpl, ok := BuiltinTemplate(KindReminder, ChannelSMS, "es")
	if !ok {
		t.Fatal("no built-in Spanish reminder text")
	}
	r, err := Render(tpl, RenderInput{Kind: KindReminder, Channel: ChannelSMS, Locale: "es", ClinicPhone: "+13125550100",
		Payload: map[string]string{"date": "Monday, March 2", "time": "6:00 PM", "offset_minutes": "1440"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Body, "lunes 2 de marzo") || !strings.Contains(r.Body, "18:00") || strings.Contains(r.Body, "Monday") {
		t.Errorf("Spanish reminder = %q", r.Body)
	}
}
