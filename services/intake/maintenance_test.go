package intake_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/pkg/testkit"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	"github.com/trellis-health/trellis/services/intake"
	"github.com/trellis-health/trellis/services/intake/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/intake/internal/app"
	"github.com/trellis-health/trellis/services/intake/migrations"
)

// addKeys inserts n idempotency keys of subject created age ago.
func addKeys(t *testing.T, db interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, subject string, n int, age time.Duration) {
	t.Helper()
	if _, err := db.Exec(context.Background(), `INSERT INTO idempotency_keys (subject, key, request_hash, response, created_at)
		SELECT $1, 'key-' || i, '\x00', '\x00', now() - $3 * interval '1 microsecond' FROM generate_series(1, $2) i`,
		subject, n, age.Microseconds()); err != nil {
		t.Fatal(err)
	}
}

func TestPruneIdempotencyKeys(t *testing.T) {
	e := start(t)
	tok := e.rfTokens(t)
	ctx := context.Background()
	day := 24 * time.Hour
	// The service's own pruner runs once at start (and then hourly): let it finish first.
	testkit.Eventually(t, 10*time.Second, "the service's first prune", func() bool {
		return strings.Contains(e.Logs.String(), `"msg":"idempotency keys pruned"`)
	})
	// Three referrals: their keys are made now.
	for i := range 3 {
		e.rfCreate(t, tok.coordinator, rfPerson(fmt.Sprintf("prune-%04d", i), 300+i))
	}
	addKeys(t, e.Pool, "old", 2500, 31*day) // more than a batch
	addKeys(t, e.Pool, "young", 3, 29*day)  // inside the retention
	addKeys(t, e.Pool, "edge", 2, 30*day+time.Minute)
	// The first referral's key is old too.
	if _, err := e.Pool.Exec(ctx, `UPDATE idempotency_keys SET created_at = now() - interval '40 days' WHERE key = 'prune-0000'`); err != nil {
		t.Fatal(err)
	}
	uc := app.New(bus.NewStore(e.Pool, "intake"), postgres.Repository{}, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	n, err := uc.PruneIdempotencyKeys(ctx, app.DefaultIdempotencyRetention)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2503 {
		t.Errorf("pruned %d keys, want 2503", n)
	}
	var left []string
	rows, err := e.Pool.Query(ctx, `SELECT subject || '/' || key FROM idempotency_keys ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		left = append(left, k)
	}
	if want := "coordinator-1/prune-0001 coordinator-1/prune-0002 young/key-1 young/key-2 young/key-3"; strings.Join(left, " ") != want {
		t.Errorf("keys left = %v, want %s", left, want)
	}
	// A repeat after its key was pruned is a new call (here: a new referral, flagged as a
	// duplicate of the first).
	resp, err := e.client.CreateReferral(ctx, rfReq(tok.coordinator, rfPerson("prune-0000", 300)))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Msg.GetReplayed() || len(resp.Msg.GetReferral().GetPossibleDuplicates()) != 1 {
		t.Errorf("repeat of a pruned key = %v, want a new referral", resp.Msg)
	}
	if n, err := uc.PruneIdempotencyKeys(ctx, app.DefaultIdempotencyRetention); err != nil || n != 0 {
		t.Errorf("second prune: %d, %v; want nothing left to prune", n, err)
	}
}

// The service prunes when it starts, and then every hour.
func TestServicePrunesIdempotencyKeys(t *testing.T) {
	ctx := context.Background()
	url := testkit.Database(t)
	pool, err := pg.Open(ctx, systemURL(t, url), "intake", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE SCHEMA intake`); err != nil {
		t.Fatal(err)
	}
	if err := pg.Migrate(ctx, pool, "intake", "goose_db_version", migrations.FS, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	addKeys(t, pool, "older", 4, 8*24*time.Hour)
	addKeys(t, pool, "newer", 2, 6*24*time.Hour)

	retention := 7 * 24 * time.Hour
	var cfg testConfig
	s := servicetest.Start(t, intake.Spec(&retention), &cfg, map[string]string{"DATABASE_URL": url, "NATS_STREAM_STORAGE": "memory", "LOG_LEVEL": "info"})
	systemScoped(t, s)
	testkit.Eventually(t, 10*time.Second, "keys older than 7 days pruned", func() bool {
		return s.Count(t, "SELECT count(*) FROM idempotency_keys WHERE subject = 'older'") == 0
	})
	if n := s.Count(t, "SELECT count(*) FROM idempotency_keys WHERE subject = 'newer'"); n != 2 {
		t.Errorf("%d younger keys left, want 2", n)
	}
	testkit.Eventually(t, 5*time.Second, "a log line", func() bool {
		return strings.Contains(s.Logs.String(), `"msg":"idempotency keys pruned","service":"intake","pruned":4`)
	})

	t.Run("a retention under a day is refused", func(t *testing.T) {
		short := time.Hour
		err := intake.Spec(&short).Setup(ctx, &service.Platform{})
		if err == nil || !strings.Contains(err.Error(), "IDEMPOTENCY_RETENTION") {
			t.Errorf("setup with a 1h retention: %v", err)
		}
	})
}

// The schema's own constraints: one assessment per referral, the programs intake admits to,
// and a consent superseded at most once.
func TestSchemaConstraints(t *testing.T) {
	e := start(t)
	tok := e.rfTokens(t)
	ctx := context.Background()
	_, a := e.rfAssessed(t, tok.coordinator, 310, rfAssessment("", "schema-assess-1"))
	patient := e.ccPatient(t, "0190a000-0000-7000-8000-000000000001")
	for i := range 2 {
		if _, err := e.grant(e.intakeToken(t), validConsent(patient, fmt.Sprintf("schema-consent-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name, sql string
		args      []any
		code      string
	}{
		{"a second assessment of a referral", `INSERT INTO assessments (id, referral_id, clinic_id, edition, population, ratings,
				dimension_notes, withdrawal, co_occurring, recommended_level, recommendation_reasons, final_level, assessed_by, assessed_at)
			SELECT gen_random_uuid(), referral_id, clinic_id, edition, population, ratings, dimension_notes, withdrawal, co_occurring,
				recommended_level, recommendation_reasons, final_level, assessed_by, assessed_at FROM assessments WHERE id = $1`,
			[]any{a.GetAssessmentId()}, "23505"},
		{"an episode of an unknown program", `UPDATE episodes SET program = 'detox' WHERE patient_id = $1`, []any{patient}, "23514"},
		{"a consent superseded twice", `INSERT INTO consents (id, patient_id, clinic_id, version, scopes, language, effective_from,
				status, supersedes_id, recorded_by, created_at)
			SELECT gen_random_uuid(), patient_id, clinic_id, version + 10, scopes, language, effective_from, 'superseded',
				supersedes_id, recorded_by, created_at FROM consents WHERE patient_id = $1 AND supersedes_id IS NOT NULL`,
			[]any{patient}, "23505"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.Pool.Exec(ctx, tt.sql, tt.args...)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != tt.code {
				t.Errorf("error = %v, want SQLSTATE %s", err, tt.code)
			}
		})
	}
}
