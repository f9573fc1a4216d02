package postgres

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/testkit"
	"github.com/trellis-health/trellis/services/intake/internal/app"
	"github.com/trellis-health/trellis/services/intake/migrations"
)

// migrated is a fresh database with intake's schema, on a pool in system scope (the clinic
// scope "*" for the whole session: the tests write and read every clinic's rows).
func migrated(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := scopedPool(t, testkit.Database(t), "*")
	if _, err := pool.Exec(context.Background(), "CREATE SCHEMA IF NOT EXISTS intake"); err != nil {
		t.Fatal(err)
	}
	if err := pg.Migrate(context.Background(), pool, "intake", "goose_db_version", migrations.FS, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	return pool
}

// scopedPool opens a pool on dbURL (search_path intake) whose sessions hold the clinic scope
// scope ("" for none): the setting the service sets per transaction, set for the session.
func scopedPool(t *testing.T, dbURL, scope string) *pgxpool.Pool {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if scope != "" {
		q.Set("options", strings.TrimSpace(q.Get("options")+" -c trellis.clinics="+scope))
	}
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20") // pgx does not read "+" as a space
	pool, err := pg.Open(context.Background(), u.String(), "intake", 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// planNode is a node of EXPLAIN (FORMAT JSON)'s plan.
type planNode struct {
	Type  string     `json:"Node Type"`
	Index string     `json:"Index Name"`
	Plans []planNode `json:"Plans"`
}

func (n planNode) String() string {
	s := n.Type
	if n.Index != "" {
		s += " using " + n.Index
	}
	var kids []string
	for _, k := range n.Plans {
		kids = append(kids, k.String())
	}
	if len(kids) > 0 {
		s += " (" + strings.Join(kids, ", ") + ")"
	}
	return s
}

// The queue's listings read an index in their order and stop at the page's end: no sort; with
// the row-level security policy applying the scope of every clinic (the test's session) or of
// the listed clinic's caller.
func TestListReferralsPlans(t *testing.T) {
	pool := migrated(t)
	ctx := context.Background()
	clinics := []string{"0190a000-0000-7000-8000-000000000001", "0190a000-0000-7000-8000-000000000002", "0190a000-0000-7000-8000-000000000003"}
	for _, c := range clinics {
		if _, err := pool.Exec(ctx, `INSERT INTO clinics (id, name, time_zone) VALUES ($1, 'c', 'UTC')`, c); err != nil {
			t.Fatal(err)
		}
	}
	// 20,000 referrals a minute apart, most of them no longer open, of a network of clinics
	// where the first is a small one (2% of the referrals).
	if _, err := pool.Exec(ctx, `INSERT INTO referrals (id, clinic_id, source, given_name, family_name, phone, first_contact_at,
			status, created_by, created_at, updated_at)
		SELECT gen_random_uuid(), ($1::uuid[])[CASE WHEN i % 50 = 0 THEN 1 ELSE 2 + i % 2 END], 'self', 'G', 'F',
			'+1312555' || lpad((i % 10000)::text, 4, '0'),
			now() - i * interval '1 minute', CASE WHEN i % 10 = 0 THEN 'new' ELSE 'closed' END, 'seed', now(), now()
		FROM generate_series(1, 20000) i`, clinics); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE referrals`); err != nil {
		t.Fatal(err)
	}
	after := time.Now().Add(-200 * time.Hour)
	tests := []struct {
		name  string
		q     app.ReferralQuery
		index string
		scope string // the transaction's clinic scope; "": the session's ("*")
	}{
		{"one clinic", app.ReferralQuery{ClinicIDs: clinics[:1], Limit: 51}, "referrals_clinic_contact", ""},
		{"one clinic, next page", app.ReferralQuery{ClinicIDs: clinics[:1], AfterAt: after, AfterID: clinics[0], Limit: 51}, "referrals_clinic_contact", ""},
		{"one clinic, its caller's scope", app.ReferralQuery{ClinicIDs: clinics[:1], Limit: 51}, "referrals_clinic_contact", clinics[0]},
		{"one clinic, next page, its caller's scope", app.ReferralQuery{ClinicIDs: clinics[:1], AfterAt: after, AfterID: clinics[0], Limit: 51}, "referrals_clinic_contact", clinics[0]},
		{"every clinic", app.ReferralQuery{AllClinics: true, Limit: 51}, "referrals_contact", ""},
		{"every clinic, next page", app.ReferralQuery{AllClinics: true, AfterAt: after, AfterID: clinics[0], Limit: 51}, "referrals_contact", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sql, args := listReferralsSQL(tt.q)
			var raw []byte
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				if tt.scope != "" {
					if _, err := tx.Exec(ctx, `SELECT set_config('trellis.clinics', $1, true)`, tt.scope); err != nil {
						return err
					}
				}
				return tx.QueryRow(ctx, `EXPLAIN (FORMAT JSON) `+sql, args...).Scan(&raw)
			})
			if err != nil {
				t.Fatal(err)
			}
			var plans []struct {
				Plan planNode `json:"Plan"`
			}
			if err := json.Unmarshal(raw, &plans); err != nil || len(plans) != 1 {
				t.Fatalf("plan %s: %v", raw, err)
			}
			plan := plans[0].Plan.String()
			if !strings.Contains(plan, "Index Scan using "+tt.index) || strings.Contains(plan, "Sort") {
				t.Errorf("plan = %s, want an index scan of %s and no sort", plan, tt.index)
			}
		})
	}
}
