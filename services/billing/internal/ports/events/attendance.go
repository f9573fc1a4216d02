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

// Attendance consumer: scheduling's AttendanceRecorded (first record and corrections) keeps
// billing's copy of attendance and recomputes the patient's charges of that day.
const (
	AttendanceConsumer         = "billing--attendance"
	SubjectAttendanceRecorded  = "trellis.scheduling.attendance.recorded.v1"
	SubjectAttendanceCorrected = "trellis.scheduling.attendance.corrected.v1"
)

// AttendanceConfig is the durable consumer of attendance on the SCHEDULING stream. Its handler
// locks the patient's charges at the clinic (domain.ChargesLockKey), so a group of up to
// TxBatch messages declares those keys and takes them first, sorted (no deadlock between
// groups or with the API), and AttendancePartitions workers apply different patients at once,
// each patient's messages in stream order (the handler is bound by round trips, not by
// Postgres; docs/billing.md, Charges, "How the consumers apply events").
func AttendanceConfig() bus.ConsumerConfig {
	return bus.ConsumerConfig{Name: AttendanceConsumer, Stream: "SCHEDULING",
		Subjects: []string{SubjectAttendanceRecorded, SubjectAttendanceCorrected}, TxBatch: 16,
		LockKeys: chargesLockKeys, Partitions: AttendancePartitions, PartitionKey: attendancePatient}
}

// AttendancePartitions is the number of workers of billing--attendance and billing--costs; each
// busy one holds a pooled connection (DB_MAX_CONNS).
const AttendancePartitions = 4

// attendancePatient is the partition key of billing--attendance: the patient at the clinic,
// which is what its handler serializes on (its one lock key).
func attendancePatient(d *bus.Delivery) string {
	if k := chargesLockKeys(d); len(k) == 1 {
		return k[0]
	}
	return ""
}

// chargesLockKeys declares the lock Charges.RecordAttendance takes (LockPatient, with the ids
// as validation normalizes them: lower case). A payload that does not decode declares none:
// its handler fails before locking.
func chargesLockKeys(d *bus.Delivery) []string {
	var m schedulingv1.AttendanceRecorded
	if d.Decode(&m) != nil {
		return nil
	}
	return []string{domain.ChargesLockKey(strings.ToLower(m.GetPatientId()), strings.ToLower(m.GetClinicId()))}
}

// Attendance handles AttendanceRecorded.
type Attendance struct {
	charges *app.Charges
	log     *slog.Logger
}

// NewAttendance returns the handler.
func NewAttendance(c *app.Charges, log *slog.Logger) *Attendance {
	return &Attendance{charges: c, log: log}
}

var serviceTypes = map[schedulingv1.ServiceType]string{
	schedulingv1.ServiceType_SERVICE_TYPE_GROUP:                 domain.ServiceGroup,
	schedulingv1.ServiceType_SERVICE_TYPE_INDIVIDUAL:            domain.ServiceIndividual,
	schedulingv1.ServiceType_SERVICE_TYPE_FAMILY:                domain.ServiceFamily,
	schedulingv1.ServiceType_SERVICE_TYPE_MEDICATION_MANAGEMENT: domain.ServiceMedication,
}

var attendanceStatuses = map[schedulingv1.AttendanceStatus]string{
	schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT:    domain.AttendPresent,
	schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_LATE:       domain.AttendLate,
	schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_LEFT_EARLY: domain.AttendLeftEarly,
	schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT:     domain.AttendAbsent,
	schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_EXCUSED:    domain.AttendExcused,
}

// Handle is a bus.Handler (runs in the consumer's transaction; emits through its outbox).
func (h *Attendance) Handle(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	var m schedulingv1.AttendanceRecorded
	if err := d.Decode(&m); err != nil {
		return err
	}
	if err := d.MatchClinic(m.GetClinicId()); err != nil {
		return err
	}
	a := domain.Attendance{
		AppointmentID: m.GetAppointmentId(), PatientID: m.GetPatientId(), ClinicID: m.GetClinicId(),
		EnrollmentID: m.GetEnrollmentId(), ProgramCode: m.GetProgramCode(), Service: serviceTypes[m.GetServiceType()],
		ClinicianID: m.GetClinicianId(), SessionID: m.GetSessionId(), LocalDate: m.GetLocalDate(),
		Status: attendanceStatuses[m.GetStatus()], MinutesAttended: m.GetMinutesAttended(),
		ScheduledMinutes: m.GetScheduledMinutes(), Version: m.GetVersion(), SourceEventID: d.Envelope.GetEventId(),
	}
	if m.GetStartsAt() != nil {
		a.StartsAt = m.GetStartsAt().AsTime()
	}
	changed, err := h.charges.RecordAttendance(ctx, tx, a)
	switch {
	case errors.Is(err, domain.ErrInvalid):
		return bus.Permanent(fmt.Errorf("AttendanceRecorded: %w", err))
	case err != nil:
		return err
	case changed:
		h.log.InfoContext(ctx, "attendance recorded; charges of the day recomputed", "appointment_id", a.AppointmentID,
			"clinic_id", a.ClinicID, "version", a.Version, "event_id", d.Envelope.GetEventId())
	default:
		h.log.InfoContext(ctx, "attendance version not newer than the stored one; nothing to do",
			"appointment_id", a.AppointmentID, "version", a.Version, "event_id", d.Envelope.GetEventId())
	}
	return nil
}
