package store

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
)

// fillNetwork fills the projections with a network of 100 clinics (clinic n's id ends in n in
// hex) and perClinic enrollments each over the past year, three sessions a week for twelve
// weeks, as TestOverviewAtScale (cmd/dashboard) does with 40.
func fillNetwork(t testing.TB, db *bus.Store, perClinic int) {
	t.Helper()
	err := db.InTx(auth.WithSystemScope(context.Background()), func(ctx context.Context, tx *bus.Tx) error {
		for _, q := range fillSQL(perClinic) {
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q[:40], err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// After the commit, so the statistics see every row.
	if _, err := db.Pool.Exec(context.Background(), `ANALYZE`); err != nil {
		t.Fatal(err)
	}
}

func fillSQL(perClinic int) []string {
	return []string{
		`INSERT INTO programs VALUES ('adult-iop', 540, 12, now())`,
		`INSERT INTO clinics (clinic_id, name, time_zone)
			SELECT ('0190a000-0000-7000-8000-' || lpad(to_hex(c), 12, '0'))::uuid, 'Clinic ' || c,
				CASE WHEN c % 2 = 0 THEN 'America/Chicago' ELSE 'America/New_York' END FROM generate_series(1, 100) c`,
		`INSERT INTO tracks SELECT gen_random_uuid(), clinic_id, 'adult-' || t, 'adult-iop', 12, true, now()
			FROM clinics, generate_series(1, 3) t`,
		fmt.Sprintf(`INSERT INTO enrollments (enrollment_id, clinic_id, track_id, patient_id, status, start_date, ended_at, updated_at, seated_at)
			SELECT gen_random_uuid(), k.clinic_id, k.track_id, gen_random_uuid(),
				CASE WHEN s > current_date - 84 THEN 'active' ELSE 'ended' END, s,
				CASE WHEN s > current_date - 84 THEN NULL ELSE (s + 84)::timestamptz END, now(), s::timestamptz
			FROM (SELECT clinic_id, (array_agg(track_id))[1] AS track_id FROM tracks GROUP BY 1) k,
				generate_series(1, %d) n, LATERAL (SELECT current_date - ((n * 9) %% 365) AS s) d`, perClinic),
		`INSERT INTO attendance (appointment_id, clinic_id, enrollment_id, track_id, status, minutes_attended, scheduled_minutes, local_date, version)
			SELECT gen_random_uuid(), e.clinic_id, e.enrollment_id, e.track_id,
				CASE WHEN (w * 3 + x) % 8 = 0 THEN 'absent' ELSE 'present' END,
				CASE WHEN (w * 3 + x) % 8 = 0 THEN 0 ELSE 180 END, 180, e.start_date + w * 7 + x * 2, 1
			FROM enrollments e, generate_series(0, 11) w, generate_series(0, 2) x
			WHERE e.start_date + w * 7 + x * 2 < current_date`,
		`INSERT INTO discharges SELECT gen_random_uuid(), clinic_id, patient_id, 'completed', start_date, start_date + 84 FROM enrollments WHERE status = 'ended'`,
		`INSERT INTO charges SELECT gen_random_uuid(), clinic_id, 'medicaid', 25000, local_date, 'submitted', '', now() FROM attendance WHERE status = 'present'`,
		`INSERT INTO claims (claim_id, clinic_id, payer_id, total_cents, paid_cents, status, submitted_at, status_at, adjudicated_at)
			SELECT gen_random_uuid(), clinic_id, 'medicaid', 75000, 63000, 'paid', (start_date + 14)::timestamptz, now(), (start_date + 40)::timestamptz
			FROM enrollments, generate_series(1, 3)`,
	}
}

// scopedQueries are the clinic-filtered reads of the overview and billing pages on the largest
// projections, with the scope's condition as the store writes it.
func scopedQueries(sc Scope) map[string]string {
	return map[string]string{
		"attendance (Inputs)": `SELECT clinic_id::text, status, count(*) FROM attendance WHERE local_date BETWEEN $3 AND $4 AND ` +
			sc.where("clinic_id") + ` GROUP BY 1, 2`,
		"census (Inputs)": `SELECT clinic_id::text, count(*) FROM enrollments WHERE status = 'active' AND ` + sc.where("clinic_id") +
			` GROUP BY 1 HAVING $3::date IS NOT NULL AND $4::date IS NOT NULL`,
		"discharges (Inputs)": `SELECT clinic_id::text, reason, (discharge_date - start_date)::float8 FROM discharges
			WHERE discharge_date BETWEEN $3 AND $4 AND ` + sc.where("clinic_id"),
		"charges (Flow)": `SELECT coalesce(sum(amount_cents), 0)::bigint FROM charges
			WHERE status <> 'void' AND service_date BETWEEN $3 AND $4 AND ` + sc.where("clinic_id"),
	}
}

// With a user's list of clinics, the overview's reads on the largest projections use the
// clinic_id indexes, in a custom plan and in a prepared statement's generic plan alike: they
// read one clinic's rows, not the network's (a clinic_id::text comparison could use no index).
// DASHBOARD_SCALE=1 fills 40 enrollments a clinic (TestOverviewAtScale's network) and logs
// the plans with their buffers and times; otherwise 16.
func TestScopedReadsUseTheClinicIndexes(t *testing.T) {
	pool, _ := serviceRole(t)
	db := bus.NewStore(pool, "dashboard")
	db.EnableClinicScope()
	perClinic := 16
	if os.Getenv("DASHBOARD_SCALE") != "" {
		perClinic = 40
	}
	fillNetwork(t, db, perClinic)
	clinic := "0190a000-0000-7000-8000-000000000007"
	ctx := auth.WithPrincipal(context.Background(), &auth.Principal{Subject: "plans", Roles: []string{"operator"}, Clinics: []string{clinic}})
	sc := Scope{Clinics: []string{clinic}}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	args := []any{sc.All, sc.ids(), today.AddDate(0, 0, -364), today}
	for name, sql := range scopedQueries(sc) {
		for _, generic := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, generic %v", name, generic), func(t *testing.T) {
				plan := explainScoped(t, ctx, db, sql, args, generic)
				if strings.Contains(plan, "Seq Scan") || !strings.Contains(plan, "Index") {
					t.Errorf("no index scan on the clinic:\n%s", plan)
				}
				t.Log("\n" + plan)
			})
		}
	}
}

// explainScoped is EXPLAIN (ANALYZE, BUFFERS) of sql with args in a transaction of db in ctx's
// scope, as a prepared statement (PREPARE, EXECUTE); generic forces its generic plan (what a
// pgx statement may get from its sixth execution on), otherwise it gets a custom plan.
func explainScoped(t *testing.T, ctx context.Context, db *bus.Store, sql string, args []any, generic bool) string {
	t.Helper()
	literals := make([]string, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case bool:
			literals[i] = fmt.Sprint(v)
		case []string:
			literals[i] = "'{" + strings.Join(v, ",") + "}'"
		case time.Time:
			literals[i] = "'" + v.Format(time.DateOnly) + "'"
		default:
			t.Fatalf("argument %d: %T", i, a)
		}
	}
	mode := "force_custom_plan"
	if generic {
		mode = "force_generic_plan"
	}
	var plan string
	err := db.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		for _, q := range []string{`SET LOCAL plan_cache_mode = ` + mode, `PREPARE scoped_read AS ` + sql} {
			if _, err := tx.Exec(ctx, q, pgx.QueryExecModeSimpleProtocol); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, `EXPLAIN (ANALYZE, BUFFERS) EXECUTE scoped_read(`+strings.Join(literals, ", ")+`)`,
			pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			return err
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		plan = strings.Join(lines, "\n")
		if err != nil {
			return err
		}
		// A prepared statement outlives the transaction: not on the pooled connection.
		_, err = tx.Exec(ctx, `DEALLOCATE scoped_read`, pgx.QueryExecModeSimpleProtocol)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

// The scope's ids go to Postgres as uuid[]: canonical, and without what is no uuid (which
// names no clinic, and as a uuid[] element would fail the whole query).
func TestScopeIDsAreCanonicalUUIDs(t *testing.T) {
	sc := Scope{Clinics: []string{"0190A000-0000-7000-8000-00000000000A", "not-a-uuid", "", "{0190a000-0000-7000-8000-00000000000b}"}}
	got := sc.ids()
	want := []string{"0190a000-0000-7000-8000-00000000000a", "0190a000-0000-7000-8000-00000000000b"}
	if !slices.Equal(got, want) {
		t.Errorf("ids %q, want %q", got, want)
	}
	if ids := (Scope{}).ids(); ids == nil || len(ids) != 0 {
		t.Errorf("no clinics: %#v, want an empty list (not NULL)", ids)
	}
}
