package pg_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/testkit"
)

var migrations = fstest.MapFS{
	"00001_init.sql": {Data: []byte(`-- +goose Up
CREATE TABLE patients (id uuid PRIMARY KEY, clinic_id uuid NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
-- +goose Down
DROP TABLE patients;
`)},
	"00002_email.sql": {Data: []byte(`-- +goose Up
ALTER TABLE patients ADD COLUMN email text UNIQUE;
-- +goose Down
ALTER TABLE patients DROP COLUMN email;
`)},
}

func TestValidIdent(t *testing.T) {
	for s, ok := range map[string]bool{
		"intake": true, "_x1": true, "billing_v2": true, strings.Repeat("a", 63): true,
		"": false, "Intake": false, "1abc": false, "a-b": false, "a;drop": false, `a"`: false, strings.Repeat("a", 64): false,
	} {
		if pg.ValidIdent(s) != ok {
			t.Errorf("ValidIdent(%q) = %v", s, !ok)
		}
	}
}

func TestOpenSetsSearchPathAndUTC(t *testing.T) {
	ctx := context.Background()
	url := testkit.Database(t)
	if _, err := pg.Open(ctx, url, "bad-schema", 2); err == nil {
		t.Fatal("an invalid schema name must be refused")
	}
	pool, err := pg.Open(ctx, url, "intake", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var path, tz string
	if err := pool.QueryRow(ctx, "SELECT current_setting('search_path'), current_setting('TimeZone')").Scan(&path, &tz); err != nil {
		t.Fatal(err)
	}
	if path != "intake" || tz != "UTC" {
		t.Fatalf("search_path %q timezone %q", path, tz)
	}
	if pool.Config().MaxConns != 2 {
		t.Fatalf("max conns %d", pool.Config().MaxConns)
	}
}

func TestMigrateIsIdempotentAndVersionedInTheSchema(t *testing.T) {
	ctx := context.Background()
	pool := testkit.Pool(t, "intake")
	for range 2 {
		if err := pg.Migrate(ctx, pool, "intake", "goose_db_version", migrations, nil); err != nil {
			t.Fatal(err)
		}
	}
	var version int64
	if err := pool.QueryRow(ctx, "SELECT max(version_id) FROM intake.goose_db_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version != 2 {
		t.Fatalf("version %d, want 2", version)
	}
	var applied int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM intake.goose_db_version WHERE version_id > 0").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != 2 {
		t.Fatalf("%d migrations recorded, want 2 (the second run must apply nothing)", applied)
	}
	var elsewhere int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'goose_db_version' AND schemaname <> 'intake'").Scan(&elsewhere); err != nil {
		t.Fatal(err)
	}
	if elsewhere != 0 {
		t.Fatal("a version table exists outside the schema")
	}
	// Unqualified names resolve to the schema.
	if _, err := pool.Exec(ctx, "INSERT INTO patients (id, clinic_id, email) VALUES (gen_random_uuid(), gen_random_uuid(), 'a@example.com')"); err != nil {
		t.Fatal(err)
	}

	// A second schema in the same database is versioned independently.
	if err := pg.Migrate(ctx, pool, "billing", "goose_db_version", fstest.MapFS{"00001_a.sql": migrations["00001_init.sql"]}, nil); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, "SELECT max(version_id) FROM billing.goose_db_version").Scan(&version); err != nil || version != 1 {
		t.Fatalf("billing version %d err %v", version, err)
	}
	if err := pg.Migrate(ctx, pool, "Bad", "t", migrations, nil); err == nil {
		t.Fatal("an invalid schema name must be refused")
	}
	broken := fstest.MapFS{"00001_bad.sql": {Data: []byte("-- +goose Up\nCREATE TABLE (;\n")}}
	if err := pg.Migrate(ctx, pool, "broken", "goose_db_version", broken, nil); err == nil {
		t.Fatal("a failing migration must be reported")
	}
}

// Replicas starting at once migrate once.
func TestMigrateConcurrently(t *testing.T) {
	ctx := context.Background()
	pool := testkit.Pool(t, "intake")
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- pg.Migrate(ctx, pool, "intake", "goose_db_version", migrations, nil) }()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var applied int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM intake.goose_db_version WHERE version_id > 0").Scan(&applied); err != nil || applied != 2 {
		t.Fatalf("applied %d err %v", applied, err)
	}
}

func TestInTxAndUniqueViolation(t *testing.T) {
	ctx := context.Background()
	pool := testkit.Pool(t, "intake")
	if err := pg.Migrate(ctx, pool, "intake", "goose_db_version", migrations, nil); err != nil {
		t.Fatal(err)
	}
	insert := func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO patients (id, clinic_id, email) VALUES (gen_random_uuid(), gen_random_uuid(), 'dup@example.com')")
		return err
	}
	if err := pg.InTx(ctx, pool, insert); err != nil {
		t.Fatal(err)
	}
	err := pg.InTx(ctx, pool, insert)
	if !pg.IsUniqueViolation(err) {
		t.Fatalf("err %v, want a unique violation", err)
	}
	if pg.IsUniqueViolation(errors.New("23505")) || pg.IsUniqueViolation(nil) || pg.IsUniqueViolation(&pgconn.PgError{Code: "23503"}) {
		t.Fatal("false positive")
	}
	boom := errors.New("boom")
	err = pg.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM patients"); err != nil {
			return err
		}
		return boom
	})
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM patients").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(err, boom) || n != 1 {
		t.Fatalf("err %v rows %d: a failed transaction must roll back", err, n)
	}
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Provision gives each service its own login role and schema; no role can read another's.
func TestProvisionIsolatesServices(t *testing.T) {
	ctx := context.Background()
	adminURL := testkit.Database(t)
	suffix := randomSuffix() // roles are cluster-wide: unique per run
	a, b := "intake_t"+suffix, "billing_t"+suffix
	services := map[string]string{a: "pw-a'quote", b: "pw-b"}
	t.Cleanup(func() { dropRoles(t, adminURL, a, b) })

	if err := pg.Provision(ctx, adminURL, services); err != nil {
		t.Fatal(err)
	}
	if err := pg.Provision(ctx, adminURL, services); err != nil {
		t.Fatalf("second provision (idempotent): %v", err)
	}
	if err := pg.Provision(ctx, adminURL, map[string]string{"Bad-Role": "x"}); err == nil {
		t.Fatal("an invalid role name must be refused")
	}

	connect := func(role string) *pgx.Conn {
		t.Helper()
		u, err := pg.ServiceURL(adminURL, role, services[role])
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(cctx, u)
		if err != nil {
			t.Fatalf("connect as %s: %v", role, err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}
	ca, cb := connect(a), connect(b)
	if _, err := ca.Exec(ctx, "CREATE TABLE "+a+".patients (id int PRIMARY KEY); INSERT INTO "+a+".patients VALUES (1)"); err != nil {
		t.Fatalf("%s cannot use its own schema: %v", a, err)
	}
	var owner string
	if err := ca.QueryRow(ctx, "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1", a).Scan(&owner); err != nil || owner != a {
		t.Fatalf("schema owner %q err %v", owner, err)
	}
	denied := func(what string, err error) {
		t.Helper()
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("%s: err %v, want permission denied (42501)", what, err)
		}
	}
	_, err := cb.Exec(ctx, "SELECT * FROM "+a+".patients")
	denied(b+" reads "+a, err)
	_, err = cb.Exec(ctx, "CREATE TABLE "+a+".intruder (id int)")
	denied(b+" creates in "+a, err)
	_, err = cb.Exec(ctx, "CREATE TABLE public.shared (id int)")
	denied(b+" creates in public", err)
	// Not even usage of the schema: the refusal comes from the schema, not from the table.
	var usage, create bool
	if err := cb.QueryRow(ctx, "SELECT has_schema_privilege($1, 'USAGE'), has_schema_privilege($1, 'CREATE')", a).Scan(&usage, &create); err != nil {
		t.Fatal(err)
	}
	if usage || create {
		t.Errorf("%s has usage=%v create=%v on schema %s", b, usage, create, a)
	}

	// A pool opened the way services do resolves unqualified names to the service's schema.
	u, _ := pg.ServiceURL(adminURL, a, services[a])
	pool, err := pg.Open(ctx, u, a, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM patients").Scan(&n); err != nil || n != 1 {
		t.Fatalf("unqualified read: %d %v", n, err)
	}
	// The service role migrates its own schema (it has no CREATE on the database).
	if err := pg.Migrate(ctx, pool, a, "goose_db_version", fstest.MapFS{"00001_x.sql": {Data: []byte(
		"-- +goose Up\nCREATE TABLE episodes (id int);\n-- +goose Down\nDROP TABLE episodes;\n")}}, nil); err != nil {
		t.Fatalf("migrate as %s: %v", a, err)
	}
	if err := pg.Migrate(ctx, pool, b, "goose_db_version", migrations, nil); err == nil {
		t.Fatalf("%s migrated %s's schema", a, b)
	}
}

// dropRoles removes the test roles (cluster-wide objects): first what they own and were granted
// in the test database, then the roles.
func dropRoles(t *testing.T, dbURL string, roles ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer c.Close(ctx)
	for _, r := range roles {
		// Sessions of the role (pools the test left open) would block DROP ROLE.
		_, _ = c.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", r)
		for _, stmt := range []string{"DROP OWNED BY " + r + " CASCADE", "DROP ROLE IF EXISTS " + r} {
			if _, err := c.Exec(ctx, stmt); err != nil && !strings.Contains(err.Error(), "does not exist") {
				t.Errorf("cleanup %s: %v", stmt, err)
			}
		}
	}
}

func TestServiceURL(t *testing.T) {
	u, err := pg.ServiceURL("postgres://admin:secret@db:5432/trellis?sslmode=disable", "intake", "p@ss/word")
	if err != nil {
		t.Fatal(err)
	}
	if u != "postgres://intake:p%40ss%2Fword@db:5432/trellis?sslmode=disable" {
		t.Fatalf("url %q", u)
	}
}

// A Postgres error that quotes a value keeps only its SQL state and the names it gives; the
// caller's own wrapping and errors not from Postgres are kept as they are.
func TestRedact(t *testing.T) {
	pool := testkit.Pool(t, "redact")
	ctx := context.Background()
	_, err := pool.Exec(ctx, `SELECT $1::date`, "1984-13-45 Jane Roe")
	wrapped := fmt.Errorf("record birth date: %w", err)
	got := pg.Redact(wrapped)
	if strings.Contains(got, "Jane") || strings.Contains(got, "1984") {
		t.Errorf("Redact kept the quoted value: %q", got)
	}
	if !strings.HasPrefix(got, "record birth date: postgres error SQLSTATE 22") {
		t.Errorf("Redact(%q) = %q", wrapped, got)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE redact.t (email text CONSTRAINT t_email UNIQUE)`); err != nil {
		t.Fatal(err)
	}
	_, err = pool.Exec(ctx, `INSERT INTO redact.t VALUES ('x@example.com'), ('x@example.com')`)
	if got := pg.Redact(err); strings.Contains(got, "example") || !strings.Contains(got, "SQLSTATE 23505 constraint t_email table t") {
		t.Errorf("unique violation: %q", got)
	}
	if got := pg.Redact(errors.New("clinic is not known")); got != "clinic is not known" {
		t.Errorf("not a Postgres error: %q", got)
	}
	if pg.Redact(nil) != "" {
		t.Error("Redact(nil) is not empty")
	}
}
