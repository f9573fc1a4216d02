package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/testkit"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/notification/internal/notifytest"
)

// rlsTables are the notification tables that hold clinic data (a clinic_id column), each with
// the columns a copy of a row must change to be a new row (its keys and unique values), as
// SQL expressions.
var rlsTables = []struct {
	name  string
	fresh map[string]string
}{
	{"recipients", map[string]string{"patient_id": "gen_random_uuid()"}},
	{"messages", map[string]string{"id": "gen_random_uuid()", "dedupe_key": "gen_random_uuid()::text"}},
	{"preferences", map[string]string{"patient_id": "gen_random_uuid()"}},
	{"appointments", map[string]string{"appointment_id": "gen_random_uuid()"}},
	{"clinic_settings", nil}, // keyed by the clinic itself
	{"templates", map[string]string{"id": "gen_random_uuid()", "version": "99"}},
}

const (
	rlsClinicA = "0190a000-0000-7000-8000-00000000000a"
	rlsClinicB = "0190a000-0000-7000-8000-00000000000b"
)

// ownerRole creates a login role like the one pkg/pg.Provision gives the service (no
// superuser, no BYPASSRLS) owning schema notification of a fresh database, which the
// administrative role is a member of (as Provision makes it), migrates the schema as that
// role, and returns a pool connected as it (no clinic scope set), the role's name and the
// database's URL as the administrative role. The roles are dropped when t ends.
// (intake's serviceRole does the same for its schema: a candidate for pkg/testkit.)
func ownerRole(t *testing.T) (*pgxpool.Pool, string, string) {
	t.Helper()
	adminURL := testkit.Database(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	role, password := "rls_notification_"+hex.EncodeToString(b), hex.EncodeToString(b)+"pw"
	db := adminExec(t, adminURL,
		fmt.Sprintf("CREATE ROLE %s LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '%s'", role, password),
		fmt.Sprintf("GRANT %s TO CURRENT_USER", role),
		fmt.Sprintf("CREATE SCHEMA %s AUTHORIZATION %s", notifytest.Schema, role))
	adminExec(t, adminURL, fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s", db, role))
	t.Cleanup(func() { dropRole(adminURL, role) })
	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, password)
	pool := notifytest.Open(t, u.String(), 4)
	notifytest.Migrate(t, pool)
	return pool, role, adminURL
}

// adminExec runs statements as the administrative role and returns the database's name.
func adminExec(t *testing.T, adminURL string, stmts ...string) (db string) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, q := range stmts {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := c.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	return db
}

func dropRole(adminURL, role string) {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return
	}
	defer c.Close(ctx)
	_, _ = c.Exec(ctx, "DROP OWNED BY "+role)
	_, _ = c.Exec(ctx, "DROP ROLE "+role)
}

// seedClinic writes one row of clinic into every table of rlsTables, in system scope, and
// returns its patient's id.
func seedClinic(t *testing.T, store *bus.Store, clinic string) (patient string) {
	t.Helper()
	patient = bus.NewID()
	err := store.InTx(auth.WithSystemScope(context.Background()), func(ctx context.Context, tx *bus.Tx) error {
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO recipients (patient_id, clinic_id, preferred_name, email, phone, time_zone, start_date,
					admission_updated_at, contact_updated_at)
				VALUES ($1, $2, 'Sam', '', '', 'America/Chicago', '2026-03-02', now(), now())`, []any{patient, clinic}},
			{`INSERT INTO messages (id, patient_id, clinic_id, kind, channel, dedupe_key, status, sent_at)
				VALUES (gen_random_uuid(), $1, $2, 'welcome', 'email', 'welcome:' || gen_random_uuid(), 'sent', now())`, []any{patient, clinic}},
			{`INSERT INTO preferences (patient_id, clinic_id, consent_id, version, channels, updated_at)
				VALUES ($1, $2, gen_random_uuid(), 1, '{email}', now())`, []any{patient, clinic}},
			{`INSERT INTO appointments (appointment_id, patient_id, clinic_id, local_date, start_time, end_time, starts_at,
					time_zone, status, updated_at)
				VALUES (gen_random_uuid(), $1, $2, '2026-03-02', '18:00', '19:00', now(), 'America/Chicago', 'scheduled', now())`,
				[]any{patient, clinic}},
			{`INSERT INTO clinic_settings (clinic_id, contact_phone) VALUES ($1, '+13125550100')`, []any{clinic}},
			{`INSERT INTO templates (id, clinic_id, kind, channel, locale, version, body)
				VALUES (gen_random_uuid(), $1, 'reminder', 'sms', 'en', 1, 'See you {{date}}.')`, []any{clinic}},
		} {
			if _, err := tx.Exec(ctx, q.sql, q.args...); err != nil {
				return fmt.Errorf("%s: %w", q.sql, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return patient
}

// seedNetworkTemplate writes a network default template (clinic_id NULL), in system scope.
func seedNetworkTemplate(t *testing.T, store *bus.Store) {
	t.Helper()
	err := store.InTx(auth.WithSystemScope(context.Background()), func(ctx context.Context, tx *bus.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO templates (id, clinic_id, kind, channel, locale, version, body)
			VALUES (gen_random_uuid(), NULL, 'reminder', 'sms', 'en', 1, 'Network: see you {{date}}.')`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// principalCtx is a caller of clinics (as pkg/rpc puts the token's principal in the context).
func principalCtx(clinics ...string) context.Context {
	return auth.WithPrincipal(context.Background(), &auth.Principal{Subject: "rls-test", Roles: []string{"admin"}, Clinics: clinics})
}

// isRLSViolation reports whether err is Postgres refusing a row by its policy (42501).
func isRLSViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501"
}

// With notification's own role (not a superuser, no BYPASSRLS, the tables' owner) the
// database, not the code, keeps each clinic's rows to callers of that clinic: in a
// transaction scoped to clinic A every table shows only A's rows, B's rows cannot be counted,
// updated or deleted, a row cannot be written to (or moved into) clinic B, and without a
// scope nothing is visible. The network's templates are read in every scope and written in
// none but every clinic's.
func TestRowLevelSecurityIsolatesClinics(t *testing.T) {
	pool, role, adminURL := ownerRole(t)
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
			(SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'clinic_isolation')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind = 'r'
			AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'clinic_id' AND NOT a.attisdropped)
		ORDER BY 1`, notifytest.Schema)
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
		if !enabled || !forced || !owned || policies != 1 {
			t.Errorf("table %s: row level security %v, forced %v, owned by the service role %v, %d clinic_isolation policies",
				name, enabled, forced, owned, policies)
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

	store := notifytest.Store(pool)
	seedClinic(t, store, rlsClinicA)
	seedClinic(t, store, rlsClinicB)
	otherRoles(t, adminURL, role)
	seedNetworkTemplate(t, store)

	// errRollback ends a transaction that changed something, so each probe starts from the seed.
	errRollback := errors.New("rollback")
	asA := principalCtx(rlsClinicA)
	for _, tb := range rlsTables {
		t.Run(tb.name, func(t *testing.T) {
			// The network's template (clinic_id NULL) is not a clinic's row: left out here.
			clinicRows := ` FROM ` + tb.name + ` WHERE clinic_id IS NOT NULL`
			var all, ofB int
			if err := store.Read(auth.WithSystemScope(ctx), func(ctx context.Context, tx pgx.Tx) error {
				return tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE clinic_id = $1)`+clinicRows, rlsClinicB).Scan(&all, &ofB)
			}); err != nil || all != 2 || ofB != 1 {
				t.Fatalf("system scope: %d rows, %d of B (%v); want 2 and 1", all, ofB, err)
			}
			// The policy tests the scope first and the exemption (a catalog lookup) last
			// (migration 00006): system scope computes one condition, A's scope over A's row two.
			for _, sc := range []struct {
				ctx  context.Context
				want int
			}{{auth.WithSystemScope(ctx), 1}, {asA, 2}} {
				if err := store.Read(sc.ctx, func(ctx context.Context, tx pgx.Tx) error {
					if got := testkit.InitPlansRun(t, ctx, tx, `SELECT * FROM `+tb.name+` WHERE clinic_id = $1`, rlsClinicA); got != sc.want {
						t.Errorf("%d of the policy's conditions computed, want %d", got, sc.want)
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			// Clinic A's scope: A's row only, whatever the query asks for.
			if err := store.Read(asA, func(ctx context.Context, tx pgx.Tx) error {
				return tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE clinic_id = $1)`+clinicRows, rlsClinicB).Scan(&all, &ofB)
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
			// Writing a row of clinic B (a copy of A's row under new keys) or moving A's row
			// to B is refused by the policy's WITH CHECK.
			fresh := "'clinic_id', $1::uuid"
			for col, expr := range tb.fresh {
				fresh += ", '" + col + "', " + expr
			}
			for _, q := range []string{
				`INSERT INTO ` + tb.name + ` SELECT (jsonb_populate_record(NULL::` + tb.name + `, to_jsonb(x) ||
					jsonb_build_object(` + fresh + `))).*` + strings.Replace(clinicRows, tb.name, tb.name+" x", 1),
				`UPDATE ` + tb.name + ` SET clinic_id = $1 WHERE clinic_id IS NOT NULL`,
			} {
				err := store.InTx(asA, func(ctx context.Context, tx *bus.Tx) error {
					_, err := tx.Exec(ctx, q, rlsClinicB)
					return err
				})
				if !isRLSViolation(err) {
					t.Errorf("%s in clinic A's scope: %v, want a row-level security violation (42501)", q, err)
				}
			}
			// No principal and no system scope: nothing, in a transaction and outside one.
			if err := store.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
				return tx.QueryRow(ctx, `SELECT count(*) FROM `+tb.name).Scan(&n)
			}); err != nil || (n != 0 && tb.name != "templates") || (tb.name == "templates" && n != 1) {
				t.Errorf("no scope: %d rows (%v), want none of a clinic", n, err)
			}
			if err := pool.QueryRow(ctx, `SELECT count(*)`+clinicRows).Scan(&n); err != nil || n != 0 {
				t.Errorf("a bare query without a scope: %d rows (%v), want 0", n, err)
			}
		})
	}

	// The network's template: every scope reads it; only every clinic's may change it.
	t.Run("network templates", func(t *testing.T) {
		const network = ` FROM templates WHERE clinic_id IS NULL`
		for name, c := range map[string]context.Context{"clinic A": asA, "no scope": ctx} {
			var n int
			if err := store.Read(c, func(ctx context.Context, tx pgx.Tx) error {
				return tx.QueryRow(ctx, `SELECT count(*)`+network).Scan(&n)
			}); err != nil || n != 1 {
				t.Errorf("%s reads %d network templates (%v), want 1", name, n, err)
			}
		}
		for _, q := range []string{`UPDATE templates SET body = 'changed' WHERE clinic_id IS NULL`, `DELETE` + network} {
			var affected int64
			err := store.InTx(asA, func(ctx context.Context, tx *bus.Tx) error {
				tag, err := tx.Exec(ctx, q)
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
		err := store.InTx(asA, func(ctx context.Context, tx *bus.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO templates (id, clinic_id, kind, channel, locale, version, body)
				VALUES (gen_random_uuid(), NULL, 'reminder', 'sms', 'en', 2, 'A network text from clinic A')`)
			return err
		})
		if !isRLSViolation(err) {
			t.Errorf("a network template written in clinic A's scope: %v, want 42501", err)
		}
		err = store.InTx(principalCtx(auth.AllClinics), func(ctx context.Context, tx *bus.Tx) error {
			tag, err := tx.Exec(ctx, `UPDATE templates SET body = body WHERE clinic_id IS NULL`)
			if err == nil && tag.RowsAffected() != 1 {
				err = fmt.Errorf("%d rows updated, want 1", tag.RowsAffected())
			}
			return err
		})
		if err != nil {
			t.Errorf("a caller of every clinic changing a network template: %v", err)
		}
	})
}

// otherRoles checks who else the policies bind, without a clinic scope: a role merely granted
// SELECT on the tables sees nothing; the administrative role, a member of the owner that
// could take the owner's role and drop the policies anyway, is not bound.
func otherRoles(t *testing.T, adminURL, owner string) {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var n int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM notification.messages`).Scan(&n); err != nil || n != 2 {
		t.Errorf("the administrative role sees %d messages (%v), want 2", n, err)
	}
	reader, password := owner+"_reader", "reader-pw"
	db := adminExec(t, adminURL, fmt.Sprintf("CREATE ROLE %s LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '%s'", reader, password))
	t.Cleanup(func() { dropRole(adminURL, reader) })
	adminExec(t, adminURL,
		fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s", db, reader),
		fmt.Sprintf("GRANT USAGE ON SCHEMA notification TO %s", reader),
		fmt.Sprintf("GRANT SELECT ON ALL TABLES IN SCHEMA notification TO %s", reader))
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
		if err := rc.QueryRow(ctx, `SELECT count(*) FROM notification.`+tb.name).Scan(&n); err != nil || n != 0 {
			t.Errorf("a role granted SELECT sees %d rows of %s without a scope (%v), want 0", n, tb.name, err)
		}
	}
}

// The repositories, called directly with a caller of clinic A (no app check in between), do
// not get clinic B's patient's messages, preferences or clinic B's settings from the
// database, guessed ids or not; a caller of B, and of every clinic, does.
func TestRowLevelSecurityStopsGuessedIDs(t *testing.T) {
	pool, _, _ := ownerRole(t)
	store := notifytest.Store(pool)
	patA := seedClinic(t, store, rlsClinicA)
	patB := seedClinic(t, store, rlsClinicB)
	repo := postgres.New(store, fieldcrypt.Dev())
	content := postgres.NewContent(store)

	// seen reports what a caller of ctx gets of patient's clinic's records.
	seen := func(ctx context.Context, patient, clinic string) (messages, history int, prefs, settings bool) {
		t.Helper()
		msgs, err := repo.ListMessages(ctx, patient)
		if err != nil {
			t.Fatal(err)
		}
		h, err := content.MessageHistory(ctx, patient)
		if err != nil {
			t.Fatal(err)
		}
		if _, prefs, err = content.PreferencesView(ctx, patient); err != nil {
			t.Fatal(err)
		}
		if _, settings, err = content.ClinicSettings(ctx, clinic); err != nil {
			t.Fatal(err)
		}
		return len(msgs), len(h), prefs, settings
	}
	for _, c := range []struct {
		name            string
		ctx             context.Context
		patient, clinic string
		want            bool
	}{
		{"A's caller, B's patient", principalCtx(rlsClinicA), patB, rlsClinicB, false},
		{"a caller without clinic ids", principalCtx("not-a-clinic-id'; --"), patA, rlsClinicA, false},
		{"no caller", context.Background(), patA, rlsClinicA, false},
		{"A's caller, A's patient", principalCtx(rlsClinicA), patA, rlsClinicA, true},
		{"B's caller, B's patient", principalCtx(rlsClinicB), patB, rlsClinicB, true},
		{"a caller of A and B", principalCtx(rlsClinicA, rlsClinicB), patB, rlsClinicB, true},
		{"a caller of every clinic", principalCtx(auth.AllClinics), patB, rlsClinicB, true},
		{"system scope", auth.WithSystemScope(context.Background()), patB, rlsClinicB, true},
	} {
		m, h, p, s := seen(c.ctx, c.patient, c.clinic)
		if got := m == 1 && h == 1 && p && s; got != c.want || (!c.want && (m != 0 || h != 0 || p || s)) {
			t.Errorf("%s: %d messages, %d in the history, preferences %v, settings %v; want all %v", c.name, m, h, p, s, c.want)
		}
	}
}

// The hottest queries keep the index scans they have without the policies, in every clinic's
// scope (the dispatcher) and in one clinic's (the API), and the policy's conditions are
// computed once per statement (InitPlans), never per row (SubPlans).
func TestRowLevelSecurityPlans(t *testing.T) {
	pool, _, _ := ownerRole(t)
	ctx := auth.WithSystemScope(context.Background())
	clinics := []string{rlsClinicA, rlsClinicB, "0190a000-0000-7000-8000-00000000000c"}
	store := notifytest.Store(pool)
	// 20,000 messages of 2,000 patients of three clinics, all but a few sent.
	err := store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO messages (id, patient_id, clinic_id, kind, channel, dedupe_key, status, sent_at, created_at, next_attempt_at)
			SELECT gen_random_uuid(), p.id, ($1::uuid[])[1 + p.n % 3], 'reminder', CASE WHEN i % 3 = 0 THEN 'sms' ELSE 'email' END,
				'r:' || p.n || ':' || i, CASE WHEN i % 500 = 0 THEN 'queued' ELSE 'sent' END, now() - i * interval '1 minute',
				now() - i * interval '1 minute', now() - i * interval '1 second'
			FROM (SELECT gen_random_uuid() id, n FROM generate_series(1, 2000) n) p, generate_series(1, 10) i`, clinics); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `ANALYZE messages`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var patient string
	if err := store.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT patient_id::text FROM messages WHERE clinic_id = $1 LIMIT 1`, rlsClinicA).Scan(&patient)
	}); err != nil {
		t.Fatal(err)
	}
	// explain is the plan of sql in a transaction of ctx's scope; without policies, with row
	// level security turned off for this transaction only (rolled back).
	errRollback := errors.New("rollback")
	explain := func(ctx context.Context, policies bool, sql string, args []any) (plan string) {
		t.Helper()
		err := store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
			if !policies {
				if _, err := tx.Exec(ctx, `ALTER TABLE messages DISABLE ROW LEVEL SECURITY`); err != nil {
					return err
				}
			}
			rows, err := tx.Query(ctx, `EXPLAIN `+sql, args...)
			if err != nil {
				return err
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			plan = strings.Join(lines, "\n")
			if err == nil {
				err = errRollback
			}
			return err
		})
		if !errors.Is(err, errRollback) {
			t.Fatal(err)
		}
		return plan
	}
	// scans are the plan's scan nodes ("Index Scan using messages_due on messages").
	scans := func(plan string) (out []string) {
		for _, l := range strings.Split(plan, "\n") {
			if i := strings.Index(l, "Scan"); i >= 0 {
				l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "->"))
				if j := strings.Index(l, "  (cost"); j >= 0 {
					l = l[:j]
				}
				out = append(out, l)
			}
		}
		return out
	}
	tests := []struct {
		name, sql string
		args      []any
	}{
		{"history (ListMessages)", `SELECT id, kind, status FROM messages WHERE patient_id = $1 ORDER BY created_at DESC, id DESC`,
			[]any{patient}},
		{"texting history", `SELECT sent_at FROM messages WHERE patient_id = $1 AND channel = 'sms' AND sent_at IS NOT NULL AND sent_at > $2`,
			[]any{patient, time.Now().Add(-7 * 24 * time.Hour)}},
		{"due messages (ClaimDue)", `SELECT id FROM messages WHERE status = 'queued' AND next_attempt_at <= now()
			ORDER BY next_attempt_at, id LIMIT 10 FOR UPDATE SKIP LOCKED`, nil},
	}
	for _, tt := range tests {
		base := explain(ctx, false, tt.sql, tt.args)
		if want := scans(base); len(want) == 0 || strings.Contains(base, "Seq Scan") {
			t.Fatalf("%s: no index scan without the policies, the comparison would prove nothing:\n%s", tt.name, base)
		}
		for scope, c := range map[string]context.Context{"every clinic": ctx, "clinic A": principalCtx(rlsClinicA)} {
			t.Run(tt.name+", "+scope, func(t *testing.T) {
				plan := explain(c, true, tt.sql, tt.args)
				if got, want := scans(plan), scans(base); !slices.Equal(got, want) {
					t.Errorf("scans %q, without the policies %q:\n%s", got, want, plan)
				}
				if !strings.Contains(plan, "InitPlan") || strings.Contains(plan, "SubPlan") {
					t.Errorf("the policy's conditions are not InitPlans only:\n%s", plan)
				}
				t.Logf("%q", scans(plan))
			})
		}
	}
}
