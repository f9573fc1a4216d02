package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/idempotency"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"

	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
)

// Subjects of appointment events.
const (
	SubjectAppointmentScheduled   = "trellis.scheduling.appointment.scheduled.v1"
	SubjectAppointmentRescheduled = "trellis.scheduling.appointment.rescheduled.v1"
	SubjectAppointmentCancelled   = "trellis.scheduling.appointment.cancelled.v1"
)

// Setting is what a track's schedule is planned from.
type Setting struct {
	Track    domain.Track
	TimeZone string // the clinic's IANA zone
	Weeks    int    // the program's length
}

// GroupSession is an existing group session of a track.
type GroupSession struct {
	ID          string
	ClinicianID string
}

// NewSession is a session to insert.
type NewSession struct {
	ID       string
	ClinicID string
	TrackID  string // group sessions only
	domain.Visit
}

// Appointments stores sessions and appointments (implemented by adapters/postgres). Every
// change of bookings holds the clinic's booking lock (LockBookings), taken after any track
// lock and before any appointment row.
type Appointments interface {
	LockBookings(ctx context.Context, tx *bus.Tx, clinicID string) error
	Setting(ctx context.Context, tx *bus.Tx, trackID string) (Setting, error)
	ClinicTimeZone(ctx context.Context, tx *bus.Tx, clinicID string) (string, error)
	// Clinicians lists the clinic's clinicians in the order the schedule tries them.
	Clinicians(ctx context.Context, tx *bus.Tx, clinicID string) ([]domain.Clinician, error)
	Clinician(ctx context.Context, tx *bus.Tx, id string) (domain.Clinician, bool, error)
	// Busy: the clinic's clinicians' scheduled sessions overlapping [from, to), but exceptSessionID.
	Busy(ctx context.Context, tx *bus.Tx, clinicID string, from, to time.Time, exceptSessionID string) (map[string][]domain.Interval, error)
	// GroupSessions: a track's group sessions on local dates [from, to), by "YYYY-MM-DD".
	// PatientBusy: the patient's other scheduled appointments overlapping [from, to), but exceptAppointmentID.
	PatientBusy(ctx context.Context, tx *bus.Tx, patientID string, from, to time.Time, exceptAppointmentID string) ([]domain.Interval, error)
	GroupSessions(ctx context.Context, tx *bus.Tx, trackID string, from, to time.Time) (map[string]GroupSession, error)
	Insert(ctx context.Context, tx *bus.Tx, sessions []NewSession, appts []domain.Appointment) error
	CancelFuture(ctx context.Context, tx *bus.Tx, enrollmentID string, now time.Time, by, reason, actor string) ([]domain.Appointment, error)
	// Appointment reads one appointment; lock locks its row.
	Appointment(ctx context.Context, tx *bus.Tx, id string, lock bool) (domain.Appointment, bool, error)
	Move(ctx context.Context, tx *bus.Tx, a domain.Appointment, to domain.Visit, reason, actor string, now time.Time) error
	Cancel(ctx context.Context, tx *bus.Tx, a domain.Appointment, by, reason, actor string, now time.Time) error

	ForPatient(ctx context.Context, patientID string, clinics []string, from, to time.Time) ([]domain.Appointment, error)
	ClinicDay(ctx context.Context, clinicID string, date time.Time, clinicianID string) ([]domain.Appointment, error)
	PatientClinics(ctx context.Context, patientID string) ([]string, error)
}

// appointments is what the appointment use cases need besides the store (WithAppointments).
type appointments struct {
	repo   Appointments
	policy domain.SchedulePolicy
	log    *slog.Logger
}

// WithAppointments gives a the appointment repository (with the default schedule policy) and
// a logger for skipped weekly visits; it returns a. Without it, enrollments get no schedule.
func (a *App) WithAppointments(repo Appointments, log *slog.Logger) *App {
	a.appts = appointments{repo: repo, policy: domain.DefaultSchedulePolicy, log: log}
	return a
}

// WithSchedulePolicy replaces the schedule policy; it returns a.
func (a *App) WithSchedulePolicy(p domain.SchedulePolicy) *App {
	a.appts.policy = p
	return a
}

// localDate is t's calendar date in loc, at 00:00 UTC.
func localDate(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// schedule generates e's appointments (e has just become active): its group places, its
// weekly individual and medication visits, and family sessions where the patient's consent
// names recipients (domain.PlanSchedule), from today (clinic-local) to
// the end of its program, in tx, with AppointmentScheduled for each.
func (u *unit) schedule(ctx context.Context, e domain.Enrollment, pastGroups bool) error {
	_, err := u.scheduleWith(ctx, e, false, pastGroups)
	return err
}

// scheduleWith is schedule, with family sessions where the patient's consent copy allows
// them; familyOnly books those alone (the rest is already booked); pastGroups also places the
// patient in the track's group sessions since a past start date (domain.PlanInput). It
// returns how many appointments it booked.
func (u *unit) scheduleWith(ctx context.Context, e domain.Enrollment, familyOnly, pastGroups bool) (int, error) {
	r := u.a.appts.repo
	if r == nil || e.TrackID == "" {
		return 0, nil
	}
	began := time.Now()
	if err := r.LockBookings(ctx, u.tx, e.ClinicID); err != nil {
		return 0, err
	}
	s, err := r.Setting(ctx, u.tx, e.TrackID)
	if err != nil {
		return 0, err
	}
	loc, err := domain.LoadZone(s.TimeZone)
	if err != nil {
		return 0, fmt.Errorf("clinic time zone: %w", err)
	}
	today, end := localDate(u.now, loc), e.StartDate.AddDate(0, 0, 7*s.Weeks)
	from := e.StartDate
	if today.After(from) && !pastGroups {
		from = today
	}
	if !from.Before(end) {
		return 0, nil
	}
	clinicians, err := r.Clinicians(ctx, u.tx, e.ClinicID)
	if err != nil {
		return 0, err
	}
	busy, err := r.Busy(ctx, u.tx, e.ClinicID, from.Add(-48*time.Hour), end.Add(48*time.Hour), "")
	if err != nil {
		return 0, err
	}
	groups, err := r.GroupSessions(ctx, u.tx, e.TrackID, from, end)
	if err != nil {
		return 0, err
	}
	var family bool
	var familyUntil time.Time
	var mine []domain.Interval
	if u.a.family != nil {
		c, found, err := u.a.family.FamilyConsent(ctx, u.tx, e.PatientID, e.ClinicID)
		if err != nil {
			return 0, err
		}
		family, familyUntil = found && c.Consented(u.now), c.FamilyUntil()
	}
	if familyOnly {
		if !family {
			return 0, nil
		}
		if mine, err = r.PatientBusy(ctx, u.tx, e.PatientID, from.Add(-48*time.Hour), end.Add(48*time.Hour), ""); err != nil {
			return 0, err
		}
	}
	exists := make(map[string]bool, len(groups))
	for d := range groups {
		exists[d] = true
	}
	plan := domain.PlanSchedule(domain.PlanInput{
		Policy: u.a.appts.policy, Zone: loc, Track: s.Track, Weeks: s.Weeks, StartDate: e.StartDate,
		Today: today, Now: u.now, PastGroups: pastGroups, Clinicians: clinicians, Busy: busy, GroupExists: exists,
		Family: family, FamilyUntil: familyUntil, FamilyOnly: familyOnly, PatientBusy: mine,
	})
	for _, sk := range plan.Skipped {
		u.a.appts.log.WarnContext(ctx, "no clinician free for a weekly session; week skipped", "enrollment_id", e.ID,
			"clinic_id", e.ClinicID, "track_id", e.TrackID, "week", sk.Week, "service_type", sk.ServiceType)
	}
	var sessions []NewSession
	appts := make([]domain.Appointment, 0, len(plan.Visits))
	for _, v := range plan.Visits {
		ap := domain.Appointment{ID: u.a.newID(), PatientID: e.PatientID, ClinicID: e.ClinicID, EnrollmentID: e.ID,
			Visit: v, Status: domain.AppointmentScheduled}
		if v.ServiceType == domain.ServiceGroup {
			ap.TrackID = e.TrackID
		}
		if g, ok := groups[v.Date.Format(domain.DateLayout)]; ok && v.ServiceType == domain.ServiceGroup {
			ap.SessionID, ap.ClinicianID = g.ID, g.ClinicianID
		} else {
			ap.SessionID = u.a.newID()
			sessions = append(sessions, NewSession{ID: ap.SessionID, ClinicID: e.ClinicID, TrackID: ap.TrackID, Visit: v})
		}
		appts = append(appts, ap)
	}
	if err := r.Insert(ctx, u.tx, sessions, appts); err != nil {
		return 0, err
	}
	for _, ap := range appts {
		u.tx.Emit(bus.Event{Subject: SubjectAppointmentScheduled, ClinicID: e.ClinicID, Payload: &schedulingv1.AppointmentScheduled{
			Appointment: AppointmentProto(ap), ClinicTimeZone: s.TimeZone,
		}})
	}
	u.a.appts.log.InfoContext(ctx, "appointments scheduled", "enrollment_id", e.ID, "clinic_id", e.ClinicID,
		"appointments", len(appts), "sessions_created", len(sessions), "skipped", len(plan.Skipped),
		"family_only", familyOnly, "elapsed_ms", time.Since(began).Milliseconds())
	return len(appts), nil
}

// unschedule cancels the future appointments of e, which has stopped holding its seat
// (discharged: cancelled_by "discharged"; switched: "clinic", reason "track switch"), with
// AppointmentCancelled for each.
func (u *unit) unschedule(ctx context.Context, e domain.Enrollment, endReason string) error {
	r := u.a.appts.repo
	if r == nil {
		return nil
	}
	by, reason := domain.CancelledByClinic, "track switch"
	if endReason == domain.EndDischarged {
		by, reason = domain.CancelledByDischarged, "discharged"
	}
	if err := r.LockBookings(ctx, u.tx, e.ClinicID); err != nil {
		return err
	}
	cancelled, err := r.CancelFuture(ctx, u.tx, e.ID, u.now, by, reason, u.actor)
	if err != nil {
		return err
	}
	for _, ap := range cancelled {
		u.tx.Emit(bus.Event{Subject: SubjectAppointmentCancelled, ClinicID: e.ClinicID, Payload: &schedulingv1.AppointmentCancelled{
			Appointment: AppointmentProto(ap), ReasonCode: by,
		}})
	}
	return nil
}

// ListPatientSchedule returns a patient's appointments (both statuses) with local dates from
// from to to ("YYYY-MM-DD", inclusive; empty: open), in the clinics viewer can see. A patient
// with no enrollment in such a clinic is domain.ErrNotFound.
func (a *App) ListPatientSchedule(ctx context.Context, viewer domain.Viewer, patientID, from, to string) ([]domain.Appointment, error) {
	r := a.appts.repo
	if r == nil {
		return nil, errNoAppointments
	}
	f, err := optionalDate("from_date", from)
	if err != nil {
		return nil, err
	}
	t, err := optionalDate("to_date", to)
	if err != nil {
		return nil, err
	}
	if !f.IsZero() && !t.IsZero() && t.Before(f) {
		return nil, domain.Invalid("to_date", "date.order", "must not be before from_date")
	}
	all, err := r.PatientClinics(ctx, patientID)
	if err != nil {
		return nil, err
	}
	var clinics []string
	for _, c := range all {
		if viewer.CanSeeClinic(c) {
			clinics = append(clinics, c)
		}
	}
	if len(clinics) == 0 {
		return nil, domain.ErrNotFound
	}
	return r.ForPatient(ctx, patientID, clinics, f, t)
}

// ListClinicDay returns a clinic's appointments on a local date (one clinician's if named). A
// clinic viewer may not see is domain.ErrPermissionDenied.
func (a *App) ListClinicDay(ctx context.Context, viewer domain.Viewer, clinicID, date, clinicianID string) ([]domain.Appointment, error) {
	r := a.appts.repo
	if r == nil {
		return nil, errNoAppointments
	}
	if !viewer.CanSeeClinic(clinicID) {
		return nil, domain.ErrPermissionDenied
	}
	d, err := optionalDate("local_date", date)
	if err != nil {
		return nil, err
	}
	return r.ClinicDay(ctx, clinicID, d, clinicianID)
}

var errNoAppointments = fmt.Errorf("app: appointments not wired (WithAppointments)")

func optionalDate(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	d, err := time.Parse(domain.DateLayout, s)
	if err != nil {
		return d, domain.Invalid(field, domain.RuleDateFormat, "must be a calendar date YYYY-MM-DD")
	}
	return d, nil
}

// RescheduleAppointment is the command to move an appointment.
type RescheduleAppointment struct {
	Caller         string
	Viewer         domain.Viewer
	IdempotencyKey string
	RequestHash    []byte
	AppointmentID  string
	LocalDate      string // "YYYY-MM-DD", clinic-local
	StartTime      string // "HH:MM", clinic-local
	Reason         string // kept in the history only
}

// RescheduleAppointment moves an individual, family or medication appointment (its session)
// to a new local date and start, keeping its length, at most once per idempotency key: the
// new time must be in the future, within the clinician's availability, and free of the
// clinician's other sessions (domain.CheckReschedule). History row; AppointmentRescheduled.
// An appointment of a clinic the caller cannot see is domain.ErrNotFound.
func (a *App) RescheduleAppointment(ctx context.Context, cmd RescheduleAppointment) (*schedulingv1.RescheduleAppointmentResponse, error) {
	r := a.appts.repo
	if r == nil {
		return nil, errNoAppointments
	}
	var out *schedulingv1.RescheduleAppointmentResponse
	var replayed bool
	err := a.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		// Visibility first, so a replay never hands the stored response to a caller who lost
		// access to the clinic.
		ap, err := a.visibleAppointment(ctx, tx, cmd.Viewer, cmd.AppointmentID)
		if err != nil {
			return err
		}
		call := idempotency.Call{Caller: cmd.Caller, Key: cmd.IdempotencyKey, Hash: cmd.RequestHash}
		out, replayed, err = idempotency.Once(ctx, tx, a.enrollments, call, &schedulingv1.RescheduleAppointmentResponse{}, func() (*schedulingv1.RescheduleAppointmentResponse, error) {
			ap, tz, err := a.lockVisibleAppointment(ctx, tx, ap)
			if err != nil {
				return nil, err
			}
			loc, err := domain.LoadZone(tz)
			if err != nil {
				return nil, err
			}
			d, err := optionalDate("local_date", cmd.LocalDate)
			if err != nil || d.IsZero() {
				return nil, domain.Invalid("local_date", domain.RuleDateFormat, "must be a calendar date YYYY-MM-DD")
			}
			start := domain.Clock(cmd.StartTime)
			if start.Minutes() < 0 {
				return nil, domain.Invalid("start_time", domain.RuleTimeFormat, "must be HH:MM, 00:00 to 23:59")
			}
			v := domain.NewVisit(ap.ServiceType, d, start, ap.End.Minutes()-ap.Start.Minutes(), loc)
			var c domain.Clinician
			if ap.ClinicianID != "" {
				if c, _, err = r.Clinician(ctx, tx, ap.ClinicianID); err != nil {
					return nil, err
				}
			}
			busy, err := r.Busy(ctx, tx, ap.ClinicID, v.StartsAt, v.EndsAt, ap.SessionID)
			if err != nil {
				return nil, err
			}
			mine, err := r.PatientBusy(ctx, tx, ap.PatientID, v.StartsAt, v.EndsAt, ap.ID)
			if err != nil {
				return nil, err
			}
			now := a.now()
			if err := domain.CheckReschedule(ap, c, v, now, busy[c.ID], mine); err != nil {
				return nil, err
			}
			if err := r.Move(ctx, tx, ap, v, cmd.Reason, cmd.Caller, now); err != nil {
				return nil, err
			}
			moved, _, err := r.Appointment(ctx, tx, ap.ID, false)
			if err != nil {
				return nil, err
			}
			tx.Emit(bus.Event{Subject: SubjectAppointmentRescheduled, ClinicID: ap.ClinicID, Payload: &schedulingv1.AppointmentRescheduled{
				Appointment: AppointmentProto(moved), ClinicTimeZone: tz, PreviousStartsAt: timestamppb.New(ap.StartsAt),
			}})
			return &schedulingv1.RescheduleAppointmentResponse{Appointment: AppointmentProto(moved)}, nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	out.Replayed = replayed
	return out, nil
}

// CancelAppointment cancels a scheduled appointment that has not started, by the patient or
// the clinic (by: domain.CancelledByPatient or CancelledByClinic), keeping the reason in the
// history only; AppointmentCancelled. A cancelled one is a failed precondition.
func (a *App) CancelAppointment(ctx context.Context, viewer domain.Viewer, actor, id, by, reason string) (domain.Appointment, error) {
	r := a.appts.repo
	if r == nil {
		return domain.Appointment{}, errNoAppointments
	}
	var out domain.Appointment
	err := a.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		ap, _, err := a.lockAppointment(ctx, tx, viewer, id)
		if err != nil {
			return err
		}
		now := a.now()
		if err := domain.CheckCancel(ap, now); err != nil {
			return err
		}
		if err := r.Cancel(ctx, tx, ap, by, reason, actor, now); err != nil {
			return err
		}
		if out, _, err = r.Appointment(ctx, tx, ap.ID, false); err != nil {
			return err
		}
		tx.Emit(bus.Event{Subject: SubjectAppointmentCancelled, ClinicID: ap.ClinicID, Payload: &schedulingv1.AppointmentCancelled{
			Appointment: AppointmentProto(out), ReasonCode: by,
		}})
		return nil
	})
	return out, err
}

// lockAppointment reads an appointment viewer may see, takes its clinic's booking lock, then
// locks and re-reads it; it returns the clinic's time zone too.
func (a *App) lockAppointment(ctx context.Context, tx *bus.Tx, viewer domain.Viewer, id string) (domain.Appointment, string, error) {
	ap, err := a.visibleAppointment(ctx, tx, viewer, id)
	if err != nil {
		return ap, "", err
	}
	return a.lockVisibleAppointment(ctx, tx, ap)
}

// visibleAppointment reads an appointment (without locking) that viewer may see; another
// clinic's, or none, is domain.ErrNotFound.
func (a *App) visibleAppointment(ctx context.Context, tx *bus.Tx, viewer domain.Viewer, id string) (domain.Appointment, error) {
	ap, found, err := a.appts.repo.Appointment(ctx, tx, id, false)
	if err != nil {
		return ap, err
	}
	if !found || viewer == nil || !viewer.CanSeeClinic(ap.ClinicID) {
		return ap, domain.ErrNotFound
	}
	return ap, nil
}

// lockVisibleAppointment takes the booking lock of ap's clinic, then locks and re-reads ap;
// it returns the clinic's time zone too.
func (a *App) lockVisibleAppointment(ctx context.Context, tx *bus.Tx, ap domain.Appointment) (domain.Appointment, string, error) {
	r := a.appts.repo
	id := ap.ID
	if err := r.LockBookings(ctx, tx, ap.ClinicID); err != nil {
		return ap, "", err
	}
	ap, _, err := r.Appointment(ctx, tx, id, true)
	if err != nil {
		return ap, "", err
	}
	tz, err := r.ClinicTimeZone(ctx, tx, ap.ClinicID)
	return ap, tz, err
}

// AppointmentProto is the API form of an appointment. A cancellation by discharge has no
// CancelledBy value in the API (the AppointmentCancelled event's reason_code says
// "discharged"): it is left unspecified.
func AppointmentProto(a domain.Appointment) *schedulingv1.Appointment {
	m := &schedulingv1.Appointment{
		AppointmentId: a.ID, PatientId: a.PatientID, ClinicId: a.ClinicID, EnrollmentId: a.EnrollmentID,
		TrackId: a.TrackID, ClinicianId: a.ClinicianID, RoomId: a.RoomID, LocalDate: a.Date.Format(domain.DateLayout),
		StartTime: string(a.Start), EndTime: string(a.End), StartsAt: timestamppb.New(a.StartsAt),
		EndsAt: timestamppb.New(a.EndsAt), RescheduleCount: int32(a.RescheduleCount),
	}
	if a.ServiceType == domain.ServiceGroup {
		m.SessionId = a.SessionID
	}
	switch a.ServiceType {
	case domain.ServiceGroup:
		m.ServiceType = schedulingv1.ServiceType_SERVICE_TYPE_GROUP
	case domain.ServiceIndividual:
		m.ServiceType = schedulingv1.ServiceType_SERVICE_TYPE_INDIVIDUAL
	case domain.ServiceFamily:
		m.ServiceType = schedulingv1.ServiceType_SERVICE_TYPE_FAMILY
	case domain.ServiceMedication:
		m.ServiceType = schedulingv1.ServiceType_SERVICE_TYPE_MEDICATION_MANAGEMENT
	}
	m.Status = schedulingv1.AppointmentStatus_APPOINTMENT_STATUS_SCHEDULED
	if a.Status == domain.AppointmentCancelled {
		m.Status = schedulingv1.AppointmentStatus_APPOINTMENT_STATUS_CANCELLED
	}
	switch a.CancelledBy {
	case domain.CancelledByPatient:
		m.CancelledBy = schedulingv1.CancelledBy_CANCELLED_BY_PATIENT
	case domain.CancelledByClinic:
		m.CancelledBy = schedulingv1.CancelledBy_CANCELLED_BY_CLINIC
	case domain.CancelledByDischarged:
		m.CancelledBy = schedulingv1.CancelledBy_CANCELLED_BY_DISCHARGED
	}
	return m
}
