// Package events applies the events notification consumes: PatientAdmitted keeps the
// recipient copy, AccountOpened queues the welcome.
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
	SubjectPatientAdmitted = "trellis.intake.patient.admitted.v1"
	SubjectAccountOpened   = "trellis.billing.account.opened.v1"
)

// Consumers are the durable consumers notification runs.
func Consumers() (admissions, accounts bus.ConsumerConfig) {
	admissions = bus.ConsumerConfig{Name: "notification--admissions", Stream: "INTAKE",
		Subjects: []string{SubjectPatientAdmitted}}
	// AccountOpened may overtake PatientAdmitted (different streams): it is retried until the
	// recipient copy exists, for long enough (about 30 minutes) to ride out a stalled intake
	// consumer before it is dead-lettered.
	accounts = bus.ConsumerConfig{Name: "notification--accounts", Stream: "BILLING",
		Subjects: []string{SubjectAccountOpened}, MaxDeliver: 25,
		Backoff: bus.ExpBackoff(250*time.Millisecond, 2*time.Minute)}
	return admissions, accounts
}

// Handlers adapts bus deliveries to the application.
type Handlers struct {
	App *app.App
	// Queued, when set, runs after a transaction that queued a message has committed (it
	// wakes the dispatcher, so the welcome goes out without waiting for its next poll).
	Queued func()
}

// PatientAdmitted stores the recipient copy. Malformed ids, dates or zones never become valid,
// so they are dead-lettered.
func (h Handlers) PatientAdmitted(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	var ev intakev1.PatientAdmitted
	if err := d.Decode(&ev); err != nil {
		return err
	}
	occurred := d.Envelope.GetOccurredAt().AsTime()
	if !d.Envelope.GetOccurredAt().IsValid() || occurred.IsZero() || occurred.Unix() <= 0 {
		occurred = time.Now()
	}
	r, err := domain.NewRecipient(ev.GetPatientId(), ev.GetClinicId(), ev.GetPreferredName(),
		ev.GetContactEmail(), ev.GetClinicTimeZone(), ev.GetStartDate(), occurred)
	if err != nil {
		return bus.Permanent(err)
	}
	return h.App.RecordAdmission(ctx, tx, r)
}

// AccountOpened queues the welcome email. Until the patient's admission has been seen it
// fails with a plain (transient) error so that the consumer retries with backoff.
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
