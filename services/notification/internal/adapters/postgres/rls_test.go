package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/testkit/rlstest"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/notification/internal/notifytest"
	"github.com/trellis-health/trellis/services/notification/migrations"
)

// rlsTables are the notification tables that hold clinic data (a clinic_id column), each with
// the columns a copy of a row must change to be a new row (its keys and unique values), as
// SQL expressions. The network's template (clinic_id NULL) is not a clinic's row: left out of
// the probes but for the count without a scope, which reads it.
var rlsTables = []rlstest.Table{
	{Name: "recipients", Fresh: map[string]string{"patient_id": "gen_random_uuid()"}},
	{Name: "messages", Fresh: map[string]string{"id": "gen_random_uuid()", "dedupe_key": "gen_random_uuid()::text"}},
	{Name: "preferences", Fresh: map[string]string{"patient_id": "gen_random_uuid()"}},
	{Name: "appointments", Fresh: map[string]string{"appointment_id": "gen_random_uuid()"}},
	{Name: "clinic_settings"}, // keyed by the clinic itself
	{Name: "templates", Fresh: map[string]string{"id": "gen_random_uuid()", "version": "99"}, Rows: "clinic_id IS NOT NULL", Shared: 1},
}

const (
	rlsClinicA = rlstest.ClinicA
	rlsClinicB = rlstest.ClinicB
)

// ownerRole is notification's own role (rlstest.ServiceRole: no superuser, no BYPASSRLS,
// owning schema notification; the administrative role a member of it, as pg.Provision makes
// it) with pkg/bus's tables and notification's schema migrated as it.
func ownerRole(t *testing.T) *rlstest.Role {
	t.Helper()
	return rlstest.ServiceRole(t, notifytest.Schema, func(ctx context.Context, pool *pgxpool.Pool) error {
		if err := bus.Migrate(ctx, pool, notifytest.Schema, nil); err != nil {
			return err
		}
		return pg.Migrate(ctx, pool, notifytest.Schema, "goose_db_version", migrations.FS, nil)
	})
}

// seedClinic writes one row of clinic into every table of rlsTables, in system scope, and
// returns its patient's id.
func seedClinic(t *testing.T, store *bus.Store, clinic string) (patient string) {
	t.Helper()
	patient = bus.NewID()
	rlstest.Seed(t, store, []rlstest.Stmt{
		{SQL: `INSERT INTO recipients (patient_id, clinic_id, preferred_name, email, phone, time_zone, start_date,
				admission_updated_at, contact_updated_at)
			VALUES ($1, $2, 'Sam', '', '', 'America/Chicago', '2026-03-02', now(), now())`, Args: []any{patient, clinic}},
		{SQL: `INSERT INTO messages (id, patient_id, clinic_id, kind, channel, dedupe_key, status, sent_at)
			VALUES (gen_random_uuid(), $1, $2, 'welcome', 'email', 'welcome:' || gen_random_uuid(), 'sent', now())`, Args: []any{patient, clinic}},
		{SQL: `INSERT INTO preferences (patient_id, clinic_id, consent_id, version, channels, updated_at)
			VALUES ($1, $2, gen_random_uuid(), 1, '{email}', now())`, Args: []any{patient, clinic}},
		{SQL: `INSERT INTO appointments (appointment_id, patient_id, clinic_id, local_date, start_time, end_time, starts_at,
				time_zone, status, updated_at)
			VALUES (gen_random_uuid(), $1, $2, '2026-03-02', '18:00', '19:00', now(), 'America/Chicago', 'scheduled', now())`,
			Args: []any{patient, clinic}},
		{SQL: `INSERT INTO clinic_settings (clinic_id, contact_phone) VALUES ($1, '+13125550100')`, Args: []any{clinic}},
		{SQL: `INSERT INTO templates (id, clinic_id, kind, channel, locale, version, body)
			VALUES (gen_random_uuid(), $1, 'reminder', 'sms', 'en', 1, 'See you {{date}}.')`, Args: []any{clinic}},
	}...)
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
var principalCtx = rlstest.Caller

// With notification's own role (not a superuser, no BYPASSRLS, the tables' owner) the
// database, not the code, keeps each clinic's rows to callers of that clinic: in a
// transaction scoped to clinic A every table shows only A's rows, B's rows cannot be counted,
// updated or deleted, a row cannot be written to (or moved into) clinic B, and without a
// scope nothing is visible. The network's templates are read in every scope and written in
// none but every clinic's.
func TestRowLevelSecurityIsolatesClinics(t *testing.T) {
	r := ownerRole(t)
	ctx := context.Background()
	rlstest.CheckCatalog(t, r.Pool, rlstest.Names(rlsTables)...)
	store := r.Store()
	seedClinic(t, store, rlsClinicA)
	seedClinic(t, store, rlsClinicB)
	rlstest.OtherRoles(t, r, "messages", rlsTables...) // before the network's template, which every role reads
	seedNetworkTemplate(t, store)
	rlstest.Probe(t, store, r.Pool, rlsTables...)
	asA := principalCtx(rlsClinicA)

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
			rlstest.Unchanged(t, store, asA, q) // in clinic A's scope
		}
		err := store.InTx(asA, func(ctx context.Context, tx *bus.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO templates (id, clinic_id, kind, channel, locale, version, body)
				VALUES (gen_random_uuid(), NULL, 'reminder', 'sms', 'en', 2, 'A network text from clinic A')`)
			return err
		})
		if !rlstest.IsViolation(err) {
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

// The repositories, called directly with a caller of clinic A (no app check in between), do
// not get clinic B's patient's messages, preferences or clinic B's settings from the
// database, guessed ids or not; a caller of B, and of every clinic, does.
func TestRowLevelSecurityStopsGuessedIDs(t *testing.T) {
	store := ownerRole(t).Store()
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
	ctx := auth.WithSystemScope(context.Background())
	clinics := []string{rlsClinicA, rlsClinicB, "0190a000-0000-7000-8000-00000000000c"}
	store := ownerRole(t).Store()
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
