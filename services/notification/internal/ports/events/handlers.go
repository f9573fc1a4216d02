// Package events applies the events notification consumes: PatientAdmitted and
// PatientContactRecorded keep the recipient copy, AccountOpened queues the welcome.
package events

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/trellis-health/trellis/pkg/bus"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/services/notification/internal/app"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
)

// Subjects consumed.
const (
	SubjectPatientAdmitted        = "trellis.intake.patient.admitted.v1"
	SubjectPatientContactRecorded = "trellis.intake.patient.contact_recorded.v1"
	SubjectAccountOpened          = "trellis.billing.account.opened.v1"
)

// Consumers are the durable consumers notification runs: one per subject, so each handler
// decodes a single message type, and the metrics and dead letters (trellis.deadletter.<name>)
// tell which kind of event failed.
func Consumers() (admissions, contacts, accounts bus.ConsumerConfig) {
	admissions = bus.ConsumerConfig{Name: "notification--admissions", Stream: "INTAKE",
		Subjects: []string{SubjectPatientAdmitted}}
	contacts = bus.ConsumerConfig{Name: "notification--contacts", Stream: "INTAKE",
		Subjects: []string{SubjectPatientContactRecorded}}
	// AccountOpened may overtake PatientAdmitted or PatientContactRecorded (other consumers,
	// another stream): it is retried until the recipient copy has both, for long enough (about
	// 30 minutes) to ride out a stalled intake consumer before it is dead-lettered.
	accounts = bus.ConsumerConfig{Name: "notification--accounts", Stream: "BILLING",
		Subjects: []string{SubjectAccountOpened}, MaxDeliver: 25,
		Backoff: bus.ExpBackoff(250*time.Millisecond, 2*time.Minute)}
	return admissions, contacts, accounts
}

// Handlers adapts bus deliveries to the application.
type Handlers struct {
	App *app.App
	// Queued, when set, runs after a transaction that queued a message has committed (it
	// wakes the dispatcher, so the welcome goes out without waiting for its next poll).
	Queued func()
}

// occurredAt is when the event's fact happened (the envelope's occurred_at): a recipient copy
// is only replaced by a newer event of the same kind. A missing time counts as now.
func occurredAt(d *bus.Delivery) time.Time {
	ts := d.Envelope.GetOccurredAt()
	if !ts.IsValid() || ts.AsTime().Unix() <= 0 {
		return time.Now()
	}
	return ts.AsTime()
}

// PatientAdmitted stores the admission's part of the recipient copy (start date, clinic and
// zone). Malformed ids, dates or zones never become valid, so they are dead-lettered.
func (h Handlers) PatientAdmitted(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	var ev intakev1.PatientAdmitted
	if err := d.Decode(&ev); err != nil {
		return err
	}
	at := occurredAt(d)
	adm, err := domain.NewAdmission(ev.GetPatientId(), ev.GetClinicId(), ev.GetClinicTimeZone(), ev.GetStartDate(), at)
	if err != nil {
		return bus.Permanent(err)
	}
	return h.App.RecordAdmission(ctx, tx, adm)
}

// PatientContactRecorded stores the contact details of the recipient copy (name, email,
// phone). Malformed ids or zones, an email that is not one address or a phone that is not
// E.164 never become valid, so they are dead-lettered; the reason never quotes the values.
func (h Handlers) PatientContactRecorded(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	var ev intakev1.PatientContactRecorded
	if err := d.Decode(&ev); err != nil {
		return err
	}
	c, err := domain.NewContact(ev.GetPatientId(), ev.GetClinicId(), ev.GetPreferredName(), ev.GetEmail(),
		ev.GetPhone(), ev.GetClinicTimeZone(), occurredAt(d))
	if err != nil {
		return bus.Permanent(err)
	}
	return h.App.RecordContact(ctx, tx, c)
}

// AccountOpened queues the welcome email. Until the patient's admission and contact details
// have both been seen it fails with a plain (transient) error so that the consumer retries
// with backoff.
func (h Handlers) AccountOpened(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	var ev billingv1.AccountOpened
	if err := d.Decode(&ev); err != nil {
		return err
	}
	if _, err := uuid.Parse(ev.GetPatientId()); err != nil {
		return bus.Permanent(errors.New("account opened: patient_id is not a uuid"))
	}
	if _, err := uuid.Parse(ev.GetClinicId()); err != nil {
		return bus.Permanent(errors.New("account opened: clinic_id is not a uuid"))
	}
	if err := h.App.QueueWelcome(ctx, tx, ev.GetPatientId(), ev.GetClinicId()); err != nil {
		return err
	}
	if h.Queued != nil {
		tx.AfterCommit(h.Queued)
	}
	return nil
}
