package app

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/bus"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"

	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
)

// Compliance and risk (docs/scheduling.md, "Compliance and risk"): risk is evaluated after
// every attendance record or correction (in its transaction) and by a daily sweep of active
// enrollments (complete weeks change with time), which also records program completions.

// Subjects of compliance events.
const (
	SubjectPatientAtRisk      = "trellis.scheduling.patient.at_risk.v1"
	SubjectPatientRiskCleared = "trellis.scheduling.patient.risk_cleared.v1"
	SubjectProgramCompleted   = "trellis.scheduling.program.completed.v1"
)

// ComplianceFacts is what compliance needs of an enrollment.
type ComplianceFacts struct {
	Enrollment    domain.Enrollment // ID, PatientID, ClinicID, Status, StartDate, ProgramCode
	LengthWeeks   int
	WeeklyMinimum int
	TimeZone      string // the clinic's
	Visits        []domain.AttendedVisit
	// VisitsFrom, when set (RiskFacts), bounds what Visits may lack: visits that started
	// before it on a local date before the window's first day (the day after it).
	VisitsFrom time.Time
}

// RiskEpisode is a risk_episodes row.
type RiskEpisode struct {
	ID, EnrollmentID, PatientID, ClinicID string
	Reasons                               []string
	Since                                 time.Time
}

// RiskState is what a risk evaluation reads of an enrollment under its risk lock.
type RiskState struct {
	Facts   ComplianceFacts // as RiskFacts reads them
	Found   bool            // the enrollment (with a program) exists
	Episode RiskEpisode     // the open episode, when Open
	Open    bool
}

// Completion is a program_completions row.
type Completion struct {
	EnrollmentID        string
	CompletedOn         time.Time // clinic-local date, 00:00 UTC
	Weeks               int
	WeeksMeetingMinimum int
	RecordedAt          time.Time
}

// ComplianceRepo stores risk episodes and completions (implemented by adapters/postgres).
type ComplianceRepo interface {
	// LockRisk takes the enrollment's risk lock for the rest of tx (wait false: reports false
	// when another transaction holds it).
	LockRisk(ctx context.Context, tx *bus.Tx, enrollmentID string, wait bool) (bool, error)
	Facts(ctx context.Context, tx *bus.Tx, enrollmentID string) (ComplianceFacts, bool, error)
	// RiskFacts is Facts with the visits the at-risk rules may need on a clinic-local date on
	// or after notBefore, underWeeks the complete weeks the under-minimum rule reads: every
	// visit of those weeks and after, and every visit that started at or after VisitsFrom.
	RiskFacts(ctx context.Context, tx *bus.Tx, enrollmentID string, notBefore time.Time, underWeeks int) (ComplianceFacts, bool, error)
	// LockRiskFacts takes the enrollment's risk lock for the rest of tx (waiting for it), then
	// reads RiskFacts and the open episode, all in one round trip.
	LockRiskFacts(ctx context.Context, tx *bus.Tx, enrollmentID string, notBefore time.Time, underWeeks int) (RiskState, error)
	OpenEpisode(ctx context.Context, tx *bus.Tx, enrollmentID string) (RiskEpisode, bool, error)
	AddEpisode(ctx context.Context, tx *bus.Tx, ep RiskEpisode) error
	SetReasons(ctx context.Context, tx *bus.Tx, id string, reasons []string) error
	ClearEpisode(ctx context.Context, tx *bus.Tx, id string, at time.Time) error
	// AddCompletion inserts unless recorded already; it reports whether it inserted.
	AddCompletion(ctx context.Context, tx *bus.Tx, c Completion) (bool, error)
	ActiveEnrollments(ctx context.Context) ([]string, error)
	// History: the enrollment's appointments that started at or before now, with attendance.
	History(ctx context.Context, tx *bus.Tx, enrollmentID string, now time.Time) ([]AttendanceTarget, error)
}

// WithCompliance gives a the compliance repository and the at-risk rules' configuration
// (zero thresholds take the defaults); it returns a.
func (a *App) WithCompliance(repo ComplianceRepo, cfg domain.RiskConfig) *App {
	a.compliance, a.risk = repo, cfg.WithDefaults()
	return a
}

// evaluateRisks evaluates the risk of each enrollment (once each, in id order, each under its
// risk lock) in tx, as of the clock read once the lock is held (never before now): a
// transaction that waited for the lock must not date what it writes before what the holder
// wrote (an episode cleared before it began). Nothing happens when compliance is not wired.
func (a *App) evaluateRisks(ctx context.Context, tx *bus.Tx, enrollmentIDs []string, now time.Time) error {
	if a.compliance == nil {
		return nil
	}
	ids := slices.Clone(enrollmentIDs)
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		// The lock and the reads in one round trip: the reads run once the lock is held. Their
		// window is as of now; the clock read after the lock (at) is never earlier, and the
		// window only moves forward with the date (RiskFacts).
		st, err := a.compliance.LockRiskFacts(ctx, tx, id, riskNotBefore(now), a.risk.WeeksUnderMinimum)
		if err != nil {
			return err
		}
		at := now
		if t := a.now(); t.After(at) {
			at = t
		}
		if err := a.applyRisk(ctx, tx, id, at, st, true); err != nil {
			return err
		}
	}
	return nil
}

// riskNotBefore is a clinic-local date never after now's in any zone: the day before its UTC
// date.
func riskNotBefore(now time.Time) time.Time {
	y, m, d := now.UTC().Date()
	return time.Date(y, m, d-1, 0, 0, 0, 0, time.UTC)
}

// facts reads an enrollment's compliance facts and its program weeks as of now.
func (a *App) facts(ctx context.Context, tx *bus.Tx, enrollmentID string, now time.Time) (ComplianceFacts, []domain.ComplianceWeek, bool, error) {
	f, found, err := a.compliance.Facts(ctx, tx, enrollmentID)
	if err != nil || !found {
		return f, nil, found, err
	}
	return a.weeks(f, now)
}

// riskWeeks completes f (RiskFacts, found) for the at-risk rules as of now: its program
// weeks, on the visits RiskFacts read (those of the weeks the under-minimum rule reads, and
// after; now's clinic-local date is never before riskNotBefore), or on all of them, read
// again, when the run of absences reaches back further than those (domain.AbsenceRunDecided:
// a patient excused again and again). The rules see the same as with every visit; a long
// history is not read on every attendance record.
func (a *App) riskWeeks(ctx context.Context, tx *bus.Tx, enrollmentID string, now time.Time, f ComplianceFacts, found bool) (ComplianceFacts, []domain.ComplianceWeek, bool, error) {
	if !found {
		return f, nil, false, nil
	}
	if f.Enrollment.Status == domain.StatusActive && !domain.AbsenceRunDecided(a.risk.ConsecutiveAbsences, f.Visits, f.VisitsFrom) {
		return a.facts(ctx, tx, enrollmentID, now)
	}
	return a.weeks(f, now)
}

// weeks returns f with its program weeks as of now.
func (a *App) weeks(f ComplianceFacts, now time.Time) (ComplianceFacts, []domain.ComplianceWeek, bool, error) {
	loc, err := time.LoadLocation(f.TimeZone)
	if err != nil {
		return f, nil, false, fmt.Errorf("clinic time zone: %w", err)
	}
	weeks := domain.ProgramWeeks(f.Enrollment.StartDate, f.LengthWeeks, f.WeeklyMinimum, a.risk.StepDownWeeks,
		domain.LocalDate(now, loc), f.Visits)
	return f, weeks, true, nil
}

// evaluateRisk opens, updates or clears the enrollment's risk episode (the caller holds its
// risk lock). Only active enrollments are evaluated: an ended or switched one keeps whatever
// episode it had, silently (the enrollment is over).
func (a *App) evaluateRisk(ctx context.Context, tx *bus.Tx, enrollmentID string, now time.Time) error {
	f, found, err := a.compliance.RiskFacts(ctx, tx, enrollmentID, riskNotBefore(now), a.risk.WeeksUnderMinimum)
	if err != nil {
		return err
	}
	return a.applyRisk(ctx, tx, enrollmentID, now, RiskState{Facts: f, Found: found}, false)
}

// applyRisk is evaluateRisk on what was read of the enrollment (st; its open episode is read
// here unless episodeRead).
func (a *App) applyRisk(ctx context.Context, tx *bus.Tx, enrollmentID string, now time.Time, st RiskState, episodeRead bool) error {
	f, weeks, found, err := a.riskWeeks(ctx, tx, enrollmentID, now, st.Facts, st.Found)
	if err != nil || !found || f.Enrollment.Status != domain.StatusActive {
		return err
	}
	reasons := domain.RiskReasons(a.risk, weeks, f.Visits)
	ep, open := st.Episode, st.Open
	if !episodeRead {
		if ep, open, err = a.compliance.OpenEpisode(ctx, tx, enrollmentID); err != nil {
			return err
		}
	}
	e := f.Enrollment
	switch {
	case len(reasons) > 0 && !open:
		ep = RiskEpisode{ID: a.newID(), EnrollmentID: e.ID, PatientID: e.PatientID, ClinicID: e.ClinicID, Reasons: reasons, Since: now}
		if err := a.compliance.AddEpisode(ctx, tx, ep); err != nil {
			return err
		}
		tx.Emit(bus.Event{Subject: SubjectPatientAtRisk, ClinicID: e.ClinicID, Payload: &schedulingv1.PatientAtRisk{
			PatientId: e.PatientID, EnrollmentId: e.ID, ClinicId: e.ClinicID, Reasons: RiskReasonsProto(reasons),
			Since: timestamppb.New(now)}})
	case len(reasons) > 0 && !slices.Equal(reasons, ep.Reasons):
		// Still at risk, for other reasons: not announced again.
		return a.compliance.SetReasons(ctx, tx, ep.ID, reasons)
	case len(reasons) == 0 && open:
		// Never before the episode began: a sweep's time is read once for all enrollments,
		// and an attendance record may open an episode after it.
		cleared := now
		if cleared.Before(ep.Since) {
			cleared = ep.Since
		}
		if err := a.compliance.ClearEpisode(ctx, tx, ep.ID, cleared); err != nil {
			return err
		}
		tx.Emit(bus.Event{Subject: SubjectPatientRiskCleared, ClinicID: e.ClinicID, Payload: &schedulingv1.PatientRiskCleared{
			PatientId: e.PatientID, EnrollmentId: e.ID, ClinicId: e.ClinicID, AtRiskSince: timestamppb.New(ep.Since),
			ClearedAt: timestamppb.New(cleared)}})
	}
	return nil
}

var riskReasons = map[string]schedulingv1.RiskReason{
	domain.RiskConsecutiveAbsences: schedulingv1.RiskReason_RISK_REASON_CONSECUTIVE_ABSENCES,
	domain.RiskUnderWeeklyMinimum:  schedulingv1.RiskReason_RISK_REASON_UNDER_WEEKLY_MINIMUM,
}

// RiskReasonsProto is the API form of risk reasons.
func RiskReasonsProto(reasons []string) []schedulingv1.RiskReason {
	out := make([]schedulingv1.RiskReason, len(reasons))
	for i, r := range reasons {
		out[i] = riskReasons[r]
	}
	return out
}

// SweepCompliance evaluates the risk of every active enrollment as of now and records the
// completion of those whose program ended before now's clinic-local date; one transaction per
// enrollment. An enrollment another transaction is evaluating (another replica's sweep, an
// attendance record) is skipped: that one evaluates it. It returns the first error after
// trying every enrollment.
func (a *App) SweepCompliance(ctx context.Context, now time.Time) error {
	if a.compliance == nil {
		return nil
	}
	ids, err := a.compliance.ActiveEnrollments(ctx)
	if err != nil {
		return err
	}
	var first error
	for _, id := range ids {
		err := a.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
			got, err := a.compliance.LockRisk(ctx, tx, id, false)
			if err != nil || !got {
				return err
			}
			if err := a.evaluateRisk(ctx, tx, id, now); err != nil {
				return err
			}
			return a.complete(ctx, tx, id, now)
		})
		if err != nil && first == nil {
			first = err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return first
}

// complete records and announces the enrollment's completion once its program's last day has
// passed (clinic-local), once.
func (a *App) complete(ctx context.Context, tx *bus.Tx, enrollmentID string, now time.Time) error {
	f, weeks, found, err := a.facts(ctx, tx, enrollmentID, now)
	if err != nil || !found || f.Enrollment.Status != domain.StatusActive {
		return err
	}
	loc, err := time.LoadLocation(f.TimeZone)
	if err != nil {
		return fmt.Errorf("clinic time zone: %w", err)
	}
	end := domain.ProgramEnd(f.Enrollment.StartDate, f.LengthWeeks)
	if !domain.LocalDate(now, loc).After(end) {
		return nil
	}
	c := Completion{EnrollmentID: enrollmentID, CompletedOn: end, Weeks: f.LengthWeeks,
		WeeksMeetingMinimum: domain.WeeksMeetingMinimum(weeks), RecordedAt: now}
	added, err := a.compliance.AddCompletion(ctx, tx, c)
	if err != nil || !added {
		return err
	}
	e := f.Enrollment
	tx.Emit(bus.Event{Subject: SubjectProgramCompleted, ClinicID: e.ClinicID, Payload: &schedulingv1.ProgramCompleted{
		PatientId: e.PatientID, EnrollmentId: e.ID, ClinicId: e.ClinicID, ProgramCode: e.ProgramCode,
		CompletedOn: end.Format(time.DateOnly), Weeks: int32(c.Weeks), WeeksMeetingMinimum: int32(c.WeeksMeetingMinimum)}})
	return nil
}

// RunComplianceWorker sweeps (SweepCompliance) once at start and then every interval, as of
// clock(), until ctx ends. A failed sweep is logged and retried at the next tick.
func (a *App) RunComplianceWorker(ctx context.Context, every time.Duration, clock func() time.Time, log *slog.Logger) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := a.SweepCompliance(ctx, clock().UTC().Truncate(time.Microsecond)); err != nil && ctx.Err() == nil {
			log.ErrorContext(ctx, "compliance sweep failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Compliance is a patient's compliance as GetPatientCompliance answers it.
type Compliance struct {
	EnrollmentID string
	ProgramCode  string
	Weeks        []domain.ComplianceWeek
	History      []*schedulingv1.RosterEntry
	Episode      *RiskEpisode // the open risk episode, nil when not at risk
}

// PatientCompliance returns the compliance of the patient's current active enrollment in a
// clinic viewer can see, or domain.ErrNotFound.
func (a *App) PatientCompliance(ctx context.Context, viewer domain.Viewer, patientID string) (Compliance, error) {
	var out Compliance
	if a.compliance == nil {
		return out, fmt.Errorf("app: compliance not wired (WithCompliance)")
	}
	all, err := a.enrollments.ForPatient(ctx, patientID)
	if err != nil {
		return out, err
	}
	e, ok := domain.CurrentFor(viewer, all)
	if !ok || e.Status != domain.StatusActive {
		return out, domain.ErrNotFound
	}
	now := a.now()
	err = a.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		f, weeks, found, err := a.facts(ctx, tx, e.ID, now)
		if err != nil {
			return err
		}
		if !found {
			return domain.ErrNotFound
		}
		out.EnrollmentID, out.ProgramCode, out.Weeks = e.ID, f.Enrollment.ProgramCode, weeks
		history, err := a.compliance.History(ctx, tx, e.ID, now)
		if err != nil {
			return err
		}
		for _, t := range history {
			entry := &schedulingv1.RosterEntry{Appointment: AppointmentProto(t.Appointment)}
			if t.Current != nil {
				entry.Attendance = AttendanceProto(*t.Current)
			}
			out.History = append(out.History, entry)
		}
		ep, open, err := a.compliance.OpenEpisode(ctx, tx, e.ID)
		if err != nil {
			return err
		}
		if open {
			out.Episode = &ep
		}
		return nil
	})
	return out, err
}
