package app

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"

	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
)

// Subjects of configuration events.
const (
	SubjectClinicConfigured  = "trellis.scheduling.clinic.configured.v1"
	SubjectTrackConfigured   = "trellis.scheduling.track.configured.v1"
	SubjectProgramConfigured = "trellis.scheduling.program.configured.v1"
)

// Configuration stores clinic configuration (implemented by adapters/postgres). The reads that
// take a tx lock the row they find (FOR UPDATE) so an upsert decides on what it replaces;
// Save* insert or replace by primary key.
type Configuration interface {
	Clinic(ctx context.Context, tx *bus.Tx, id string) (domain.Clinic, bool, error)
	SaveClinic(ctx context.Context, tx *bus.Tx, c domain.Clinic) error
	Clinics(ctx context.Context) ([]domain.Clinic, error)

	Room(ctx context.Context, tx *bus.Tx, id string) (domain.Room, bool, error)
	// SaveRoom returns a *domain.ValidationError (name.unique) when the clinic has another
	// room of that name.
	SaveRoom(ctx context.Context, tx *bus.Tx, r domain.Room) error

	Clinician(ctx context.Context, tx *bus.Tx, id string) (domain.Clinician, bool, error)
	// SaveClinician replaces the clinician's availability as a whole.
	SaveClinician(ctx context.Context, tx *bus.Tx, c domain.Clinician) error
	Clinicians(ctx context.Context, clinicID string) ([]domain.Clinician, error)

	Program(ctx context.Context, tx *bus.Tx, code string) (domain.Program, bool, error)
	SaveProgram(ctx context.Context, tx *bus.Tx, p domain.Program) error
	Programs(ctx context.Context) ([]domain.Program, error)

	Track(ctx context.Context, tx *bus.Tx, id string) (domain.Track, bool, error)
	// SaveTrack returns a *domain.ValidationError (track_code.unique) when the clinic has
	// another track of that code.
	SaveTrack(ctx context.Context, tx *bus.Tx, t domain.Track) error
	// RoomTracks lists the active tracks that meet in a room.
	RoomTracks(ctx context.Context, tx *bus.Tx, roomID string) ([]domain.Track, error)
	// LinkUntracked gives a new track the current enrollments of its clinic that predate
	// tracks (no track id) and name its code; it returns how many.
	LinkUntracked(ctx context.Context, tx *bus.Tx, t domain.Track) (int64, error)
	// Tracks lists a clinic's tracks with their enrolled and waitlisted counts.
	Tracks(ctx context.Context, clinicID string) ([]domain.TrackFill, error)
}

// TxRunner runs a unit of work with an outbox (*bus.Store).
type TxRunner interface {
	InTx(ctx context.Context, fn func(ctx context.Context, tx *bus.Tx) error) error
}

// configuration is what the configuration use cases need besides the store (set by
// WithConfiguration).
type configuration struct {
	repo    Configuration
	seeding bool // ForSeeding
}

// WithConfiguration gives a the repository of the configuration use cases; it returns a.
func (a *App) WithConfiguration(repo Configuration) *App {
	a.config = configuration{repo: repo}
	return a
}

// ForSeeding returns a copy of a whose upserts of rooms, clinicians and tracks create a
// record with the id given when none exists (seed-demo's fixed ids), where the API answers
// not_found.
func (a *App) ForSeeding() *App {
	b := *a
	b.config.seeding = true
	return &b
}

var errNoConfiguration = errors.New("app: configuration not wired (New with a store, WithConfiguration)")

func (a *App) configured() error {
	if a.config.repo == nil || a.store == nil || a.enrollments == nil {
		return errNoConfiguration
	}
	return nil
}

// Access rules of configuration, shared by every upsert:
//   - a clinic named in the request that the caller may not see: domain.ErrPermissionDenied;
//   - an id of a record that does not exist, or exists in a clinic the caller may not see:
//     domain.ErrNotFound (the two are indistinguishable);
//   - an update that names another clinic than the record's: clinic_id.immutable.
//
// An upsert that changes nothing writes nothing and emits nothing.

// UpsertClinic creates or updates a clinic. Clinic ids are network-wide (intake uses the same
// ids), so a clinic may be created with a given id; one without an id gets a new UUIDv7, which
// only a caller that sees every clinic may do. Emits ClinicConfigured when something changed.
func (a *App) UpsertClinic(ctx context.Context, viewer domain.Viewer, in domain.Clinic) (domain.Clinic, error) {
	if err := a.configured(); err != nil {
		return domain.Clinic{}, err
	}
	c, err := domain.NewClinic(in)
	if err != nil {
		return domain.Clinic{}, err
	}
	if c.ID == "" {
		if !viewer.CanSeeClinic(auth.AllClinics) {
			return domain.Clinic{}, domain.ErrPermissionDenied
		}
		c.ID = a.newID()
	}
	if !viewer.CanSeeClinic(c.ID) {
		return domain.Clinic{}, domain.ErrPermissionDenied
	}
	err = a.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		old, found, err := a.config.repo.Clinic(ctx, tx, c.ID)
		if err != nil || (found && sameClinic(old, c)) {
			return err
		}
		if err := a.config.repo.SaveClinic(ctx, tx, c); err != nil {
			return err
		}
		tx.Emit(bus.Event{Subject: SubjectClinicConfigured, ClinicID: c.ID,
			Payload: &schedulingv1.ClinicConfigured{Clinic: ClinicProto(c)}})
		return nil
	})
	return c, err
}

// ListClinics lists the clinics viewer may see, by name.
func (a *App) ListClinics(ctx context.Context, viewer domain.Viewer) ([]domain.Clinic, error) {
	if err := a.configured(); err != nil {
		return nil, err
	}
	all, err := a.config.repo.Clinics(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(c domain.Clinic) bool { return !viewer.CanSeeClinic(c.ID) }), nil
}

// UpsertRoom creates (empty id) or updates a room of a configured clinic. A room's seats may
// not drop below the capacity of an active track meeting in it (room.seats:
// seats.track_capacity, naming the track).
func (a *App) UpsertRoom(ctx context.Context, viewer domain.Viewer, in domain.Room) (domain.Room, error) {
	if err := a.configured(); err != nil {
		return domain.Room{}, err
	}
	r, err := domain.NewRoom(in)
	if err != nil {
		return domain.Room{}, err
	}
	if !viewer.CanSeeClinic(r.ClinicID) {
		return domain.Room{}, domain.ErrPermissionDenied
	}
	err = a.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		var old domain.Room
		var found bool
		var err error
		// The clinic's tracks before the room, the order UpsertTrack takes them in: no track
		// grows past the room's seats while they are checked below.
		if _, err := a.enrollments.LockClinicTracks(ctx, tx, r.ClinicID); err != nil {
			return err
		}
		if r.ID != "" {
			if old, found, err = a.config.repo.Room(ctx, tx, r.ID); err != nil {
				return err
			}
		}
		if err := a.upsertCheck(ctx, tx, "room", viewer, r.ID, found, old.ClinicID, r.ClinicID); err != nil {
			return err
		}
		if found && old == r {
			return nil
		}
		if found && r.Seats < old.Seats {
			tracks, err := a.config.repo.RoomTracks(ctx, tx, r.ID)
			if err != nil {
				return err
			}
			for _, t := range tracks {
				if t.Capacity > r.Seats {
					return domain.Invalid("room.seats", domain.RuleSeatsTrackCapacity,
						"fewer than the capacity of track "+t.Code+", which meets in this room")
				}
			}
		}
		if r.ID == "" {
			r.ID = a.newID()
		}
		return a.config.repo.SaveRoom(ctx, tx, r)
	})
	return r, err
}

// UpsertClinician creates (empty id) or updates a clinician of a configured clinic; the
// availability given replaces the stored one as a whole.
func (a *App) UpsertClinician(ctx context.Context, viewer domain.Viewer, in domain.Clinician) (domain.Clinician, error) {
	if err := a.configured(); err != nil {
		return domain.Clinician{}, err
	}
	c, err := domain.NewClinician(in)
	if err != nil {
		return domain.Clinician{}, err
	}
	if !viewer.CanSeeClinic(c.ClinicID) {
		return domain.Clinician{}, domain.ErrPermissionDenied
	}
	err = a.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		var old domain.Clinician
		var found bool
		var err error
		if c.ID != "" {
			if old, found, err = a.config.repo.Clinician(ctx, tx, c.ID); err != nil {
				return err
			}
		}
		if err := a.upsertCheck(ctx, tx, "clinician", viewer, c.ID, found, old.ClinicID, c.ClinicID); err != nil {
			return err
		}
		if found && sameClinician(old, c) {
			return nil
		}
		if c.ID == "" {
			c.ID = a.newID()
		}
		return a.config.repo.SaveClinician(ctx, tx, c)
	})
	return c, err
}

// ListClinicians lists a clinic's clinicians by name (permission denied for a clinic viewer
// may not see; empty for a clinic not configured).
func (a *App) ListClinicians(ctx context.Context, viewer domain.Viewer, clinicID string) ([]domain.Clinician, error) {
	if err := a.configured(); err != nil {
		return nil, err
	}
	clinicID = strings.ToLower(clinicID) // the API accepts any UUID spelling
	if !viewer.CanSeeClinic(clinicID) {
		return nil, domain.ErrPermissionDenied
	}
	return a.config.repo.Clinicians(ctx, clinicID)
}

// UpsertProgram creates or updates a program by its code. Programs are the same in every
// clinic, so only a caller that sees every clinic may change them.
func (a *App) UpsertProgram(ctx context.Context, viewer domain.Viewer, in domain.Program) (domain.Program, error) {
	if err := a.configured(); err != nil {
		return domain.Program{}, err
	}
	p, err := domain.NewProgram(in)
	if err != nil {
		return domain.Program{}, err
	}
	if !viewer.CanSeeClinic(auth.AllClinics) {
		return domain.Program{}, domain.ErrPermissionDenied
	}
	err = a.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		old, found, err := a.config.repo.Program(ctx, tx, p.Code)
		if err != nil || (found && old == p) {
			return err
		}
		if err := a.config.repo.SaveProgram(ctx, tx, p); err != nil {
			return err
		}
		tx.Emit(bus.Event{Subject: SubjectProgramConfigured, Payload: &schedulingv1.ProgramConfigured{Program: ProgramProto(p)}})
		return nil
	})
	return p, err
}

// ListPrograms lists every program by code.
func (a *App) ListPrograms(ctx context.Context) ([]domain.Program, error) {
	if err := a.configured(); err != nil {
		return nil, err
	}
	return a.config.repo.Programs(ctx)
}

// UpsertTrack creates (empty id) or updates a track of a configured clinic. Its program must
// exist, its room (if any) must be a room of the same clinic with at least capacity seats, and
// no other active track may meet in that room at the same time, and its code must be free in
// the clinic. A track's clinic, program and code never change (intake's
// admissions and the enrollments name tracks by code). Lowering the capacity below the number
// enrolled keeps everyone enrolled. Creating a track links the clinic's current enrollments
// that predate tracks and name its code (they take its seats). Emits TrackConfigured when
// something changed.
//
// Seats a change adds (a higher capacity, or the track made active again) go to the track's
// waitlist at once (FillSeats), in the same transaction; actor names the caller in the
// enrollments' history. The clinic's tracks are locked first, in id order, as every seat
// change locks them.
func (a *App) UpsertTrack(ctx context.Context, viewer domain.Viewer, actor string, in domain.Track) (domain.Track, error) {
	if err := a.configured(); err != nil {
		return domain.Track{}, err
	}
	t, err := domain.NewTrack(in)
	if err != nil {
		return domain.Track{}, err
	}
	if !viewer.CanSeeClinic(t.ClinicID) {
		return domain.Track{}, domain.ErrPermissionDenied
	}
	err = a.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		var old domain.Track
		var found bool
		var err error
		if _, err := a.enrollments.LockClinicTracks(ctx, tx, t.ClinicID); err != nil {
			return err
		}
		if t.ID != "" {
			if old, found, err = a.config.repo.Track(ctx, tx, t.ID); err != nil {
				return err
			}
		}
		if err := a.upsertCheck(ctx, tx, "track", viewer, t.ID, found, old.ClinicID, t.ClinicID); err != nil {
			return err
		}
		if found {
			var vs []domain.Violation
			if old.ProgramCode != t.ProgramCode {
				vs = append(vs, domain.Violation{Field: "track.program_code", Rule: domain.RuleProgramImmutable, Msg: "a track's program cannot change"})
			}
			if old.Code != t.Code {
				vs = append(vs, domain.Violation{Field: "track.track_code", Rule: domain.RuleCodeImmutable, Msg: "a track's code cannot change"})
			}
			if len(vs) > 0 {
				return &domain.ValidationError{Violations: vs}
			}
			if sameTrack(old, t) {
				return nil
			}
		} else {
			if _, known, err := a.config.repo.Program(ctx, tx, t.ProgramCode); err != nil {
				return err
			} else if !known {
				return domain.Invalid("track.program_code", domain.RuleProgramKnown, "no such program")
			}
			if t.ID == "" {
				t.ID = a.newID()
			}
		}
		if t.RoomID != "" {
			room, found, err := a.config.repo.Room(ctx, tx, t.RoomID)
			switch {
			case err != nil:
				return err
			case !found || room.ClinicID != t.ClinicID:
				return domain.Invalid("track.room_id", domain.RuleRoomKnown, "no such room in the track's clinic")
			case room.Seats < t.Capacity:
				return domain.Invalid("track.capacity", domain.RuleCapacityRoomSeats, "more than the room's seats")
			}
			if err := a.roomFree(ctx, tx, t); err != nil {
				return err
			}
		}
		if err := a.config.repo.SaveTrack(ctx, tx, t); err != nil {
			return err
		}
		if !found {
			// Enrollments older than tracks name this code: they hold seats of this track now.
			if _, err := a.config.repo.LinkUntracked(ctx, tx, t); err != nil {
				return err
			}
		}
		tx.Emit(bus.Event{Subject: SubjectTrackConfigured, ClinicID: t.ClinicID,
			Payload: &schedulingv1.TrackConfigured{Track: TrackProto(t)}})
		if found && t.Active && (t.Capacity > old.Capacity || !old.Active) {
			return a.FillSeats(ctx, tx, t.ClinicID, actor)
		}
		return nil
	})
	return t, err
}

// ListTracks lists a clinic's tracks by code, with how many are enrolled and waitlisted
// (permission denied for a clinic viewer may not see; empty for a clinic not configured).
func (a *App) ListTracks(ctx context.Context, viewer domain.Viewer, clinicID string) ([]domain.TrackFill, error) {
	if err := a.configured(); err != nil {
		return nil, err
	}
	clinicID = strings.ToLower(clinicID) // the API accepts any UUID spelling
	if !viewer.CanSeeClinic(clinicID) {
		return nil, domain.ErrPermissionDenied
	}
	return a.config.repo.Tracks(ctx, clinicID)
}

// roomFree checks that no other active track meets in t's room at t's times (when t is active).
func (a *App) roomFree(ctx context.Context, tx *bus.Tx, t domain.Track) error {
	if !t.Active {
		return nil
	}
	others, err := a.config.repo.RoomTracks(ctx, tx, t.RoomID)
	if err != nil {
		return err
	}
	for _, o := range others {
		if o.ID != t.ID && o.Active && t.Overlaps(o) {
			return domain.Invalid("track.room_id", domain.RuleRoomBooked, "track "+o.Code+" meets in this room at the same time")
		}
	}
	return nil
}

// upsertCheck applies the access rules to an upsert of a record of kind ("room", ...) with id
// (empty: a create), found (or not) with clinic stored, requested for clinic given. A create
// needs the clinic configured; a given id that is not found is not_found, unless the app is
// seeding (ForSeeding), when it creates the record with that id.
func (a *App) upsertCheck(ctx context.Context, tx *bus.Tx, kind string, viewer domain.Viewer, id string, found bool, stored, given string) error {
	switch {
	case found && !viewer.CanSeeClinic(stored):
		return domain.ErrNotFound
	case found && stored != given:
		return domain.Invalid(kind+".clinic_id", domain.RuleClinicImmutable, "a record cannot move to another clinic")
	case found:
		return nil
	case id != "" && !a.config.seeding:
		return domain.ErrNotFound
	}
	return a.clinicKnown(ctx, tx, kind+".clinic_id", given)
}

// clinicKnown checks that a clinic is configured (and locks it against a concurrent change).
func (a *App) clinicKnown(ctx context.Context, tx *bus.Tx, field, clinicID string) error {
	_, found, err := a.config.repo.Clinic(ctx, tx, clinicID)
	if err == nil && !found {
		return domain.Invalid(field, domain.RuleClinicKnown, "the clinic is not configured in scheduling (UpsertClinic first)")
	}
	return err
}

func sameClinic(a, b domain.Clinic) bool {
	return a.ID == b.ID && a.Name == b.Name && a.TimeZone == b.TimeZone && a.NPI == b.NPI && a.Phone == b.Phone &&
		slices.Equal(a.Address.Lines, b.Address.Lines) && a.Address.City == b.Address.City &&
		a.Address.State == b.Address.State && a.Address.PostalCode == b.Address.PostalCode
}

func sameClinician(a, b domain.Clinician) bool {
	return a.ID == b.ID && a.ClinicID == b.ClinicID && a.DisplayName == b.DisplayName && a.Role == b.Role &&
		a.Active == b.Active && slices.Equal(a.Credentials, b.Credentials) && slices.Equal(a.Availability, b.Availability)
}

func sameTrack(a, b domain.Track) bool {
	return a.ID == b.ID && a.ClinicID == b.ClinicID && a.ProgramCode == b.ProgramCode && a.Code == b.Code &&
		a.TimeOfDay == b.TimeOfDay && slices.Equal(a.Weekdays, b.Weekdays) && a.Start == b.Start && a.End == b.End &&
		a.Capacity == b.Capacity && a.RoomID == b.RoomID && a.Active == b.Active
}
