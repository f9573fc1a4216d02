package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/trellis-health/trellis/pkg/bus"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"

	"github.com/trellis-health/trellis/services/billing/internal/app"
	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// Costs consumer: scheduling's attendance (and corrections) and completed programs feed the
// cost of care delivered. It has its own durable consumer, independent of the charges one.
// (Subject names are unexported here: the charges consumer in this package names the same
// subjects.)
const (
	CostsConsumer                   = "billing--costs"
	costsSubjectAttendanceRecorded  = "trellis.scheduling.attendance.recorded.v1"
	costsSubjectAttendanceCorrected = "trellis.scheduling.attendance.corrected.v1"
	costsSubjectProgramCompleted    = "trellis.scheduling.program.completed.v1"
)

// CostsConfig is the durable consumer of attendance and completed programs on SCHEDULING. Its
// handler locks the patient-day and the session it recomputes: a group declares those keys
// (taken first, sorted), and the partitions apply different sessions at once, each session's
// messages in stream order.
func CostsConfig() bus.ConsumerConfig {
	return bus.ConsumerConfig{Name: CostsConsumer, Stream: "SCHEDULING",
		Subjects: []string{costsSubjectAttendanceRecorded, costsSubjectAttendanceCorrected, costsSubjectProgramCompleted},
		TxBatch:  16, LockKeys: costsLockKeys, Partitions: AttendancePartitions, PartitionKey: costsSession}
}

// costsLockKeys declares the locks Costs.ApplyAttendance takes for an attendance message (a
// correction that moves an appointment also locks the session and day it leaves, which only
// the handler knows: rare, and a deadlock there is retried). ProgramCompleted locks nothing.
func costsLockKeys(d *bus.Delivery) []string {
	var m schedulingv1.AttendanceRecorded
	if d.Subject == costsSubjectProgramCompleted || d.Decode(&m) != nil {
		return nil
	}
	return []string{domain.CostsDayLockKey(strings.ToLower(m.GetPatientId()), m.GetLocalDate()),
		domain.CostsSessionLockKey(costsSessionKey(&m))}
}

// costsSessionKey is the session key domain.NewAttendanceFact derives: the session id, or the
// appointment id (normalized) when there is none.
func costsSessionKey(m *schedulingv1.AttendanceRecorded) string {
	if m.GetSessionId() == "" {
		return strings.ToLower(m.GetAppointmentId())
	}
	return m.GetSessionId()
}

// costsSession is the partition key of billing--costs: the session's lock key ("" for
// ProgramCompleted).
func costsSession(d *bus.Delivery) string {
	if k := costsLockKeys(d); len(k) == 2 {
		return k[1]
	}
	return ""
}

// Costs handles AttendanceRecorded (both subjects) and ProgramCompleted.
type Costs struct {
	costs *app.Costs
	log   *slog.Logger
}

// NewCosts returns the handler.
func NewCosts(c *app.Costs, log *slog.Logger) *Costs { return &Costs{costs: c, log: log} }

// costsAttendanceStatuses maps scheduling's statuses to billing's.
var costsAttendanceStatuses = map[schedulingv1.AttendanceStatus]string{
	schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT:    domain.AttendancePresent,
	schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_LATE:       domain.AttendanceLate,
	schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_LEFT_EARLY: domain.AttendanceLeftEarly,
	schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT:     domain.AttendanceAbsent,
	schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_EXCUSED:    domain.AttendanceExcused,
}

// Handle is a bus.Handler, run in the consumer's transaction. A version older than (or equal
// to) the one kept changes nothing, so redelivery and out-of-order versions are harmless.
func (h *Costs) Handle(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	if d.Subject == costsSubjectProgramCompleted {
		return h.completed(ctx, tx, d)
	}
	var m schedulingv1.AttendanceRecorded
	if err := d.Decode(&m); err != nil {
		return err
	}
	if err := d.MatchClinic(m.GetClinicId()); err != nil {
		return err
	}
	applied, err := h.costs.RecordAttendance(ctx, tx, domain.AttendanceFact{
		AppointmentID:    m.GetAppointmentId(),
		PatientID:        m.GetPatientId(),
		ClinicID:         m.GetClinicId(),
		ProgramCode:      m.GetProgramCode(),
		ClinicianID:      m.GetClinicianId(),
		SessionKey:       m.GetSessionId(),
		LocalDate:        m.GetLocalDate(),
		AttendedMinutes:  m.GetMinutesAttended(),
		ScheduledMinutes: m.GetScheduledMinutes(),
		Version:          m.GetVersion(),
		SourceEventID:    d.Envelope.GetEventId(),
	}, costsAttendanceStatuses[m.GetStatus()])
	switch {
	case errors.Is(err, domain.ErrInvalid):
		return bus.Permanent(fmt.Errorf("AttendanceRecorded: %w", err))
	case err != nil:
		return err
	case !applied:
		h.log.InfoContext(ctx, "attendance version already applied or older; nothing to do",
			"appointment_id", m.GetAppointmentId(), "version", m.GetVersion(), "event_id", d.Envelope.GetEventId())
	}
	return nil
}

func (h *Costs) completed(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	var m schedulingv1.ProgramCompleted
	if err := d.Decode(&m); err != nil {
		return err
	}
	if err := d.MatchClinic(m.GetClinicId()); err != nil {
		return err
	}
	_, err := h.costs.RecordEpisode(ctx, tx, domain.Episode{
		EnrollmentID:  m.GetEnrollmentId(),
		PatientID:     m.GetPatientId(),
		ClinicID:      m.GetClinicId(),
		ProgramCode:   m.GetProgramCode(),
		CompletedOn:   m.GetCompletedOn(),
		SourceEventID: d.Envelope.GetEventId(),
	})
	if errors.Is(err, domain.ErrInvalid) {
		return bus.Permanent(fmt.Errorf("ProgramCompleted: %w", err))
	}
	return err
}
