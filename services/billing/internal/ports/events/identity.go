package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/trellis-health/trellis/pkg/bus"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"

	"github.com/trellis-health/trellis/services/billing/internal/app"
	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// Identity consumer: intake's PatientBillingIdentityRecorded, the name and date of birth a
// claim carries. The payload is PHI: nothing of it but ids is ever logged.
const (
	IdentityConsumer        = "billing--identity"
	SubjectBillingIdentity  = "trellis.intake.patient.billing_identity_recorded.v1"
	identityMaxNameLength   = 60
	identityOldestBirthYear = 1900
)

// IdentityConfig is the durable consumer of billing identities on the INTAKE stream.
func IdentityConfig() bus.ConsumerConfig {
	return bus.ConsumerConfig{Name: IdentityConsumer, Stream: "INTAKE", Subjects: []string{SubjectBillingIdentity}}
}

// Identities handles PatientBillingIdentityRecorded.
type Identities struct {
	claims *app.Claims
	log    *slog.Logger
}

// NewIdentities returns the handler.
func NewIdentities(c *app.Claims, log *slog.Logger) *Identities {
	return &Identities{claims: c, log: log}
}

// Handle stores the identity in the consumer's transaction; a replay or an identity older than
// the stored one changes nothing. Malformed input is dead-lettered (the error names fields only).
func (h *Identities) Handle(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	var m intakev1.PatientBillingIdentityRecorded
	if err := d.Decode(&m); err != nil {
		return err
	}
	if err := d.MatchClinic(m.GetClinicId()); err != nil {
		return err
	}
	id, err := identityFrom(&m, d.Envelope.GetEventId())
	if err != nil {
		return bus.Permanent(fmt.Errorf("PatientBillingIdentityRecorded: %w", err))
	}
	changed, released, err := h.claims.RecordIdentity(ctx, tx, id)
	if err != nil {
		return err
	}
	h.log.InfoContext(ctx, "patient billing identity", "patient_id", id.PatientID, "changed", changed,
		"released_charges", released, "event_id", d.Envelope.GetEventId())
	return nil
}

// identityFrom validates the message; errors name the fields, never their values.
func identityFrom(m *intakev1.PatientBillingIdentityRecorded, eventID string) (domain.PatientIdentity, error) {
	var errs []error
	id := domain.PatientIdentity{
		GivenName:  strings.TrimSpace(m.GetGivenName()),
		FamilyName: strings.TrimSpace(m.GetFamilyName()),
	}
	var err error
	if id.PatientID, err = domain.ParseID(m.GetPatientId()); err != nil {
		errs = append(errs, errors.New("patient_id: must be a UUID"))
	}
	if id.SourceEventID, err = domain.ParseID(eventID); err != nil {
		errs = append(errs, errors.New("event_id: must be a UUID"))
	}
	for _, f := range [][2]string{{"given_name", id.GivenName}, {"family_name", id.FamilyName}} {
		field, v := f[0], f[1]
		if v == "" || len(v) > identityMaxNameLength || strings.ContainsAny(v, "*:^~\r\n") {
			errs = append(errs, fmt.Errorf("%s: 1 to %d characters, no X12 separators", field, identityMaxNameLength))
		}
	}
	dob, err := time.Parse(time.DateOnly, m.GetDateOfBirth())
	if err != nil || dob.Year() < identityOldestBirthYear {
		errs = append(errs, errors.New("date_of_birth: a real date, YYYY-MM-DD"))
	}
	id.DateOfBirth = m.GetDateOfBirth()
	if m.GetRecordedAt() == nil || m.GetRecordedAt().CheckValid() != nil {
		errs = append(errs, errors.New("recorded_at: required"))
	} else {
		id.RecordedAt = m.GetRecordedAt().AsTime()
	}
	if len(errs) > 0 {
		return id, fmt.Errorf("%w: %w", domain.ErrInvalid, errors.Join(errs...))
	}
	return id, nil
}
