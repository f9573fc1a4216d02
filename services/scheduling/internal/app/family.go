package app

import (
	"context"
	"fmt"
	"time"

	"github.com/trellis-health/trellis/pkg/bus"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"

	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
)

// ReasonConsentRevoked is the reason code of AppointmentCancelled for family appointments
// cancelled because the patient's consent no longer names recipients (revoked, expired, or
// replaced by a version without that scope).
const ReasonConsentRevoked = "consent_revoked"

// FamilyConsents stores scheduling's copy of each patient's latest consent at a clinic and
// the family appointments it allows (implemented by adapters/postgres).
type FamilyConsents interface {
	// SaveFamilyConsent writes c unless a version as new or newer is stored; it reports whether it wrote.
	SaveFamilyConsent(ctx context.Context, tx *bus.Tx, c domain.FamilyConsent, now time.Time) (bool, error)
	// RevokeFamilyConsent marks the stored consent consentID revoked from at; it reports whether it did.
	RevokeFamilyConsent(ctx context.Context, tx *bus.Tx, patientID, clinicID, consentID string, at, now time.Time) (bool, error)
	FamilyConsent(ctx context.Context, tx *bus.Tx, patientID, clinicID string) (domain.FamilyConsent, bool, error)
	// FamilyBooked counts an enrollment's scheduled family appointments starting after now.
	FamilyBooked(ctx context.Context, tx *bus.Tx, enrollmentID string, now time.Time) (int, error)
	// CancelFamily cancels the patient's scheduled family appointments at the clinic starting
	// after now and not before from, with history; it returns them cancelled.
	CancelFamily(ctx context.Context, tx *bus.Tx, patientID, clinicID string, from, now time.Time, by, reason, actor string) ([]domain.Appointment, error)
}

// WithFamilyConsents gives a the family-consent copy: enrollments then get family sessions
// where consented. It returns a.
func (a *App) WithFamilyConsents(repo FamilyConsents) *App {
	a.family = repo
	return a
}

// FamilyChange is what a consent event changed in the family schedule.
type FamilyChange struct {
	Applied   bool // the copy changed (false: an older version, a replay, or a revocation of a superseded consent)
	Scheduled int
	Cancelled int
}

// ConsentGranted records a patient's new consent version (ignored when an equal or newer
// version is stored) and brings the family schedule in line with the latest one, in tx: a
// consent naming recipients books family sessions for the patient's active enrollment at the
// clinic, from today to the end of its program, unless some are already booked; one without
// that scope cancels the future family appointments.
func (a *App) ConsentGranted(ctx context.Context, tx *bus.Tx, sourceEventID string, c domain.FamilyConsent) (FamilyChange, error) {
	if err := validConsent(c.PatientID, c.ClinicID, c.ConsentID); err != nil {
		return FamilyChange{}, err
	}
	if c.Version < 1 {
		return FamilyChange{}, domain.Invalid("version", "version.positive", "must be 1 or more")
	}
	if c.EffectiveFrom.IsZero() {
		return FamilyChange{}, domain.Invalid("effective_from", "required", "is required")
	}
	if a.family == nil {
		return FamilyChange{}, errNoFamily
	}
	u, err := a.lockClinic(ctx, tx, c.ClinicID, EventActor(sourceEventID))
	if err != nil {
		return FamilyChange{}, err
	}
	applied, err := a.family.SaveFamilyConsent(ctx, tx, c, u.now)
	if err != nil {
		return FamilyChange{}, err
	}
	ch, err := u.reconcileFamily(ctx, c.PatientID, c.ClinicID, "consent no longer names recipients")
	ch.Applied = applied
	return ch, err
}

// ConsentRevoked records the revocation of consent consentID from at (when it is the
// patient's latest at the clinic) and cancels the family appointments starting from then on,
// in tx.
func (a *App) ConsentRevoked(ctx context.Context, tx *bus.Tx, sourceEventID, patientID, clinicID, consentID string, at time.Time) (FamilyChange, error) {
	if err := validConsent(patientID, clinicID, consentID); err != nil {
		return FamilyChange{}, err
	}
	if a.family == nil {
		return FamilyChange{}, errNoFamily
	}
	u, err := a.lockClinic(ctx, tx, clinicID, EventActor(sourceEventID))
	if err != nil {
		return FamilyChange{}, err
	}
	if at.IsZero() {
		at = u.now
	}
	applied, err := a.family.RevokeFamilyConsent(ctx, tx, patientID, clinicID, consentID, at, u.now)
	if err != nil {
		return FamilyChange{}, err
	}
	ch, err := u.reconcileFamily(ctx, patientID, clinicID, "consent revoked")
	ch.Applied = applied
	return ch, err
}

var errNoFamily = fmt.Errorf("app: family consents not wired (WithFamilyConsents)")

func validConsent(patientID, clinicID, consentID string) error {
	for _, f := range []struct{ name, v string }{{"patient_id", patientID}, {"clinic_id", clinicID}, {"consent_id", consentID}} {
		if _, err := domain.ParseID(f.v); err != nil {
			return fmt.Errorf("%w: %s: %w", domain.ErrInvalid, f.name, err)
		}
	}
	return nil
}

// reconcileFamily brings the patient's family appointments at the clinic in line with the
// stored consent (the clinic's tracks are locked by u): the ones starting once it no longer
// allows them are cancelled (AppointmentCancelled, consent_revoked); while it allows them, an
// active enrollment with no future family appointment gets them booked.
func (u *unit) reconcileFamily(ctx context.Context, patientID, clinicID, reason string) (FamilyChange, error) {
	var ch FamilyChange
	f, r := u.a.family, u.a.appts.repo
	c, found, err := f.FamilyConsent(ctx, u.tx, patientID, clinicID)
	if err != nil || !found || r == nil {
		return ch, err
	}
	if err := r.LockBookings(ctx, u.tx, clinicID); err != nil {
		return ch, err
	}
	if until := c.FamilyUntil(); !until.IsZero() {
		cancelled, err := f.CancelFamily(ctx, u.tx, patientID, clinicID, until, u.now, domain.CancelledByClinic, reason, u.actor)
		if err != nil {
			return ch, err
		}
		for _, ap := range cancelled {
			u.tx.Emit(bus.Event{Subject: SubjectAppointmentCancelled, ClinicID: clinicID, Payload: &schedulingv1.AppointmentCancelled{
				Appointment: AppointmentProto(ap), ReasonCode: ReasonConsentRevoked,
			}})
		}
		ch.Cancelled = len(cancelled)
	}
	if !c.Consented(u.now) {
		return ch, nil
	}
	cur, err := u.a.enrollments.CurrentAt(ctx, u.tx, patientID, clinicID)
	if err != nil {
		return ch, err
	}
	for _, e := range cur {
		if e.Status != domain.StatusActive || e.TrackID == "" {
			continue
		}
		n, err := f.FamilyBooked(ctx, u.tx, e.ID, u.now)
		if err != nil {
			return ch, err
		}
		if n > 0 { // already booked (an earlier version, or a replay)
			continue
		}
		booked, err := u.scheduleWith(ctx, e, true, false)
		if err != nil {
			return ch, err
		}
		ch.Scheduled += booked
	}
	return ch, nil
}
