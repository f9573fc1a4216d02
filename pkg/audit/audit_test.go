package audit_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/audit"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/testkit"
)

func migrated(t testing.TB) (*pgxpool.Pool, *audit.Log) {
	t.Helper()
	pool := testkit.Pool(t, "intake")
	for range 2 { // idempotent
		if err := audit.Migrate(context.Background(), pool, "intake", nil); err != nil {
			t.Fatal(err)
		}
	}
	return pool, audit.New(pool, "intake")
}

func entry(proc string, patients ...string) audit.Entry {
	return audit.Entry{RequestID: uuid.NewString(), Subject: "user-1", Roles: []string{"clinician"},
		Procedure: proc, Access: audit.Read, Outcome: audit.OutcomeOK, PatientIDs: patients,
		ClientIP: "127.0.0.1", UserAgent: "test"}
}

func mustVerify(t *testing.T, l *audit.Log) audit.Verification {
	t.Helper()
	v, err := l.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestChainAppendQueryVerify(t *testing.T) {
	ctx := context.Background()
	pool, l := migrated(t)
	if v := mustVerify(t, l); !v.OK || v.Rows != 0 {
		t.Fatalf("empty chain: %+v", v)
	}
	p1, p2 := uuid.NewString(), uuid.NewString()
	if err := l.Append(ctx, entry("/x.v1.S/GetA", p1), entry("/x.v1.S/GetB", p2, "not-a-uuid", strings.ToUpper(p1))); err != nil {
		t.Fatal(err)
	}
	e := entry("/x.v1.S/Change", p1)
	e.Access, e.Outcome, e.Subject, e.UserAgent = audit.Change, "permission_denied", "", "bad\x00agent\xff"
	if err := l.Append(ctx, e); err != nil {
		t.Fatal(err)
	}
	v := mustVerify(t, l)
	if !v.OK || v.Rows != 3 || len(v.Head) != 64 {
		t.Fatalf("verify: %+v", v)
	}
	rows, err := l.Query(ctx, audit.Filter{PatientID: p1})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows for p1, want 3 (an upper-case id is the same patient)", len(rows))
	}
	if got := rows[1].PatientIDs; len(got) != 2 || got[0] != p2 || got[1] != p1 {
		t.Fatalf("ids %v: want p2, p1 (the text that is not a UUID dropped)", got)
	}
	if r := rows[2]; r.Outcome != "permission_denied" || r.Access != audit.Change || r.Subject != "" || r.UserAgent != "bad\uFFFDagent\uFFFD" && r.UserAgent != "badagent\uFFFD" {
		t.Fatalf("row %+v", r)
	}
	if r := rows[0]; r.Service != "intake" || r.At.Location() != time.UTC || time.Since(r.At) > time.Minute {
		t.Fatalf("row %+v", r)
	}
	// The chain links each row to the previous one.
	for i := 1; i < len(rows); i++ {
		if hex.EncodeToString(rows[i].PrevHash) != hex.EncodeToString(rows[i-1].Hash) {
			t.Fatalf("row %d does not link to row %d", rows[i].Seq, rows[i-1].Seq)
		}
	}
	if rows, err := l.Query(ctx, audit.Filter{PatientID: p2}); err != nil || len(rows) != 1 {
		t.Fatalf("p2: %d rows, err %v", len(rows), err)
	}
	if rows, err := l.Query(ctx, audit.Filter{From: time.Now().Add(time.Hour)}); err != nil || len(rows) != 0 {
		t.Fatalf("future: %d rows, err %v", len(rows), err)
	}
	if rows, err := l.Query(ctx, audit.Filter{AfterSeq: rows[0].Seq, Limit: 1}); err != nil || len(rows) != 1 || rows[0].Procedure != "/x.v1.S/GetB" {
		t.Fatalf("paging: %+v, err %v", rows, err)
	}

	// Other records of a patient: "field=<uuid>" only.
	episode := uuid.NewString()
	e = entry("/x.v1.S/Discharge")
	e.Access, e.Outcome = audit.Change, "permission_denied"
	e.RecordIDs = []string{"episode_id=" + strings.ToUpper(episode), "member_id=ABC123", "Bad=" + episode, "episode_id", "consent_id=x"}
	if err := l.Append(ctx, e); err != nil {
		t.Fatal(err)
	}
	rows, err = l.Query(ctx, audit.Filter{RecordID: episode})
	if err != nil || len(rows) != 1 || len(rows[0].RecordIDs) != 1 || rows[0].RecordIDs[0] != "episode_id="+episode || len(rows[0].PatientIDs) != 0 {
		t.Fatalf("by record: %+v, err %v", rows, err)
	}
	if v := mustVerify(t, l); !v.OK || v.Rows != 4 {
		t.Fatalf("verify: %+v", v)
	}

	// 250 patients make three rows of at most 100 ids.
	many := make([]string, 250)
	for i := range many {
		many[i] = uuid.NewString()
	}
	if err := l.Append(ctx, entry("/x.v1.S/List", many...)); err != nil {
		t.Fatal(err)
	}
	var n, maxIDs int
	if err := pool.QueryRow(ctx, "SELECT count(*), max(cardinality(patient_ids)) FROM audit_log WHERE procedure = '/x.v1.S/List'").Scan(&n, &maxIDs); err != nil {
		t.Fatal(err)
	}
	if n != 3 || maxIDs != audit.MaxIDsPerRow {
		t.Fatalf("%d rows, at most %d ids", n, maxIDs)
	}
	if rows, err := l.Query(ctx, audit.Filter{PatientID: many[249]}); err != nil || len(rows) != 1 {
		t.Fatalf("the 250th patient: %d rows, err %v", len(rows), err)
	}
	// 150 records make two rows too, none dropped.
	records := make([]string, 150)
	for i := range records {
		records[i] = "claim_id=" + uuid.NewString()
	}
	e2 := entry("/x.v1.S/ListClaims")
	e2.RecordIDs = records
	if err := l.Append(ctx, e2); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, "SELECT count(*), max(cardinality(record_ids)) FROM audit_log WHERE procedure = '/x.v1.S/ListClaims'").Scan(&n, &maxIDs); err != nil {
		t.Fatal(err)
	}
	if n != 2 || maxIDs != audit.MaxIDsPerRow {
		t.Fatalf("150 records: %d rows, at most %d ids", n, maxIDs)
	}
	if rows, err := l.Query(ctx, audit.Filter{RecordID: strings.TrimPrefix(records[149], "claim_id=")}); err != nil || len(rows) != 1 {
		t.Fatalf("the 150th record: %d rows, err %v", len(rows), err)
	}
	if v := mustVerify(t, l); !v.OK || v.Rows != 9 {
		t.Fatalf("verify: %+v", v)
	}
}

// tamper runs sql with the append-only triggers off, as an owner bypassing them would.
func tamper(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	err := pg.InTx(context.Background(), pool, func(tx pgx.Tx) error {
		for _, s := range []string{"ALTER TABLE audit_log DISABLE TRIGGER USER", sql, "ALTER TABLE audit_log ENABLE TRIGGER USER"} {
			a := args
			if s != sql {
				a = nil
			}
			if _, err := tx.Exec(context.Background(), s, a...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func seqs(t *testing.T, pool *pgxpool.Pool) []int64 {
	t.Helper()
	rows, _ := pool.Query(context.Background(), "SELECT seq FROM audit_log ORDER BY seq")
	s, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyFindsAnEditedRow(t *testing.T) {
	ctx := context.Background()
	pool, l := migrated(t)
	for i := range 5 {
		if err := l.Append(ctx, entry(fmt.Sprintf("/x.v1.S/Get%d", i), uuid.NewString())); err != nil {
			t.Fatal(err)
		}
	}
	s := seqs(t, pool)
	// Someone hides who looked: the subject of the third row is changed.
	tamper(t, pool, "UPDATE audit_log SET subject = 'someone-else' WHERE seq = $1", s[2])
	v := mustVerify(t, l)
	if v.OK || v.BrokenAt != s[2] || !strings.Contains(v.Reason, "was changed") {
		t.Fatalf("verify: %+v, want broken at %d", v, s[2])
	}
	// Recomputing that row's hash moves the break to the next row.
	tamper(t, pool, "UPDATE audit_log SET hash = $2 WHERE seq = $1", s[2], rehash(t, l, s[2]))
	if v := mustVerify(t, l); v.OK || v.BrokenAt != s[3] || !strings.Contains(v.Reason, "deleted or changed") {
		t.Fatalf("verify after rehash: %+v, want broken at %d", v, s[3])
	}
}

// rehash is the hash the edited row seq would have to carry to fit its own content.
func rehash(t *testing.T, l *audit.Log, seq int64) []byte {
	t.Helper()
	rows, err := l.Query(context.Background(), audit.Filter{AfterSeq: seq - 1, Limit: 1})
	if err != nil || len(rows) != 1 {
		t.Fatal(err)
	}
	return audit.ChainHash(rows[0].PrevHash, rows[0].Entry.Canonical())
}

func TestVerifyFindsADeletedRow(t *testing.T) {
	ctx := context.Background()
	pool, l := migrated(t)
	for i := range 5 {
		if err := l.Append(ctx, entry(fmt.Sprintf("/x.v1.S/Get%d", i), uuid.NewString())); err != nil {
			t.Fatal(err)
		}
	}
	s := seqs(t, pool)
	tamper(t, pool, "DELETE FROM audit_log WHERE seq = $1", s[1])
	v := mustVerify(t, l)
	if v.OK || v.BrokenAt != s[2] || !strings.Contains(v.Reason, "deleted") {
		t.Fatalf("verify: %+v, want broken at %d", v, s[2])
	}
}

// The service's own role (which owns its schema and the table) cannot UPDATE, DELETE or
// TRUNCATE the trail; it can INSERT (through Append) and SELECT.
func TestServiceRoleCannotUpdateOrDelete(t *testing.T) {
	ctx := context.Background()
	adminURL := testkit.Database(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	role := "audit_t" + hex.EncodeToString(b)
	t.Cleanup(func() { dropRole(t, adminURL, role) })
	if err := pg.Provision(ctx, adminURL, map[string]string{role: "pw"}); err != nil {
		t.Fatal(err)
	}
	u, err := pg.ServiceURL(adminURL, role, "pw")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pg.Open(ctx, u, role, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := audit.Migrate(ctx, pool, role, nil); err != nil {
		t.Fatal(err)
	}
	l := audit.New(pool, "intake")
	if err := l.Append(ctx, entry("/x.v1.S/Get", uuid.NewString())); err != nil {
		t.Fatal(err)
	}
	var owner string
	if err := pool.QueryRow(ctx, "SELECT tableowner FROM pg_tables WHERE tablename = 'audit_log'").Scan(&owner); err != nil || owner != role {
		t.Fatalf("owner %q err %v: the test wants the service role to own the table", owner, err)
	}
	for _, sql := range []string{
		"UPDATE audit_log SET subject = 'x'",
		"UPDATE audit_log SET outcome = 'ok' WHERE false OR true",
		"DELETE FROM audit_log",
		"TRUNCATE audit_log",
	} {
		_, err := pool.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" || !strings.Contains(pgErr.Message, "append-only") {
			t.Errorf("%s: err %v, want the append-only refusal (42501)", sql, err)
		}
	}
	if v := mustVerify(t, l); !v.OK || v.Rows != 1 {
		t.Fatalf("verify: %+v", v)
	}
}

func dropRole(t *testing.T, dbURL, role string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer c.Close(ctx)
	_, _ = c.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role)
	for _, stmt := range []string{"DROP OWNED BY " + role + " CASCADE", "DROP ROLE IF EXISTS " + role} {
		if _, err := c.Exec(ctx, stmt); err != nil && !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("cleanup %s: %v", stmt, err)
		}
	}
}

// Concurrent appends, from two pools (two replicas), keep one chain.
func TestConcurrentAppendsKeepOneChain(t *testing.T) {
	ctx := context.Background()
	pool, l := migrated(t)
	other, err := pg.Open(ctx, pool.Config().ConnString(), "intake", 8)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	logs := []*audit.Log{l, audit.New(other, "intake")}
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for range each {
				if err := logs[w%2].Append(ctx, entry(fmt.Sprintf("/x.v1.S/W%d", w), uuid.NewString()), entry("/x.v1.S/Second", uuid.NewString())); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	v := mustVerify(t, l)
	if !v.OK || v.Rows != workers*each*2 {
		t.Fatalf("verify: %+v, want %d rows in one unbroken chain", v, workers*each*2)
	}
	var forks int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM (SELECT prev_hash FROM audit_log GROUP BY prev_hash HAVING count(*) > 1) f").Scan(&forks); err != nil || forks != 0 {
		t.Fatalf("%d rows share a prev_hash (a fork), err %v", forks, err)
	}
}
