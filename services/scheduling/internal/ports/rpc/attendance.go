package rpc

import (
	"context"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/idempotency"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"

	"github.com/trellis-health/trellis/services/scheduling/internal/app"
)

// Attendance: a session's roster, and recording (or correcting) attendance.
//
// Clinic visibility: these requests name a session or an appointment, never a clinic, so one
// of a clinic the caller may not see is not_found, like an absent one (see enrollment.go).

func attendanceEntries(list ...*schedulingv1.AttendanceEntry) []app.AttendanceEntry {
	out := make([]app.AttendanceEntry, len(list))
	for i, e := range list {
		out[i] = app.AttendanceEntry{AppointmentID: e.GetAppointmentId(), Status: app.AttendanceStatus(e.GetStatus()),
			MinutesAttended: int(e.GetMinutesAttended())}
	}
	return out
}

// GetSessionRoster lists a session's places (scheduled and cancelled) with their attendance.
func (s *Server) GetSessionRoster(ctx context.Context, req *connect.Request[schedulingv1.GetSessionRosterRequest]) (*connect.Response[schedulingv1.GetSessionRosterResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	list, err := s.app.SessionRoster(ctx, p, req.Msg.GetSessionId())
	if err != nil {
		return nil, s.fail(ctx, "session", err)
	}
	return connect.NewResponse(&schedulingv1.GetSessionRosterResponse{Entries: list}), nil
}

// RecordAttendance records or corrects one appointment's attendance, at most once per
// idempotency key.
func (s *Server) RecordAttendance(ctx context.Context, req *connect.Request[schedulingv1.RecordAttendanceRequest]) (*connect.Response[schedulingv1.RecordAttendanceResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	hash, err := idempotency.RequestHash(req.Spec().Procedure, m, func(c *schedulingv1.RecordAttendanceRequest) { c.IdempotencyKey = "" })
	if err != nil {
		return nil, s.fail(ctx, "appointment", err)
	}
	list, replayed, err := s.app.RecordAttendance(ctx, app.RecordAttendance{
		Caller: p.Subject, Viewer: p, IdempotencyKey: m.GetIdempotencyKey(), RequestHash: hash,
		Entries: attendanceEntries(m.GetEntry()),
	})
	if err != nil {
		return nil, s.fail(ctx, "appointment", err)
	}
	return connect.NewResponse(&schedulingv1.RecordAttendanceResponse{Attendance: list[0], Replayed: replayed}), nil
}

// RecordGroupAttendance records or corrects a session's attendance in one call: every entry
// or none, at most once per idempotency key.
func (s *Server) RecordGroupAttendance(ctx context.Context, req *connect.Request[schedulingv1.RecordGroupAttendanceRequest]) (*connect.Response[schedulingv1.RecordGroupAttendanceResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	hash, err := idempotency.RequestHash(req.Spec().Procedure, m, func(c *schedulingv1.RecordGroupAttendanceRequest) { c.IdempotencyKey = "" })
	if err != nil {
		return nil, s.fail(ctx, "session", err)
	}
	list, replayed, err := s.app.RecordAttendance(ctx, app.RecordAttendance{
		Caller: p.Subject, Viewer: p, IdempotencyKey: m.GetIdempotencyKey(), RequestHash: hash,
		SessionID: m.GetSessionId(), Entries: attendanceEntries(m.GetEntries()...),
	})
	if err != nil {
		return nil, s.fail(ctx, "session", err)
	}
	return connect.NewResponse(&schedulingv1.RecordGroupAttendanceResponse{Attendance: list, Replayed: replayed}), nil
}
