package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/telemetry"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
)

// TriggerRepository is the storage the triggers need (adapters/postgres): the messages, the
// appointments copy, and what they read of the clinic settings, preferences and recipients.
type TriggerRepository interface {
	QueueMessage(ctx context.Context, tx pgx.Tx, m NewMessage) (bool, error)
	CancelQueued(ctx context.Context, tx pgx.Tx, patientID, subjectRef string, kinds []string, reason string) (int, error)
	// CancelQueuedExcept cancels the queued messages of the given kinds about subjectRef whose
	// dedupe key is not in keep, recording reason; it returns how many it cancelled.
	CancelQueuedExcept(ctx context.Context, tx pgx.Tx, subjectRef string, kinds, keep []string, reason string) (int, error)
	// UpsertAppointment stores a into the appointments copy unless a newer fact (a later At)
	// is stored; it reports whether it stored it. A zero a.TimeZone keeps the stored zone.
	UpsertAppointment(ctx context.Context, tx pgx.Tx, a domain.Appointment) (bool, error)
	// Appointment returns the copy of an appointment (false when unknown).
	Appointment(ctx context.Context, tx pgx.Tx, id string) (domain.Appointment, bool, error)
	// ReminderOffsets returns the clinic's reminder offsets in minutes (the defaults when the
	// clinic has no settings).
	ReminderOffsets(ctx context.Context, tx pgx.Tx, clinicID string) ([]int, error)
	// PatientChannels returns the channels the patient opted into (nil when no preferences
	// are known or consent was revoked).
	PatientChannels(ctx context.Context, tx pgx.Tx, patientID string) ([]string, error)
	// RecipientZone returns the time zone of the patient's recipient copy ("" when unknown).
	RecipientZone(ctx context.Context, tx pgx.Tx, patientID string) (string, error)
}

// FirstWeekReader reads the welcome's first week from the appointments copy.
type FirstWeekReader interface {
	// FirstWeek returns the patient's scheduled appointments in the 7 clinic-local days from
	// the admission's start date, earliest first.
	FirstWeek(ctx context.Context, tx pgx.Tx, patientID string) ([]domain.Appointment, error)
}

// Triggers turns other services' events into queued (or cancelled) messages.
type Triggers struct {
	repo TriggerRepository
	log  *slog.Logger
	now  func() time.Time
}

// NewTriggers returns the triggers over repo; now is the clock (time.Now when nil).
func NewTriggers(repo TriggerRepository, log *slog.Logger, now func() time.Time) *Triggers {
	if now == nil {
		now = time.Now
	}
	return &Triggers{repo: repo, log: log, now: now}
}

// base is a message with the trace context and the cause of the event being handled.
func base(ctx context.Context) NewMessage {
	carrier := telemetry.HeaderCarrier{}
	telemetry.Propagator.Inject(ctx, carrier)
	correlationID, causationID := bus.CauseFrom(ctx)
	return NewMessage{ID: bus.NewID(), Traceparent: carrier.Get("traceparent"),
		CorrelationID: correlationID, CauseEventID: causationID}
}

// queue queues m and logs the outcome (ids and kinds only); it reports whether m was new.
func (t *Triggers) queue(ctx context.Context, tx pgx.Tx, m NewMessage) (bool, error) {
	created, err := t.repo.QueueMessage(ctx, tx, m)
	if err != nil {
		return false, fmt.Errorf("queue %s: %w", m.Kind, err)
	}
	if created {
		t.log.InfoContext(ctx, "message queued", "message_id", m.ID, "kind", m.Kind,
			"audience", m.Audience, "subject_ref", m.SubjectRef, "due_at", m.DueAt)
	} else {
		t.log.DebugContext(ctx, "message already queued; skipped", "kind", m.Kind, "subject_ref", m.SubjectRef)
	}
	return created, nil
}

// patientChannel is the channel a patient message tries first: SMS when the patient opted
// into texts, else email. The dispatcher checks consent again when the message is due.
func (t *Triggers) patientChannel(ctx context.Context, tx pgx.Tx, patientID string) (string, error) {
	chs, err := t.repo.PatientChannels(ctx, tx, patientID)
	if err != nil {
		return "", fmt.Errorf("read preferences: %w", err)
	}
	for _, c := range chs {
		if c == domain.ChannelSMS {
			return domain.ChannelSMS, nil
		}
	}
	return domain.ChannelEmail, nil
}

// patientMessage is a patient message of kind about subjectRef.
func (t *Triggers) patientMessage(ctx context.Context, tx pgx.Tx, patientID, clinicID, kind, subjectRef, key string,
	payload map[string]string, due time.Time, expires *time.Time, channel string) (NewMessage, error) {
	if channel == "" {
		var err error
		if channel, err = t.patientChannel(ctx, tx, patientID); err != nil {
			return NewMessage{}, err
		}
	}
	m := base(ctx)
	m.PatientID, m.ClinicID, m.Kind, m.Channel = patientID, clinicID, kind, channel
	m.Audience, m.SubjectRef, m.DedupeKey, m.Payload = domain.AudiencePatient, subjectRef, key, payload
	m.DueAt, m.ExpiresAt = due, expires
	return m, nil
}

// staffMessage is an email alert to team about subjectRef, due now. It names no patient
// (PatientID is empty: it is not part of the patient's history and a discharge does not
// cancel it); the payload carries ids and counts only.
func staffMessage(ctx context.Context, clinicID, team, kind, subjectRef, key string, payload map[string]string) NewMessage {
	m := base(ctx)
	m.ClinicID, m.Kind, m.Channel, m.Audience, m.Team = clinicID, kind, domain.ChannelEmail, domain.AudienceStaff, team
	m.SubjectRef, m.DedupeKey, m.Payload = subjectRef, key, payload
	return m
}

// welcomePayload is the welcome's payload: "first_week", the patient's appointments in the
// first week, one "Monday, March 2 at 6:00 PM" per line, when the appointments copy has any
// (left out otherwise: the welcome goes without it).
func (a *App) welcomePayload(ctx context.Context, tx pgx.Tx, patientID string) (map[string]string, error) {
	r, ok := a.repo.(FirstWeekReader)
	if !ok {
		return nil, nil
	}
	appts, err := r.FirstWeek(ctx, tx, patientID)
	if err != nil {
		return nil, fmt.Errorf("read first week: %w", err)
	}
	if len(appts) == 0 {
		return nil, nil
	}
	lines := make([]string, len(appts))
	for i, ap := range appts {
		lines[i] = ap.FirstWeekLine()
	}
	return map[string]string{"first_week": strings.Join(lines, "\n")}, nil
}
