package app

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/idempotency"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"

	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
)

// Subjects of attendance events: the first record of an appointment, and a correction.
const (
	SubjectAttendanceRecorded  = "trellis.scheduling.attendance.recorded.v1"
	SubjectAttendanceCorrected = "trellis.scheduling.attendance.corrected.v1"
)

// AttendanceTarget is an appointment with what its attendance event needs and its current
// attendance (nil until recorded).
type AttendanceTarget struct {
	domain.Appointment
	ProgramCode       string // the enrollment's program
	EnrollmentTrackID string // the enrollment's track
	EnrollmentStatus  string // the enrollment's status (domain.Status*) when read
	Current           *domain.AttendanceRecord
}

// AttendanceRepo stores attendance versions (implemented by adapters/postgres). Every write
// holds a lock that serialises the writers of an appointment's versions: a group call the
// row lock of its session (LockSession), a call for one appointment the appointment's row and
// its session's in share mode (LockAppointment), so two clinicians correcting one appointment,
// or a session and one of its places, wait for each other, while corrections of different
// places of a session do not.
type AttendanceRepo interface {
	// LockSession locks a session's row and returns its clinic; claim, if not nil, is sent in
	// the same round trip (after the lock).
	LockSession(ctx context.Context, tx *bus.Tx, sessionID string, claim *idempotency.Claim) (clinicID string, found bool, err error)
	// LockAppointment locks an appointment's row, and its session's against LockSession,
	// and returns its session and clinic; claim as for LockSession.
	LockAppointment(ctx context.Context, tx *bus.Tx, appointmentID string, claim *idempotency.Claim) (sessionID, clinicID string, found bool, err error)
	// SessionTargets returns the appointments of a session (scheduled and cancelled) with their
	// current attendance, in id order.
	SessionTargets(ctx context.Context, tx *bus.Tx, sessionID string) ([]AttendanceTarget, error)
	// AppointmentTarget returns one appointment as SessionTargets does (none if unknown).
	AppointmentTarget(ctx context.Context, tx *bus.Tx, appointmentID string) ([]AttendanceTarget, error)
	// AppendAttendance inserts new versions.
	AppendAttendance(ctx context.Context, tx *bus.Tx, recs []domain.AttendanceRecord) error
}

// WithAttendance gives a the attendance repository; it returns a.
func (a *App) WithAttendance(repo AttendanceRepo) *App {
	a.attendance = repo
	return a
}

var errNoAttendance = fmt.Errorf("app: attendance not wired (WithAttendance)")

// AttendanceEntry is one appointment's attendance as asked.
type AttendanceEntry struct {
	AppointmentID   string
	Status          string // domain.Attendance*
	MinutesAttended int    // used when late or left early
}

// RecordAttendance is the command to record (or correct) attendance: one appointment
// (SessionID empty, one entry) or a group session's places (SessionID set).
type RecordAttendance struct {
	Caller         string
	Viewer         domain.Viewer
	IdempotencyKey string
	RequestHash    []byte
	SessionID      string
	Entries        []AttendanceEntry
}

// RecordAttendance records one appointment's attendance (cmd.SessionID empty, one entry) or a
// session's (every entry or none), at most once per idempotency key. A record over an existing
// one is a correction (a new version, announced on the corrected subject with the previous
// values); the same values again change nothing and announce nothing. The session's row (a
// group call) or the appointment's (one appointment) is locked first, and the versions are
// read under the lock. A session or appointment of a clinic viewer cannot see is
// domain.ErrNotFound, a replay included: the clinic is checked before the idempotency key, so
// a caller who lost access to it never gets the stored response.
func (a *App) RecordAttendance(ctx context.Context, cmd RecordAttendance) (out []*schedulingv1.Attendance, replayed bool, err error) {
	r := a.attendance
	if r == nil {
		return nil, false, errNoAttendance
	}
	group := cmd.SessionID != ""
	err = a.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		// The idempotency key is claimed in the lock's round trip, but looked at only once the
		// clinic is checked; a refused caller's claim is undone with the transaction.
		claim := idempotency.NewClaim(a.enrollments, idempotency.Call{Caller: cmd.Caller, Key: cmd.IdempotencyKey, Hash: cmd.RequestHash})
		var clinicID string
		var found bool
		var err error
		if group {
			clinicID, found, err = r.LockSession(ctx, tx, cmd.SessionID, claim)
		} else {
			_, clinicID, found, err = r.LockAppointment(ctx, tx, cmd.Entries[0].AppointmentID, claim)
		}
		if err != nil {
			return err
		}
		if !found || !cmd.Viewer.CanSeeClinic(clinicID) {
			return domain.ErrNotFound
		}
		resp, again, err := idempotency.OnceClaimed(ctx, tx, claim, &schedulingv1.RecordGroupAttendanceResponse{}, func() (*schedulingv1.RecordGroupAttendanceResponse, error) {
			// Read under the lock (a statement after it: its snapshot includes whatever the
			// previous holder committed), so the next version and the previous values are right.
			var targets []AttendanceTarget
			var err error
			if group {
				targets, err = r.SessionTargets(ctx, tx, cmd.SessionID)
			} else {
				targets, err = r.AppointmentTarget(ctx, tx, cmd.Entries[0].AppointmentID)
			}
			if err != nil {
				return nil, err
			}
			list, err := a.recordEntries(ctx, tx, cmd, group, targets)
			if err != nil {
				return nil, err
			}
			return &schedulingv1.RecordGroupAttendanceResponse{Attendance: list}, nil
		})
		if err != nil {
			return err
		}
		out, replayed = resp.GetAttendance(), again
		return nil
	})
	return out, replayed, err
}

// recordEntries checks every entry against the session's places (targets), then stores and
// announces the changed ones.
func (a *App) recordEntries(ctx context.Context, tx *bus.Tx, cmd RecordAttendance, group bool, targets []AttendanceTarget) ([]*schedulingv1.Attendance, error) {
	byID := make(map[string]*AttendanceTarget, len(targets))
	for i := range targets {
		byID[targets[i].ID] = &targets[i]
	}
	field := func(i int, name string) string {
		if group {
			return fmt.Sprintf("entries[%d].%s", i, name)
		}
		return "entry." + name
	}
	// Rules on the input first, all of them at once.
	var vs []domain.Violation
	seen := map[string]bool{}
	minutes := make([]int, len(cmd.Entries))
	for i, e := range cmd.Entries {
		t := byID[e.AppointmentID]
		switch {
		case t == nil:
			vs = append(vs, domain.Violation{Field: field(i, "appointment_id"), Rule: domain.RuleEntrySession,
				Msg: "must be a place in the session"})
			continue
		case seen[e.AppointmentID]:
			vs = append(vs, domain.Violation{Field: field(i, "appointment_id"), Rule: domain.RuleEntryUnique,
				Msg: "names an appointment already named by an earlier entry"})
			continue
		}
		seen[e.AppointmentID] = true
		m, err := domain.AttendedMinutes(field(i, "minutes_attended"), e.Status, e.MinutesAttended, domain.ScheduledMinutes(t.Appointment))
		if ve, ok := err.(*domain.ValidationError); ok {
			vs = append(vs, ve.Violations...)
		} else if err != nil {
			return nil, err
		}
		minutes[i] = m
	}
	if len(vs) > 0 {
		return nil, &domain.ValidationError{Violations: vs}
	}
	now := a.now()
	for i, e := range cmd.Entries {
		if err := domain.CheckAttendable(byID[e.AppointmentID].Appointment, now); err != nil {
			pe := err.(*domain.PreconditionError)
			if group {
				pe.Msg = fmt.Sprintf("entries[%d]: %s", i, pe.Msg)
			}
			return nil, pe
		}
	}
	// Store and announce what changed.
	out := make([]*schedulingv1.Attendance, len(cmd.Entries))
	var recs []domain.AttendanceRecord
	var events []bus.Event
	for i, e := range cmd.Entries {
		t := byID[e.AppointmentID]
		version, changed := domain.NextAttendance(t.Current, e.Status, minutes[i])
		if !changed {
			out[i] = AttendanceProto(*t.Current)
			continue
		}
		rec := domain.AttendanceRecord{AppointmentID: t.ID, ClinicID: t.ClinicID, Status: e.Status, MinutesAttended: minutes[i],
			ScheduledMinutes: domain.ScheduledMinutes(t.Appointment), Version: version, RecordedBy: cmd.Caller, RecordedAt: now}
		recs = append(recs, rec)
		out[i] = AttendanceProto(rec)
		events = append(events, attendanceEvent(*t, rec))
	}
	if len(recs) == 0 {
		return out, nil
	}
	if err := a.attendance.AppendAttendance(ctx, tx, recs); err != nil {
		return nil, err
	}
	for _, ev := range events {
		tx.Emit(ev)
	}
	// Compliance and risk: evaluated again for every active enrollment whose attendance
	// changed. Risk is evaluated for active enrollments only (evaluateRisk leaves the others
	// as they are), so one that was not active when its places were read (a discharged
	// patient's visit corrected) takes no risk lock and reads no compliance facts: it
	// neither waits for nor holds up another call on the same enrollment for nothing.
	var enrollments []string
	for _, rec := range recs {
		if t := byID[rec.AppointmentID]; t.EnrollmentStatus == domain.StatusActive {
			enrollments = append(enrollments, t.EnrollmentID)
		}
	}
	if err := a.evaluateRisks(ctx, tx, enrollments, now); err != nil {
		return nil, err
	}
	return out, nil
}

func attendanceEvent(t AttendanceTarget, rec domain.AttendanceRecord) bus.Event {
	ap := AppointmentProto(t.Appointment)
	track := t.TrackID
	if track == "" {
		track = t.EnrollmentTrackID
	}
	m := &schedulingv1.AttendanceRecorded{
		AppointmentId: t.ID, PatientId: t.PatientID, ClinicId: t.ClinicID, EnrollmentId: t.EnrollmentID,
		ProgramCode: t.ProgramCode, TrackId: track, ServiceType: ap.GetServiceType(), ClinicianId: t.ClinicianID,
		SessionId: t.SessionID, LocalDate: ap.GetLocalDate(), StartsAt: ap.GetStartsAt(),
		Status: attendanceStatusProto(rec.Status), MinutesAttended: int32(rec.MinutesAttended),
		ScheduledMinutes: int32(rec.ScheduledMinutes), Version: int32(rec.Version), RecordedAt: timestamppb.New(rec.RecordedAt),
	}
	subject := SubjectAttendanceRecorded
	if t.Current != nil {
		subject = SubjectAttendanceCorrected
		m.PreviousStatus = attendanceStatusProto(t.Current.Status)
		m.PreviousMinutesAttended = int32(t.Current.MinutesAttended)
	}
	return bus.Event{Subject: subject, ClinicID: t.ClinicID, Payload: m}
}

// SessionRoster returns a session's places (scheduled and cancelled) with their current
// attendance. A session of a clinic viewer cannot see is domain.ErrNotFound.
func (a *App) SessionRoster(ctx context.Context, viewer domain.Viewer, sessionID string) ([]*schedulingv1.RosterEntry, error) {
	r := a.attendance
	if r == nil {
		return nil, errNoAttendance
	}
	var out []*schedulingv1.RosterEntry
	err := a.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		targets, err := r.SessionTargets(ctx, tx, sessionID)
		if err != nil {
			return err
		}
		if len(targets) == 0 || !viewer.CanSeeClinic(targets[0].ClinicID) {
			return domain.ErrNotFound
		}
		for _, t := range targets {
			e := &schedulingv1.RosterEntry{Appointment: AppointmentProto(t.Appointment)}
			if t.Current != nil {
				e.Attendance = AttendanceProto(*t.Current)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// AttendanceProto is the API form of an attendance version.
func AttendanceProto(r domain.AttendanceRecord) *schedulingv1.Attendance {
	return &schedulingv1.Attendance{
		AppointmentId: r.AppointmentID, Status: attendanceStatusProto(r.Status), MinutesAttended: int32(r.MinutesAttended),
		ScheduledMinutes: int32(r.ScheduledMinutes), Version: int32(r.Version), RecordedBy: r.RecordedBy,
		RecordedAt: timestamppb.New(r.RecordedAt),
	}
}

var attendanceStatuses = map[string]schedulingv1.AttendanceStatus{
	domain.AttendancePresent:   schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT,
	domain.AttendanceLate:      schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_LATE,
	domain.AttendanceLeftEarly: schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_LEFT_EARLY,
	domain.AttendanceAbsent:    schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT,
	domain.AttendanceExcused:   schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_EXCUSED,
}

func attendanceStatusProto(s string) schedulingv1.AttendanceStatus { return attendanceStatuses[s] }

// AttendanceStatus is the domain status of an API status ("" when unspecified or unknown).
func AttendanceStatus(s schedulingv1.AttendanceStatus) string {
	for k, v := range attendanceStatuses {
		if v == s {
			return k
		}
	}
	return ""
}
