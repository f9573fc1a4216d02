package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/testkit/rlstest"
	"github.com/trellis-health/trellis/services/intake/internal/app"
	"github.com/trellis-health/trellis/services/intake/migrations"
)

// rlsTables are the intake tables that hold clinic data (a clinic_id column), each with the
// column that makes a copy of a row a new row (its key) and a fresh value for it.
var rlsTables = []rlstest.Table{
	{Name: "patients", Fresh: map[string]string{"id": "gen_random_uuid()"}},
	{Name: "episodes", Fresh: map[string]string{"id": "gen_random_uuid()"}},
	{Name: "referrals", Fresh: map[string]string{"id": "gen_random_uuid()"}},
	{Name: "referral_duplicates", Fresh: map[string]string{"other_id": "gen_random_uuid()"}},
	{Name: "referral_status_history", Fresh: map[string]string{"id": "gen_random_uuid()"}},
	{Name: "assessments", Fresh: map[string]string{"id": "gen_random_uuid()"}},
	{Name: "consents", Fresh: map[string]string{"id": "gen_random_uuid()"}},
	{Name: "coverages", Fresh: map[string]string{"id": "gen_random_uuid()"}},
	{Name: "coverage_versions", Fresh: map[string]string{"version": "2"}},
}

// serviceRole is intake's own role (rlstest.ServiceRole) with intake's schema migrated and
// clinics A and B in the clinics table.
func serviceRole(t *testing.T) *rlstest.Role {
	t.Helper()
	r := rlstest.ServiceRole(t, "intake", func(ctx context.Context, pool *pgxpool.Pool) error {
		return pg.Migrate(ctx, pool, "intake", "goose_db_version", migrations.FS, nil)
	})
	for _, c := range []string{rlstest.ClinicA, rlstest.ClinicB} {
		if _, err := r.Pool.Exec(context.Background(), `INSERT INTO clinics (id, name, time_zone) VALUES ($1, 'c', 'UTC')`, c); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// seedClinic writes one row of clinic into every table of rlsTables, in system scope, and
// returns the ids of its patient and referral.
func seedClinic(t *testing.T, store *bus.Store, clinic string) (patient, referral string) {
	t.Helper()
	patient, referral = bus.NewID(), bus.NewID()
	coverage := bus.NewID()
	err := store.InTx(auth.WithSystemScope(context.Background()), func(ctx context.Context, tx *bus.Tx) error {
		for _, q := range []string{
			`INSERT INTO patients (id, clinic_id, given_name, family_name, date_of_birth, contact_email)
				VALUES ($1, $2, 'G', 'F', '1980-01-01', 'p@example.org')`,
			`INSERT INTO episodes (id, patient_id, clinic_id, program_track, start_date, admitted_at, first_contact_at)
				VALUES (gen_random_uuid(), $1, $2, 'adult-evening', '2026-01-05', now(), now())`,
			`INSERT INTO referrals (id, clinic_id, source, given_name, family_name, phone, first_contact_at, created_by, created_at, updated_at)
				VALUES ($3, $2, 'self', 'G', 'F', '+13125550100', now(), 'seed', now(), now())`,
			`INSERT INTO referral_duplicates (referral_id, clinic_id, kind, other_id, other_clinic_id, matched_on)
				VALUES ($3, $2, 'patient', $1, $2, '{phone}')`,
			`INSERT INTO referral_status_history (id, referral_id, clinic_id, to_status, changed_by, changed_at)
				VALUES (gen_random_uuid(), $3, $2, 'new', 'seed', now())`,
			`INSERT INTO assessments (id, referral_id, clinic_id, edition, population, ratings, dimension_notes, withdrawal,
					recommended_level, final_level, assessed_by, assessed_at)
				VALUES (gen_random_uuid(), $3, $2, 'asam-3', 'adult', '{0,0,0,0,0,0}', '{"","","","","",""}', 'no_detox_needed',
					'2.1', '2.1', 'seed', now())`,
			`INSERT INTO consents (id, patient_id, clinic_id, version, scopes, language, effective_from, status, recorded_by, created_at)
				VALUES (gen_random_uuid(), $1, $2, 1, '{treatment}', 'en', now(), 'active', 'seed', now())`,
			`INSERT INTO coverages (id, patient_id, clinic_id, payer_id, member_id, subscriber_relationship, effective_from,
					eligibility, priority, version, updated_at, updated_by, created_at)
				VALUES ($4, $1, $2, 'medicaid-il', 'M1', 'self', '2026-01-01', 'eligible', 'primary', 1, now(), 'seed', now())`,
			`INSERT INTO coverage_versions (coverage_id, version, patient_id, clinic_id, payer_id, plan, member_id, group_number,
					subscriber_relationship, effective_from, eligibility, priority, changed_at, changed_by)
				VALUES ($4, 1, $1, $2, 'medicaid-il', '', 'M1', '', 'self', '2026-01-01', 'eligible', 'primary', now(), 'seed')`,
		} {
			// VALUES (...) becomes SELECT ... FROM the typed parameters, so each statement may use any.
			q = strings.Replace(q, "VALUES (", "SELECT ", 1)
			q = q[:strings.LastIndex(q, ")")] + " FROM (SELECT $1::uuid, $2::uuid, $3::uuid, $4::uuid) p"
			if _, err := tx.Exec(ctx, q, patient, clinic, referral, coverage); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return patient, referral
}

// With intake's own role (not a superuser, no BYPASSRLS, the tables' owner) the database, not
// the code, keeps each clinic's rows to callers of that clinic: in a transaction scoped to
// clinic A every table shows only A's rows, B's rows cannot be counted, updated or deleted, a
// row cannot be written to (or moved into) clinic B, and without a scope nothing is visible; a
// role granted SELECT sees nothing, the administrative role both clinics' patients.
func TestRowLevelSecurityIsolatesClinics(t *testing.T) {
	r := serviceRole(t)
	rlstest.CheckCatalog(t, r.Pool, rlstest.Names(rlsTables)...)
	store := r.Store()
	seedClinic(t, store, rlstest.ClinicA)
	seedClinic(t, store, rlstest.ClinicB)
	rlstest.OtherRoles(t, r, "patients", rlsTables...)
	rlstest.Probe(t, store, r.Pool, rlsTables...)
}

// The repository, called directly with a caller of clinic A (no app check in between), does
// not get clinic B's referral from the database, guessed id or not; a caller of B does, and a
// listing of "every clinic" in A's scope holds only A's referrals.
func TestRowLevelSecurityStopsGuessedIDs(t *testing.T) {
	store := serviceRole(t).Store()
	_, refA := seedClinic(t, store, rlstest.ClinicA)
	_, refB := seedClinic(t, store, rlstest.ClinicB)
	repo := Repository{Crypt: fieldcrypt.Dev()}
	get := func(ctx context.Context, id string) (found bool) {
		t.Helper()
		err := store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
			r, err := repo.Referral(ctx, tx, id, true)
			found = r != nil
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return found
	}
	if get(rlstest.Caller(rlstest.ClinicA), refB) {
		t.Error("clinic A's scope read clinic B's referral")
	}
	if !get(rlstest.Caller(rlstest.ClinicA), refA) || !get(rlstest.Caller(rlstest.ClinicB), refB) {
		t.Error("a clinic's own referral is not found")
	}
	if !get(rlstest.Caller(auth.AllClinics), refB) || !get(rlstest.Caller(rlstest.ClinicA, rlstest.ClinicB), refB) {
		t.Error("a caller of every clinic, or of A and B, does not find B's referral")
	}
	if get(rlstest.Caller("not-a-clinic-id'; --"), refA) {
		t.Error("a caller whose clinics are not clinic ids sees a referral")
	}
	var listed []string
	if err := store.InTx(rlstest.Caller(rlstest.ClinicA), func(ctx context.Context, tx *bus.Tx) error {
		rs, err := repo.ListReferrals(ctx, tx, app.ReferralQuery{AllClinics: true, Limit: 10})
		for _, r := range rs {
			listed = append(listed, r.ClinicID)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0] != rlstest.ClinicA {
		t.Errorf("every clinic listed in A's scope: clinics %v, want only A", listed)
	}
}

// The policies' conditions are tested cheapest first (migration 00009): a statement in system
// scope computes only the "*" test, and one in a clinic's scope over that clinic's rows also the
// scope's ids, never the exemption's catalog lookup (the costly one).
func TestRowLevelSecurityChecksTheExemptionLast(t *testing.T) {
	store := serviceRole(t).Store()
	_, refA := seedClinic(t, store, rlstest.ClinicA)
	rlstest.Conditions(t, store, `SELECT id FROM referrals WHERE id = $1`, refA)
}
