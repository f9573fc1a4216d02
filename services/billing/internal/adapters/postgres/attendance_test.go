package postgres

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"

	"github.com/trellis-health/trellis/services/billing/internal/app"
	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// Two attendance events of one patient applied at the same time (two partitions' or an API
// call's transactions): the second waits for the first's patient lock, taken with the upsert
// in one round trip, so the authorization's used units count both charges. Without the lock
// the second would recount before the first committed and keep 1.
func TestConcurrentAttendanceOfAPatientIsSerialized(t *testing.T) {
	store, _ := benchPool(t)
	repo := NewCharges(store, fieldcrypt.Dev())
	charges := app.NewCharges(store, repo, app.NewPatientLedger(store, NewLedger(), app.New(NewAccounts(store)), 720*time.Hour))
	seedAttendanceBench(t, store, charges, repo)
	ctx := auth.WithSystemScope(context.Background())
	first, second := benchAttendance(0), benchAttendance(benchPatients) // patient 0's two sessions of a day

	applied, release := make(chan struct{}), make(chan struct{})
	errFirst, errSecond := make(chan error, 1), make(chan error, 1)
	// The first transaction applies its event and stays open until released.
	go func() {
		errFirst <- store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
			if _, err := charges.RecordAttendance(ctx, tx, first); err != nil {
				return err
			}
			close(applied)
			<-release
			return nil
		})
	}()
	select {
	case <-applied:
	case err := <-errFirst:
		t.Fatal(err)
	}
	go func() {
		errSecond <- store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
			_, err := charges.RecordAttendance(ctx, tx, second)
			return err
		})
	}()
	select {
	case err := <-errSecond:
		t.Fatalf("the second event's transaction ended (%v) while the first held the patient's lock", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	if err := <-errFirst; err != nil {
		t.Fatal(err)
	}
	if err := <-errSecond; err != nil {
		t.Fatal(err)
	}
	var used, live int
	if err := store.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT used_units FROM authorizations WHERE patient_id = $1`, first.PatientID).Scan(&used); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT coalesce(sum(authorized_units), 0) FROM charges WHERE patient_id = $1 AND status <> 'void'`,
			first.PatientID).Scan(&live)
	}); err != nil {
		t.Fatal(err)
	}
	if used != 2 || live != 2 {
		t.Fatalf("used units = %d, units of live charges = %d, want 2 and 2", used, live)
	}
}

// A costs correction that moves an appointment to another session and day recomputes the
// session and the patient-day it left (gone when nothing is left) and the ones it joined; a
// replay of an older version changes nothing.
func TestCostsCorrectionMovingAnAppointment(t *testing.T) {
	store, _ := benchPool(t)
	costs := NewCosts(store)
	ctx := auth.WithSystemScope(context.Background())
	const patient, other = "0190b000-0000-7000-8000-0000000000a1", "0190b000-0000-7000-8000-0000000000a2"
	fact := func(appointment, p, session, date string, minutes, version int32) domain.AttendanceFact {
		return domain.AttendanceFact{AppointmentID: appointment, PatientID: p, ClinicID: benchClinic, ProgramCode: "iop",
			ClinicianID: "clin-1", SessionKey: session, LocalDate: date, AttendedMinutes: minutes, ScheduledMinutes: minutes,
			Version: version, SourceEventID: bus.NewID()}
	}
	apply := func(f domain.AttendanceFact) bool {
		t.Helper()
		var applied bool
		if err := store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) (err error) {
			applied, err = costs.ApplyAttendance(ctx, tx, f)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return applied
	}
	state := func() (sessions, days []string) {
		t.Helper()
		if err := store.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
			rows, _ := tx.Query(ctx, `SELECT session_key || ' ' || scheduled_minutes FROM delivered_sessions ORDER BY 1`)
			var err error
			if sessions, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				return err
			}
			rows, _ = tx.Query(ctx, `SELECT right(patient_id::text, 2) || ' ' || local_date || ' ' || attended_minutes FROM patient_days ORDER BY 1`)
			days, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return sessions, days
	}
	const moved, stays = "0190b000-0000-7000-8000-000000000101", "0190b000-0000-7000-8000-000000000102"
	if !apply(fact(moved, patient, "s1", "2026-03-02", 90, 1)) || !apply(fact(stays, other, "s1", "2026-03-02", 60, 1)) {
		t.Fatal("first versions not applied")
	}
	if s, d := state(); !slices.Equal(s, []string{"s1 90"}) || !slices.Equal(d, []string{"a1 2026-03-02 90", "a2 2026-03-02 60"}) {
		t.Fatalf("before the correction: sessions %v, days %v", s, d)
	}
	if !apply(fact(moved, patient, "s2", "2026-03-03", 120, 2)) {
		t.Fatal("correction not applied")
	}
	wantS, wantD := []string{"s1 60", "s2 120"}, []string{"a1 2026-03-03 120", "a2 2026-03-02 60"}
	if s, d := state(); !slices.Equal(s, wantS) || !slices.Equal(d, wantD) {
		t.Fatalf("after the correction: sessions %v, days %v; want %v, %v", s, d, wantS, wantD)
	}
	if apply(fact(moved, patient, "s1", "2026-03-02", 90, 1)) {
		t.Fatal("an older version was applied")
	}
	if s, d := state(); !slices.Equal(s, wantS) || !slices.Equal(d, wantD) {
		t.Fatalf("after a replay: sessions %v, days %v; want %v, %v", s, d, wantS, wantD)
	}
}
