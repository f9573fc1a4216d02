package store

import (
	"context"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/testkit"
	"github.com/trellis-health/trellis/pkg/testkit/rlstest"
	"github.com/trellis-health/trellis/services/dashboard/migrations"
)

// rollupTables are migration 00008's rollups.
var rollupTables = []string{"attendance_days", "attendance_weekly", "charge_days", "charge_weekly", "claim_days", "claim_weekly",
	"program_weeks", "minimum_days", "minimum_weekly", "census_days", "census_weekly", "admission_days", "admission_weekly",
	"admission_samples", "hold_counts"}

// rollups is every rollup's rows that count (a row summing to nothing is no row), as text.
func rollups(t *testing.T, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	zero := map[string]string{"attendance_days": "sessions <> 0", "attendance_weekly": "sessions <> 0", "charge_days": "amount_cents <> 0",
		"charge_weekly": "amount_cents <> 0", "claim_days": "(submitted_cents, submitted_paid_cents, submitted_denied_cents, adjudicated) <> (0, 0, 0, 0)",
		"claim_weekly": "(submitted_cents, submitted_paid_cents, submitted_denied_cents, adjudicated) <> (0, 0, 0, 0)",
		"minimum_days": "(weeks, met) <> (0, 0)", "minimum_weekly": "(weeks, met) <> (0, 0)", "census_days": "delta <> 0",
		"census_weekly": "delta <> 0", "admission_days": "admitted <> 0", "admission_weekly": "admitted <> 0", "hold_counts": "charges <> 0"}
	out := map[string]string{}
	for _, tb := range rollupTables {
		cond := zero[tb]
		if cond == "" {
			cond = "true"
		}
		var rows string
		if err := pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(x::text, E'\n' ORDER BY x::text), '') FROM `+tb+` x WHERE `+cond).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		out[tb] = rows
	}
	return out
}

// Migration 00008 fills the rollups from the rows already projected: on a read model of the
// previous release, the rollups it leaves equal those the triggers build when the same rows are
// projected again (every row removed, then written back), and they are not empty.
func TestRollupsMigrationFillsThemFromExistingRows(t *testing.T) {
	ctx := context.Background()
	// In every clinic's scope (the policies bind the tables' owner), as a replay would write.
	pool, err := pg.Open(ctx, rlstest.SystemURL(t, testkit.Database(t)), "dashboard", 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS dashboard"); err != nil {
		t.Fatal(err)
	}
	before := fstest.MapFS{}
	entries, err := fs.ReadDir(migrations.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".sql") || e.Name() >= "00008_" {
			continue
		}
		b, err := fs.ReadFile(migrations.FS, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		before[e.Name()] = &fstest.MapFile{Data: b}
	}
	if err := pg.Migrate(ctx, pool, "dashboard", "goose_db_version", before, nil); err != nil {
		t.Fatal(err)
	}
	// The previous release's rows: 3 clinics, two programs (one of unknown length), 60
	// enrollments (some ended), their sessions (absent now and then), charges (some held, some
	// void), claims and admissions.
	for _, q := range []string{
		`INSERT INTO programs VALUES ('iop', 540, 6, now()), ('open', 300, 0, now())`,
		`INSERT INTO clinics SELECT ('0190a000-0000-7000-8000-' || lpad(to_hex(c), 12, '0'))::uuid, 'Clinic ' || c,
			(ARRAY['America/Chicago', 'Asia/Tokyo', ''])[c], now() FROM generate_series(1, 3) c`,
		`INSERT INTO tracks SELECT gen_random_uuid(), clinic_id, 'T' || p, p, 10, true, now() FROM clinics, unnest(ARRAY['iop', 'open']) p`,
		`INSERT INTO enrollments (enrollment_id, clinic_id, track_id, patient_id, status, start_date, ended_at, updated_at, seated_at)
			SELECT gen_random_uuid(), t.clinic_id, t.track_id, gen_random_uuid(), CASE WHEN n % 4 = 0 THEN 'ended' ELSE 'active' END,
				current_date - 3 * n, CASE WHEN n % 4 = 0 THEN now() - interval '1 day' * n END, now(), now() - interval '3 days' * n - interval '20 hours'
			FROM tracks t, generate_series(1, 10) n`,
		`INSERT INTO attendance SELECT gen_random_uuid(), clinic_id, enrollment_id, track_id, CASE WHEN d % 5 = 0 THEN 'absent' ELSE 'present' END,
				CASE WHEN d % 5 = 0 THEN 0 ELSE 180 END, 180, start_date + d, 1
			FROM enrollments, generate_series(0, 40, 2) d WHERE start_date + d <= current_date`,
		`INSERT INTO charges SELECT gen_random_uuid(), clinic_id, 'medicaid', 25000, local_date,
				(ARRAY['submitted', 'held', 'void', 'submitted'])[1 + get_byte(uuid_send(appointment_id), 0) % 4], 'no_auth: x', now()
			FROM attendance WHERE status = 'present'`,
		`INSERT INTO claims (claim_id, clinic_id, payer_id, total_cents, paid_cents, contractual_cents, status, submitted_at, status_at, adjudicated_at, ever_denied)
			SELECT gen_random_uuid(), clinic_id, 'medicaid', 75000, CASE WHEN n % 3 = 0 THEN 0 ELSE 60000 END, 500,
				CASE WHEN n % 3 = 0 THEN 'denied' WHEN n % 3 = 1 THEN 'paid' ELSE 'submitted' END, now() - interval '5 hours' * n, now(),
				CASE WHEN n % 3 <> 2 THEN now() - interval '2 hours' * n END, n % 3 = 0
			FROM clinics, generate_series(1, 30) n`,
		`INSERT INTO admissions SELECT gen_random_uuid(), clinic_id, patient_id, seated_at - interval '3 days', seated_at, start_date FROM enrollments`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q[:40], err)
		}
	}
	if err := pg.Migrate(ctx, pool, "dashboard", "goose_db_version", migrations.FS, nil); err != nil {
		t.Fatal(err)
	}
	filled := rollups(t, pool)
	for _, tb := range rollupTables {
		if filled[tb] == "" {
			t.Errorf("the migration left %s empty", tb)
		}
	}
	// The same rows projected again: removed (the rollups go to nothing), then written back.
	for _, tb := range []string{"attendance", "charges", "claims", "admissions", "enrollments"} {
		if _, err := pool.Exec(ctx, `CREATE TABLE copy_`+tb+` AS SELECT * FROM `+tb); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `DELETE FROM `+tb); err != nil {
			t.Fatal(err)
		}
	}
	for tb, rows := range rollups(t, pool) {
		if rows != "" {
			t.Errorf("with no rows projected, %s holds\n%s", tb, rows)
		}
	}
	for _, tb := range []string{"enrollments", "attendance", "charges", "claims", "admissions"} {
		if _, err := pool.Exec(ctx, `INSERT INTO `+tb+` SELECT * FROM copy_`+tb); err != nil {
			t.Fatal(err)
		}
	}
	for tb, rows := range rollups(t, pool) {
		if rows != filled[tb] {
			t.Errorf("%s: the migration filled\n%s\nthe triggers\n%s", tb, filled[tb], rows)
		}
	}
}
