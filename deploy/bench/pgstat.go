package bench

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Where Postgres time goes: pg_stat_statements over the saturation phase, in the harness's
// database only. The extension needs shared_preload_libraries (CI machines do not have it):
// without it the report says so and the rest of the run is unchanged.

// Statement is one normalized statement's totals over a phase.
type Statement struct {
	Role      string // the login role that ran it (each service has its own)
	Query     string // normalized text (constants are $n), whitespace collapsed
	Calls     int64
	TotalMS   float64
	MeanMS    float64
	Rows      int64
	BlksHit   int64
	BlksRead  int64
	BlksDirty int64
}

// PGStats reads pg_stat_statements of one database.
type PGStats struct {
	pool *pgxpool.Pool // a role that may read every role's statements and reset them
}

// OpenPGStats creates the extension in the database of pool if missing and checks it can be
// read. A nil PGStats and the reason come back when it cannot be used (not preloaded, or the
// role may not create, read or reset it); the caller keeps pool.
func OpenPGStats(ctx context.Context, pool *pgxpool.Pool) (*PGStats, string) {
	if _, err := pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		return nil, "pg_stat_statements could not be created: " + oneLine(err)
	}
	if _, err := pool.Exec(ctx, `SELECT 1 FROM pg_stat_statements LIMIT 1`); err != nil {
		// Typically "pg_stat_statements must be loaded via shared_preload_libraries".
		return nil, "pg_stat_statements is not available: " + oneLine(err)
	}
	return &PGStats{pool: pool}, ""
}

// Pool is the privileged pool the statistics are read with.
func (p *PGStats) Pool() *pgxpool.Pool { return p.pool }

// Reset clears the statistics of every database (pg_stat_statements_reset() without
// arguments); Top reads only this one.
func (p *PGStats) Reset(ctx context.Context) error {
	_, err := p.pool.Exec(ctx, `SELECT pg_stat_statements_reset()`)
	return err
}

// Top returns the n statements of this database with the largest total execution time, and
// the totals by role of every statement (not only the top n).
func (p *PGStats) Top(ctx context.Context, n int) (top []Statement, byRole []Statement, err error) {
	const cols = `COALESCE(r.rolname, s.userid::text), s.query, s.calls, s.total_exec_time, s.mean_exec_time, s.rows,
		s.shared_blks_hit, s.shared_blks_read, s.shared_blks_dirtied`
	rows, err := p.pool.Query(ctx, `SELECT `+cols+` FROM pg_stat_statements s
		LEFT JOIN pg_roles r ON r.oid = s.userid
		WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		ORDER BY s.total_exec_time DESC LIMIT $1`, n)
	if err != nil {
		return nil, nil, err
	}
	if top, err = pgx.CollectRows(rows, scanStatement); err != nil {
		return nil, nil, err
	}
	// Per role: every statement, and the commits (pg_stat_statements tracks utility
	// statements by default, so COMMIT counts the transactions that committed).
	rows, err = p.pool.Query(ctx, `SELECT COALESCE(r.rolname, s.userid::text),
			(sum(s.calls) FILTER (WHERE upper(s.query) IN ('COMMIT', 'END')))::text,
			sum(s.calls)::bigint, sum(s.total_exec_time), 0::float8, sum(s.rows)::bigint,
			sum(s.shared_blks_hit)::bigint, sum(s.shared_blks_read)::bigint, sum(s.shared_blks_dirtied)::bigint
		FROM pg_stat_statements s LEFT JOIN pg_roles r ON r.oid = s.userid
		WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		GROUP BY 1 ORDER BY 4 DESC`)
	if err != nil {
		return nil, nil, err
	}
	byRole, err = pgx.CollectRows(rows, scanStatement)
	return top, byRole, err
}

func scanStatement(row pgx.CollectableRow) (Statement, error) {
	var s Statement
	var q *string
	err := row.Scan(&s.Role, &q, &s.Calls, &s.TotalMS, &s.MeanMS, &s.Rows, &s.BlksHit, &s.BlksRead, &s.BlksDirty)
	if q != nil {
		s.Query = strings.Join(strings.Fields(*q), " ")
	}
	return s, err
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// PGTime is the "Where Postgres time goes" section of a report.
type PGTime struct {
	Phase   string // the phase measured
	Events  int64  // attendance events accepted in it (per-event figures divide by this)
	Top     []Statement
	ByRole  []Statement // Query holds the role's COMMIT count ("" when none)
	Missing string      // why there are no figures (the extension is not there)
}

// truncate shortens s to n runes with an ellipsis, for a table cell (pipes escaped).
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		s = string(r[:n-1]) + "…"
	}
	return strings.ReplaceAll(s, "|", `\|`)
}

// markdown renders the section.
func (t *PGTime) markdown(w func(string, ...any)) {
	w("## Where Postgres time goes\n\n")
	if t.Missing != "" || len(t.Top) == 0 {
		w("No figures: %s. The harness reads `pg_stat_statements` when the server preloads it\n", strings.TrimSuffix(t.Missing, "."))
		w("(`shared_preload_libraries`) and its role may create it (or BENCH_PG_STATS_URL names one that may).\n\n")
		return
	}
	per := func(v float64) string {
		if t.Events <= 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f", v/float64(t.Events))
	}
	w("`pg_stat_statements` of the harness's database over the %s phase (reset as it began, read once it\n", strings.ToLower(t.Phase))
	w("drained), per attendance event accepted in it (%d). Execution time only (not planning, not the\n", t.Events)
	w("round trips); each service runs as its own role.\n\n")
	w("| role | statements per event | commits per event | exec ms per event | blocks hit / read per event |\n| --- | --- | --- | --- | --- |\n")
	for _, r := range t.ByRole {
		commits := 0.0
		fmt.Sscan(r.Query, &commits)
		w("| %s | %s | %s | %s | %s / %s |\n", r.Role, per(float64(r.Calls)), per(commits), per(r.TotalMS),
			per(float64(r.BlksHit)), per(float64(r.BlksRead)))
	}
	w("\nTop %d statements by total execution time:\n\n", len(t.Top))
	w("| role | statement | calls | per event | total ms | mean ms | rows | blocks hit / read |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, s := range t.Top {
		w("| %s | `%s` | %d | %s | %.0f | %.3f | %d | %d / %d |\n", s.Role, truncate(s.Query, 140), s.Calls,
			per(float64(s.Calls)), s.TotalMS, s.MeanMS, s.Rows, s.BlksHit, s.BlksRead)
	}
	w("\n")
}
