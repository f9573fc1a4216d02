package postgres_test

import (
	"strings"
	"testing"
	"time"

	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/notification/internal/notifytest"
)

// The claim's generic plan (what pgx's prepared statement may get after five executions)
// looks the claimed messages, their recipients and preferences up on their keys, on a queue
// of 20,000 due messages: the form it replaced (the due rows a CTE joined to messages)
// hashed a sequential scan of each of the three tables, since a generic plan guesses a tenth
// of the queue for LIMIT $1.
func TestClaimDuePlanUsesKeys(t *testing.T) {
	pool, system := notifytest.Pools(t)
	notifytest.Migrate(t, pool)
	ctx := sys()
	for _, sql := range []string{
		`INSERT INTO messages (id, patient_id, clinic_id, kind, channel, dedupe_key, next_attempt_at)
			SELECT gen_random_uuid(), gen_random_uuid(), $1, 'reminder', 'email', 'q:' || n, now() - make_interval(secs => n)
			FROM generate_series(1, 20000) n`,
		`INSERT INTO recipients (patient_id, clinic_id, preferred_name, email, phone, time_zone, start_date,
				admission_updated_at, contact_updated_at)
			SELECT patient_id, clinic_id, 'Sam', '', '', 'UTC', '2026-01-05', now(), now() FROM messages WHERE clinic_id = $1`,
		`INSERT INTO preferences (patient_id, clinic_id, consent_id, version, channels, updated_at)
			SELECT patient_id, clinic_id, gen_random_uuid(), 1, '{email}', now() FROM messages WHERE clinic_id = $1`,
	} {
		if _, err := system.Exec(ctx, sql, clinic); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := system.Exec(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	plan := genericPlan(t, ctx, notifytest.Store(pool), postgres.ClaimDueSQL, []any{"10", "120"}, false)
	for _, table := range []string{"messages", "recipients", "preferences"} {
		if strings.Contains(plan, "Seq Scan on "+table) {
			t.Errorf("the generic plan scans %s:\n%s", table, plan)
		}
	}
	if !strings.Contains(plan, "Index Scan using messages_due") {
		t.Errorf("the generic plan does not read the due messages on messages_due:\n%s", plan)
	}
	if strings.Contains(plan, "Sort Key: messages.next_attempt_at") {
		t.Errorf("the due messages are sorted, not read in the index's order:\n%s", plan)
	}
}

// ClaimDue returns its claims in due order (next_attempt_at, then id), whatever order the
// rows have on disk.
func TestClaimDueReturnsDueOrder(t *testing.T) {
	pool, system := notifytest.Pools(t)
	notifytest.Migrate(t, pool)
	ctx := sys()
	// Inserted newest first, so the heap's order is the reverse of the due order; two share a
	// due time (id decides).
	if _, err := system.Exec(ctx, `
		INSERT INTO messages (id, patient_id, clinic_id, kind, channel, dedupe_key, next_attempt_at)
		SELECT ('0190a000-0000-7000-8000-' || lpad(n::text, 12, '0'))::uuid, gen_random_uuid(), $1, 'reminder', 'email',
			'q:' || n, now() - make_interval(mins => least(n, 5))
		FROM generate_series(6, 1, -1) n`, clinic); err != nil {
		t.Fatal(err)
	}
	repo := postgres.New(notifytest.Store(pool), fieldcrypt.Dev())
	claims, err := repo.ClaimDue(ctx, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range claims {
		got = append(got, c.ID[len(c.ID)-1:])
	}
	// next_attempt_at: 5 and 6 five minutes ago (id order), then 4, 3, 2, 1.
	if want := "5 6 4 3 2 1"; strings.Join(got, " ") != want {
		t.Errorf("claims in order %v, want %s", got, want)
	}
}
