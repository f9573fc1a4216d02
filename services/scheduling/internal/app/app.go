// Package app holds scheduling's use cases: clinic configuration, enrolling admitted patients
// in a track's seats or its waitlist, track switches, discharges, and reading enrollments.
package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/idempotency"

	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
)

// Subjects of enrollment events.
const (
	SubjectEnrollmentCreated = "trellis.scheduling.enrollment.created.v1"
	SubjectPatientWaitlisted = "trellis.scheduling.enrollment.waitlisted.v1"
	SubjectEnrollmentEnded   = "trellis.scheduling.enrollment.ended.v1"
)

// ErrTrackUnavailable: an admission names a track its clinic has not configured, or one that
// takes no new enrollments. It is transient on purpose: the consumer retries (an operator may
// be configuring the track) and dead-letters the admission when the retries run out.
var ErrTrackUnavailable = errors.New("admission's track is not configured or not active")

// ErrPriorEpisodeCurrent: the admitted patient still holds a current enrollment at the clinic
// from an earlier episode of care, whose discharge scheduling has not handled yet (admissions
// and discharges are consumed separately). Transient: the consumer retries until the
// discharge lands, and dead-letters the admission when the retries run out.
var ErrPriorEpisodeCurrent = errors.New("the patient still holds an enrollment of an earlier episode at the clinic")

// Enrollments stores enrollments (implemented by adapters/postgres). Methods taking a tx run
// in it; seat changes hold the row lock of the tracks involved (LockTrackByCode,
// LockClinicTracks) while they read counts and queues.
type Enrollments interface {
	idempotency.Store

	// AdmissionSeen reports whether an enrollment came from this event or episode, or the
	// episode was discharged.
	AdmissionSeen(ctx context.Context, tx *bus.Tx, sourceEventID, episodeID string) (bool, error)
	LockTrackByCode(ctx context.Context, tx *bus.Tx, clinicID, code string) (domain.Track, bool, error)
	// LockClinicTracks locks every track of the clinic in id order.
	LockClinicTracks(ctx context.Context, tx *bus.Tx, clinicID string) ([]domain.Track, error)
	// Counts: active (taken) and waitlisted (waiting) enrollments of a track.
	Counts(ctx context.Context, tx *bus.Tx, trackID string) (taken, waiting int, err error)
	// Add inserts e unless its episode already has an enrollment created from an admission
	// (a replay racing this one); it reports whether it inserted. Any other unique key taken
	// (the patient's one current enrollment at the clinic, the source event) is an error.
	Add(ctx context.Context, tx *bus.Tx, e domain.Enrollment) (bool, error)
	Update(ctx context.Context, tx *bus.Tx, e domain.Enrollment) error
	AddHistory(ctx context.Context, tx *bus.Tx, h domain.HistoryEntry) error
	WaitlistPosition(ctx context.Context, tx *bus.Tx, e domain.Enrollment) (int, error)
	WaitlistHead(ctx context.Context, tx *bus.Tx, trackID string, n int) ([]domain.Enrollment, error)
	Enrollment(ctx context.Context, tx *bus.Tx, id string) (domain.Enrollment, bool, error)
	// SeatHolder: the active enrollment whose pending switch waits on replacementID.
	SeatHolder(ctx context.Context, tx *bus.Tx, replacementID string) (domain.Enrollment, bool, error)
	CurrentAt(ctx context.Context, tx *bus.Tx, patientID, clinicID string) ([]domain.Enrollment, error)
	RecordDischarge(ctx context.Context, tx *bus.Tx, d domain.Discharge, sourceEventID string) error

	// ForPatient returns all of a patient's enrollments, in any clinic.
	ForPatient(ctx context.Context, patientID string) ([]domain.Enrollment, error)
	TrackByID(ctx context.Context, id string) (domain.Track, bool, error)
	// Waitlist returns a track's queue, first come first served.
	Waitlist(ctx context.Context, trackID string) ([]domain.Enrollment, error)
}

// App is scheduling's application layer.
type App struct {
	store       TxRunner // units of work the app starts itself (RPCs); consumers pass their tx
	enrollments Enrollments
	newID       func() string
	now         func() time.Time
	config      configuration     // clinic configuration (config.go, WithConfiguration)
	appts       appointments      // sessions and appointments (appointments.go, WithAppointments)
	family      FamilyConsents    // consent copy for family sessions (family.go, WithFamilyConsents)
	attendance  AttendanceRepo    // attendance versions (attendance.go, WithAttendance)
	compliance  ComplianceRepo    // risk episodes and completions (compliance.go, WithCompliance)
	risk        domain.RiskConfig // the at-risk rules' thresholds
}

// New returns the app over its store and enrollment repository.
func New(store TxRunner, enrollments Enrollments) *App {
	return &App{store: store, enrollments: enrollments, newID: bus.NewID,
		// Postgres keeps microseconds: events carry the times the tables hold.
		now: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }}
}

// EventActor is the history actor of changes an event caused.
func EventActor(eventID string) string { return "event:" + eventID }

// EnrollAdmitted enrolls an admitted patient in the track their admission names, in tx (the
// consumer's), emitting through the outbox there. The track's row is locked while its seats
// are counted, so of two admissions racing for the last seat exactly one gets it: a seat
// when one is free and nobody waits (EnrollmentCreated), else the waitlist
// (PatientWaitlisted, with the position).
//
// An admission seen before (same event, or the same episode under another event id) and one
// whose episode was already discharged change nothing and emit nothing: created is false.
// Invalid input, or a program other than the track's, returns an error wrapping
// domain.ErrInvalid (dead-lettered); an unknown or inactive track ErrTrackUnavailable, and a
// patient still holding a current enrollment of an earlier episode at the clinic
// ErrPriorEpisodeCurrent (both retried).
func (a *App) EnrollAdmitted(ctx context.Context, tx *bus.Tx, sourceEventID string, adm domain.Admission) (e domain.Enrollment, created bool, err error) {
	e, err = domain.NewEnrollment(a.newID(), sourceEventID, adm)
	if err != nil {
		return e, false, err
	}
	seen, err := a.enrollments.AdmissionSeen(ctx, tx, e.SourceEventID, e.EpisodeID)
	if err != nil || seen {
		return e, false, err
	}
	t, found, err := a.enrollments.LockTrackByCode(ctx, tx, e.ClinicID, e.ProgramTrack)
	switch {
	case err != nil:
		return e, false, err
	case !found:
		return e, false, fmt.Errorf("%w: no such track at the clinic", ErrTrackUnavailable)
	case adm.Program != "" && adm.Program != t.ProgramCode:
		// A track's program never changes: retrying cannot help.
		return e, false, domain.Invalid("program", domain.RuleTrackProgram, "the admission's program is not its track's")
	case !t.Active:
		return e, false, fmt.Errorf("%w: the track is inactive", ErrTrackUnavailable)
	}
	// Again under the lock: a discharge of the episode takes the clinic's track locks, so it
	// either committed before this point (and is seen now) or runs after this admission
	// commits (and ends what it created).
	if seen, err = a.enrollments.AdmissionSeen(ctx, tx, e.SourceEventID, e.EpisodeID); err != nil || seen {
		return e, false, err
	}
	// One current enrollment per patient and clinic. One of an earlier episode waits for that
	// episode's discharge (which takes this track's lock too, so it is seen once committed).
	cur, err := a.enrollments.CurrentAt(ctx, tx, e.PatientID, e.ClinicID)
	if err != nil {
		return e, false, err
	}
	for _, c := range cur {
		if c.EpisodeID != e.EpisodeID {
			return e, false, ErrPriorEpisodeCurrent
		}
	}
	if len(cur) > 0 { // this episode is already enrolled
		return e, false, nil
	}
	taken, waiting, err := a.enrollments.Counts(ctx, tx, t.ID)
	if err != nil {
		return e, false, err
	}
	now := a.now()
	e.TrackID, e.ProgramCode, e.Status = t.ID, t.ProgramCode, domain.Seat(t.Capacity, taken, waiting)
	if e.Status == domain.StatusActive {
		e.EnrolledAt = now
	} else {
		e.WaitlistedAt = now
	}
	added, err := a.enrollments.Add(ctx, tx, e)
	if err != nil || !added {
		return e, false, err
	}
	u := unit{a: a, tx: tx, actor: EventActor(sourceEventID), now: now}
	if err := u.history(ctx, e, "", domain.ReasonAdmitted, ""); err != nil {
		return e, false, err
	}
	if e.Status == domain.StatusActive {
		if err := u.created(ctx, e, false); err != nil {
			return e, false, err
		}
	} else if err := u.waitlisted(ctx, e); err != nil {
		return e, false, err
	}
	return e, true, nil
}

// GetEnrollment returns the patient's current enrollment (active or waitlisted; the seat
// holder during a pending switch) as viewer may see it, or domain.ErrNotFound (also when it
// exists only in clinics viewer cannot see).
func (a *App) GetEnrollment(ctx context.Context, viewer domain.Viewer, patientID string) (domain.Enrollment, error) {
	all, err := a.enrollments.ForPatient(ctx, patientID)
	if err != nil {
		return domain.Enrollment{}, err
	}
	e, ok := domain.CurrentFor(viewer, all)
	if !ok {
		return domain.Enrollment{}, domain.ErrNotFound
	}
	return e, nil
}

// ListWaitlist returns a track's queue in order. A track of a clinic viewer cannot see is
// domain.ErrNotFound, like an absent one.
func (a *App) ListWaitlist(ctx context.Context, viewer domain.Viewer, trackID string) ([]domain.Enrollment, error) {
	t, found, err := a.enrollments.TrackByID(ctx, trackID)
	if err != nil {
		return nil, err
	}
	if !found || !viewer.CanSeeClinic(t.ClinicID) {
		return nil, domain.ErrNotFound
	}
	return a.enrollments.Waitlist(ctx, trackID)
}
