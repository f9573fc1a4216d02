package app

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/services/notification/internal/domain"
)

// Staff alerts: email to a team, carrying ids, codes and counts only (a patient is named by
// domain.PatientRef, never by name). Each is queued once per dedupe key.

// PatientAtRisk alerts the care team that a patient meets an at-risk rule; reasons are codes
// (e.g. "consecutive_absences").
func (t *Triggers) PatientAtRisk(ctx context.Context, tx pgx.Tx, patientID, enrollmentID, clinicID string, reasons []string, since time.Time) error {
	payload := map[string]string{"patient_ref": domain.PatientRef(patientID), "enrollment_id": enrollmentID,
		"reasons": strings.Join(reasons, ","), "since": since.UTC().Format(time.DateOnly)}
	_, err := t.queue(ctx, tx, staffMessage(ctx, clinicID, domain.TeamCareTeam, domain.KindStaffAtRisk, enrollmentID,
		domain.AtRiskKey(enrollmentID, since), payload))
	return err
}

// AuthorizationUsage is what notification reads of billing's AuthorizationUsage.
type AuthorizationUsage struct {
	AuthorizationID, PatientID, ClinicID string
	Level                                string // "nearly_used" or "exhausted"
	AuthorizedUnits, UsedUnits           int32
	EndsOn                               string
}

// AuthorizationUsed alerts billing that an authorization is nearly used or exhausted.
func (t *Triggers) AuthorizationUsed(ctx context.Context, tx pgx.Tx, u AuthorizationUsage) error {
	payload := map[string]string{"authorization_id": u.AuthorizationID, "patient_ref": domain.PatientRef(u.PatientID),
		"level": u.Level, "authorized_units": strconv.Itoa(int(u.AuthorizedUnits)),
		"used_units": strconv.Itoa(int(u.UsedUnits)), "ends_on": u.EndsOn}
	_, err := t.queue(ctx, tx, staffMessage(ctx, u.ClinicID, domain.TeamBilling, domain.KindStaffAuthorization,
		u.AuthorizationID, domain.AuthorizationKey(u.AuthorizationID, u.Level, u.UsedUnits), payload))
	return err
}

// ConsentHold alerts billing that a patient's charges are held for consent: one alert per
// patient per UTC day however many charges are held.
func (t *Triggers) ConsentHold(ctx context.Context, tx pgx.Tx, patientID, clinicID, chargeID string, at time.Time) error {
	payload := map[string]string{"patient_ref": domain.PatientRef(patientID), "charge_id": chargeID,
		"date": at.UTC().Format(time.DateOnly)}
	_, err := t.queue(ctx, tx, staffMessage(ctx, clinicID, domain.TeamBilling, domain.KindStaffConsentHold, patientID,
		domain.ConsentHoldKey(patientID, at), payload))
	return err
}

// MessageFailed alerts the care team that a patient message could not be delivered. A
// failed staff alert raises nothing (no loop).
func (t *Triggers) MessageFailed(ctx context.Context, tx pgx.Tx, messageID, patientID, clinicID, kind, channel, reason string) error {
	if patientID == "" || domain.IsStaffKind(kind) {
		return nil
	}
	payload := map[string]string{"message_id": messageID, "patient_ref": domain.PatientRef(patientID),
		"kind": kind, "channel": channel, "reason": reason}
	_, err := t.queue(ctx, tx, staffMessage(ctx, clinicID, domain.TeamCareTeam, domain.KindStaffUndeliverable, messageID,
		domain.UndeliverableKey(messageID), payload))
	return err
}

// DeadLetter is what notification reads of a dead letter: its headers, never its payload
// (the event may hold PHI).
type DeadLetter struct {
	MsgID          string // Nats-Msg-Id of the dead letter
	Sequence       uint64 // its sequence in the dead-letter stream
	Consumer       string
	OriginalSubj   string
	OriginalStream string
	OriginalSeq    string
	Deliveries     string
	Reason         string
	ClinicID       string // from the copied event headers; "" when none
}

// DeadLetterAlert alerts operations that an event was dead-lettered.
func (t *Triggers) DeadLetterAlert(ctx context.Context, tx pgx.Tx, dl DeadLetter) error {
	clinic := dl.ClinicID
	if clinic == "" {
		clinic = domain.NetworkClinicID
	}
	payload := map[string]string{"consumer": dl.Consumer, "original_subject": dl.OriginalSubj,
		"original_stream": dl.OriginalStream, "original_sequence": dl.OriginalSeq,
		"deliveries": dl.Deliveries, "reason": domain.Clip(dl.Reason, 300)}
	key := domain.DeadLetterKey(dl.MsgID, dl.Sequence)
	_, err := t.queue(ctx, tx, staffMessage(ctx, clinic, domain.TeamOperations, domain.KindStaffDeadLetter,
		dl.Consumer, key, payload))
	return err
}
