package main

import (
	"context"
	"fmt"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/service"

	"github.com/trellis-health/trellis/services/scheduling/demo"
	"github.com/trellis-health/trellis/services/scheduling/internal/app"
)

// seedDemo upserts the demo configuration (package demo: programs, the three demo clinics,
// their rooms, clinicians and tracks) through the same use cases as the API, so the rules are
// the same. Every id is fixed: a second run changes nothing and emits nothing. The events of
// the first run (ClinicConfigured, TrackConfigured) wait in the outbox for the service's relay.
func seedDemo(ctx context.Context, p *service.Platform, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("seed-demo takes no arguments, got %q", args)
	}
	// A command has no caller: its transactions act for every clinic (row-level security).
	ctx = auth.WithSystemScope(ctx)
	a := newApp(p).ForSeeding()
	operator := &auth.Principal{Subject: "seed-demo", Roles: []string{"admin"}, Clinics: []string{auth.AllClinics}}
	for _, m := range demo.Programs() {
		if _, err := a.UpsertProgram(ctx, operator, app.ProgramFromProto(m)); err != nil {
			return fmt.Errorf("program %s: %w", m.GetProgramCode(), err)
		}
	}
	for _, m := range demo.Clinics() {
		if _, err := a.UpsertClinic(ctx, operator, app.ClinicFromProto(m)); err != nil {
			return fmt.Errorf("clinic %s: %w", m.GetClinicId(), err)
		}
	}
	for _, m := range demo.Rooms() {
		if _, err := a.UpsertRoom(ctx, operator, app.RoomFromProto(m)); err != nil {
			return fmt.Errorf("room %s: %w", m.GetRoomId(), err)
		}
	}
	for _, m := range demo.Clinicians() {
		if _, err := a.UpsertClinician(ctx, operator, app.ClinicianFromProto(m)); err != nil {
			return fmt.Errorf("clinician %s: %w", m.GetClinicianId(), err)
		}
	}
	for _, m := range demo.Tracks() {
		if _, err := a.UpsertTrack(ctx, operator, operator.Subject, app.TrackFromProto(m)); err != nil {
			return fmt.Errorf("track %s: %w", m.GetTrackId(), err)
		}
	}
	p.Log.InfoContext(ctx, "demo configuration seeded", "programs", len(demo.Programs()), "clinics", len(demo.Clinics()),
		"rooms", len(demo.Rooms()), "clinicians", len(demo.Clinicians()), "tracks", len(demo.Tracks()))
	return nil
}
