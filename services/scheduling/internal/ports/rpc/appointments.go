package rpc

import (
	"context"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/idempotency"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"

	"github.com/trellis-health/trellis/services/scheduling/internal/app"
	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
)

// Appointments: a patient's schedule, a clinic's day, rescheduling and cancelling.
//
// Clinic visibility: ListClinicDay names a clinic, so a clinic the caller may not see is
// permission_denied. The others name a patient or an appointment: one in a clinic the caller
// may not see is not_found, like an absent one (see enrollment.go).

func appointmentsProto(list []domain.Appointment) []*schedulingv1.Appointment {
	out := make([]*schedulingv1.Appointment, len(list))
	for i, a := range list {
		out[i] = app.AppointmentProto(a)
	}
	return out
}

// ListPatientSchedule lists a patient's appointments (scheduled and cancelled) between two
// clinic-local dates, in the clinics the caller can see, by start.
func (s *Server) ListPatientSchedule(ctx context.Context, req *connect.Request[schedulingv1.ListPatientScheduleRequest]) (*connect.Response[schedulingv1.ListPatientScheduleResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	list, err := s.app.ListPatientSchedule(ctx, p, m.GetPatientId(), m.GetFromDate(), m.GetToDate())
	if err != nil {
		return nil, s.fail(ctx, "patient", err)
	}
	return connect.NewResponse(&schedulingv1.ListPatientScheduleResponse{Appointments: appointmentsProto(list)}), nil
}

// ListClinicDay lists a clinic's appointments on one local date (optionally one clinician's).
func (s *Server) ListClinicDay(ctx context.Context, req *connect.Request[schedulingv1.ListClinicDayRequest]) (*connect.Response[schedulingv1.ListClinicDayResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	list, err := s.app.ListClinicDay(ctx, p, m.GetClinicId(), m.GetLocalDate(), m.GetClinicianId())
	if err != nil {
		return nil, s.fail(ctx, "clinic", err)
	}
	return connect.NewResponse(&schedulingv1.ListClinicDayResponse{Appointments: appointmentsProto(list)}), nil
}

// RescheduleAppointment moves an individual, family or medication appointment (see
// app.RescheduleAppointment), at most once per idempotency key.
func (s *Server) RescheduleAppointment(ctx context.Context, req *connect.Request[schedulingv1.RescheduleAppointmentRequest]) (*connect.Response[schedulingv1.RescheduleAppointmentResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	hash, err := idempotency.RequestHash(req.Spec().Procedure, m, func(c *schedulingv1.RescheduleAppointmentRequest) { c.IdempotencyKey = "" })
	if err != nil {
		return nil, s.fail(ctx, "appointment", err)
	}
	out, err := s.app.RescheduleAppointment(ctx, app.RescheduleAppointment{
		Caller: p.Subject, Viewer: p, IdempotencyKey: m.GetIdempotencyKey(), RequestHash: hash,
		AppointmentID: m.GetAppointmentId(), LocalDate: m.GetLocalDate(), StartTime: m.GetStartTime(), Reason: m.GetReason(),
	})
	if err != nil {
		return nil, s.fail(ctx, "appointment", err)
	}
	return connect.NewResponse(out), nil
}

// CancelAppointment cancels a scheduled appointment that has not started.
func (s *Server) CancelAppointment(ctx context.Context, req *connect.Request[schedulingv1.CancelAppointmentRequest]) (*connect.Response[schedulingv1.CancelAppointmentResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	by := domain.CancelledByPatient
	if m.GetCancelledBy() == schedulingv1.CancelledBy_CANCELLED_BY_CLINIC {
		by = domain.CancelledByClinic
	}
	a, err := s.app.CancelAppointment(ctx, p, p.Subject, m.GetAppointmentId(), by, m.GetReason())
	if err != nil {
		return nil, s.fail(ctx, "appointment", err)
	}
	return connect.NewResponse(&schedulingv1.CancelAppointmentResponse{Appointment: app.AppointmentProto(a)}), nil
}
