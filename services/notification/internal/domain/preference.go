package domain

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Preferences is notification's copy of a patient's communication preferences, taken from
// intake's latest consent version: the channels the patient agreed to, the
// confidential-communication address and number (used instead of the usual ones), quiet hours
// and language. A revoked consent stops every patient message.
type Preferences struct {
	PatientID         string
	ClinicID          string
	ConsentID         string
	Version           int
	Channels          []string // ChannelEmail, ChannelSMS
	ConfidentialEmail string
	ConfidentialPhone string
	Quiet             QuietHours
	Language          string // "en", "es", ...
	Revoked           bool
	At                time.Time // when the consent event happened
}

// Allows reports whether the patient agreed to channel.
func (p Preferences) Allows(channel string) bool { return slices.Contains(p.Channels, channel) }

// DefaultLanguage is the locale of a patient without a preference.
const DefaultLanguage = "en"

// ErrInvalidPreferences marks consent data that can never make usable preferences.
var ErrInvalidPreferences = errors.New("invalid preferences")

// NewPreferences validates a consent's preferences. Unknown channels are an error; the
// confidential email must be one address and the phone E.164; quiet hours are both "HH:MM"
// or both empty; an empty language is DefaultLanguage. Errors never quote the values.
func NewPreferences(patientID, clinicID, consentID string, version int, channels []string,
	confidentialEmail, confidentialPhone, quietStart, quietEnd, language string, at time.Time) (Preferences, error) {
	var errs []error
	for _, f := range [][2]string{{"patient_id", patientID}, {"clinic_id", clinicID}, {"consent_id", consentID}} {
		if _, err := uuid.Parse(f[1]); err != nil {
			errs = append(errs, fmt.Errorf("%s is not a uuid", f[0]))
		}
	}
	if version < 1 {
		errs = append(errs, errors.New("version must be at least 1"))
	}
	p := Preferences{PatientID: patientID, ClinicID: clinicID, ConsentID: consentID, Version: version,
		ConfidentialPhone: strings.TrimSpace(confidentialPhone), Language: strings.ToLower(strings.TrimSpace(language)),
		At: at.UTC(), Channels: []string{}}
	for _, c := range channels {
		if c != ChannelEmail && c != ChannelSMS {
			errs = append(errs, errors.New("channels: unknown channel"))
			continue
		}
		if !slices.Contains(p.Channels, c) {
			p.Channels = append(p.Channels, c)
		}
	}
	slices.Sort(p.Channels)
	if strings.TrimSpace(confidentialEmail) != "" {
		if p.ConfidentialEmail = NormalizeEmail(confidentialEmail); p.ConfidentialEmail == "" {
			errs = append(errs, errors.New("confidential_email is not a single address"))
		}
	}
	if p.ConfidentialPhone != "" && !e164.MatchString(p.ConfidentialPhone) {
		errs = append(errs, errors.New("confidential_phone is not E.164"))
	}
	q, err := NewQuietHours(quietStart, quietEnd)
	if err != nil {
		errs = append(errs, err)
	}
	p.Quiet = q
	if p.Language == "" {
		p.Language = DefaultLanguage
	}
	if len(errs) > 0 {
		return Preferences{}, fmt.Errorf("%w: %w", ErrInvalidPreferences, errors.Join(errs...))
	}
	return p, nil
}

// Inbound text commands.
const (
	SMSStop  = "stop"
	SMSStart = "start"
)

var smsCommands = map[string]string{
	"STOP": SMSStop, "STOPALL": SMSStop, "UNSUBSCRIBE": SMSStop, "CANCEL": SMSStop, "END": SMSStop,
	"QUIT": SMSStop, "ALTO": SMSStop, "PARAR": SMSStop, "REVOKE": SMSStop, "OPTOUT": SMSStop,
	"START": SMSStart, "UNSTOP": SMSStart, "YES": SMSStart, "COMENZAR": SMSStart,
}

// ParseSMSCommand reads an inbound text as a command, the way carriers do: the whole message
// is one keyword (case, surrounding spaces and trailing punctuation ignored). It returns
// SMSStop, SMSStart or "" (not a command).
func ParseSMSCommand(body string) string {
	w := strings.ToUpper(strings.TrimRight(strings.TrimSpace(body), ".!¡ "))
	return smsCommands[w]
}
