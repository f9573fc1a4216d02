package rpc

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/auth"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"

	"github.com/trellis-health/trellis/services/scheduling/internal/app"
)

// Clinic configuration. Access (see app/config.go): a clinic named in the request that the
// caller may not see is permission_denied; an id of a record in such a clinic is not_found,
// like an absent one. Every broken rule comes back in one invalid_argument naming the field
// path and the rule id.

func caller(ctx context.Context) (*auth.Principal, error) {
	p := auth.PrincipalFrom(ctx)
	if p == nil {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("no caller"))
	}
	return p, nil
}

// UpsertClinic creates or changes a clinic (an empty clinic_id creates one with a new id).
func (s *Server) UpsertClinic(ctx context.Context, req *connect.Request[schedulingv1.UpsertClinicRequest]) (*connect.Response[schedulingv1.UpsertClinicResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.app.UpsertClinic(ctx, p, app.ClinicFromProto(req.Msg.GetClinic()))
	if err != nil {
		return nil, s.fail(ctx, "clinic", err)
	}
	return connect.NewResponse(&schedulingv1.UpsertClinicResponse{Clinic: app.ClinicProto(c)}), nil
}

// ListClinics lists the clinics the caller may see.
func (s *Server) ListClinics(ctx context.Context, _ *connect.Request[schedulingv1.ListClinicsRequest]) (*connect.Response[schedulingv1.ListClinicsResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := s.app.ListClinics(ctx, p)
	if err != nil {
		return nil, s.fail(ctx, "clinic", err)
	}
	out := &schedulingv1.ListClinicsResponse{}
	for _, c := range cs {
		out.Clinics = append(out.Clinics, app.ClinicProto(c))
	}
	return connect.NewResponse(out), nil
}

// UpsertRoom creates or changes a room.
func (s *Server) UpsertRoom(ctx context.Context, req *connect.Request[schedulingv1.UpsertRoomRequest]) (*connect.Response[schedulingv1.UpsertRoomResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.app.UpsertRoom(ctx, p, app.RoomFromProto(req.Msg.GetRoom()))
	if err != nil {
		return nil, s.fail(ctx, "room", err)
	}
	return connect.NewResponse(&schedulingv1.UpsertRoomResponse{Room: app.RoomProto(r)}), nil
}

// UpsertClinician creates or changes a clinician; the availability sent replaces the stored one.
func (s *Server) UpsertClinician(ctx context.Context, req *connect.Request[schedulingv1.UpsertClinicianRequest]) (*connect.Response[schedulingv1.UpsertClinicianResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.app.UpsertClinician(ctx, p, app.ClinicianFromProto(req.Msg.GetClinician()))
	if err != nil {
		return nil, s.fail(ctx, "clinician", err)
	}
	return connect.NewResponse(&schedulingv1.UpsertClinicianResponse{Clinician: app.ClinicianProto(c)}), nil
}

// ListClinicians lists a clinic's clinicians.
func (s *Server) ListClinicians(ctx context.Context, req *connect.Request[schedulingv1.ListCliniciansRequest]) (*connect.Response[schedulingv1.ListCliniciansResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := s.app.ListClinicians(ctx, p, req.Msg.GetClinicId())
	if err != nil {
		return nil, s.fail(ctx, "clinician", err)
	}
	out := &schedulingv1.ListCliniciansResponse{}
	for _, c := range cs {
		out.Clinicians = append(out.Clinicians, app.ClinicianProto(c))
	}
	return connect.NewResponse(out), nil
}

// UpsertProgram creates or changes a program (network-wide: needs access to every clinic).
func (s *Server) UpsertProgram(ctx context.Context, req *connect.Request[schedulingv1.UpsertProgramRequest]) (*connect.Response[schedulingv1.UpsertProgramResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	pr, err := s.app.UpsertProgram(ctx, p, app.ProgramFromProto(req.Msg.GetProgram()))
	if err != nil {
		return nil, s.fail(ctx, "program", err)
	}
	return connect.NewResponse(&schedulingv1.UpsertProgramResponse{Program: app.ProgramProto(pr)}), nil
}

// ListPrograms lists the programs.
func (s *Server) ListPrograms(ctx context.Context, _ *connect.Request[schedulingv1.ListProgramsRequest]) (*connect.Response[schedulingv1.ListProgramsResponse], error) {
	if _, err := caller(ctx); err != nil {
		return nil, err
	}
	ps, err := s.app.ListPrograms(ctx)
	if err != nil {
		return nil, s.fail(ctx, "program", err)
	}
	out := &schedulingv1.ListProgramsResponse{}
	for _, p := range ps {
		out.Programs = append(out.Programs, app.ProgramProto(p))
	}
	return connect.NewResponse(out), nil
}

// UpsertTrack creates or changes a track.
func (s *Server) UpsertTrack(ctx context.Context, req *connect.Request[schedulingv1.UpsertTrackRequest]) (*connect.Response[schedulingv1.UpsertTrackResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	t, err := s.app.UpsertTrack(ctx, p, p.Subject, app.TrackFromProto(req.Msg.GetTrack()))
	if err != nil {
		return nil, s.fail(ctx, "track", err)
	}
	return connect.NewResponse(&schedulingv1.UpsertTrackResponse{Track: app.TrackProto(t)}), nil
}

// ListTracks lists a clinic's tracks with their enrolled and waitlisted counts.
func (s *Server) ListTracks(ctx context.Context, req *connect.Request[schedulingv1.ListTracksRequest]) (*connect.Response[schedulingv1.ListTracksResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	ts, err := s.app.ListTracks(ctx, p, req.Msg.GetClinicId())
	if err != nil {
		return nil, s.fail(ctx, "track", err)
	}
	out := &schedulingv1.ListTracksResponse{}
	for _, t := range ts {
		out.Tracks = append(out.Tracks, &schedulingv1.TrackFill{Track: app.TrackProto(t.Track),
			Enrolled: int32(t.Enrolled), Waitlisted: int32(t.Waitlisted)})
	}
	return connect.NewResponse(out), nil
}
