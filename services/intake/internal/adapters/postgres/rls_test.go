package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/testkit"
	"github.com/trellis-health/trellis/services/intake/internal/app"
	"github.com/trellis-health/trellis/services/intake/migrations"
)

// rlsTables are the intake tables that hold clinic data (a clinic_id column), each with the
// column that makes a copy of a row a new row (its key) and a fresh value for it.
var rlsTables = []struct{ name, key, fresh string }{
	{"patients", "id", "gen_random_uuid()"},
	{"episodes", "id", "gen_random_uuid()"},
	{"referrals", "id", "gen_random_uuid()"},
	{"referral_duplicates", "other_id", "gen_random_uuid()"},
	{"referral_status_history", "id", "gen_random_uuid()"},
	{"assessments", "id", "gen_random_uuid()"},
	{"consents", "id", "gen_random_uuid()"},
	{"coverages", "id", "gen_random_uuid()"},
	{"coverage_versions", "version", "2"},
}

const (
	rlsClinicA = "0190a000-0000-7000-8000-00000000000a"
	rlsClinicB = "0190a000-0000-7000-8000-00000000000b"
)

// serviceRole creates a login role like the one pkg/pg.Provision gives a service (no
// superuser, no BYPASSRLS) owning schema intake of a fresh database, migrates intake's schema
// as that role, and returns a pool connected as it (no clinic scope set), the role's name and
// the database's URL as the administrative role. The role is dropped when t ends.
func serviceRole(t *testing.T) (*pgxpool.Pool, string, string) {
	t.Helper()
	ctx := context.Background()
	adminURL := testkit.Database(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	role, password := "rls_intake_"+hex.EncodeToString(b), hex.EncodeToString(b)+"pw"
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var db string
	if err := admin.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '%s'", role, password),
		fmt.Sprintf("GRANT %s TO CURRENT_USER", role),
		fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s", db, role),
		fmt.Sprintf("CREATE SCHEMA intake AUTHORIZATION %s", role),
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), adminURL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP OWNED BY "+role)
		_, _ = c.Exec(context.Background(), "DROP ROLE "+role)
	})
	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, password)
	pool, err := pg.Open(ctx, u.String(), "intake", 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := pg.Migrate(ctx, pool, "intake", "goose_db_version", migrations.FS, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	return pool, role, adminURL
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

// principalCtx is a caller of clinics (as pkg/rpc puts the token's principal in the context).
func principalCtx(clinics ...string) context.Context {
	return auth.WithPrincipal(context.Background(), &auth.Principal{Subject: "rls-test", Roles: []string{"admin"}, Clinics: clinics})
}

// With intake's own role (not a superuser, no BYPASSRLS, the tables' owner) the database, not
// the code, keeps each clinic's rows to callers of that clinic: in a transaction scoped to
// clinic A every table shows only A's rows, B's rows cannot be counted, updated or deleted, a
// row cannot be written to (or moved into) clinic B, and without a scope nothing is visible.
func TestRowLevelSecurityIsolatesClinics(t *testing.T) {
	pool, role, adminURL := serviceRole(t)
	ctx := context.Background()
	var super, bypass bool
	if err := pool.QueryRow(ctx, `SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`).Scan(&super, &bypass); err != nil {
		t.Fatal(err)
	}
	if super || bypass {
		t.Fatalf("role %s: superuser %v, bypassrls %v: the test would prove nothing", role, super, bypass)
	}

	// Every table of the schema with a clinic_id column has RLS enabled and forced and a
	// policy: a new table holding clinic data without one fails here.
	rows, err := pool.Query(ctx, `
		SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner) = current_user,
			(SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'intake' AND c.relkind = 'r'
			AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'clinic_id' AND NOT a.attisdropped)
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for rows.Next() {
		var name string
		var enabled, forced, owned bool
		var policies int
		if err := rows.Scan(&name, &enabled, &forced, &owned, &policies); err != nil {
			t.Fatal(err)
		}
		if !enabled || !forced || !owned || policies == 0 {
			t.Errorf("table %s: row level security %v, forced %v, owned by the service role %v, %d policies", name, enabled, forced, owned, policies)
		}
		covered[name] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, tb := range rlsTables {
		if !covered[tb.name] {
			t.Errorf("table %s is not among the tables with clinic_id", tb.name)
		}
	}
	if len(covered) != len(rlsTables) {
		t.Errorf("tables with clinic_id: %v; the test covers %d", covered, len(rlsTables))
	}

	store := bus.NewStore(pool, "intake")
	store.EnableClinicScope()
	for _, c := range []string{rlsClinicA, rlsClinicB} {
		if _, err := pool.Exec(ctx, `INSERT INTO clinics (id, name, time_zone) VALUES ($1, 'c', 'UTC')`, c); err != nil {
			t.Fatal(err)
		}
	}
	seedClinic(t, store, rlsClinicA)
	seedClinic(t, store, rlsClinicB)
	otherRoles(t, adminURL, role)

	// errRollback ends a transaction that changed something, so each probe starts from the seed.
	errRollback := errors.New("rollback")
	asA := principalCtx(rlsClinicA)
	for _, tb := range rlsTables {
		t.Run(tb.name, func(t *testing.T) {
			var all, ofB int
			if err := store.Read(auth.WithSystemScope(ctx), func(ctx context.Context, tx pgx.Tx) error {
				return tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE clinic_id = $1) FROM `+tb.name, rlsClinicB).Scan(&all, &ofB)
			}); err != nil || all != 2 || ofB != 1 {
				t.Fatalf("system scope: %d rows, %d of B (%v); want 2 and 1", all, ofB, err)
			}
			// Clinic A's scope: A's row only, whatever the query asks for.
			if err := store.Read(asA, func(ctx context.Context, tx pgx.Tx) error {
				return tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE clinic_id = $1) FROM `+tb.name, rlsClinicB).Scan(&all, &ofB)
			}); err != nil || all != 1 || ofB != 0 {
				t.Errorf("clinic A's scope: %d rows, %d of B (%v); want 1 and 0", all, ofB, err)
			}
			var n int
			if err := store.Read(asA, func(ctx context.Context, tx pgx.Tx) error {
				return tx.QueryRow(ctx, `SELECT count(*) FROM `+tb.name+` WHERE clinic_id = $1`, rlsClinicB).Scan(&n)
			}); err != nil || n != 0 {
				t.Errorf("clinic A's scope counts %d of B's rows (%v)", n, err)
			}
			for _, q := range []string{
				`UPDATE ` + tb.name + ` SET clinic_id = clinic_id WHERE clinic_id = $1`,
				`DELETE FROM ` + tb.name + ` WHERE clinic_id = $1`,
			} {
				var affected int64
				err := store.InTx(asA, func(ctx context.Context, tx *bus.Tx) error {
					tag, err := tx.Exec(ctx, q, rlsClinicB)
					if err != nil {
						return err
					}
					affected = tag.RowsAffected()
					return errRollback
				})
				if !errors.Is(err, errRollback) || affected != 0 {
					t.Errorf("%s in clinic A's scope: %d rows affected (%v), want 0", q, affected, err)
				}
			}
			// Writing a row of clinic B (a copy of A's row under a new key) or moving A's row
			// to B is refused by the policy's WITH CHECK.
			for _, q := range []string{
				`INSERT INTO ` + tb.name + ` SELECT (jsonb_populate_record(NULL::` + tb.name + `, to_jsonb(x) ||
					jsonb_build_object('clinic_id', $1::uuid, '` + tb.key + `', ` + tb.fresh + `))).* FROM ` + tb.name + ` x`,
				`UPDATE ` + tb.name + ` SET clinic_id = $1`,
			} {
				err := store.InTx(asA, func(ctx context.Context, tx *bus.Tx) error {
					_, err := tx.Exec(ctx, q, rlsClinicB)
					return err
				})
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
					t.Errorf("%s in clinic A's scope: %v, want a row-level security violation (42501)", q, err)
				}
			}
			// No principal and no system scope: nothing, in a transaction and outside one.
			if err := store.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
				return tx.QueryRow(ctx, `SELECT count(*) FROM `+tb.name).Scan(&n)
			}); err != nil || n != 0 {
				t.Errorf("no scope: %d rows (%v), want 0", n, err)
			}
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+tb.name).Scan(&n); err != nil || n != 0 {
				t.Errorf("a bare query without a scope: %d rows (%v), want 0", n, err)
			}
		})
	}
}

// otherRoles checks who else the policies bind, without a clinic scope: a role merely granted
// SELECT on the tables (a reporting role, or a service role when another role owns the
// tables) sees nothing; the administrative role, a member of the owner that could take the
// owner's role and drop the policies anyway, is not bound (it sees both clinics' patients).
func otherRoles(t *testing.T, adminURL, owner string) {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var n int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM intake.patients`).Scan(&n); err != nil || n != 2 {
		t.Errorf("the administrative role sees %d patients (%v), want 2", n, err)
	}
	reader, password := owner+"_reader", "reader-pw"
	var db string
	if err := admin.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '%s'", reader, password),
		fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s", db, reader),
		fmt.Sprintf("GRANT USAGE ON SCHEMA intake TO %s", reader),
		fmt.Sprintf("GRANT SELECT ON ALL TABLES IN SCHEMA intake TO %s", reader),
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), adminURL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP OWNED BY "+reader)
		_, _ = c.Exec(context.Background(), "DROP ROLE "+reader)
	})
	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(reader, password)
	rc, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close(ctx)
	for _, tb := range rlsTables {
		if err := rc.QueryRow(ctx, `SELECT count(*) FROM intake.`+tb.name).Scan(&n); err != nil || n != 0 {
			t.Errorf("a role granted SELECT sees %d rows of %s without a scope (%v), want 0", n, tb.name, err)
		}
	}
}

// The repository, called directly with a caller of clinic A (no app check in between), does
// not get clinic B's referral from the database, guessed id or not; a caller of B does, and a
// listing of "every clinic" in A's scope holds only A's referrals.
func TestRowLevelSecurityStopsGuessedIDs(t *testing.T) {
	pool, _, _ := serviceRole(t)
	ctx := context.Background()
	store := bus.NewStore(pool, "intake")
	store.EnableClinicScope()
	for _, c := range []string{rlsClinicA, rlsClinicB} {
		if _, err := pool.Exec(ctx, `INSERT INTO clinics (id, name, time_zone) VALUES ($1, 'c', 'UTC')`, c); err != nil {
			t.Fatal(err)
		}
	}
	_, refA := seedClinic(t, store, rlsClinicA)
	_, refB := seedClinic(t, store, rlsClinicB)
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
	if get(principalCtx(rlsClinicA), refB) {
		t.Error("clinic A's scope read clinic B's referral")
	}
	if !get(principalCtx(rlsClinicA), refA) || !get(principalCtx(rlsClinicB), refB) {
		t.Error("a clinic's own referral is not found")
	}
	if !get(principalCtx(auth.AllClinics), refB) || !get(principalCtx(rlsClinicA, rlsClinicB), refB) {
		t.Error("a caller of every clinic, or of A and B, does not find B's referral")
	}
	if get(principalCtx("not-a-clinic-id'; --"), refA) {
		t.Error("a caller whose clinics are not clinic ids sees a referral")
	}
	var listed []string
	if err := store.InTx(principalCtx(rlsClinicA), func(ctx context.Context, tx *bus.Tx) error {
		rs, err := repo.ListReferrals(ctx, tx, app.ReferralQuery{AllClinics: true, Limit: 10})
		for _, r := range rs {
			listed = append(listed, r.ClinicID)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0] != rlsClinicA {
		t.Errorf("every clinic listed in A's scope: clinics %v, want only A", listed)
	}
}

// The policies' conditions are tested cheapest first (migration 00009): a statement in system
// scope computes only the "*" test, and one in a clinic's scope over that clinic's rows also the
// scope's ids, never the exemption's catalog lookup (the costly one).
func TestRowLevelSecurityChecksTheExemptionLast(t *testing.T) {
	pool, _, _ := serviceRole(t)
	ctx := context.Background()
	store := bus.NewStore(pool, "intake")
	store.EnableClinicScope()
	if _, err := pool.Exec(ctx, `INSERT INTO clinics (id, name, time_zone) VALUES ($1, 'c', 'UTC')`, rlsClinicA); err != nil {
		t.Fatal(err)
	}
	_, refA := seedClinic(t, store, rlsClinicA)
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want int
	}{
		{"system scope", auth.WithSystemScope(ctx), 1},
		{"clinic A's scope, A's row", principalCtx(rlsClinicA), 2},
	} {
		err := store.InTx(tc.ctx, func(ctx context.Context, tx *bus.Tx) error {
			if got := testkit.InitPlansRun(t, ctx, tx, `SELECT id FROM referrals WHERE id = $1`, refA); got != tc.want {
				t.Errorf("%s: %d of the policy's conditions computed, want %d", tc.name, got, tc.want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
