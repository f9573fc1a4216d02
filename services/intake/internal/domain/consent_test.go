package domain

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// consentNow is the clock of the consent tests.
var consentNow = time.Date(2026, 3, 15, 3, 0, 0, 123456789, time.UTC)

func validConsentInput() ConsentInput {
	return ConsentInput{
		Scopes:            []string{ScopePayment, ScopeTreatment},
		Channels:          []string{ChannelSMS, ChannelEmail},
		ConfidentialPhone: "+13125550100",
		QuietHours:        QuietHours{Start: "21:00", End: "08:00"},
	}
}

// violations returns the (field, rule) pairs of a *ValidationError, or fails.
func consentViolations(t *testing.T, err error) []fr {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a *ValidationError", err)
	}
	var out []fr
	for _, v := range ve.Violations {
		if v.Msg == "" {
			t.Errorf("violation %s/%s has no message", v.Field, v.Rule)
		}
		out = append(out, fr{v.Field, v.Rule})
	}
	return out
}

func TestGrantConsentRules(t *testing.T) {
	active := &Consent{ID: "c1", Version: 2, Status: ConsentActive, EffectiveFrom: consentNow.Add(-48 * time.Hour).Truncate(time.Microsecond)} // as stored
	// Revoked: in effect from 10 days ago until 3 days ago.
	revoked := &Consent{ID: "c1", Version: 2, Status: ConsentRevoked, EffectiveFrom: consentNow.Add(-240 * time.Hour).Truncate(time.Microsecond),
		RevokedAt: consentNow.Add(-24 * time.Hour).Truncate(time.Microsecond), RevocationEffectiveAt: consentNow.Add(-72 * time.Hour).Truncate(time.Microsecond)}
	// Revoked from 12 hours ahead (a written revocation "from tomorrow morning").
	revokedAhead := &Consent{ID: "c1", Version: 2, Status: ConsentRevoked, EffectiveFrom: consentNow.Add(-240 * time.Hour).Truncate(time.Microsecond),
		RevokedAt: consentNow.Add(-time.Hour).Truncate(time.Microsecond), RevocationEffectiveAt: consentNow.Add(12 * time.Hour).Truncate(time.Microsecond)}
	tests := []struct {
		name   string
		edit   func(*ConsentInput)
		latest *Consent
		want   []fr
	}{
		{name: "valid", edit: func(*ConsentInput) {}},
		{name: "no channels: neither", edit: func(in *ConsentInput) { in.Channels, in.ConfidentialPhone = nil, "" }},
		{name: "email only, no confidential address", edit: func(in *ConsentInput) { in.Channels, in.ConfidentialPhone = []string{ChannelEmail}, "" }},
		{name: "SMS without a phone", edit: func(in *ConsentInput) { in.ConfidentialPhone = " " },
			want: []fr{{"confidential_phone", RuleSMSNeedsPhone}}},
		{name: "no scopes", edit: func(in *ConsentInput) { in.Scopes = nil }, want: []fr{{"scopes", RuleScopesRequired}}},
		{name: "unknown scope", edit: func(in *ConsentInput) { in.Scopes = []string{ScopeTreatment, "marketing"} },
			want: []fr{{"scopes", RuleCodeKnown}}},
		{name: "unknown channel", edit: func(in *ConsentInput) { in.Channels = []string{"fax"} },
			want: []fr{{"channels", RuleCodeKnown}}},
		{name: "named recipients scope without recipients", edit: func(in *ConsentInput) { in.Scopes = append(in.Scopes, ScopeNamedRecipients) },
			want: []fr{{"named_recipients", RuleConsentNamedRecipients}}},
		{name: "named recipients with the scope", edit: func(in *ConsentInput) {
			in.Scopes = append(in.Scopes, ScopeNamedRecipients)
			in.NamedRecipients = []NamedRecipient{{Name: "Sam", Relationship: "sister"}}
		}},
		{name: "recipients without the scope", edit: func(in *ConsentInput) { in.NamedRecipients = []NamedRecipient{{Name: "Sam"}} },
			want: []fr{{"named_recipients", RuleRecipientsNeedScope}}},
		{name: "blank and long recipients", edit: func(in *ConsentInput) {
			in.Scopes = append(in.Scopes, ScopeNamedRecipients)
			in.NamedRecipients = []NamedRecipient{{Name: "Sam"}, {Name: "  "}, {Name: strings.Repeat("é", 201), Relationship: strings.Repeat("x", 101)}}
		}, want: []fr{{"named_recipients[1].name", RuleNameNotBlank}, {"named_recipients[2].name", RuleRecipientTooLong}, {"named_recipients[2].relationship", RuleRecipientTooLong}}},
		{name: "recipient name of exactly 200 characters", edit: func(in *ConsentInput) {
			in.Scopes = append(in.Scopes, ScopeNamedRecipients)
			in.NamedRecipients = []NamedRecipient{{Name: strings.Repeat("é", 200)}}
		}},
		{name: "no quiet hours", edit: func(in *ConsentInput) { in.QuietHours = QuietHours{} }},
		{name: "quiet hours same day", edit: func(in *ConsentInput) { in.QuietHours = QuietHours{Start: "12:00", End: "13:30"} }},
		{name: "quiet hours from midnight", edit: func(in *ConsentInput) { in.QuietHours = QuietHours{Start: "00:00", End: "23:59"} }},
		{name: "quiet hours 24:00", edit: func(in *ConsentInput) { in.QuietHours.End = "24:00" },
			want: []fr{{"quiet_hours.end", RuleQuietHoursTime}}},
		{name: "quiet hours without leading zero", edit: func(in *ConsentInput) { in.QuietHours.End = "8:00" },
			want: []fr{{"quiet_hours.end", RuleQuietHoursTime}}},
		{name: "quiet hours minute 60", edit: func(in *ConsentInput) { in.QuietHours.Start = "21:60" },
			want: []fr{{"quiet_hours.start", RuleQuietHoursTime}}},
		{name: "quiet hours with seconds", edit: func(in *ConsentInput) { in.QuietHours.Start = "21:00:00" },
			want: []fr{{"quiet_hours.start", RuleQuietHoursTime}}},
		{name: "quiet hours start only", edit: func(in *ConsentInput) { in.QuietHours.End = "" },
			want: []fr{{"quiet_hours.end", RuleQuietHoursTime}}},
		{name: "quiet hours end only", edit: func(in *ConsentInput) { in.QuietHours.Start = "" },
			want: []fr{{"quiet_hours.start", RuleQuietHoursTime}}},
		{name: "quiet hours empty window", edit: func(in *ConsentInput) { in.QuietHours = QuietHours{Start: "22:00", End: "22:00"} },
			want: []fr{{"quiet_hours.end", RuleQuietHoursWindow}}},
		{name: "language es", edit: func(in *ConsentInput) { in.Language = "es" }},
		{name: "language fr", edit: func(in *ConsentInput) { in.Language = "fr" }, want: []fr{{"language", RuleLanguageSupported}}},
		{name: "effective 90 days back", edit: func(in *ConsentInput) { in.EffectiveFrom = consentNow.Add(-MaxConsentBackdate) }},
		{name: "effective more than 90 days back", edit: func(in *ConsentInput) { in.EffectiveFrom = consentNow.Add(-MaxConsentBackdate - time.Second) },
			want: []fr{{"effective_from", RuleEffectiveFromBackdate}}},
		{name: "effective within clock skew", edit: func(in *ConsentInput) { in.EffectiveFrom = consentNow.Add(ConsentClockSkew) }},
		{name: "effective in the future", edit: func(in *ConsentInput) { in.EffectiveFrom = consentNow.Add(ConsentClockSkew + time.Second) },
			want: []fr{{"effective_from", RuleEffectiveFromFuture}}},
		{name: "effective before the version it replaces", latest: active,
			edit: func(in *ConsentInput) { in.EffectiveFrom = active.EffectiveFrom.Add(-time.Second) },
			want: []fr{{"effective_from", RuleEffectiveFromPrevious}}},
		{name: "effective with the version it replaces", latest: active,
			edit: func(in *ConsentInput) { in.EffectiveFrom = active.EffectiveFrom }},
		{name: "after a revocation: now", latest: revoked, edit: func(*ConsentInput) {}},
		{name: "after a revocation: from when the revocation took effect", latest: revoked,
			edit: func(in *ConsentInput) { in.EffectiveFrom = revoked.RevocationEffectiveAt }},
		{name: "after a revocation: just before the revocation took effect", latest: revoked,
			edit: func(in *ConsentInput) { in.EffectiveFrom = revoked.RevocationEffectiveAt.Add(-time.Microsecond) },
			want: []fr{{"effective_from", RuleEffectiveFromPrevious}}},
		{name: "after a revocation: back-dated while the revoked version applied", latest: revoked,
			edit: func(in *ConsentInput) { in.EffectiveFrom = revoked.EffectiveFrom.Add(time.Hour) },
			want: []fr{{"effective_from", RuleEffectiveFromPrevious}}},
		{name: "after a revocation: before the revoked version took effect", latest: revoked,
			edit: func(in *ConsentInput) { in.EffectiveFrom = revoked.EffectiveFrom.Add(-time.Hour) },
			want: []fr{{"effective_from", RuleEffectiveFromPrevious}}},
		{name: "after a revocation taking effect ahead: now", latest: revokedAhead, edit: func(*ConsentInput) {},
			want: []fr{{"effective_from", RuleEffectiveFromPrevious}}},
		{name: "expires after effective", edit: func(in *ConsentInput) { in.ExpiresAt = consentNow.AddDate(1, 0, 0) }},
		{name: "expires at effective", edit: func(in *ConsentInput) {
			in.EffectiveFrom = consentNow.Add(-time.Hour)
			in.ExpiresAt = in.EffectiveFrom
		}, want: []fr{{"expires_at", RuleExpiresAfterEffective}}},
		{name: "expires before effective", edit: func(in *ConsentInput) {
			in.EffectiveFrom = consentNow.Add(-time.Hour)
			in.ExpiresAt = consentNow.Add(-2 * time.Hour)
		}, want: []fr{{"expires_at", RuleExpiresAfterEffective}}},
		{name: "expired already", edit: func(in *ConsentInput) {
			in.EffectiveFrom = consentNow.Add(-48 * time.Hour)
			in.ExpiresAt = consentNow.Add(-time.Hour)
		}, want: []fr{{"expires_at", RuleExpiresFuture}}},
		{name: "everything wrong together", edit: func(in *ConsentInput) {
			in.ConfidentialPhone = ""
			in.QuietHours = QuietHours{Start: "7pm", End: "7pm"}
			in.EffectiveFrom = consentNow.Add(time.Hour)
			in.ExpiresAt = consentNow
		}, want: []fr{
			{"confidential_phone", RuleSMSNeedsPhone}, {"quiet_hours.start", RuleQuietHoursTime}, {"quiet_hours.end", RuleQuietHoursTime},
			{"effective_from", RuleEffectiveFromFuture}, {"expires_at", RuleExpiresAfterEffective},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := validConsentInput()
			tt.edit(&in)
			_, _, err := GrantConsent(in, "p1", "k1", tt.latest, "c2", "coordinator-1", consentNow)
			if got := consentViolations(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("violations = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestGrantConsentVersions(t *testing.T) {
	first, old, err := GrantConsent(validConsentInput(), "p1", "k1", nil, "c1", "coordinator-1", consentNow)
	if err != nil {
		t.Fatal(err)
	}
	if old != nil || first.Version != 1 || first.Status != ConsentActive || first.SupersedesID != "" {
		t.Fatalf("first = version %d status %s supersedes %q, old %v", first.Version, first.Status, first.SupersedesID, old)
	}
	// Defaults and normal form.
	wantTime := consentNow.Truncate(time.Microsecond)
	if !first.EffectiveFrom.Equal(wantTime) || first.EffectiveFrom.Location() != time.UTC || !first.CreatedAt.Equal(wantTime) {
		t.Errorf("effective_from %v created_at %v, want now to the microsecond in UTC", first.EffectiveFrom, first.CreatedAt)
	}
	if !first.ExpiresAt.IsZero() || first.Language != LanguageEnglish {
		t.Errorf("expires %v language %q, want none and en", first.ExpiresAt, first.Language)
	}
	if !slices.Equal(first.Scopes, []string{ScopeTreatment, ScopePayment}) || !slices.Equal(first.Channels, []string{ChannelEmail, ChannelSMS}) {
		t.Errorf("scopes %v channels %v, want canonical order", first.Scopes, first.Channels)
	}
	if first.RecordedBy != "coordinator-1" || first.PatientID != "p1" || first.ClinicID != "k1" {
		t.Errorf("first = %+v", first)
	}

	// A second version supersedes the active one; after a revoked version, the next version
	// still counts on from the latest.
	second, old, err := GrantConsent(validConsentInput(), "p1", "k1", &first, "c2", "coordinator-1", consentNow.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if second.Version != 2 || second.SupersedesID != "c1" || old == nil || old.ID != "c1" || old.Status != ConsentSuperseded {
		t.Fatalf("second = version %d supersedes %q, old %+v", second.Version, second.SupersedesID, old)
	}
	if first.Status != ConsentActive {
		t.Error("GrantConsent changed the active consent it was given")
	}
	revoked := &Consent{ID: "c7", Version: 7, Status: ConsentRevoked, EffectiveFrom: consentNow.Add(-time.Hour),
		RevokedAt: consentNow.Add(-time.Minute), RevocationEffectiveAt: consentNow.Add(-time.Minute)}
	third, old, err := GrantConsent(validConsentInput(), "p1", "k1", revoked, "c8", "coordinator-1", consentNow)
	if err != nil {
		t.Fatal(err)
	}
	if third.Version != 8 || third.SupersedesID != "" || old != nil {
		t.Errorf("after a revoked version 7: version %d supersedes %q old %v", third.Version, third.SupersedesID, old)
	}
}

func TestRevokeConsent(t *testing.T) {
	from := consentNow.Add(-72 * time.Hour).Truncate(time.Microsecond) // as stored
	active := Consent{ID: "c1", Version: 1, Status: ConsentActive, Scopes: []string{ScopeTreatment}, EffectiveFrom: from}
	tests := []struct {
		name     string
		status   string
		at       time.Time
		reason   string
		want     []fr
		wantPre  bool
		wantTime time.Time
	}{
		{name: "now by default", status: ConsentActive, wantTime: consentNow.Truncate(time.Microsecond)},
		{name: "back-dated to when it took effect", status: ConsentActive, at: from, wantTime: from},
		{name: "before it took effect", status: ConsentActive, at: from.Add(-time.Second), want: []fr{{"effective_at", RuleRevocationBeforeEffect}}},
		{name: "24 hours ahead", status: ConsentActive, at: consentNow.Add(MaxRevocationLead), wantTime: consentNow.Add(MaxRevocationLead).Truncate(time.Microsecond)},
		{name: "more than 24 hours ahead", status: ConsentActive, at: consentNow.Add(MaxRevocationLead + time.Second), want: []fr{{"effective_at", RuleRevocationTooFarAhead}}},
		{name: "reason too long", status: ConsentActive, reason: strings.Repeat("x", 1001), want: []fr{{"reason", RuleReasonTooLong}}},
		{name: "already revoked", status: ConsentRevoked, wantPre: true},
		{name: "superseded", status: ConsentSuperseded, wantPre: true},
		{name: "superseded, bad time too: the state answers first", status: ConsentSuperseded, at: from.Add(-time.Hour), wantPre: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := active
			c.Status = tt.status
			got, err := c.Revoke(Revocation{EffectiveAt: tt.at, Reason: tt.reason}, "coordinator-2", consentNow)
			var pe *PreconditionError
			if tt.wantPre {
				if !errors.As(err, &pe) {
					t.Fatalf("err = %v, want a *PreconditionError", err)
				}
				return
			}
			if vs := consentViolations(t, err); !slices.Equal(vs, tt.want) {
				t.Fatalf("violations = %v, want %v", vs, tt.want)
			}
			if err != nil {
				return
			}
			if got.Status != ConsentRevoked || !got.RevocationEffectiveAt.Equal(tt.wantTime) || got.RevokedBy != "coordinator-2" ||
				!got.RevokedAt.Equal(consentNow.Truncate(time.Microsecond)) {
				t.Errorf("revoked = status %s effective %v by %q at %v", got.Status, got.RevocationEffectiveAt, got.RevokedBy, got.RevokedAt)
			}
			if c.Status != tt.status {
				t.Error("Revoke changed the consent it was called on")
			}
		})
	}
}

func TestQuietHoursContains(t *testing.T) {
	night := QuietHours{Start: "21:00", End: "08:00"}
	lunch := QuietHours{Start: "12:00", End: "13:00"}
	tests := []struct {
		q    QuietHours
		at   string
		want bool
	}{
		{night, "20:59", false}, {night, "21:00", true}, {night, "23:59", true}, {night, "00:00", true},
		{night, "07:59", true}, {night, "08:00", false}, {night, "12:00", false},
		{lunch, "11:59", false}, {lunch, "12:00", true}, {lunch, "12:59", true}, {lunch, "13:00", false}, {lunch, "00:30", false},
		{QuietHours{}, "03:00", false},
	}
	for _, tt := range tests {
		if got := tt.q.Contains(tt.at); got != tt.want {
			t.Errorf("%v contains %s = %v, want %v", tt.q, tt.at, got, tt.want)
		}
	}
}
