package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"

	"github.com/trellis-health/trellis/services/billing/internal/app"
	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// An authorization's used units are moved by the charges' triggers (migration 00014), not
// recounted: after every kind of change (new charges, a redelivery, a correction that voids,
// one that bills again, one that moves a session to another day, a charge submitted then
// voided, holds for consent, a charge moved to another authorization or deleted, units given
// back and taken by a held day) they equal the units of the charges that are not void.
func TestAuthorizationUsedUnitsFollowCharges(t *testing.T) {
	store, _ := benchPool(t)
	repo := NewCharges(store, fieldcrypt.Dev())
	charges := app.NewCharges(store, repo, app.NewPatientLedger(store, NewLedger(), app.New(NewAccounts(store)), 720*time.Hour))
	seedAttendanceBench(t, store, charges, repo)
	ctx := auth.WithSystemScope(context.Background())
	patient := benchPatient(0)

	inTx := func(fn func(ctx context.Context, tx *bus.Tx) error) {
		t.Helper()
		if err := store.InTx(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	attend := func(appointment, date string, status string, version int32) {
		t.Helper()
		a := domain.Attendance{AppointmentID: appointment, PatientID: patient, ClinicID: benchClinic,
			EnrollmentID: "0190b000-0000-7000-8000-e00000000000", ProgramCode: "iop", Service: domain.ServiceGroup,
			ClinicianID: "clin-1", SessionID: appointment, LocalDate: date, StartsAt: time.Date(2026, 2, 2, 14, 0, 0, 0, time.UTC),
			Status: status, MinutesAttended: 60, ScheduledMinutes: 60, Version: version, SourceEventID: bus.NewID()}
		if status == domain.AttendAbsent {
			a.MinutesAttended = 0
		}
		inTx(func(ctx context.Context, tx *bus.Tx) error {
			_, err := charges.RecordAttendance(ctx, tx, a)
			return err
		})
	}
	// want checks every authorization of the patient: its used units, and that they are the
	// units of its charges that are not void.
	want := func(step string, used ...int32) {
		t.Helper()
		var got, live []int32
		if err := store.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
			rows, _ := tx.Query(ctx, `
				SELECT a.used_units, (SELECT coalesce(sum(authorized_units), 0)::int FROM charges
					WHERE authorization_id = a.id AND status <> 'void')
				FROM authorizations a WHERE patient_id = $1 ORDER BY starts_on, id`, patient)
			var u, l int32
			_, err := pgx.ForEachRow(rows, []any{&u, &l}, func() error {
				got, live = append(got, u), append(live, l)
				return nil
			})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(used) || fmt.Sprint(live) != fmt.Sprint(used) {
			t.Fatalf("%s: used units %v, units of the charges that are not void %v; want %v", step, got, live, used)
		}
	}
	appt := func(n int) string { return fmt.Sprintf("0190b000-0000-7000-8000-00000000a%03d", n) }
	const present, absent = domain.AttendPresent, domain.AttendAbsent

	want("no charges", 0)
	attend(appt(1), "2026-02-02", present, 1)
	attend(appt(2), "2026-02-02", present, 1)
	attend(appt(3), "2026-02-03", present, 1)
	want("three sessions", 3)
	attend(appt(1), "2026-02-02", present, 1) // a redelivery
	want("a redelivery", 3)
	attend(appt(2), "2026-02-02", absent, 2) // voided
	want("a session corrected to absent", 2)
	attend(appt(2), "2026-02-02", present, 3) // billed again
	want("a session corrected back to present", 3)
	attend(appt(3), "2026-02-04", present, 2) // moved: voided on the 3rd, billed on the 4th
	want("a session moved to another day", 3)
	days := func() string {
		t.Helper()
		var out []string
		if err := store.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
			rows, _ := tx.Query(ctx, `SELECT service_date::text || ' ' || status FROM charges
				WHERE appointment_ids = ARRAY[$1::uuid] ORDER BY created_at, status`, appt(3))
			var err error
			out, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(out)
	}
	if got := days(); got != "[2026-02-03 void 2026-02-04 ready]" {
		t.Fatalf("the moved session's charges: %s, want the 3rd's void and the 4th's ready", got)
	}
	attend(appt(3), "2026-02-03", present, 1) // an older version, replayed
	if got := days(); got != "[2026-02-03 void 2026-02-04 ready]" {
		t.Fatalf("after a replay of an older version, the moved session's charges: %s", got)
	}
	want("an older version replayed", 3)

	// Claims and remittances change statuses that are not void: no move. A submitted charge
	// voided by a correction gives its unit back.
	inTx(func(ctx context.Context, tx *bus.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE charges SET status = 'submitted' WHERE appointment_ids = ARRAY[$1::uuid] AND status = 'ready'`, appt(1))
		return err
	})
	want("a charge submitted", 3)
	attend(appt(1), "2026-02-02", absent, 2)
	want("a submitted charge voided", 2)

	// Held for consent: the charges keep their units.
	inTx(func(ctx context.Context, tx *bus.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT id::text FROM consents WHERE patient_id = $1`, patient)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(ids) == 0 {
			return fmt.Errorf("consents %v: %w", ids, err)
		}
		for _, id := range ids {
			if _, err := charges.RevokeConsent(ctx, tx, domain.Consent{ID: id, PatientID: patient, ClinicID: benchClinic,
				RevokedAt: time.Now(), SourceEventID: bus.NewID()}); err != nil {
				return err
			}
		}
		return nil
	})
	var held int
	if err := store.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM charges WHERE patient_id = $1 AND status = 'held' AND hold_reason = 'consent'`,
			patient).Scan(&held)
	}); err != nil {
		t.Fatal(err)
	}
	if held != 2 {
		t.Fatalf("%d charges held for consent, want 2", held)
	}
	want("charges held for consent", 2)

	// A second authorization: a charge moved to it, then deleted, by hand.
	second := bus.NewID()
	if _, err := charges.UpsertAuthorization(ctx, allClinics{}, domain.Authorization{ID: second, PatientID: patient,
		ClinicID: benchClinic, PayerID: "bench-payer", Service: domain.ServiceGroup, Number: "B", AuthorizedUnits: 10,
		StartsOn: "2026-01-02", EndsOn: "2026-12-31"}); err != nil {
		t.Fatal(err)
	}
	want("a second authorization", 2, 0)
	inTx(func(ctx context.Context, tx *bus.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE charges SET authorization_id = $1, authorized_units = 1
			WHERE appointment_ids = ARRAY[$2::uuid] AND status <> 'void'`, second, appt(3))
		return err
	})
	want("a charge moved to the second authorization", 1, 1)
	inTx(func(ctx context.Context, tx *bus.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM charges WHERE appointment_ids = ARRAY[$1::uuid] AND status <> 'void'`, appt(3))
		return err
	})
	want("a charge deleted", 1, 0)
}

// Units given back are taken by a day held for want of units, in the same transaction, and
// the used units stay exact (migration 00014's triggers, with what the recomputation reads).
func TestAuthorizationUnitsGivenBackAreTaken(t *testing.T) {
	store, _ := benchPool(t)
	repo := NewCharges(store, fieldcrypt.Dev())
	charges := app.NewCharges(store, repo, app.NewPatientLedger(store, NewLedger(), app.New(NewAccounts(store)), 720*time.Hour))
	seedAttendanceBench(t, store, charges, repo)
	ctx := auth.WithSystemScope(context.Background())
	patient := benchPatient(1)
	var authID string
	if err := store.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT id::text FROM authorizations WHERE patient_id = $1`, patient).Scan(&authID)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := charges.UpsertAuthorization(ctx, allClinics{}, domain.Authorization{ID: authID, PatientID: patient,
		ClinicID: benchClinic, PayerID: "bench-payer", Service: domain.ServiceGroup, Number: "A1", AuthorizedUnits: 2,
		StartsOn: "2026-01-01", EndsOn: "2027-12-31"}); err != nil {
		t.Fatal(err)
	}
	attend := func(n int, date, status string, version int32) {
		t.Helper()
		appointment := fmt.Sprintf("0190b000-0000-7000-8000-00000000b%03d", n)
		if err := store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
			_, err := charges.RecordAttendance(ctx, tx, domain.Attendance{AppointmentID: appointment, PatientID: patient,
				ClinicID: benchClinic, EnrollmentID: "0190b000-0000-7000-8000-e00000000001", ProgramCode: "iop",
				Service: domain.ServiceGroup, ClinicianID: "clin-1", SessionID: appointment, LocalDate: date,
				StartsAt: time.Date(2026, 2, 2, 14, 0, 0, 0, time.UTC), Status: status, MinutesAttended: 60,
				ScheduledMinutes: 60, Version: version, SourceEventID: bus.NewID()})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	state := func() (used, live int32, rows []string) {
		t.Helper()
		if err := store.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
			if err := tx.QueryRow(ctx, `SELECT used_units, (SELECT coalesce(sum(authorized_units), 0)::int FROM charges
				WHERE authorization_id = $1 AND status <> 'void') FROM authorizations WHERE id = $1`, authID).Scan(&used, &live); err != nil {
				return err
			}
			r, _ := tx.Query(ctx, `SELECT service_date::text || ' ' || status || ' ' || hold_reason FROM charges
				WHERE patient_id = $1 AND status <> 'void' ORDER BY service_date`, patient)
			var err error
			rows, err = pgx.CollectRows(r, pgx.RowTo[string])
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return used, live, rows
	}
	attend(1, "2026-02-02", domain.AttendPresent, 1)
	attend(2, "2026-02-03", domain.AttendPresent, 1)
	attend(3, "2026-02-04", domain.AttendPresent, 1)
	if used, live, rows := state(); used != 2 || live != 2 || fmt.Sprint(rows) != "[2026-02-02 ready  2026-02-03 ready  2026-02-04 held authorization: units exhausted]" {
		t.Fatalf("before the void: used %d, live %d, charges %q", used, live, rows)
	}
	attend(1, "2026-02-02", domain.AttendAbsent, 2)
	if used, live, rows := state(); used != 2 || live != 2 || fmt.Sprint(rows) != "[2026-02-03 ready  2026-02-04 ready ]" {
		t.Fatalf("after the void: used %d, live %d, charges %q", used, live, rows)
	}
}
