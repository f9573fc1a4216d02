package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/testkit"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/notification/internal/app"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
	"github.com/trellis-health/trellis/services/notification/migrations"
)

const clinic = "0190a000-0000-7000-8000-00000000000a"

func setup(t *testing.T) (*pgxpool.Pool, *postgres.Repository) {
	t.Helper()
	ctx := context.Background()
	pool := testkit.Pool(t, "notification")
	if err := bus.Migrate(ctx, pool, "notification", nil); err != nil {
		t.Fatal(err)
	}
	if err := pg.Migrate(ctx, pool, "notification", "goose_db_version", migrations.FS, nil); err != nil {
		t.Fatal(err)
	}
	return pool, postgres.New(pool)
}

func inTx(t *testing.T, pool *pgxpool.Pool, fn func(pgx.Tx) error) {
	t.Helper()
	if err := pg.InTx(context.Background(), pool, fn); err != nil {
		t.Fatal(err)
	}
}

func recipient(t *testing.T, patientID, email string, at time.Time) domain.Recipient {
	t.Helper()
	r, err := domain.NewRecipient(patientID, clinic, "Sam", email, "America/Chicago", "2026-03-02", at)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func queue(t *testing.T, pool *pgxpool.Pool, repo *postgres.Repository, patientID string) (string, bool) {
	t.Helper()
	m := app.NewMessage{ID: bus.NewID(), PatientID: patientID, ClinicID: clinic, Kind: domain.KindWelcome, Channel: domain.ChannelEmail}
	var created bool
	inTx(t, pool, func(tx pgx.Tx) error {
		var err error
		created, err = repo.QueueMessage(context.Background(), tx, m)
		return err
	})
	return m.ID, created
}

func TestUpsertRecipientKeepsTheLatestFact(t *testing.T) {
	ctx := context.Background()
	pool, repo := setup(t)
	pid := bus.NewID()
	now := time.Now()
	for _, r := range []domain.Recipient{
		recipient(t, pid, "new@example.org", now),
		recipient(t, pid, "old@example.org", now.Add(-time.Hour)), // late, older event
	} {
		inTx(t, pool, func(tx pgx.Tx) error { return repo.UpsertRecipient(ctx, tx, r) })
	}
	var email string
	var start time.Time
	if err := pool.QueryRow(ctx, `SELECT email, start_date FROM recipients WHERE patient_id = $1`, pid).Scan(&email, &start); err != nil {
		t.Fatal(err)
	}
	if email != "new@example.org" || start.Format(domain.DateLayout) != "2026-03-02" {
		t.Errorf("recipient = %s %s; an older event overwrote a newer one", email, start)
	}
	inTx(t, pool, func(tx pgx.Tx) error {
		return repo.UpsertRecipient(ctx, tx, recipient(t, pid, "newest@example.org", now.Add(time.Minute)))
	})
	_ = pool.QueryRow(ctx, `SELECT email FROM recipients WHERE patient_id = $1`, pid).Scan(&email)
	if email != "newest@example.org" {
		t.Errorf("a newer event did not update the copy: %s", email)
	}
}

func TestQueueMessageOncePerPatientAndKind(t *testing.T) {
	pool, repo := setup(t)
	pid := bus.NewID()
	if _, created := queue(t, pool, repo, pid); !created {
		t.Fatal("first welcome not queued")
	}
	if _, created := queue(t, pool, repo, pid); created {
		t.Fatal("second welcome queued")
	}
	if _, created := queue(t, pool, repo, bus.NewID()); !created {
		t.Fatal("another patient's welcome not queued")
	}
}

func TestClaimDueLeasesAndFences(t *testing.T) {
	ctx := context.Background()
	pool, repo := setup(t)
	pid := bus.NewID()
	inTx(t, pool, func(tx pgx.Tx) error {
		return repo.UpsertRecipient(ctx, tx, recipient(t, pid, "a@example.org", time.Now()))
	})
	id, _ := queue(t, pool, repo, pid)
	orphan, _ := queue(t, pool, repo, bus.NewID()) // no recipient copy

	claims, err := repo.ClaimDue(ctx, 10, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(claims) != 2 {
		t.Fatalf("claimed %d, want 2", len(claims))
	}
	for _, c := range claims {
		switch c.ID {
		case id:
			if c.Attempt != 1 || c.Recipient == nil || c.Recipient.Email != "a@example.org" || c.Recipient.TimeZone != "America/Chicago" {
				t.Errorf("claim = %+v, recipient %+v", c, c.Recipient)
			}
		case orphan:
			if c.Recipient != nil {
				t.Errorf("orphan claim has a recipient: %+v", c.Recipient)
			}
		}
	}
	// Leased: invisible until the lease ends, then claimable again as attempt 2.
	if again, _ := repo.ClaimDue(ctx, 10, time.Minute); len(again) != 0 {
		t.Fatalf("claimed a leased message: %+v", again)
	}
	time.Sleep(300 * time.Millisecond)
	again, err := repo.ClaimDue(ctx, 10, time.Minute)
	if err != nil || len(again) != 2 || again[0].Attempt != 2 {
		t.Fatalf("after the lease: %+v, %v", again, err)
	}
	// The stale attempt 1 cannot record its failure over attempt 2.
	if err := repo.RecordFailure(ctx, id, 1, "smtp_unavailable", 0, true); err != nil {
		t.Fatal(err)
	}
	var status, code string
	_ = pool.QueryRow(ctx, `SELECT status, last_error_code FROM messages WHERE id = $1`, id).Scan(&status, &code)
	if status != "queued" || code != "" {
		t.Fatalf("stale failure applied: %s %s", status, code)
	}
	// Attempt 2 fails and is retried later; a success afterwards is recorded once.
	if err := repo.RecordFailure(ctx, id, 2, "smtp_tempfail", time.Hour, false); err != nil {
		t.Fatal(err)
	}
	_ = pool.QueryRow(ctx, `SELECT status, last_error_code FROM messages WHERE id = $1`, id).Scan(&status, &code)
	if status != "queued" || code != "smtp_tempfail" {
		t.Fatalf("after failure: %s %s", status, code)
	}
	for i, want := range []bool{true, false} {
		var marked bool
		inTx(t, pool, func(tx pgx.Tx) error {
			var err error
			marked, err = repo.MarkSent(ctx, tx, id)
			return err
		})
		if marked != want {
			t.Errorf("MarkSent #%d = %v, want %v", i+1, marked, want)
		}
	}
	msgs, err := repo.ListMessages(ctx, pid)
	if err != nil || len(msgs) != 1 || msgs[0].Status != "sent" || msgs[0].SentAt == nil || msgs[0].LastErrorCode != "" {
		t.Fatalf("ListMessages = %+v, %v", msgs, err)
	}
}

// Concurrent claimers (replicas) never get the same message.
func TestClaimDueSkipsLockedRows(t *testing.T) {
	ctx := context.Background()
	pool, repo := setup(t)
	const n = 60
	for range n {
		queue(t, pool, repo, bus.NewID())
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				claims, err := repo.ClaimDue(ctx, 3, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				if len(claims) == 0 {
					return
				}
				mu.Lock()
				for _, c := range claims {
					seen[c.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("claimed %d distinct messages, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("message %s claimed %d times", id, k)
		}
	}
}
