package domain

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Delivery decisions: what the dispatcher does with a due message.
const (
	ActionSend   = "send"   // send on Decision.Channel to Decision.To
	ActionDefer  = "defer"  // try again at Decision.Until (quiet hours); no attempt counted
	ActionSkip   = "skip"   // skipped for Decision.Reason (not sent, not an error)
	ActionCancel = "cancel" // cancelled for Decision.Reason (consent revoked)
	ActionFail   = "fail"   // failed for good for Decision.Reason
)

// Reasons a message is not sent (messages.status_reason, MessageFailed.reason).
const (
	ReasonExpired        = "expired"          // due after its expiry (a reminder past the appointment)
	ReasonQuietHours     = "quiet_hours"      // quiet hours end after its expiry
	ReasonConsentRevoked = "consent_revoked"  // the patient revoked consent
	ReasonNoChannel      = "no_channel"       // the patient agreed to no channel
	ReasonTextLimit      = "text_limit"       // texting caps reached and no other channel
	ReasonSMSOptedOut    = "sms_opted_out"    // the number texted STOP and no other channel
	ReasonSMSDisabled    = "sms_disabled"     // no SMS provider configured and no other channel
	ReasonNoAddress      = "invalid_address"  // no usable address on any channel agreed to
	ReasonNoRecipient    = "no_recipient"     // no complete recipient copy
	ReasonNoStaffAddress = "no_staff_address" // no team address for a staff alert
	ReasonSMSTooLong     = "sms_too_long"     // the rendered text exceeds MaxSMSLength
	ReasonNoClinicPhone  = "no_clinic_phone"  // texts must name a contact number; the clinic has none
	ReasonUndelivered    = "undelivered"      // the provider could not deliver it
)

// DeliveryInput is everything a delivery decision depends on.
type DeliveryInput struct {
	Audience  string
	Team      string
	Hint      string // the channel to try first
	ExpiresAt *time.Time
	// Patient messages.
	Recipient   *Recipient   // nil: no complete recipient copy
	Preferences *Preferences // nil: no consent seen yet (email to the address given at admission)
	SMSEnabled  bool         // an SMS provider is configured
	ClinicPhone string       // the clinic's contact number, in every text ("" none: no texts)
	OptedOut    func(phone string) bool
	TextsSent   []time.Time // when the patient's recent texts went (see TextWindow)
	Limits      TextLimits
	// Staff messages.
	CareTeamEmail, BillingEmail string // the clinic's team addresses ("" none)
	DefaultStaffEmail           string // the network's address
}

// Decision is what to do with a due message.
type Decision struct {
	Action  string
	Channel string
	To      string // address: email or E.164
	Reason  string
	Until   time.Time // ActionDefer
}

// Zone is the patient's time zone for quiet hours and texting days: the recipient copy's
// (the clinic's zone, from intake), UTC when unknown.
func (in DeliveryInput) Zone() *time.Location {
	if in.Recipient != nil && in.Recipient.TimeZone != "" {
		if loc, err := time.LoadLocation(in.Recipient.TimeZone); err == nil {
			return loc
		}
	}
	return time.UTC
}

// Decide decides what happens to a message due at now. Rules, in order: an expired message is
// skipped; a staff alert goes by email to its team's address (the clinic's, else the
// network's); a patient message needs a recipient copy, is cancelled when consent is revoked,
// deferred to the end of quiet hours (skipped when they end after its expiry), and goes on
// the first possible channel the patient agreed to (the hint first): email to the
// confidential address or else the usual one; SMS to the confidential number or else the
// usual one, when a provider is configured, the number has not opted out and the texting
// caps allow. With no possible channel it fails when no channel had an address (the patient
// cannot be reached), and is skipped otherwise.
func Decide(in DeliveryInput, now time.Time) Decision {
	if in.ExpiresAt != nil && now.After(*in.ExpiresAt) {
		return Decision{Action: ActionSkip, Reason: ReasonExpired}
	}
	if in.Audience == AudienceStaff {
		to := in.DefaultStaffEmail
		switch {
		case in.Team == TeamCareTeam && in.CareTeamEmail != "":
			to = in.CareTeamEmail
		case in.Team == TeamBilling && in.BillingEmail != "":
			to = in.BillingEmail
		}
		if to == "" {
			return Decision{Action: ActionFail, Reason: ReasonNoStaffAddress}
		}
		return Decision{Action: ActionSend, Channel: ChannelEmail, To: to}
	}
	if in.Recipient == nil {
		return Decision{Action: ActionFail, Reason: ReasonNoRecipient}
	}
	p := in.Preferences
	if p != nil && p.Revoked {
		return Decision{Action: ActionCancel, Reason: ReasonConsentRevoked}
	}
	loc := in.Zone()
	if p != nil {
		if until, inside := p.Quiet.Until(now, loc); inside {
			if in.ExpiresAt != nil && until.After(*in.ExpiresAt) {
				return Decision{Action: ActionSkip, Reason: ReasonQuietHours}
			}
			return Decision{Action: ActionDefer, Until: until}
		}
	}
	allowed := []string{ChannelEmail}
	if p != nil {
		allowed = p.Channels
	}
	if len(allowed) == 0 {
		return Decision{Action: ActionSkip, Reason: ReasonNoChannel}
	}
	order := make([]string, 0, len(allowed))
	if slices.Contains(allowed, in.Hint) {
		order = append(order, in.Hint)
	}
	for _, c := range []string{ChannelEmail, ChannelSMS} {
		if c != in.Hint && slices.Contains(allowed, c) {
			order = append(order, c)
		}
	}
	reason := ""
	for _, c := range order {
		to, why := in.address(c)
		if why == "" && c == ChannelSMS {
			why = in.textBlocked(to, now, loc)
		}
		if why == "" {
			return Decision{Action: ActionSend, Channel: c, To: to}
		}
		if reason == "" || reason == ReasonNoAddress {
			reason = why // the first reason other than a missing address
		}
	}
	if reason == ReasonNoAddress {
		return Decision{Action: ActionFail, Reason: ReasonNoAddress}
	}
	return Decision{Action: ActionSkip, Reason: reason}
}

// address is the patient's address on channel: the confidential one when given.
func (in DeliveryInput) address(channel string) (to, reason string) {
	r, p := in.Recipient, in.Preferences
	switch channel {
	case ChannelEmail:
		to = r.Email
		if p != nil && p.ConfidentialEmail != "" {
			to = p.ConfidentialEmail
		}
	case ChannelSMS:
		if !in.SMSEnabled {
			return "", ReasonSMSDisabled
		}
		to = r.Phone
		if p != nil && p.ConfidentialPhone != "" {
			to = p.ConfidentialPhone
		}
	}
	if to == "" {
		return "", ReasonNoAddress
	}
	return to, ""
}

// textBlocked says why no text may go to phone now ("" when one may).
func (in DeliveryInput) textBlocked(phone string, now time.Time, loc *time.Location) string {
	if in.ClinicPhone == "" {
		return ReasonNoClinicPhone
	}
	if in.OptedOut != nil && in.OptedOut(phone) {
		return ReasonSMSOptedOut
	}
	if !in.Limits.Allow(now, loc, in.TextsSent) {
		return ReasonTextLimit
	}
	return ""
}

// MaxSMSLength is the longest text, in characters (one SMS segment).
const MaxSMSLength = 160

// FinishSMS makes a rendered text ready to send: it must name the clinic's contact number
// ("Questions? <phone>" is appended when the template did not print it, in any format) and fit
// in MaxSMSLength characters; ok is false when it does not.
func FinishSMS(body, clinicPhone string) (text string, ok bool) {
	text = strings.TrimSpace(body)
	if !containsNumber(text, clinicPhone) {
		text += "\nQuestions? " + clinicPhone
	}
	return text, utf8.RuneCountInString(text) <= MaxSMSLength
}

// containsNumber reports whether text shows phone, compared by digits so that "+1 (312)
// 555-0100" and "312-555-0100" both show "+13125550100" (the national number is enough).
func containsNumber(text, phone string) bool {
	want := digits(phone)
	if len(want) > 10 {
		want = want[len(want)-10:]
	}
	return want != "" && strings.Contains(digits(text), want)
}

func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}
