package pg

import (
	"context"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5"
)

// Provision prepares a database for services, connected as an administrative role (one with
// CREATEROLE): for each service a login role of the same name with password, and a schema of
// the same name owned by that role. Other roles get no rights on it, so a service cannot read
// another's tables. It is idempotent; the dev stack and the tests use it, production
// provisions roles with its own tooling.
func Provision(ctx context.Context, adminURL string, services map[string]string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("pg: provision connect: %w", err)
	}
	defer conn.Close(ctx)
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		return err
	}
	for role, password := range services {
		if !ValidIdent(role) {
			return fmt.Errorf("pg: invalid role name %q", role)
		}
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", role).Scan(&exists); err != nil {
			return err
		}
		pw := "'" + escapeLiteral(password) + "'"
		if !exists {
			if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD %s", role, pw)); err != nil && !IsUniqueViolation(err) {
				return fmt.Errorf("pg: create role %s: %w", role, err)
			}
		} else if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER ROLE %s LOGIN PASSWORD %s", role, pw)); err != nil {
			return fmt.Errorf("pg: alter role %s: %w", role, err)
		}
		// The admin must be a member to hand ownership over (Postgres 16 no longer implies it).
		_, _ = conn.Exec(ctx, fmt.Sprintf("GRANT %s TO CURRENT_USER", role))
		stmts := []string{
			fmt.Sprintf("CREATE SCHEMA IF NOT EXISTS %s AUTHORIZATION %s", role, role),
			fmt.Sprintf("ALTER SCHEMA %s OWNER TO %s", role, role),
			fmt.Sprintf("REVOKE ALL ON SCHEMA %s FROM PUBLIC", role),
			fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s", pgx.Identifier{db}.Sanitize(), role),
			// The outbox relays publish only below the server-wide oldest running transaction
			// (pg_snapshot_xmin), so a session left idle in a transaction would stall every
			// relay on the server: end such sessions after a minute.
			fmt.Sprintf("ALTER ROLE %s SET idle_in_transaction_session_timeout = '60s'", role),
		}
		for _, s := range stmts {
			if _, err := conn.Exec(ctx, s); err != nil {
				return fmt.Errorf("pg: provision %s: %w", role, err)
			}
		}
	}
	// Nobody but the owners may create objects in public.
	if _, err := conn.Exec(ctx, "REVOKE CREATE ON SCHEMA public FROM PUBLIC"); err != nil {
		return fmt.Errorf("pg: revoke public: %w", err)
	}
	return nil
}

// ServiceURL derives a service's connection URL from the admin URL: same host and database,
// the service's own role and password.
func ServiceURL(adminURL, role, password string) (string, error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", err
	}
	u.User = url.UserPassword(role, password)
	return u.String(), nil
}

func escapeLiteral(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r == '\'' {
			out = append(out, '\'')
		}
		out = append(out, r)
	}
	return string(out)
}
