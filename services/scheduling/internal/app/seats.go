package app

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/bus"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"

	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
)

// unit is one transaction's seat changes: it writes their history rows and emits their
// events, at one time and by one actor. tracks are the tracks it has locked.
type unit struct {
	a      *App
	tx     *bus.Tx
	actor  string
	now    time.Time
	tracks map[string]domain.Track
}

// lockClinic locks every track of a clinic (in id order) for changes that may touch several
// of them: a seat freed in one track may promote the pending switch of another.
func (a *App) lockClinic(ctx context.Context, tx *bus.Tx, clinicID, actor string) (*unit, error) {
	ts, err := a.enrollments.LockClinicTracks(ctx, tx, clinicID)
	if err != nil {
		return nil, err
	}
	u := &unit{a: a, tx: tx, actor: actor, now: a.now(), tracks: make(map[string]domain.Track, len(ts))}
	for _, t := range ts {
		u.tracks[t.ID] = t
	}
	return u, nil
}

// FillSeats gives the free seats of a clinic's tracks to their waitlists, in tx (for a use
// case that adds seats, such as raising a track's capacity). It locks the clinic's tracks.
func (a *App) FillSeats(ctx context.Context, tx *bus.Tx, clinicID, actor string) error {
	u, err := a.lockClinic(ctx, tx, clinicID, actor)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(u.tracks))
	for id := range u.tracks {
		ids = append(ids, id)
	}
	return u.fill(ctx, ids...)
}

// fill promotes the head of each track's waitlist while the track has a free seat. Promoting
// the replacement of a pending switch ends the enrollment it replaces (switched), which frees
// a seat in that track in turn.
func (u *unit) fill(ctx context.Context, queue ...string) error {
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		t, ok := u.tracks[id]
		if !ok {
			return fmt.Errorf("fill seats: track %s is not locked", id)
		}
		taken, waiting, err := u.a.enrollments.Counts(ctx, u.tx, id)
		if err != nil {
			return err
		}
		n := domain.Promotions(t.Capacity, taken, waiting)
		if n == 0 {
			continue
		}
		heads, err := u.a.enrollments.WaitlistHead(ctx, u.tx, id, n)
		if err != nil {
			return err
		}
		for _, w := range heads {
			holder, found, err := u.a.enrollments.SeatHolder(ctx, u.tx, w.ID)
			if err != nil {
				return err
			}
			if found {
				if err := u.end(ctx, holder, domain.StatusSwitched, domain.EndSwitched, domain.ReasonSwitched, ""); err != nil {
					return err
				}
				queue = append(queue, holder.TrackID)
			}
			w.Status, w.EnrolledAt = domain.StatusActive, u.now
			if err := u.a.enrollments.Update(ctx, u.tx, w); err != nil {
				return err
			}
			if err := u.history(ctx, w, domain.StatusWaitlisted, domain.ReasonPromoted, ""); err != nil {
				return err
			}
			if err := u.created(ctx, w, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// end stops e (status switched or ended) and emits EnrollmentEnded. An enrollment that held
// a seat has its future appointments cancelled (unschedule).
func (u *unit) end(ctx context.Context, e domain.Enrollment, status, endReason, reason, note string) error {
	from := e.Status
	if from == domain.StatusActive {
		if err := u.unschedule(ctx, e, endReason); err != nil {
			return err
		}
	}
	e.Status, e.EndedAt, e.EndReason = status, u.now, endReason
	if err := u.a.enrollments.Update(ctx, u.tx, e); err != nil {
		return err
	}
	if err := u.history(ctx, e, from, reason, note); err != nil {
		return err
	}
	u.tx.Emit(bus.Event{Subject: SubjectEnrollmentEnded, ClinicID: e.ClinicID, Payload: &schedulingv1.EnrollmentEnded{
		EnrollmentId: e.ID, PatientId: e.PatientID, ClinicId: e.ClinicID, TrackId: e.TrackID,
		Reason: endReason, EndedAt: timestamppb.New(u.now),
	}})
	return nil
}

// history records e's change from status from (empty: created) to its current status.
func (u *unit) history(ctx context.Context, e domain.Enrollment, from, reason, note string) error {
	return u.a.enrollments.AddHistory(ctx, u.tx, domain.HistoryEntry{
		ID: u.a.newID(), EnrollmentID: e.ID, ClinicID: e.ClinicID, From: from, To: e.Status,
		Reason: reason, Note: note, At: u.now, Actor: u.actor,
	})
}

// created emits EnrollmentCreated for e, now holding a seat, and generates its appointments
// (schedule). Every enrollment that becomes active passes here: admitted to a free seat,
// promoted from a waitlist, or switched into a seat. Only an admission straight to a seat
// gets places in the group sessions since a past start date (an admission entered late):
// a promoted or switched patient did not hold this seat before.
func (u *unit) created(ctx context.Context, e domain.Enrollment, fromWaitlist bool) error {
	u.tx.Emit(bus.Event{Subject: SubjectEnrollmentCreated, ClinicID: e.ClinicID, Payload: &schedulingv1.EnrollmentCreated{
		EnrollmentId: e.ID, PatientId: e.PatientID, ClinicId: e.ClinicID, ProgramTrack: e.ProgramTrack,
		StartDate: e.StartDate.Format(domain.DateLayout), TrackId: e.TrackID, ProgramCode: e.ProgramCode,
		FromWaitlist: fromWaitlist, ReplacesEnrollmentId: e.Replaces,
	}})
	return u.schedule(ctx, e, !fromWaitlist && e.Replaces == "")
}

// waitlisted emits PatientWaitlisted for e with its place in the queue.
func (u *unit) waitlisted(ctx context.Context, e domain.Enrollment) error {
	pos, err := u.a.enrollments.WaitlistPosition(ctx, u.tx, e)
	if err != nil {
		return err
	}
	u.tx.Emit(bus.Event{Subject: SubjectPatientWaitlisted, ClinicID: e.ClinicID, Payload: &schedulingv1.PatientWaitlisted{
		EnrollmentId: e.ID, PatientId: e.PatientID, ClinicId: e.ClinicID, ProgramTrack: e.ProgramTrack,
		TrackId: e.TrackID, Position: int32(pos), WaitlistedAt: timestamppb.New(e.WaitlistedAt),
	}})
	return nil
}
