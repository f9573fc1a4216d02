package app

import (
	"context"
	"errors"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/idempotency"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"

	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
)

// SwitchTrack is the command to move an enrollment to another track of its clinic and program.
type SwitchTrack struct {
	Caller         string // token subject: the history's actor, and the idempotency scope
	Viewer         domain.Viewer
	IdempotencyKey string
	RequestHash    []byte // RequestHash of the procedure and the request without its key
	EnrollmentID   string
	TrackCode      string
	Reason         string // the caller's words, kept in the history only
}

// SwitchTrack moves an active or waitlisted enrollment to another track of the same clinic
// and program, in one transaction holding the clinic's track locks, at most once per
// idempotency key (a repeat returns the first response with Replayed set). See
// domain.PlanSwitch for the rules and docs/scheduling.md for the outcomes:
//   - a free seat in the target: a new active enrollment (EnrollmentCreated with
//     replaces_enrollment_id); the old one is switched (EnrollmentEnded "switched") and the
//     seat it held goes to the head of its track's waitlist;
//   - no free seat: a new waitlisted enrollment (PatientWaitlisted). An active enrollment
//     keeps its seat, with replaced_by naming the new one, until that one is promoted: the
//     promotion ends it (switched) and frees its seat. A waitlisted one is switched at once;
//   - the target is the track whose seat a pending switch would give up: the pending switch
//     is withdrawn (its replacement switched, the seat kept) and the response is the seat.
//
// An enrollment that does not exist or is in a clinic the caller cannot see is
// domain.ErrNotFound.
func (a *App) SwitchTrack(ctx context.Context, cmd SwitchTrack) (*schedulingv1.SwitchTrackResponse, error) {
	var out *schedulingv1.SwitchTrackResponse
	var replayed bool
	err := a.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		// Visibility first, so a replay never hands the stored response to a caller who lost
		// access to the clinic.
		e, found, err := a.enrollments.Enrollment(ctx, tx, cmd.EnrollmentID)
		if err != nil {
			return err
		}
		if !found || cmd.Viewer == nil || !cmd.Viewer.CanSeeClinic(e.ClinicID) {
			return domain.ErrNotFound
		}
		call := idempotency.Call{Caller: cmd.Caller, Key: cmd.IdempotencyKey, Hash: cmd.RequestHash}
		out, replayed, err = idempotency.Once(ctx, tx, a.enrollments, call, &schedulingv1.SwitchTrackResponse{}, func() (*schedulingv1.SwitchTrackResponse, error) {
			e, err := a.switchTrack(ctx, tx, cmd, e)
			if err != nil {
				return nil, err
			}
			return &schedulingv1.SwitchTrackResponse{Enrollment: EnrollmentProto(e)}, nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	out.Replayed = replayed
	return out, nil
}

// switchTrack switches e, an enrollment the caller may see (read without locks).
func (a *App) switchTrack(ctx context.Context, tx *bus.Tx, cmd SwitchTrack, e domain.Enrollment) (domain.Enrollment, error) {
	u, err := a.lockClinic(ctx, tx, e.ClinicID, cmd.Caller)
	if err != nil {
		return e, err
	}
	if e, _, err = a.enrollments.Enrollment(ctx, tx, e.ID); err != nil { // as of the locks
		return e, err
	}
	in := domain.SwitchInput{Enrollment: e}
	switch e.Status {
	case domain.StatusActive:
		in.Holder = &e
	case domain.StatusWaitlisted:
		h, found, err := a.enrollments.SeatHolder(ctx, tx, e.ID)
		if err != nil {
			return e, err
		}
		if found {
			in.Holder = &h
		}
	}
	for _, t := range u.tracks {
		if t.Code == cmd.TrackCode {
			in.Target = &t
			if in.Taken, in.Waiting, err = a.enrollments.Counts(ctx, tx, t.ID); err != nil {
				return e, err
			}
			break
		}
	}
	kind, err := domain.PlanSwitch(in)
	if err != nil {
		return e, err
	}

	// Rows are changed old first: the index allowing one current enrollment per patient and
	// clinic must never see the old and the new one current together.
	if kind == domain.SwitchCancel {
		h := *in.Holder
		e.ReplacedBy = h.ID
		if err := u.end(ctx, e, domain.StatusSwitched, domain.EndSwitched, domain.ReasonSwitchCancelled, cmd.Reason); err != nil {
			return e, err
		}
		h.ReplacedBy = ""
		return h, a.enrollments.Update(ctx, tx, h)
	}

	t := *in.Target
	n := domain.Enrollment{
		ID: a.newID(), PatientID: e.PatientID, ClinicID: e.ClinicID, EpisodeID: e.EpisodeID,
		ProgramTrack: t.Code, StartDate: e.StartDate, TrackID: t.ID, ProgramCode: t.ProgramCode, Replaces: e.ID,
	}
	if kind == domain.SwitchToSeat {
		n.Status, n.EnrolledAt = domain.StatusActive, u.now
	} else {
		n.Status, n.WaitlistedAt = domain.StatusWaitlisted, u.now
	}
	var freed []string
	if kind == domain.SwitchToWaitlist && in.Holder != nil && in.Holder.ID == e.ID {
		// A pending switch: the seat is kept until n is promoted (see fill).
		e.ReplacedBy = n.ID
		if err := a.enrollments.Update(ctx, tx, e); err != nil {
			return e, err
		}
	} else {
		if h := in.Holder; h != nil && h.ID != e.ID {
			// e was itself the replacement of a pending switch: it moves on to n.
			h.ReplacedBy = n.ID
			if kind == domain.SwitchToSeat {
				if err := u.end(ctx, *h, domain.StatusSwitched, domain.EndSwitched, domain.ReasonSwitched, cmd.Reason); err != nil {
					return e, err
				}
				freed = append(freed, h.TrackID)
			} else if err := a.enrollments.Update(ctx, tx, *h); err != nil {
				return e, err
			}
		}
		if e.Status == domain.StatusActive {
			freed = append(freed, e.TrackID)
		}
		e.ReplacedBy = n.ID
		if err := u.end(ctx, e, domain.StatusSwitched, domain.EndSwitched, domain.ReasonSwitched, cmd.Reason); err != nil {
			return e, err
		}
	}
	added, err := a.enrollments.Add(ctx, tx, n)
	if err != nil {
		return n, err
	}
	if !added {
		return n, errors.New("switch: the new enrollment conflicts with another")
	}
	if err := u.history(ctx, n, "", domain.ReasonSwitch, cmd.Reason); err != nil {
		return n, err
	}
	if n.Status == domain.StatusActive {
		if err := u.created(ctx, n, false); err != nil {
			return n, err
		}
	} else if err := u.waitlisted(ctx, n); err != nil {
		return n, err
	}
	return n, u.fill(ctx, freed...)
}
