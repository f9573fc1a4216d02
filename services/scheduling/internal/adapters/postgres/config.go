package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/pg"

	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
)

// Config is the clinic configuration tables (00002_configuration.sql): clinics, rooms,
// clinicians with their availability, programs and tracks. Times of day are stored as `time`
// and read back as "HH:MM".
type Config struct{ db Reader }

// NewConfig returns the repository; its lists run in db's scoped read-only transactions
// (search_path is the scheduling schema).
func NewConfig(db Reader) *Config { return &Config{db: db} }

// address is the jsonb form of a clinic's address.
type address struct {
	Lines      []string `json:"lines,omitempty"`
	City       string   `json:"city,omitempty"`
	State      string   `json:"state,omitempty"`
	PostalCode string   `json:"postal_code,omitempty"`
}

const clinicColumns = `id::text, name, time_zone, address, npi, phone`

func scanClinic(row pgx.Row) (domain.Clinic, error) {
	var c domain.Clinic
	var raw []byte
	if err := row.Scan(&c.ID, &c.Name, &c.TimeZone, &raw, &c.NPI, &c.Phone); err != nil {
		return c, err
	}
	var a address
	if err := json.Unmarshal(raw, &a); err != nil {
		return c, fmt.Errorf("clinic address: %w", err)
	}
	c.Address = domain.Address(a)
	return c, nil
}

// one returns the single row scan reads, or found false.
func one[T any](row pgx.Row, scan func(pgx.Row) (T, error), what string) (T, bool, error) {
	v, err := scan(row)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return v, false, nil
	case err != nil:
		return v, false, fmt.Errorf("read %s: %w", what, err)
	}
	return v, true, nil
}

// Clinic reads a clinic and locks it.
func (r *Config) Clinic(ctx context.Context, tx *bus.Tx, id string) (domain.Clinic, bool, error) {
	return one(tx.QueryRow(ctx, `SELECT `+clinicColumns+` FROM clinics WHERE id = $1 FOR UPDATE`, id), scanClinic, "clinic")
}

// SaveClinic inserts or replaces a clinic.
func (r *Config) SaveClinic(ctx context.Context, tx *bus.Tx, c domain.Clinic) error {
	raw, err := json.Marshal(address(c.Address))
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO clinics (id, name, time_zone, address, npi, phone) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, time_zone = EXCLUDED.time_zone,
			address = EXCLUDED.address, npi = EXCLUDED.npi, phone = EXCLUDED.phone, updated_at = now()`,
		c.ID, c.Name, c.TimeZone, raw, c.NPI, c.Phone)
	if err != nil {
		return fmt.Errorf("save clinic: %w", err)
	}
	return nil
}

// Clinics lists every clinic by name.
func (r *Config) Clinics(ctx context.Context) ([]domain.Clinic, error) {
	return list(ctx, r.db, scanClinic, "clinics", `SELECT `+clinicColumns+` FROM clinics ORDER BY name, id`)
}

func list[T any](ctx context.Context, db Reader, scan func(pgx.Row) (T, error), what, sql string, args ...any) ([]T, error) {
	return read(ctx, db, func(rows pgx.Rows, err error) ([]T, error) {
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", what, err)
		}
		out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) { return scan(row) })
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", what, err)
		}
		return out, nil
	}, sql, args...)
}

func scanRoom(row pgx.Row) (domain.Room, error) {
	var m domain.Room
	err := row.Scan(&m.ID, &m.ClinicID, &m.Name, &m.Seats)
	return m, err
}

// Room reads a room and locks it.
func (r *Config) Room(ctx context.Context, tx *bus.Tx, id string) (domain.Room, bool, error) {
	return one(tx.QueryRow(ctx, `SELECT id::text, clinic_id::text, name, seats FROM rooms WHERE id = $1 FOR UPDATE`, id), scanRoom, "room")
}

// SaveRoom inserts or replaces a room; a name another room of the clinic has is a violation.
func (r *Config) SaveRoom(ctx context.Context, tx *bus.Tx, m domain.Room) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO rooms (id, clinic_id, name, seats) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, seats = EXCLUDED.seats, updated_at = now()`,
		m.ID, m.ClinicID, m.Name, m.Seats)
	switch {
	case pg.IsUniqueViolation(err):
		return domain.Invalid("room.name", domain.RuleRoomNameUnique, "another room of the clinic has this name")
	case err != nil:
		return fmt.Errorf("save room: %w", err)
	}
	return nil
}

const clinicianColumns = `c.id::text, c.clinic_id::text, c.display_name, c.role, c.credentials, c.active,
	COALESCE((SELECT array_agg(a.weekday ORDER BY a.weekday, a.start_time) FROM clinician_availability a WHERE a.clinician_id = c.id), '{}'),
	COALESCE((SELECT array_agg(to_char(a.start_time, 'HH24:MI') ORDER BY a.weekday, a.start_time) FROM clinician_availability a WHERE a.clinician_id = c.id), '{}'),
	COALESCE((SELECT array_agg(to_char(a.end_time, 'HH24:MI') ORDER BY a.weekday, a.start_time) FROM clinician_availability a WHERE a.clinician_id = c.id), '{}')`

func scanClinician(row pgx.Row) (domain.Clinician, error) {
	var c domain.Clinician
	var days []int
	var starts, ends []string
	if err := row.Scan(&c.ID, &c.ClinicID, &c.DisplayName, &c.Role, &c.Credentials, &c.Active, &days, &starts, &ends); err != nil {
		return c, err
	}
	for i := range days {
		c.Availability = append(c.Availability, domain.Window{Weekday: days[i], Start: domain.Clock(starts[i]), End: domain.Clock(ends[i])})
	}
	return c, nil
}

// Clinician reads a clinician with their availability and locks the clinician.
func (r *Config) Clinician(ctx context.Context, tx *bus.Tx, id string) (domain.Clinician, bool, error) {
	return one(tx.QueryRow(ctx, `SELECT `+clinicianColumns+` FROM clinicians c WHERE c.id = $1 FOR UPDATE OF c`, id),
		scanClinician, "clinician")
}

// SaveClinician inserts or replaces a clinician and replaces their availability as a whole.
func (r *Config) SaveClinician(ctx context.Context, tx *bus.Tx, c domain.Clinician) error {
	creds := c.Credentials
	if creds == nil {
		creds = []string{}
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO clinicians (id, clinic_id, display_name, role, credentials, active) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO UPDATE SET display_name = EXCLUDED.display_name, role = EXCLUDED.role,
			credentials = EXCLUDED.credentials, active = EXCLUDED.active, updated_at = now()`,
		c.ID, c.ClinicID, c.DisplayName, c.Role, creds, c.Active); err != nil {
		return fmt.Errorf("save clinician: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM clinician_availability WHERE clinician_id = $1`, c.ID); err != nil {
		return fmt.Errorf("clear availability: %w", err)
	}
	days := make([]int, len(c.Availability))
	starts := make([]string, len(c.Availability))
	ends := make([]string, len(c.Availability))
	for i, w := range c.Availability {
		days[i], starts[i], ends[i] = w.Weekday, string(w.Start), string(w.End)
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO clinician_availability (clinician_id, clinic_id, weekday, start_time, end_time)
		SELECT $1, $5, d, s::time, e::time FROM unnest($2::int[], $3::text[], $4::text[]) AS w (d, s, e)`,
		c.ID, days, starts, ends, c.ClinicID); err != nil {
		return fmt.Errorf("save availability: %w", err)
	}
	return nil
}

// Clinicians lists a clinic's clinicians by name.
func (r *Config) Clinicians(ctx context.Context, clinicID string) ([]domain.Clinician, error) {
	return list(ctx, r.db, scanClinician, "clinicians",
		`SELECT `+clinicianColumns+` FROM clinicians c WHERE c.clinic_id = $1 ORDER BY c.display_name, c.id`, clinicID)
}

const programColumns = `code, name, population, length_weeks, weekly_minimum_minutes`

func scanProgram(row pgx.Row) (domain.Program, error) {
	var p domain.Program
	err := row.Scan(&p.Code, &p.Name, &p.Population, &p.LengthWeeks, &p.WeeklyMinimumMinutes)
	return p, err
}

// Program reads a program and locks it.
func (r *Config) Program(ctx context.Context, tx *bus.Tx, code string) (domain.Program, bool, error) {
	return one(tx.QueryRow(ctx, `SELECT `+programColumns+` FROM programs WHERE code = $1 FOR UPDATE`, code), scanProgram, "program")
}

// SaveProgram inserts or replaces a program.
func (r *Config) SaveProgram(ctx context.Context, tx *bus.Tx, p domain.Program) error {
	if _, err := tx.Exec(ctx, `
		INSERT INTO programs (code, name, population, length_weeks, weekly_minimum_minutes) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, population = EXCLUDED.population,
			length_weeks = EXCLUDED.length_weeks, weekly_minimum_minutes = EXCLUDED.weekly_minimum_minutes, updated_at = now()`,
		p.Code, p.Name, p.Population, p.LengthWeeks, p.WeeklyMinimumMinutes); err != nil {
		return fmt.Errorf("save program: %w", err)
	}
	return nil
}

// Programs lists every program by code.
func (r *Config) Programs(ctx context.Context) ([]domain.Program, error) {
	return list(ctx, r.db, scanProgram, "programs", `SELECT `+programColumns+` FROM programs ORDER BY code`)
}

const trackColumns = `t.id::text, t.clinic_id::text, t.program_code, t.code, t.time_of_day, t.weekdays,
	to_char(t.start_time, 'HH24:MI'), to_char(t.end_time, 'HH24:MI'), t.capacity, COALESCE(t.room_id::text, ''), t.active`

func scanTrackInto(t *domain.Track, extra ...any) []any {
	return append([]any{&t.ID, &t.ClinicID, &t.ProgramCode, &t.Code, &t.TimeOfDay, &t.Weekdays,
		&t.Start, &t.End, &t.Capacity, &t.RoomID, &t.Active}, extra...)
}

func scanTrack(row pgx.Row) (domain.Track, error) {
	var t domain.Track
	err := row.Scan(scanTrackInto(&t)...)
	return t, err
}

// Track reads a track and locks it (the same lock that serialises seat assignment).
func (r *Config) Track(ctx context.Context, tx *bus.Tx, id string) (domain.Track, bool, error) {
	return one(tx.QueryRow(ctx, `SELECT `+trackColumns+` FROM tracks t WHERE t.id = $1 FOR UPDATE`, id), scanTrack, "track")
}

// SaveTrack inserts or replaces a track; a code another track of the clinic has is a violation.
func (r *Config) SaveTrack(ctx context.Context, tx *bus.Tx, t domain.Track) error {
	var room *string
	if t.RoomID != "" {
		room = &t.RoomID
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO tracks (id, clinic_id, program_code, code, time_of_day, weekdays, start_time, end_time, capacity, room_id, active)
		VALUES ($1, $2, $3, $4, $5, $6, $7::text::time, $8::text::time, $9, $10, $11)
		ON CONFLICT (id) DO UPDATE SET time_of_day = EXCLUDED.time_of_day, weekdays = EXCLUDED.weekdays,
			start_time = EXCLUDED.start_time, end_time = EXCLUDED.end_time, capacity = EXCLUDED.capacity,
			room_id = EXCLUDED.room_id, active = EXCLUDED.active, updated_at = now()`,
		t.ID, t.ClinicID, t.ProgramCode, t.Code, t.TimeOfDay, t.Weekdays, string(t.Start), string(t.End), t.Capacity, room, t.Active)
	switch {
	case pg.IsUniqueViolation(err):
		return domain.Invalid("track.track_code", domain.RuleTrackCodeUnique, "another track of the clinic has this code")
	case err != nil:
		return fmt.Errorf("save track: %w", err)
	}
	return nil
}

// RoomTracks lists the active tracks that meet in a room. (UpsertTrack holds the room's row
// lock while it checks and saves, so two tracks cannot take the same time concurrently.)
func (r *Config) RoomTracks(ctx context.Context, tx *bus.Tx, roomID string) ([]domain.Track, error) {
	rows, err := tx.Query(ctx, `SELECT `+trackColumns+` FROM tracks t WHERE t.room_id = $1 AND t.active ORDER BY t.code`, roomID)
	if err != nil {
		return nil, fmt.Errorf("query room tracks: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Track, error) { return scanTrack(row) })
	if err != nil {
		return nil, fmt.Errorf("read room tracks: %w", err)
	}
	return out, nil
}

// Tracks lists a clinic's tracks by code with their fill: enrollments holding a seat (status
// active) and waiting for one (status waitlisted).
func (r *Config) Tracks(ctx context.Context, clinicID string) ([]domain.TrackFill, error) {
	return list(ctx, r.db, func(row pgx.Row) (domain.TrackFill, error) {
		var f domain.TrackFill
		err := row.Scan(scanTrackInto(&f.Track, &f.Enrolled, &f.Waitlisted)...)
		return f, err
	}, "tracks", `
		SELECT `+trackColumns+`,
			(SELECT count(*) FROM enrollments e WHERE e.track_id = t.id AND e.status = 'active'),
			(SELECT count(*) FROM enrollments e WHERE e.track_id = t.id AND e.status = 'waitlisted')
		FROM tracks t WHERE t.clinic_id = $1 ORDER BY t.code`, clinicID)
}

// LinkUntracked gives a newly created track the clinic's enrollments that predate tracks
// (00003_enrollment_seats.sql: track_id NULL) and name its code, so they count against its
// capacity; it returns how many it linked.
func (r *Config) LinkUntracked(ctx context.Context, tx *bus.Tx, t domain.Track) (int64, error) {
	tag, err := tx.Exec(ctx, `UPDATE enrollments SET track_id = $1, program_code = $2
		WHERE clinic_id = $3 AND program_track = $4 AND track_id IS NULL AND status IN ('active', 'waitlisted')`,
		t.ID, t.ProgramCode, t.ClinicID, t.Code)
	if err != nil {
		return 0, fmt.Errorf("link untracked enrollments: %w", err)
	}
	return tag.RowsAffected(), nil
}
