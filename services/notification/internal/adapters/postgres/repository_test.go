package postgres_test

import (
	"context"
	"io/fs"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/notification/internal/app"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
	"github.com/trellis-health/trellis/services/notification/internal/notifytest"
	"github.com/trellis-health/trellis/services/notification/migrations"
)

const clinic = "0190a000-0000-7000-8000-00000000000a"

// setup migrates a fresh database and returns a pool in system scope, for the test's own
// transactions and checks, and the repository over a scoped store on a pool without a
// session scope (as the service's): its own transactions see the clinics of their context.
func setup(t *testing.T) (*pgxpool.Pool, *postgres.Repository) {
	t.Helper()
	pool, system := notifytest.Pools(t)
	notifytest.Migrate(t, pool)
	return system, postgres.New(notifytest.Store(pool), fieldcrypt.Dev())
}

// sys is a context in system scope (every clinic), as the dispatcher runs in.
func sys() context.Context { return auth.WithSystemScope(context.Background()) }

func inTx(t *testing.T, pool *pgxpool.Pool, fn func(pgx.Tx) error) {
	t.Helper()
	if err := pg.InTx(context.Background(), pool, fn); err != nil {
		t.Fatal(err)
	}
}

func admission(t *testing.T, patientID, date string, at time.Time) domain.Admission {
	t.Helper()
	a, err := domain.NewAdmission(patientID, clinic, "America/Chicago", date, at)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func contact(t *testing.T, patientID, email string, at time.Time) domain.Contact {
	t.Helper()
	c, err := domain.NewContact(patientID, clinic, "Sam", email, "+13125550100", "America/Chicago", at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// copyOf reads the stored recipient copy: email and start date ("" when not known yet).
// The email is sealed (email_enc) and its plaintext column ”; a copy from before migration
// 00004 not encrypted yet still holds it in plaintext.
func copyOf(t *testing.T, pool *pgxpool.Pool, patientID string) (email, start string) {
	t.Helper()
	var sealed *string
	err := pool.QueryRow(context.Background(), `SELECT COALESCE(email, '<null>'), email_enc, COALESCE(start_date::text, '')
		FROM recipients WHERE patient_id = $1`, patientID).Scan(&email, &sealed, &start)
	if err != nil {
		t.Fatal(err)
	}
	if email == "" && sealed != nil {
		if email, err = fieldcrypt.Dev().Open(*sealed, fieldcrypt.AAD("recipients", "email", patientID)); err != nil {
			t.Fatal(err)
		}
	}
	return email, start
}

func queue(t *testing.T, pool *pgxpool.Pool, repo *postgres.Repository, patientID string) (string, bool) {
	t.Helper()
	m := app.NewMessage{ID: bus.NewID(), PatientID: patientID, ClinicID: clinic, Kind: domain.KindWelcome, Channel: domain.ChannelEmail,
		DedupeKey: domain.KindWelcome + ":" + patientID}
	var created bool
	inTx(t, pool, func(tx pgx.Tx) error {
		var err error
		created, err = repo.QueueMessage(context.Background(), tx, m)
		return err
	})
	return m.ID, created
}

// Each source (admission, contact details) is replaced only by a newer event of its own kind,
// whatever the order of arrival, and never clears the other source.
func TestUpsertKeepsTheLatestFactPerSource(t *testing.T) {
	ctx := sys()
	pool, repo := setup(t)
	t0 := time.Now()
	ready := func(pid string) bool {
		var ok bool
		inTx(t, pool, func(tx pgx.Tx) error {
			var err error
			ok, err = repo.RecipientReady(ctx, tx, pid)
			return err
		})
		return ok
	}
	// A step stores an admission (start date) or contact details (email), occurring at t0+after.
	type step struct {
		admission bool
		value     string
		after     time.Duration
	}
	adm := func(date string, after time.Duration) step { return step{true, date, after} }
	con := func(email string, after time.Duration) step { return step{false, email, after} }
	cases := []struct {
		name      string
		steps     []step
		wantEmail string // "<null>": no contact details
		wantStart string // "": no admission
	}{
		{"admission only", []step{adm("2026-03-02", 0)}, "<null>", "2026-03-02"},
		{"contact only", []step{con("a@example.org", 0)}, "a@example.org", ""},
		{"admission then contact", []step{adm("2026-03-02", 0), con("a@example.org", 0)}, "a@example.org", "2026-03-02"},
		// A contact event much newer than the admission does not block the admission.
		{"newer contact then older admission", []step{con("a@example.org", time.Hour), adm("2026-03-02", 0)}, "a@example.org", "2026-03-02"},
		{"contact changes", []step{con("old@example.org", 0), con("new@example.org", time.Minute)}, "new@example.org", ""},
		{"late older contact ignored", []step{con("new@example.org", time.Minute), con("old@example.org", 0), adm("2026-03-02", 0)}, "new@example.org", "2026-03-02"},
		{"late older admission ignored", []step{adm("2026-03-09", time.Minute), con("a@example.org", 0), adm("2026-03-02", 0)}, "a@example.org", "2026-03-09"},
		{"contact withdrawn", []step{con("a@example.org", 0), adm("2026-03-02", 0), con("", time.Minute)}, "", "2026-03-02"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pid := bus.NewID()
			for _, s := range tc.steps {
				inTx(t, pool, func(tx pgx.Tx) error {
					if s.admission {
						return repo.UpsertAdmission(ctx, tx, admission(t, pid, s.value, t0.Add(s.after)))
					}
					return repo.UpsertContact(ctx, tx, contact(t, pid, s.value, t0.Add(s.after)))
				})
			}
			email, start := copyOf(t, pool, pid)
			if email != tc.wantEmail || start != tc.wantStart {
				t.Errorf("copy = %q %q, want %q %q", email, start, tc.wantEmail, tc.wantStart)
			}
			if want := tc.wantEmail != "<null>" && tc.wantStart != ""; ready(pid) != want {
				t.Errorf("RecipientReady = %v, want %v", !want, want)
			}
		})
	}
	if ready(bus.NewID()) {
		t.Error("an unknown patient is ready")
	}
}

// The clinic's zone comes from the newer fact of either kind.
func TestTimeZoneFollowsTheNewerFact(t *testing.T) {
	ctx := sys()
	pool, repo := setup(t)
	pid := bus.NewID()
	t0 := time.Now()
	zone := func() string {
		var z string
		if err := pool.QueryRow(ctx, `SELECT time_zone FROM recipients WHERE patient_id = $1`, pid).Scan(&z); err != nil {
			t.Fatal(err)
		}
		return z
	}
	c := contact(t, pid, "a@example.org", t0.Add(time.Minute))
	c.TimeZone = "America/Denver"
	inTx(t, pool, func(tx pgx.Tx) error { return repo.UpsertContact(ctx, tx, c) })
	inTx(t, pool, func(tx pgx.Tx) error { return repo.UpsertAdmission(ctx, tx, admission(t, pid, "2026-03-02", t0)) })
	if z := zone(); z != "America/Denver" {
		t.Errorf("an older admission replaced the zone: %s", z)
	}
	inTx(t, pool, func(tx pgx.Tx) error {
		return repo.UpsertAdmission(ctx, tx, admission(t, pid, "2026-03-02", t0.Add(time.Hour)))
	})
	if z := zone(); z != "America/Chicago" {
		t.Errorf("a newer admission did not set the zone: %s", z)
	}
}

func TestQueueMessageOncePerDedupeKey(t *testing.T) {
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
	ctx := sys()
	pool, repo := setup(t)
	pid := bus.NewID()
	inTx(t, pool, func(tx pgx.Tx) error {
		if err := repo.UpsertAdmission(ctx, tx, admission(t, pid, "2026-03-02", time.Now())); err != nil {
			return err
		}
		return repo.UpsertContact(ctx, tx, contact(t, pid, "a@example.org", time.Now()))
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
			if c.Attempt != 1 || c.Recipient == nil || c.Recipient.Email != "a@example.org" || c.Recipient.TimeZone != "America/Chicago" ||
				c.Recipient.PreferredName != "Sam" || c.Recipient.Phone != "+13125550100" || c.Recipient.StartDate.Format(domain.DateLayout) != "2026-03-02" {
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
	ctx := sys()
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

// Recipient copies stored before 00002 came from PatientAdmitted, which carried the contact
// details too: they stay complete, so their welcome is not held back.
func TestMigrationKeepsEarlierCopiesComplete(t *testing.T) {
	ctx := sys()
	plain, pool := notifytest.Pools(t)
	first, err := fs.ReadFile(migrations.FS, "00001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Migrate(ctx, pool, "notification", "goose_db_version", fstest.MapFS{"00001_init.sql": {Data: first}}, nil); err != nil {
		t.Fatal(err)
	}
	pid := bus.NewID()
	if _, err := pool.Exec(ctx, `INSERT INTO recipients (patient_id, clinic_id, preferred_name, email, time_zone, start_date, updated_at)
		VALUES ($1, $2, 'Sam', 'a@example.org', 'America/Chicago', '2026-03-02', now())`, pid, clinic); err != nil {
		t.Fatal(err)
	}
	// The rest as the service runs them: without a session scope (row-level security,
	// 00005, comes on over the existing rows).
	if err := pg.Migrate(ctx, plain, "notification", "goose_db_version", migrations.FS, nil); err != nil {
		t.Fatal(err)
	}
	repo := postgres.New(notifytest.Store(plain), fieldcrypt.Dev())
	var ok bool
	inTx(t, pool, func(tx pgx.Tx) error {
		var err error
		ok, err = repo.RecipientReady(ctx, tx, pid)
		return err
	})
	if email, start := copyOf(t, pool, pid); !ok || email != "a@example.org" || start != "2026-03-02" {
		t.Errorf("after the migration: ready %v, copy %q %q", ok, email, start)
	}
	// A newer contact event still replaces it; an older one does not.
	for _, c := range []domain.Contact{contact(t, pid, "new@example.org", time.Now().Add(time.Hour)), contact(t, pid, "old@example.org", time.Now().Add(-time.Hour))} {
		inTx(t, pool, func(tx pgx.Tx) error { return repo.UpsertContact(ctx, tx, c) })
	}
	if email, _ := copyOf(t, pool, pid); email != "new@example.org" {
		t.Errorf("email = %q, want new@example.org", email)
	}
}
