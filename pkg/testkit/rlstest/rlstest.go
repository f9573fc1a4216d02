// Package rlstest is the services' row-level security test kit (docs/security.md, "Row-level
// security"; ADR 0014): a database provisioned as pg.Provision does it, with the service's
// schema migrated as its own role (no superuser, no BYPASSRLS, the tables' owner, so the
// forced policies bind it); the catalog check that every table holding clinic data has its
// policy; the probes that clinic A's scope neither sees nor writes clinic B's rows; and a
// session-scoped URL for the tests' own connections. Seeding stays with each service.
package rlstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/testkit"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
)

// The two clinics the tests seed.
const (
	ClinicA = "0190a000-0000-7000-8000-00000000000a"
	ClinicB = "0190a000-0000-7000-8000-00000000000b"
)

// Policy is the name every service gives its tables' clinic policy.
const Policy = "clinic_isolation"

// Caller is a caller of clinics, as pkg/rpc puts the token's principal in the context.
func Caller(clinics ...string) context.Context {
	return auth.WithPrincipal(context.Background(), &auth.Principal{Subject: "rls-test", Roles: []string{"admin"}, Clinics: clinics})
}

// IsViolation reports whether err is Postgres refusing a row by its policy (42501).
func IsViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501"
}

// Role is a service's own role on a fresh database.
type Role struct {
	Name     string
	Schema   string
	Pool     *pgxpool.Pool // connected as Name, search_path Schema, no clinic scope
	AdminURL string        // the database as the administrative role
}

// Store is a bus.Store on r.Pool with the clinic scope on, as the services set theirs up.
func (r *Role) Store() *bus.Store {
	s := bus.NewStore(r.Pool, r.Schema)
	s.EnableClinicScope()
	return s
}

// ServiceRole creates a login role like the one pg.Provision gives a service (no superuser,
// no BYPASSRLS; the administrative role a member of it) owning schema of a fresh database,
// runs migrate on a pool connected as that role, checks the role cannot bypass the policies,
// and returns it. The role is dropped when t ends.
func ServiceRole(t testing.TB, schema string, migrate func(context.Context, *pgxpool.Pool) error) *Role {
	t.Helper()
	ctx := context.Background()
	r := &Role{Schema: schema, AdminURL: testkit.Database(t)}
	name, password := newRole(t, r.AdminURL, "rls_"+schema)
	r.Name = name
	db := adminExec(t, r.AdminURL,
		fmt.Sprintf("GRANT %s TO CURRENT_USER", name),
		fmt.Sprintf("CREATE SCHEMA %s AUTHORIZATION %s", pgx.Identifier{schema}.Sanitize(), name))
	adminExec(t, r.AdminURL, fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s", pgx.Identifier{db}.Sanitize(), name))
	u, err := pg.ServiceURL(r.AdminURL, name, password)
	if err != nil {
		t.Fatal(err)
	}
	if r.Pool, err = pg.Open(ctx, u, schema, 4); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Pool.Close)
	if err := migrate(ctx, r.Pool); err != nil {
		t.Fatal(err)
	}
	var super, bypass bool
	if err := r.Pool.QueryRow(ctx, `SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`).Scan(&super, &bypass); err != nil {
		t.Fatal(err)
	}
	if super || bypass {
		t.Fatalf("role %s: superuser %v, bypassrls %v: the test would prove nothing", name, super, bypass)
	}
	return r
}

// newRole creates a login role named prefix plus a random suffix, dropped when t ends.
func newRole(t testing.TB, adminURL, prefix string) (name, password string) {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name, password = prefix+"_"+hex.EncodeToString(b), hex.EncodeToString(b)+"pw"
	adminExec(t, adminURL, fmt.Sprintf("CREATE ROLE %s LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '%s'", name, password))
	t.Cleanup(func() {
		ctx := context.Background()
		c, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP OWNED BY "+name)
		_, _ = c.Exec(ctx, "DROP ROLE "+name)
	})
	return name, password
}

// adminExec runs stmts as the administrative role and returns the database's name.
func adminExec(t testing.TB, adminURL string, stmts ...string) (db string) {
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

// CheckCatalog checks that the tables of pool's current schema with a clinic_id column are
// exactly tables, and that each has row level security enabled and forced, is owned by the
// pool's role and has one clinic_isolation policy: a new table holding clinic data without
// one fails here.
func CheckCatalog(t testing.TB, pool *pgxpool.Pool, tables ...string) {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner) = current_user,
			(SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = $1)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
			AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'clinic_id' AND NOT a.attisdropped)
		ORDER BY 1`, Policy)
	if err != nil {
		t.Fatal(err)
	}
	var covered []string
	for rows.Next() {
		var name string
		var enabled, forced, owned bool
		var policies int
		if err := rows.Scan(&name, &enabled, &forced, &owned, &policies); err != nil {
			t.Fatal(err)
		}
		if !enabled || !forced || !owned || policies != 1 {
			t.Errorf("table %s: row level security %v, forced %v, owned by the service role %v, %d %s policies",
				name, enabled, forced, owned, policies, Policy)
		}
		covered = append(covered, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(tables))
	if !slices.Equal(covered, want) {
		t.Errorf("tables with clinic_id: %v; the test covers %v", covered, want)
	}
}

// CheckForced checks that each of tables (of pool's current schema; tables without clinic_id
// that have a policy of their own) has row level security enabled and forced and a
// clinic_isolation policy.
func CheckForced(t testing.TB, pool *pgxpool.Pool, tables ...string) {
	t.Helper()
	for _, tb := range tables {
		var ok bool
		err := pool.QueryRow(context.Background(), `
			SELECT c.relrowsecurity AND c.relforcerowsecurity
				AND EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = $2)
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = current_schema() AND c.relname = $1`, tb, Policy).Scan(&ok)
		if err != nil || !ok {
			t.Errorf("table %s has no forced %s policy (%v)", tb, Policy, err)
		}
	}
}

// Table is a table holding clinic data, as the probes see it.
type Table struct {
	Name string
	// Column holds the row's clinic; "" is clinic_id.
	Column string
	// Fresh are the columns a copy of a row must change to be a new row (its keys and unique
	// values other than the clinic), as SQL expressions: "id": "gen_random_uuid()".
	Fresh map[string]string
	// Rows is the condition selecting the clinics' rows, when the table also holds rows of no
	// clinic ("clinic_id IS NOT NULL"); "" is every row.
	Rows string
	// Shared is how many rows of no clinic every scope reads (notification's network
	// templates); they are left out of the probes but for the count without a scope.
	Shared int
}

func (tb Table) column() string {
	if tb.Column == "" {
		return "clinic_id"
	}
	return tb.Column
}

func (tb Table) rows() string {
	if tb.Rows == "" {
		return "true"
	}
	return tb.Rows
}

// Names are the tables' names.
func Names(tables []Table) []string {
	out := make([]string, len(tables))
	for i, tb := range tables {
		out[i] = tb.Name
	}
	return out
}

// errRollback ends a transaction that changed something, so each probe starts from the seed.
var errRollback = errors.New("rollback")

// Probe checks, in a subtest per table, that with one row of ClinicA and one of ClinicB seeded
// (by the caller) the database keeps each clinic's rows to callers of that clinic: the system
// scope sees both; clinic A's scope sees and counts only A's, updates and deletes none of B's,
// and cannot write a row of B (a copy of A's row under fresh keys) or move A's row to B
// (42501); without a scope nothing is visible, in a transaction of store and bare on pool. It
// also checks the policy's conditions are tested cheapest first (Conditions).
func Probe(t *testing.T, store *bus.Store, pool *pgxpool.Pool, tables ...Table) {
	t.Helper()
	ctx := context.Background()
	asA := Caller(ClinicA)
	for _, tb := range tables {
		t.Run(tb.Name, func(t *testing.T) {
			col, from := tb.column(), ` FROM `+tb.Name+` WHERE `+tb.rows()
			counts := `SELECT count(*), count(*) FILTER (WHERE ` + col + ` = $1)` + from
			var all, ofB int
			if err := store.Read(auth.WithSystemScope(ctx), func(ctx context.Context, tx pgx.Tx) error {
				return tx.QueryRow(ctx, counts, ClinicB).Scan(&all, &ofB)
			}); err != nil || all != 2 || ofB != 1 {
				t.Fatalf("system scope: %d rows, %d of B (%v); want 2 and 1", all, ofB, err)
			}
			Conditions(t, store, `SELECT * FROM `+tb.Name+` WHERE `+col+` = $1`, ClinicA)
			// Clinic A's scope: A's row only, whatever the query asks for.
			if err := store.Read(asA, func(ctx context.Context, tx pgx.Tx) error {
				return tx.QueryRow(ctx, counts, ClinicB).Scan(&all, &ofB)
			}); err != nil || all != 1 || ofB != 0 {
				t.Errorf("clinic A's scope: %d rows, %d of B (%v); want 1 and 0", all, ofB, err)
			}
			var n int
			if err := store.Read(asA, func(ctx context.Context, tx pgx.Tx) error {
				return tx.QueryRow(ctx, `SELECT count(*) FROM `+tb.Name+` WHERE `+col+` = $1`, ClinicB).Scan(&n)
			}); err != nil || n != 0 {
				t.Errorf("clinic A's scope counts %d of B's rows (%v)", n, err)
			}
			for _, q := range []string{
				`UPDATE ` + tb.Name + ` SET ` + col + ` = ` + col + ` WHERE ` + col + ` = $1`,
				`DELETE FROM ` + tb.Name + ` WHERE ` + col + ` = $1`,
			} {
				if affected, err := rolledBack(store, asA, q, ClinicB); !errors.Is(err, errRollback) || affected != 0 {
					t.Errorf("%s in clinic A's scope: %d rows affected (%v), want 0", q, affected, err)
				}
			}
			// Writing a row of clinic B (a copy of A's row under fresh keys; the policy's WITH
			// CHECK comes before any unique index) or moving A's row to B is refused. OVERRIDING
			// SYSTEM VALUE lets the copy carry a fresh value of a GENERATED ALWAYS identity key
			// (scheduling's appointment_history); it is a no-op on tables without one.
			fresh := "'" + col + "', $1::uuid"
			for _, c := range slices.Sorted(maps.Keys(tb.Fresh)) {
				fresh += ", '" + c + "', " + tb.Fresh[c]
			}
			for _, q := range []string{
				`INSERT INTO ` + tb.Name + ` OVERRIDING SYSTEM VALUE SELECT (jsonb_populate_record(NULL::` + tb.Name + `, to_jsonb(x) ||
					jsonb_build_object(` + fresh + `))).* FROM ` + tb.Name + ` x WHERE ` + tb.rows(),
				`UPDATE ` + tb.Name + ` SET ` + col + ` = $1 WHERE ` + tb.rows(),
			} {
				err := store.InTx(asA, func(ctx context.Context, tx *bus.Tx) error {
					_, err := tx.Exec(ctx, q, ClinicB)
					return err
				})
				if !IsViolation(err) {
					t.Errorf("%s in clinic A's scope: %v, want a row-level security violation (42501)", q, err)
				}
			}
			// No principal and no system scope: nothing of a clinic, in a transaction and
			// outside one.
			if err := store.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
				return tx.QueryRow(ctx, `SELECT count(*) FROM `+tb.Name).Scan(&n)
			}); err != nil || n != tb.Shared {
				t.Errorf("no scope: %d rows (%v), want %d", n, err, tb.Shared)
			}
			if err := pool.QueryRow(ctx, `SELECT count(*)`+from).Scan(&n); err != nil || n != 0 {
				t.Errorf("a bare query without a scope: %d rows (%v), want 0", n, err)
			}
		})
	}
}

// rolledBack runs q in a transaction of store begun with ctx, rolls it back and returns how
// many rows it changed; the error is errRollback unless q failed.
func rolledBack(store *bus.Store, ctx context.Context, q string, args ...any) (affected int64, err error) {
	err = store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		tag, err := tx.Exec(ctx, q, args...)
		if err != nil {
			return err
		}
		affected = tag.RowsAffected()
		return errRollback
	})
	return affected, err
}

// Unchanged checks that q, run in a transaction of store begun with ctx, changes no row.
func Unchanged(t testing.TB, store *bus.Store, ctx context.Context, q string, args ...any) {
	t.Helper()
	if affected, err := rolledBack(store, ctx, q, args...); !errors.Is(err, errRollback) || affected != 0 {
		t.Errorf("%s: %d rows affected (%v), want 0", q, affected, err)
	}
}

// Conditions checks that the policy's conditions are tested cheapest first and the exemption
// (a catalog lookup) last (docs/security.md): query (over one of clinic A's rows, as args
// select it) computes one condition in system scope, two in clinic A's.
func Conditions(t testing.TB, store *bus.Store, query string, args ...any) {
	t.Helper()
	for _, sc := range []struct {
		name string
		ctx  context.Context
		want int
	}{{"system scope", auth.WithSystemScope(context.Background()), 1}, {"clinic A's scope, A's row", Caller(ClinicA), 2}} {
		if err := store.Read(sc.ctx, func(ctx context.Context, tx pgx.Tx) error {
			if got := testkit.InitPlansRun(t, ctx, tx, query, args...); got != sc.want {
				t.Errorf("%s: %d of the policy's conditions computed, want %d", sc.name, got, sc.want)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// OtherRoles checks who else the policies bind, without a clinic scope, once both clinics are
// seeded: the administrative role, a member of the owner that could take the owner's role and
// drop the policies anyway, is not bound (it sees both clinics' rows of adminTable); a role
// merely granted SELECT on the tables (a reporting role, or a service role when another role
// owns the tables) sees no row of tables.
func OtherRoles(t testing.TB, r *Role, adminTable string, tables ...Table) {
	t.Helper()
	ctx := context.Background()
	var n int
	qualified := func(tb string) string { return pgx.Identifier{r.Schema, tb}.Sanitize() }
	admin, err := pgx.Connect(ctx, r.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM `+qualified(adminTable)).Scan(&n); err != nil || n != 2 {
		t.Errorf("the administrative role sees %d rows of %s (%v), want 2", n, adminTable, err)
	}
	reader, password := newRole(t, r.AdminURL, r.Name+"_reader")
	schema := pgx.Identifier{r.Schema}.Sanitize()
	db := adminExec(t, r.AdminURL,
		fmt.Sprintf("GRANT USAGE ON SCHEMA %s TO %s", schema, reader),
		fmt.Sprintf("GRANT SELECT ON ALL TABLES IN SCHEMA %s TO %s", schema, reader))
	adminExec(t, r.AdminURL, fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s", pgx.Identifier{db}.Sanitize(), reader))
	u, err := pg.ServiceURL(r.AdminURL, reader, password)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close(ctx)
	for _, tb := range tables {
		if err := rc.QueryRow(ctx, `SELECT count(*) FROM `+qualified(tb.Name)).Scan(&n); err != nil || n != 0 {
			t.Errorf("a role granted SELECT sees %d rows of %s without a scope (%v), want 0", n, tb.Name, err)
		}
	}
}

// SystemURL is dbURL with the clinic scope "*" (every clinic) set for the whole session
// (-c trellis.clinics=*), for the tests' own connections, which seed fixtures and check what a
// service stored in every clinic. The policies bind the tables' owner, the role the tests
// connect as; the service itself is given the plain URL (and a Store transaction sets its own
// scope, SET LOCAL, which overrides this one).
func SystemURL(t testing.TB, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("options", strings.TrimSpace(q.Get("options")+" -c "+bus.ClinicSetting+"=*"))
	// pgx does not read "+" as a space.
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	return u.String()
}

// SystemScoped replaces s.Pool (the test's pool, which s.Count uses) with one in system scope
// (SystemURL), search_path schema, and returns s.
func SystemScoped(t testing.TB, s *servicetest.Service, schema string) *servicetest.Service {
	t.Helper()
	pool, err := pg.Open(context.Background(), SystemURL(t, s.DatabaseURL), schema, 4)
	if err != nil {
		t.Fatal(err)
	}
	old := s.Pool
	s.Pool = pool
	old.Close()
	t.Cleanup(pool.Close)
	return s
}

// Stmt is a statement and its arguments.
type Stmt struct {
	SQL  string
	Args []any
}

// Seed runs stmts in one transaction of store in system scope (a clinic's seed rows).
func Seed(t testing.TB, store *bus.Store, stmts ...Stmt) {
	t.Helper()
	err := store.InTx(auth.WithSystemScope(context.Background()), func(ctx context.Context, tx *bus.Tx) error {
		for _, q := range stmts {
			if _, err := tx.Exec(ctx, q.SQL, q.Args...); err != nil {
				return fmt.Errorf("%s: %w", q.SQL, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
