package main

import (
	"context"
	"testing"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/bus"
	notificationv1 "github.com/trellis-health/trellis/proto/gen/trellis/notification/v1"
)

// Through the API, with row-level security on (migration 00005): a clinic A token guessing a
// clinic B patient's id lists none of their messages and gets not_found for their
// preferences; naming clinic B's settings or templates is refused; and clinic B's rows are
// unchanged. (That the database, not only the app's checks, withholds the rows is
// TestRowLevelSecurityStopsGuessedIDs in internal/adapters/postgres, which calls the
// repositories with a clinic A scope directly.)
func TestRowLevelSecurityGuessedIDs(t *testing.T) {
	e := start(t, downAddr(t), nil)
	ctx := context.Background()
	patB := bus.NewID()
	for _, q := range []string{
		`INSERT INTO recipients (patient_id, clinic_id, preferred_name, email, phone, time_zone, start_date,
				admission_updated_at, contact_updated_at)
			VALUES ($1, $2, 'Sam', '', '', 'America/Chicago', '2026-03-02', now(), now())`,
		`INSERT INTO messages (id, patient_id, clinic_id, kind, channel, dedupe_key, status, sent_at)
			VALUES (gen_random_uuid(), $1, $2, 'welcome', 'email', 'welcome:' || gen_random_uuid(), 'sent', now())`,
		`INSERT INTO preferences (patient_id, clinic_id, consent_id, version, channels, updated_at)
			VALUES ($1, $2, gen_random_uuid(), 1, '{email}', now())`,
		`INSERT INTO clinic_settings (clinic_id, contact_phone) SELECT $2, '+13125550100' WHERE $1::uuid IS NOT NULL`,
	} {
		if _, err := e.Pool.Exec(ctx, q, patB, clinicB); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// snapshot is clinic B's rows as text, to show they are unchanged.
	snapshot := func() string {
		t.Helper()
		var s string
		if err := e.Pool.QueryRow(ctx, `SELECT concat_ws('|',
				(SELECT string_agg(m::text, ',') FROM messages m WHERE clinic_id = $1),
				(SELECT string_agg(p::text, ',') FROM preferences p WHERE clinic_id = $1),
				(SELECT string_agg(s::text, ',') FROM clinic_settings s WHERE clinic_id = $1),
				(SELECT count(*) FROM templates WHERE clinic_id = $1))`, clinicB).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := snapshot()
	c := e.client()
	tokB := e.Token(t, "admin-b", []string{"admin"}, []string{clinicB})
	// Clinic B's own admin sees them: the probes below ask for rows that exist.
	if resp, err := c.ListMessages(ctx, authed(tokB, &notificationv1.ListMessagesRequest{PatientId: patB})); err != nil || len(resp.Msg.GetMessages()) != 1 {
		t.Fatalf("clinic B's admin lists its patient's messages: %v, %v", resp, err)
	}
	if _, err := c.GetPreferences(ctx, authed(tokB, &notificationv1.GetPreferencesRequest{PatientId: patB})); err != nil {
		t.Fatalf("clinic B's admin reads its patient's preferences: %v", err)
	}

	tokA := e.Token(t, "admin-a", []string{"admin"}, []string{clinicA})
	resp, err := c.ListMessages(ctx, authed(tokA, &notificationv1.ListMessagesRequest{PatientId: patB}))
	if err != nil || len(resp.Msg.GetMessages()) != 0 {
		t.Errorf("clinic A lists clinic B's patient's messages: %v, %v; want none", resp, err)
	}
	_, err = c.GetPreferences(ctx, authed(tokA, &notificationv1.GetPreferencesRequest{PatientId: patB}))
	if connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("clinic A reads clinic B's patient's preferences: %v, want not_found", err)
	}
	for name, call := range map[string]func() error{
		"GetClinicSettings": func() error {
			_, err := c.GetClinicSettings(ctx, authed(tokA, &notificationv1.GetClinicSettingsRequest{ClinicId: clinicB}))
			return err
		},
		"SetClinicSettings": func() error {
			_, err := c.SetClinicSettings(ctx, authed(tokA, &notificationv1.SetClinicSettingsRequest{Settings: &notificationv1.ClinicSettings{
				ClinicId: clinicB, ContactPhone: "+13125550199"}}))
			return err
		},
		"ListTemplates": func() error {
			_, err := c.ListTemplates(ctx, authed(tokA, &notificationv1.ListTemplatesRequest{ClinicId: clinicB}))
			return err
		},
		"SaveTemplate": func() error {
			_, err := c.SaveTemplate(ctx, authed(tokA, &notificationv1.SaveTemplateRequest{ClinicId: clinicB,
				Kind: "reminder", Channel: "sms", Locale: "en", Body: "See you {{date}} at {{time}}."}))
			return err
		},
	} {
		if err := call(); connect.CodeOf(err) != connect.CodePermissionDenied {
			t.Errorf("%s of clinic B with a clinic A token: %v, want permission_denied", name, err)
		}
	}
	if after := snapshot(); after != before {
		t.Errorf("clinic B's rows changed:\n%s\nwas\n%s", after, before)
	}
}
