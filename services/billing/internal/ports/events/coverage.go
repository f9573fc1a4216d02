package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/trellis-health/trellis/pkg/bus"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"

	"github.com/trellis-health/trellis/services/billing/internal/app"
	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// Coverage consumer: intake's CoverageChanged keeps billing's copy of coverages and
// re-evaluates the patient's charges held for coverage or contract.
const (
	CoverageConsumer       = "billing--coverage"
	SubjectCoverageChanged = "trellis.intake.coverage.changed.v1"
)

// CoverageConfig is the durable consumer of coverage changes on the INTAKE stream. Its handler
// locks the patient's charges (as billing--attendance does), so groups declare that key.
func CoverageConfig() bus.ConsumerConfig {
	return bus.ConsumerConfig{Name: CoverageConsumer, Stream: "INTAKE", Subjects: []string{SubjectCoverageChanged},
		TxBatch: 16, LockKeys: coverageLockKeys}
}

// coverageLockKeys declares the lock RecordCoverage takes.
func coverageLockKeys(d *bus.Delivery) []string {
	var m intakev1.CoverageChanged
	if d.Decode(&m) != nil {
		return nil
	}
	cv := m.GetCoverage()
	return []string{domain.ChargesLockKey(strings.ToLower(cv.GetPatientId()), strings.ToLower(cv.GetClinicId()))}
}

// Coverage handles CoverageChanged.
type Coverage struct {
	charges *app.Charges
	log     *slog.Logger
}

// NewCoverage returns the handler.
func NewCoverage(c *app.Charges, log *slog.Logger) *Coverage { return &Coverage{charges: c, log: log} }

var relationships = map[intakev1.SubscriberRelationship]string{
	intakev1.SubscriberRelationship_SUBSCRIBER_RELATIONSHIP_SELF:   "self",
	intakev1.SubscriberRelationship_SUBSCRIBER_RELATIONSHIP_SPOUSE: "spouse",
	intakev1.SubscriberRelationship_SUBSCRIBER_RELATIONSHIP_CHILD:  "child",
	intakev1.SubscriberRelationship_SUBSCRIBER_RELATIONSHIP_OTHER:  "other",
}

var eligibilities = map[intakev1.Eligibility]string{
	intakev1.Eligibility_ELIGIBILITY_UNVERIFIED: "unverified",
	intakev1.Eligibility_ELIGIBILITY_ELIGIBLE:   "eligible",
	intakev1.Eligibility_ELIGIBILITY_INELIGIBLE: "ineligible",
}

// Handle is a bus.Handler.
func (h *Coverage) Handle(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	var m intakev1.CoverageChanged
	if err := d.Decode(&m); err != nil {
		return err
	}
	cv := m.GetCoverage()
	if err := d.MatchClinic(cv.GetClinicId()); err != nil {
		return err
	}
	c := domain.Coverage{
		ID: cv.GetCoverageId(), PatientID: cv.GetPatientId(), ClinicID: cv.GetClinicId(), PayerID: cv.GetPayerId(),
		Plan: cv.GetPlan(), MemberID: cv.GetMemberId(), GroupNumber: cv.GetGroupNumber(),
		SubscriberRelationship: relationships[cv.GetSubscriberRelationship()],
		EffectiveFrom:          cv.GetEffectiveFrom(), EffectiveTo: cv.GetEffectiveTo(),
		Eligibility: eligibilities[cv.GetEligibility()], Priority: int32(cv.GetPriority()),
		SourceEventID: d.Envelope.GetEventId(),
	}
	if c.SubscriberRelationship == "" {
		c.SubscriberRelationship = "self"
	}
	if c.Eligibility == "" {
		c.Eligibility = "unknown"
	}
	if c.Priority == 0 {
		c.Priority = 1 // unspecified: primary
	}
	if cv.GetUpdatedAt() != nil {
		c.UpdatedAt = cv.GetUpdatedAt().AsTime()
	}
	changed, err := h.charges.RecordCoverage(ctx, tx, c)
	switch {
	case errors.Is(err, domain.ErrInvalid):
		return bus.Permanent(fmt.Errorf("CoverageChanged: %w", err))
	case err != nil:
		return err
	}
	h.log.InfoContext(ctx, "coverage event handled", "coverage_id", c.ID, "clinic_id", c.ClinicID, "changed", changed,
		"event_id", d.Envelope.GetEventId())
	return nil
}
