// Package events holds billing's event consumers.
package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/trellis-health/trellis/pkg/bus"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"

	"github.com/trellis-health/trellis/services/billing/internal/app"
	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// Enrollments consumer: scheduling's EnrollmentCreated opens the patient's account.
const (
	EnrollmentsConsumer = "billing--enrollments"
	SubjectEnrolled     = "trellis.scheduling.enrollment.created.v1"
)

// EnrollmentsConfig is the durable consumer of new enrollments on the SCHEDULING stream.
func EnrollmentsConfig() bus.ConsumerConfig {
	return bus.ConsumerConfig{Name: EnrollmentsConsumer, Stream: "SCHEDULING", Subjects: []string{SubjectEnrolled}}
}

// Enrollments handles EnrollmentCreated.
type Enrollments struct {
	app *app.App
	log *slog.Logger
}

// NewEnrollments returns the handler.
func NewEnrollments(a *app.App, log *slog.Logger) *Enrollments { return &Enrollments{app: a, log: log} }

// Handle is a bus.Handler: it runs in the consumer's transaction (the inbox row is already
// written there) and emits through the outbox in that same transaction. Only the ids billing
// uses are validated (tolerant reader).
func (h *Enrollments) Handle(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	var m schedulingv1.EnrollmentCreated
	if err := d.Decode(&m); err != nil {
		return err // already permanent
	}
	if err := d.MatchClinic(m.GetClinicId()); err != nil {
		return err
	}
	acc, opened, err := h.app.OpenAccount(ctx, tx, d.Envelope.GetEventId(), domain.Enrollment{
		EnrollmentID: m.GetEnrollmentId(),
		PatientID:    m.GetPatientId(),
		ClinicID:     m.GetClinicId(),
	})
	switch {
	case errors.Is(err, domain.ErrInvalid):
		// The message names fields and rules, never values.
		return bus.Permanent(fmt.Errorf("EnrollmentCreated: %w", err))
	case err != nil:
		return err
	case opened:
		h.log.InfoContext(ctx, "account opened", "account_id", acc.ID, "clinic_id", acc.ClinicID,
			"event_id", d.Envelope.GetEventId())
	default:
		h.log.InfoContext(ctx, "patient already has an account at the clinic; nothing to do",
			"clinic_id", acc.ClinicID, "event_id", d.Envelope.GetEventId())
	}
	return nil
}
