package rpc

import (
	"context"
	"strings"
	"unicode"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/idempotency"
	"github.com/trellis-health/trellis/pkg/rpc"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"

	"github.com/trellis-health/trellis/services/scheduling/internal/app"
)

// Enrollments: reading a patient's enrollment, a track's waitlist, and switching tracks.
//
// Clinic visibility: these requests name a patient, a track or an enrollment, never a clinic,
// so a record of a clinic the caller may not see is not_found, exactly like an absent one,
// never permission_denied. A distinct code would tell a caller from another clinic that the
// patient is treated somewhere (for an SUD program that is itself protected information,
// 42 CFR Part 2). permission_denied is kept for the role check, which does not depend on the data.

// GetEnrollment returns the patient's current enrollment (active or waitlisted) in a clinic
// the caller can see; during a pending switch, the enrollment holding the seat (its
// replaced_by_enrollment_id names the waitlisted replacement).
func (s *Server) GetEnrollment(ctx context.Context, req *connect.Request[schedulingv1.GetEnrollmentRequest]) (*connect.Response[schedulingv1.GetEnrollmentResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	e, err := s.app.GetEnrollment(ctx, p, req.Msg.GetPatientId())
	if err != nil {
		return nil, s.fail(ctx, "enrollment", err)
	}
	return connect.NewResponse(&schedulingv1.GetEnrollmentResponse{Enrollment: app.EnrollmentProto(e)}), nil
}

// ListWaitlist lists a track's waitlist, first come first served (the clinic is the track's).
func (s *Server) ListWaitlist(ctx context.Context, req *connect.Request[schedulingv1.ListWaitlistRequest]) (*connect.Response[schedulingv1.ListWaitlistResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	list, err := s.app.ListWaitlist(ctx, p, req.Msg.GetTrackId())
	if err != nil {
		return nil, s.fail(ctx, "track", err)
	}
	out := &schedulingv1.ListWaitlistResponse{Enrollments: make([]*schedulingv1.Enrollment, len(list))}
	for i, e := range list {
		out.Enrollments[i] = app.EnrollmentProto(e)
	}
	return connect.NewResponse(out), nil
}

// RuleReasonNotBlank: a switch's reason is blank once trimmed, or holds control characters.
const RuleReasonNotBlank = "reason.not_blank"

// SwitchTrack moves an enrollment to another track of its clinic and program (see
// app.SwitchTrack), at most once per idempotency key.
func (s *Server) SwitchTrack(ctx context.Context, req *connect.Request[schedulingv1.SwitchTrackRequest]) (*connect.Response[schedulingv1.SwitchTrackResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	// The reason is kept (trimmed) in the history: it must say something, on one line.
	reason := strings.TrimSpace(m.GetReason())
	if reason == "" || strings.ContainsFunc(reason, unicode.IsControl) {
		return nil, rpc.InvalidArgument(rpc.FieldViolation{Field: "reason", Rule: RuleReasonNotBlank,
			Msg: "must not be blank or contain control characters"})
	}
	m.Reason = reason
	hash, err := idempotency.RequestHash(req.Spec().Procedure, m, func(c *schedulingv1.SwitchTrackRequest) { c.IdempotencyKey = "" })
	if err != nil {
		return nil, s.fail(ctx, "switch", err)
	}
	out, err := s.app.SwitchTrack(ctx, app.SwitchTrack{
		Caller: p.Subject, Viewer: p, IdempotencyKey: m.GetIdempotencyKey(), RequestHash: hash,
		EnrollmentID: m.GetEnrollmentId(), TrackCode: m.GetTrackCode(), Reason: reason,
	})
	if err != nil {
		return nil, s.fail(ctx, "enrollment", err)
	}
	return connect.NewResponse(out), nil
}
