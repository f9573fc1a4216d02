package main

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/bus"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
)

// BenchmarkAttendanceConsumer measures billing's two attendance consumers (billing--attendance:
// charges; billing--costs: delivered sessions and patient-days) through the running service:
// each iteration publishes a round of group-session attendance for 40 covered, consenting
// patients (per-service payer) on SCHEDULING and waits until both consumers have applied it.
// events/s is attendance events applied by both, per second (publishing included).
func BenchmarkAttendanceConsumer(b *testing.B) {
	e := startCharges(b, false)
	const patients, perRound = 40, 200
	ids := make([]string, patients)
	for p := range ids {
		ids[p] = bus.NewID()
		e.coverage(b, ids[p], "acme-health", time.Now())
		e.consent(b, ids[p])
	}
	events := 0
	for round := 0; b.Loop(); round++ {
		var last uint64
		for i := range perRound {
			n := round*perRound + i
			p, slot := n%patients, n/patients
			day := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC).AddDate(0, 0, slot/2)
			m := &schedulingv1.AttendanceRecorded{AppointmentId: bus.NewID(), PatientId: ids[p], ClinicId: clinicA,
				EnrollmentId: enrollmentOf(ids[p]), ProgramCode: "iop", ServiceType: schedulingv1.ServiceType_SERVICE_TYPE_GROUP,
				SessionId: fmt.Sprintf("0192f0c0-0000-7000-8000-%012d", slot), LocalDate: day.Format(time.DateOnly),
				StartsAt: timestamppb.New(day.Add(time.Duration(14+3*(slot%2)) * time.Hour)),
				Status:   schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT, MinutesAttended: 60, ScheduledMinutes: 60,
				Version: 1, RecordedAt: timestamppb.Now()}
			env := envelope(b, m, clinicA)
			last = e.Publish(b, subjAttendanceRecorded, env.GetEventId(), env, "")
		}
		e.Settled(b, "SCHEDULING", "billing--attendance", last)
		e.Settled(b, "SCHEDULING", "billing--costs", last)
		events += perRound
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}
