package domain

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Consent scopes (42 CFR Part 2), channel and status codes, as stored.
const (
	ScopeTreatment       = "treatment"
	ScopePayment         = "payment"
	ScopeOperations      = "operations" // health care operations
	ScopeNamedRecipients = "named_recipients"

	ChannelEmail = "email"
	ChannelSMS   = "sms"

	ConsentActive     = "active"
	ConsentSuperseded = "superseded" // replaced by a later version
	ConsentRevoked    = "revoked"

	LanguageEnglish = "en"
	LanguageSpanish = "es"
)

// Consent limits.
//
// A consent is usually entered the day it is signed, but paper often follows the session:
// effective_from may be back-dated up to 90 days (as an admission's start date may). It may not
// lie in the future (beyond 5 minutes of clock skew between the caller and us), because a new
// version supersedes the active one at once: a future-dated version would leave a gap in which
// no consent applies.
//
// A revocation takes effect from effective_at: not before the consent took effect (there was
// nothing to revoke), and at most 24 hours ahead (a written revocation "from tomorrow morning";
// anything later is almost always a typo, and the patient can always revoke again). A
// revocation that takes effect ahead holds off the next version until then: a new version may
// not take effect before the revocation does.
const (
	MaxConsentBackdate = 90 * 24 * time.Hour
	ConsentClockSkew   = 5 * time.Minute
	MaxRevocationLead  = 24 * time.Hour

	MaxRecipientNameLen         = 200
	MaxRecipientRelationshipLen = 100
)

// Rule ids of consent violations.
const (
	RuleConsentNamedRecipients = "consent.named_recipients"      // the named-recipients scope without recipients
	RuleRecipientsNeedScope    = "named_recipients.scope"        // recipients without the named-recipients scope
	RuleRecipientTooLong       = "named_recipients.max_len"      // a recipient's name or relationship too long
	RuleSMSNeedsPhone          = "channels.sms_phone"            // SMS chosen without a confidential phone
	RuleQuietHoursTime         = "quiet_hours.time"              // not "HH:MM" (00:00 to 23:59), or only one end given
	RuleQuietHoursWindow       = "quiet_hours.window"            // start = end
	RuleLanguageSupported      = "language.supported"            // not en or es
	RuleCodeKnown              = "code.known"                    // a scope or channel code we do not know
	RuleScopesRequired         = "scopes.required"               // no scope
	RuleEffectiveFromFuture    = "effective_from.not_future"     // after now (plus clock skew)
	RuleEffectiveFromBackdate  = "effective_from.max_backdate"   // more than 90 days back
	RuleEffectiveFromPrevious  = "effective_from.after_previous" // before the previous version took effect, or its revocation did
	RuleExpiresAfterEffective  = "expires_at.after_effective_from"
	RuleExpiresFuture          = "expires_at.future"
	RuleRevocationBeforeEffect = "effective_at.not_before_effective_from"
	RuleRevocationTooFarAhead  = "effective_at.max_lead"
	RuleReasonTooLong          = "reason.max_len"
)

// Request field names, as in GrantConsentRequest and RevokeConsentRequest.
const (
	consentFieldScopes          = "scopes"
	consentFieldChannels        = "channels"
	consentFieldNamedRecipients = "named_recipients"
	consentFieldConfidentialTel = "confidential_phone"
	consentFieldQuietStart      = "quiet_hours.start"
	consentFieldQuietEnd        = "quiet_hours.end"
	consentFieldLanguage        = "language"
	consentFieldEffectiveFrom   = "effective_from"
	consentFieldExpiresAt       = "expires_at"
	revocationFieldEffectiveAt  = "effective_at"
	revocationFieldReason       = "reason"

	maxRevocationReasonLen = 1000
)

var (
	consentScopeOrder   = []string{ScopeTreatment, ScopePayment, ScopeOperations, ScopeNamedRecipients}
	consentChannelOrder = []string{ChannelEmail, ChannelSMS}
	quietHoursPattern   = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
)

// NamedRecipient is a person the patient allows disclosures to.
type NamedRecipient struct {
	Name         string `json:"name"`
	Relationship string `json:"relationship"`
}

// QuietHours is a patient-local window "HH:MM" to "HH:MM" in which no message is sent. It may
// wrap midnight (21:00 to 08:00). The zero value means none.
type QuietHours struct {
	Start, End string
}

// IsZero reports whether there are no quiet hours.
func (q QuietHours) IsZero() bool { return q.Start == "" && q.End == "" }

// Contains reports whether the local clock time hh:mm falls in the window [Start, End).
func (q QuietHours) Contains(hhmm string) bool {
	if q.IsZero() {
		return false
	}
	if q.Start < q.End { // "HH:MM" strings order as times of day
		return hhmm >= q.Start && hhmm < q.End
	}
	return hhmm >= q.Start || hhmm < q.End // wraps midnight
}

// ConsentInput is a consent as granted (already checked for shape by protovalidate). Zero
// times mean "not given".
type ConsentInput struct {
	Scopes            []string
	NamedRecipients   []NamedRecipient
	Channels          []string
	ConfidentialEmail string
	ConfidentialPhone string
	QuietHours        QuietHours
	Language          string // "" means English
	EffectiveFrom     time.Time
	ExpiresAt         time.Time
}

// Consent is one version of a patient's consent and communication preferences.
type Consent struct {
	ID                string
	PatientID         string
	ClinicID          string
	Version           int
	Scopes            []string // in the order treatment, payment, operations, named_recipients
	NamedRecipients   []NamedRecipient
	Channels          []string // in the order email, sms; empty means neither
	ConfidentialEmail string
	ConfidentialPhone string
	QuietHours        QuietHours
	Language          string
	EffectiveFrom     time.Time
	ExpiresAt         time.Time // zero: until revoked
	Status            string
	SupersedesID      string // the version this one replaced, if any

	RevokedAt             time.Time // when the revocation was recorded; zero unless revoked
	RevocationEffectiveAt time.Time // when the consent stops applying
	RevocationReason      string
	RecordedBy            string // token subject of who granted it
	RevokedBy             string
	CreatedAt             time.Time
}

// GrantConsent applies the consent rules to a new version for the patient. latest is the
// patient's latest version whatever its status (nil if none): it is the active consent when
// there is one (a new version always supersedes the active one, so no version after the active
// one exists), else the revoked one. The new version is one more than latest's and takes
// effect neither before latest did nor before latest's revocation took effect: versions never
// overlap (a version back-dated into the time a revoked one still applied would blur which
// consent applied then), so the record always says which one applied when.
// It returns the new version and, when latest was active, latest marked superseded; both
// must be stored together. Every violation is returned together in a *ValidationError. All
// times are UTC to the microsecond, as Postgres keeps them.
func GrantConsent(in ConsentInput, patientID, clinicID string, latest *Consent, id, by string, now time.Time) (Consent, *Consent, error) {
	now = consentTime(now)
	var vs []Violation
	add := func(field, rule, msg string) { vs = append(vs, Violation{Field: field, Rule: rule, Msg: msg}) }

	scopes, unknown := consentCodes(in.Scopes, consentScopeOrder)
	if unknown {
		add(consentFieldScopes, RuleCodeKnown, "unknown scope")
	}
	if len(scopes) == 0 {
		add(consentFieldScopes, RuleScopesRequired, "choose at least one scope")
	}
	named := slices.Contains(scopes, ScopeNamedRecipients)
	recipients := make([]NamedRecipient, 0, len(in.NamedRecipients))
	for i, r := range in.NamedRecipients {
		r = NamedRecipient{Name: strings.TrimSpace(r.Name), Relationship: strings.TrimSpace(r.Relationship)}
		field := fmt.Sprintf("%s[%d]", consentFieldNamedRecipients, i)
		switch {
		case r.Name == "":
			add(field+".name", RuleNameNotBlank, "must not be blank")
		case len([]rune(r.Name)) > MaxRecipientNameLen:
			add(field+".name", RuleRecipientTooLong, fmt.Sprintf("must be at most %d characters", MaxRecipientNameLen))
		}
		if len([]rune(r.Relationship)) > MaxRecipientRelationshipLen {
			add(field+".relationship", RuleRecipientTooLong, fmt.Sprintf("must be at most %d characters", MaxRecipientRelationshipLen))
		}
		recipients = append(recipients, r)
	}
	switch {
	case named && len(recipients) == 0:
		add(consentFieldNamedRecipients, RuleConsentNamedRecipients, "the named-recipients scope needs at least one named recipient")
	case !named && len(recipients) > 0:
		add(consentFieldNamedRecipients, RuleRecipientsNeedScope, "named recipients need the named-recipients scope")
	}

	channels, unknown := consentCodes(in.Channels, consentChannelOrder)
	if unknown {
		add(consentFieldChannels, RuleCodeKnown, "unknown channel")
	}
	phone, email := strings.TrimSpace(in.ConfidentialPhone), strings.TrimSpace(in.ConfidentialEmail)
	if slices.Contains(channels, ChannelSMS) && phone == "" {
		// The patient's phone intake keeps (the referral's) is for duplicate matching, not a
		// number the patient chose for messages: the only number to text is this one.
		add(consentFieldConfidentialTel, RuleSMSNeedsPhone, "the SMS channel needs a confidential phone number to text")
	}

	quiet := QuietHours{Start: strings.TrimSpace(in.QuietHours.Start), End: strings.TrimSpace(in.QuietHours.End)}
	if !quiet.IsZero() {
		okStart, okEnd := quietHoursPattern.MatchString(quiet.Start), quietHoursPattern.MatchString(quiet.End)
		if !okStart {
			add(consentFieldQuietStart, RuleQuietHoursTime, `must be a 24-hour time "HH:MM" (give both start and end, or neither)`)
		}
		if !okEnd {
			add(consentFieldQuietEnd, RuleQuietHoursTime, `must be a 24-hour time "HH:MM" (give both start and end, or neither)`)
		}
		if okStart && okEnd && quiet.Start == quiet.End {
			add(consentFieldQuietEnd, RuleQuietHoursWindow, "must differ from start (a window may wrap midnight)")
		}
	}

	lang := in.Language
	if lang == "" {
		lang = LanguageEnglish
	}
	if lang != LanguageEnglish && lang != LanguageSpanish {
		add(consentFieldLanguage, RuleLanguageSupported, `must be "en" or "es"`)
	}

	from := now
	if !in.EffectiveFrom.IsZero() {
		from = consentTime(in.EffectiveFrom)
	}
	switch {
	case from.After(now.Add(ConsentClockSkew)):
		add(consentFieldEffectiveFrom, RuleEffectiveFromFuture, "must not be in the future")
	case from.Before(now.Add(-MaxConsentBackdate)):
		add(consentFieldEffectiveFrom, RuleEffectiveFromBackdate, fmt.Sprintf("must not be more than %d days in the past", MaxConsentBackdate/(24*time.Hour)))
	case latest != nil && from.Before(latest.EffectiveFrom):
		add(consentFieldEffectiveFrom, RuleEffectiveFromPrevious, "must not be before the previous version took effect")
	case latest != nil && from.Before(latest.RevocationEffectiveAt): // zero unless revoked
		add(consentFieldEffectiveFrom, RuleEffectiveFromPrevious, "must not be before the revocation of the previous version took effect")
	}
	var expires time.Time
	if !in.ExpiresAt.IsZero() {
		expires = consentTime(in.ExpiresAt)
		switch {
		case !expires.After(from):
			add(consentFieldExpiresAt, RuleExpiresAfterEffective, "must be after effective_from")
		case !expires.After(now):
			add(consentFieldExpiresAt, RuleExpiresFuture, "must be in the future")
		}
	}

	if len(vs) > 0 {
		return Consent{}, nil, &ValidationError{Violations: vs}
	}
	version := 1
	if latest != nil {
		version = latest.Version + 1
	}
	c := Consent{
		ID: id, PatientID: patientID, ClinicID: clinicID, Version: version,
		Scopes: scopes, NamedRecipients: recipients, Channels: channels,
		ConfidentialEmail: email, ConfidentialPhone: phone, QuietHours: quiet, Language: lang,
		EffectiveFrom: from, ExpiresAt: expires, Status: ConsentActive,
		RecordedBy: by, CreatedAt: now,
	}
	var superseded *Consent
	if latest != nil && latest.Status == ConsentActive {
		old := *latest
		old.Status = ConsentSuperseded
		superseded = &old
		c.SupersedesID = old.ID
	}
	return c, superseded, nil
}

// Revocation is a written revocation as received. A zero EffectiveAt means now.
type Revocation struct {
	EffectiveAt time.Time
	Reason      string
}

// Revoke applies a written revocation to c. Only the active consent can be revoked: a
// superseded or revoked one is a *PreconditionError (checked before the revocation's own
// rules). The consent becomes revoked at once; it stops applying from EffectiveAt.
func (c Consent) Revoke(r Revocation, by string, now time.Time) (Consent, error) {
	switch c.Status {
	case ConsentActive:
	case ConsentRevoked:
		return Consent{}, Precondition("the consent is already revoked")
	case ConsentSuperseded:
		return Consent{}, Precondition("the consent was superseded by a later version: revoke the active one")
	default:
		return Consent{}, Precondition("the consent is not active")
	}
	now = consentTime(now)
	at := now
	if !r.EffectiveAt.IsZero() {
		at = consentTime(r.EffectiveAt)
	}
	var vs []Violation
	switch {
	case at.Before(c.EffectiveFrom):
		vs = append(vs, Violation{Field: revocationFieldEffectiveAt, Rule: RuleRevocationBeforeEffect, Msg: "must not be before the consent took effect"})
	case at.After(now.Add(MaxRevocationLead)):
		vs = append(vs, Violation{Field: revocationFieldEffectiveAt, Rule: RuleRevocationTooFarAhead,
			Msg: fmt.Sprintf("must not be more than %d hours ahead", MaxRevocationLead/time.Hour)})
	}
	reason := strings.TrimSpace(r.Reason)
	if len([]rune(reason)) > maxRevocationReasonLen {
		vs = append(vs, Violation{Field: revocationFieldReason, Rule: RuleReasonTooLong,
			Msg: fmt.Sprintf("must be at most %d characters", maxRevocationReasonLen)})
	}
	if len(vs) > 0 {
		return Consent{}, &ValidationError{Violations: vs}
	}
	c.Status = ConsentRevoked
	c.RevokedAt = now
	c.RevocationEffectiveAt = at
	c.RevocationReason = reason
	c.RevokedBy = by
	return c, nil
}

// consentCodes returns the codes of in that appear in order, in that order, once each, and
// whether in holds a code that is not in order.
func consentCodes(in, order []string) ([]string, bool) {
	out := []string{}
	for _, code := range order {
		if slices.Contains(in, code) {
			out = append(out, code)
		}
	}
	unknown := slices.ContainsFunc(in, func(c string) bool { return !slices.Contains(order, c) })
	return out, unknown
}

// consentTime is t in UTC to the microsecond, as a Postgres timestamptz keeps it (so that what an
// event says and what the row holds agree).
func consentTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
