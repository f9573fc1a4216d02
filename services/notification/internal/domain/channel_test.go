package domain

import (
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	chi := mustLoc(t, "America/Chicago")
	now := time.Date(2026, 6, 10, 15, 0, 0, 0, time.UTC) // 10:00 in Chicago
	past, soon := now.Add(-time.Minute), now.Add(30*time.Minute)
	rec := &Recipient{PatientID: "p", Email: "usual@example.org", Phone: "+13125550100", TimeZone: "America/Chicago"}
	noEmail := &Recipient{PatientID: "p", Phone: "+13125550100", TimeZone: "America/Chicago"}
	prefs := func(channels ...string) *Preferences { return &Preferences{Channels: channels, Language: "en"} }
	conf := &Preferences{Channels: []string{ChannelEmail, ChannelSMS}, ConfidentialEmail: "private@example.org",
		ConfidentialPhone: "+13125550199"}
	quiet := &Preferences{Channels: []string{ChannelEmail}, Quiet: QuietHours{Start: "09:00", End: "11:00"}}
	textedToday := []time.Time{now.Add(-2 * time.Hour)}
	optedOut := func(p string) bool { return p == "+13125550100" }
	base := func(mod func(*DeliveryInput)) DeliveryInput {
		in := DeliveryInput{Audience: AudiencePatient, Hint: ChannelEmail, Recipient: rec, SMSEnabled: true,
			ClinicPhone: "+13125550000", Limits: DefaultTextLimits, DefaultStaffEmail: "care-team@trellis.local"}
		if mod != nil {
			mod(&in)
		}
		return in
	}
	for _, c := range []struct {
		name string
		in   DeliveryInput
		want Decision
	}{
		{"expired", base(func(in *DeliveryInput) { in.ExpiresAt = &past }), Decision{Action: ActionSkip, Reason: ReasonExpired}},
		{"no consent yet: email to the admission address", base(func(in *DeliveryInput) { in.Hint = ChannelSMS }),
			Decision{Action: ActionSend, Channel: ChannelEmail, To: "usual@example.org"}},
		{"no consent, no email: cannot be reached", base(func(in *DeliveryInput) { in.Recipient = noEmail }),
			Decision{Action: ActionFail, Reason: ReasonNoAddress}},
		{"no recipient copy", base(func(in *DeliveryInput) { in.Recipient = nil }), Decision{Action: ActionFail, Reason: ReasonNoRecipient}},
		{"revoked", base(func(in *DeliveryInput) {
			in.Preferences = &Preferences{Revoked: true, Channels: []string{ChannelEmail}}
		}),
			Decision{Action: ActionCancel, Reason: ReasonConsentRevoked}},
		{"agreed to nothing", base(func(in *DeliveryInput) { in.Preferences = prefs() }), Decision{Action: ActionSkip, Reason: ReasonNoChannel}},
		{"sms hint first", base(func(in *DeliveryInput) { in.Preferences, in.Hint = prefs(ChannelEmail, ChannelSMS), ChannelSMS }),
			Decision{Action: ActionSend, Channel: ChannelSMS, To: "+13125550100"}},
		{"email hint first", base(func(in *DeliveryInput) { in.Preferences = prefs(ChannelEmail, ChannelSMS) }),
			Decision{Action: ActionSend, Channel: ChannelEmail, To: "usual@example.org"}},
		{"hint not agreed: the other", base(func(in *DeliveryInput) { in.Preferences, in.Hint = prefs(ChannelSMS), ChannelEmail }),
			Decision{Action: ActionSend, Channel: ChannelSMS, To: "+13125550100"}},
		{"confidential addresses", base(func(in *DeliveryInput) { in.Preferences = conf }),
			Decision{Action: ActionSend, Channel: ChannelEmail, To: "private@example.org"}},
		{"confidential number", base(func(in *DeliveryInput) { in.Preferences, in.Hint = conf, ChannelSMS }),
			Decision{Action: ActionSend, Channel: ChannelSMS, To: "+13125550199"}},
		{"text limit: falls back to email", base(func(in *DeliveryInput) {
			in.Preferences, in.Hint, in.TextsSent = prefs(ChannelEmail, ChannelSMS), ChannelSMS, textedToday
		}), Decision{Action: ActionSend, Channel: ChannelEmail, To: "usual@example.org"}},
		{"text limit, sms only: skipped", base(func(in *DeliveryInput) {
			in.Preferences, in.Hint, in.TextsSent = prefs(ChannelSMS), ChannelSMS, textedToday
		}), Decision{Action: ActionSkip, Reason: ReasonTextLimit}},
		{"opted out, sms only", base(func(in *DeliveryInput) { in.Preferences, in.OptedOut = prefs(ChannelSMS), optedOut }),
			Decision{Action: ActionSkip, Reason: ReasonSMSOptedOut}},
		{"opted out usual number, confidential number not", base(func(in *DeliveryInput) {
			in.Preferences, in.Hint, in.OptedOut = conf, ChannelSMS, optedOut
		}), Decision{Action: ActionSend, Channel: ChannelSMS, To: "+13125550199"}},
		{"sms disabled: email", base(func(in *DeliveryInput) {
			in.Preferences, in.Hint, in.SMSEnabled = prefs(ChannelEmail, ChannelSMS), ChannelSMS, false
		}), Decision{Action: ActionSend, Channel: ChannelEmail, To: "usual@example.org"}},
		{"sms disabled, sms only", base(func(in *DeliveryInput) { in.Preferences, in.SMSEnabled = prefs(ChannelSMS), false }),
			Decision{Action: ActionSkip, Reason: ReasonSMSDisabled}},
		{"no clinic phone, sms only", base(func(in *DeliveryInput) { in.Preferences, in.ClinicPhone = prefs(ChannelSMS), "" }),
			Decision{Action: ActionSkip, Reason: ReasonNoClinicPhone}},
		{"sms only, no email and no phone", base(func(in *DeliveryInput) {
			in.Preferences, in.Recipient = prefs(ChannelEmail, ChannelSMS), &Recipient{TimeZone: "America/Chicago"}
		}), Decision{Action: ActionFail, Reason: ReasonNoAddress}},
		{"quiet hours: deferred", base(func(in *DeliveryInput) { in.Preferences = quiet }),
			Decision{Action: ActionDefer, Until: time.Date(2026, 6, 10, 11, 0, 0, 0, chi)}},
		{"quiet hours past expiry: skipped", base(func(in *DeliveryInput) { in.Preferences, in.ExpiresAt = quiet, &soon }),
			Decision{Action: ActionSkip, Reason: ReasonQuietHours}},
		{"staff: clinic care team", base(func(in *DeliveryInput) {
			in.Audience, in.Team, in.Recipient, in.CareTeamEmail = AudienceStaff, TeamCareTeam, nil, "team@clinic.example"
		}), Decision{Action: ActionSend, Channel: ChannelEmail, To: "team@clinic.example"}},
		{"staff: billing falls back to the network", base(func(in *DeliveryInput) {
			in.Audience, in.Team, in.CareTeamEmail = AudienceStaff, TeamBilling, "team@clinic.example"
		}), Decision{Action: ActionSend, Channel: ChannelEmail, To: "care-team@trellis.local"}},
		{"staff: quiet hours do not apply", base(func(in *DeliveryInput) {
			in.Audience, in.Team, in.Preferences, in.BillingEmail = AudienceStaff, TeamBilling, quiet, "billing@clinic.example"
		}), Decision{Action: ActionSend, Channel: ChannelEmail, To: "billing@clinic.example"}},
		{"staff: no address", base(func(in *DeliveryInput) {
			in.Audience, in.Team, in.DefaultStaffEmail = AudienceStaff, TeamOperations, ""
		}),
			Decision{Action: ActionFail, Reason: ReasonNoStaffAddress}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Decide(c.in, now)
			if got.Action != c.want.Action || got.Channel != c.want.Channel || got.To != c.want.To ||
				got.Reason != c.want.Reason || !got.Until.Equal(c.want.Until) {
				t.Errorf("Decide = %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestFinishSMS(t *testing.T) {
	for _, c := range []struct {
		name, body, phone, want string
		ok                      bool
	}{
		{"appends the number", "Reminder: visit tomorrow at 9:00.", "+13125550000", "Reminder: visit tomorrow at 9:00.\nQuestions? +13125550000", true},
		{"number already there, other format", "Visit at 9. Call (312) 555-0000.", "+13125550000", "Visit at 9. Call (312) 555-0000.", true},
		{"exactly 160 after appending", string(make160(160 - len("\nQuestions? +13125550000"))), "+13125550000", "", true},
		{"too long", string(make160(150)), "+13125550000", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := FinishSMS(c.body, c.phone)
			if ok != c.ok || (c.want != "" && got != c.want) {
				t.Errorf("FinishSMS = %q, %v; want %q, %v", got, ok, c.want, c.ok)
			}
		})
	}
}

func make160(n int) []rune {
	r := make([]rune, n)
	for i := range r {
		r[i] = 'a'
	}
	return r
}
