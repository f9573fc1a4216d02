package postgres

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
)

// Referrals written before field encryption are encrypted in one pass (plaintext cleared,
// hashes filled), a second pass has nothing to do, and duplicate detection then reads the
// hash indexes, not the table.
func TestEncryptFieldsInBulkAndDuplicatePlan(t *testing.T) {
	pool := migrated(t)
	ctx := context.Background()
	clinic := "0190a000-0000-7000-8000-000000000001"
	if _, err := pool.Exec(ctx, `INSERT INTO clinics (id, name, time_zone) VALUES ($1, 'c', 'UTC')`, clinic); err != nil {
		t.Fatal(err)
	}
	const n = 5000
	if _, err := pool.Exec(ctx, `INSERT INTO referrals (id, clinic_id, source, given_name, family_name, date_of_birth, phone, email,
			first_contact_at, status, created_by, created_at, updated_at)
		SELECT gen_random_uuid(), $1, 'self', 'G', 'F', date '1950-01-01' + (i % 20000), '+1312555' || lpad((i % 10000)::text, 4, '0'),
			'p' || i || '@example.org', now() - i * interval '1 minute', CASE WHEN i % 10 = 0 THEN 'new' ELSE 'closed' END,
			'seed', now(), now()
		FROM generate_series(1, $2::int) i`, clinic, n); err != nil {
		t.Fatal(err)
	}
	k := fieldcrypt.Dev()
	// Without system scope the rows of every clinic are invisible (row-level security): nothing.
	if st, err := EncryptFields(ctx, pool, k, EncryptOptions{}); err != nil || st.Encrypted["referrals"] != 0 {
		t.Fatalf("without system scope: encrypted %d referrals (%v), want 0", st.Encrypted["referrals"], err)
	}
	ctx = auth.WithSystemScope(ctx)
	began := time.Now()
	st, err := EncryptFields(ctx, pool, k, EncryptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("encrypted %d referrals in %s", st.Encrypted["referrals"], time.Since(began).Round(time.Millisecond))
	if st.Encrypted["referrals"] != n {
		t.Errorf("encrypted %d referrals, want %d", st.Encrypted["referrals"], n)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM referrals WHERE date_of_birth IS NOT NULL OR phone IS NOT NULL OR email IS NOT NULL
		OR phone_hash IS NULL OR email_hash IS NULL OR date_of_birth_hash IS NULL`).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d referrals with plaintext or without hashes (%v)", left, err)
	}
	if again, err := EncryptFields(ctx, pool, k, EncryptOptions{}); err != nil || again.Encrypted["referrals"] != 0 {
		t.Errorf("second pass: %v, %v", again, err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE referrals`); err != nil {
		t.Fatal(err)
	}
	dob, _ := k.Hash(fieldcrypt.KindDateOfBirth, "1960-05-05")
	ph, _ := k.Hash(fieldcrypt.KindPhone, "+13125550042")
	em, _ := k.Hash(fieldcrypt.KindEmail, "p42@example.org")
	var raw []byte
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `EXPLAIN (FORMAT JSON) `+duplicateCandidatesSQL, dob, ph, em).Scan(&raw)
	}); err != nil {
		t.Fatal(err)
	}
	var plans []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal(raw, &plans); err != nil || len(plans) != 1 {
		t.Fatalf("plan %s: %v", raw, err)
	}
	plan := plans[0].Plan.String()
	for _, idx := range []string{"referrals_open_dob_hash", "referrals_open_phone_hash", "referrals_open_email_hash"} {
		if !strings.Contains(plan, idx) {
			t.Errorf("plan = %s, want %s used", plan, idx)
		}
	}
	t.Logf("plan: %s", plan)
}
