package app

import (
	"context"
	"fmt"

	"github.com/trellis-health/trellis/pkg/bus"

	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
)

// Discharge applies intake's PatientDischarged, in tx (the consumer's): the episode's active
// and waitlisted enrollments at the clinic end (EnrollmentEnded, reason "discharged"; a
// pending switch ends with them), and each seat freed goes to the head of its track's
// waitlist (EnrollmentCreated with from_waitlist), under the clinic's track locks. The
// episode is remembered, so an admission of it handled later enrolls nobody. A patient with
// nothing to end is not an error: ended is empty. Invalid input wraps domain.ErrInvalid.
func (a *App) Discharge(ctx context.Context, tx *bus.Tx, sourceEventID string, in domain.Discharge) (ended []domain.Enrollment, err error) {
	d, err := domain.NewDischarge(in)
	if err != nil {
		return nil, err
	}
	if _, err := domain.ParseID(sourceEventID); err != nil {
		return nil, fmt.Errorf("%w: source_event_id: %w", domain.ErrInvalid, err)
	}
	if err := a.enrollments.RecordDischarge(ctx, tx, d, sourceEventID); err != nil {
		return nil, err
	}
	// The clinic's track locks, even when there may be nothing to end: an admission of the
	// episode being enrolled right now holds its track's lock, so this discharge either sees
	// its enrollment or is seen by it (EnrollAdmitted checks discharged episodes under the lock).
	u, err := a.lockClinic(ctx, tx, d.ClinicID, EventActor(sourceEventID))
	if err != nil {
		return nil, err
	}
	cur, err := a.discharged(ctx, tx, d)
	if err != nil {
		return nil, err
	}
	var freed []string
	for _, e := range cur {
		held := e.Status == domain.StatusActive && e.TrackID != ""
		e.ReplacedBy = "" // a pending switch ends with the seat
		if err := u.end(ctx, e, domain.StatusEnded, domain.EndDischarged, domain.ReasonDischarged, ""); err != nil {
			return nil, err
		}
		e.Status, e.EndedAt, e.EndReason = domain.StatusEnded, u.now, domain.EndDischarged
		ended = append(ended, e)
		if held {
			freed = append(freed, e.TrackID)
		}
	}
	return ended, u.fill(ctx, freed...)
}

// discharged returns the enrollments a discharge ends.
func (a *App) discharged(ctx context.Context, tx *bus.Tx, d domain.Discharge) ([]domain.Enrollment, error) {
	cur, err := a.enrollments.CurrentAt(ctx, tx, d.PatientID, d.ClinicID)
	if err != nil {
		return nil, err
	}
	out := cur[:0]
	for _, e := range cur {
		if d.Ends(e) {
			out = append(out, e)
		}
	}
	return out, nil
}
