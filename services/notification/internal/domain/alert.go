package domain

import (
	"strconv"
	"strings"
	"time"
)

// NetworkClinicID stands for "no one clinic" on a staff alert about the platform (a dead
// letter without a clinic): its team address is the network's.
const NetworkClinicID = "00000000-0000-0000-0000-000000000000"

// PatientRef is how a staff alert names a patient: the first 8 characters of the patient id,
// enough to find the chart, never a name.
func PatientRef(patientID string) string {
	if len(patientID) > 8 {
		return patientID[:8]
	}
	return patientID
}

// AtRiskKey is the dedupe key of the care team's alert that a patient is at risk: one per
// episode of risk (the enrollment and when the risk began).
func AtRiskKey(enrollmentID string, since time.Time) string {
	return "at_risk:" + enrollmentID + ":" + strconv.FormatInt(since.Unix(), 10)
}

// AuthorizationKey is the dedupe key of billing's alert about an authorization's usage: one per
// authorization, level (nearly_used or exhausted) and used units.
func AuthorizationKey(authorizationID, level string, usedUnits int32) string {
	return "authorization:" + authorizationID + ":" + level + ":" + strconv.Itoa(int(usedUnits))
}

// ConsentHoldKey is the dedupe key of billing's alert that a patient's charges are held for
// consent: at most one per patient per UTC day.
func ConsentHoldKey(patientID string, at time.Time) string {
	return "consent_hold:" + patientID + ":" + at.UTC().Format(time.DateOnly)
}

// UndeliverableKey is the dedupe key of the care team's alert that a patient message failed.
func UndeliverableKey(messageID string) string { return "undeliverable:" + messageID }

// DeadLetterKey is the dedupe key of the operations alert about a dead letter, from its
// Nats-Msg-Id ("dl:<consumer>:<stream>:<seq>", one per original message) or, without one, its
// sequence in the dead-letter stream.
func DeadLetterKey(msgID string, deadLetterSeq uint64) string {
	if msgID != "" {
		return "dead_letter:" + msgID
	}
	return "dead_letter:seq:" + strconv.FormatUint(deadLetterSeq, 10)
}

// IsStaffKind reports whether kind is a staff alert.
func IsStaffKind(kind string) bool { return strings.HasPrefix(kind, "staff_") }

// Clip shortens s to at most n bytes (on a rune boundary).
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
