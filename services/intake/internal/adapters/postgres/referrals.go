package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/services/intake/internal/app"
	"github.com/trellis-health/trellis/services/intake/internal/domain"
)

// openStatuses is domain.OpenStatuses as a SQL list (the partial indexes of migration 00002
// use the same list).
const openStatuses = `('new', 'contacted', 'screened', 'assessed')`

const referralColumns = `id::text, clinic_id::text, source, given_name, family_name, date_of_birth_enc,
	phone_enc, email_enc, COALESCE(preferred_track, ''), notes, first_contact_at, status,
	COALESCE(patient_id::text, ''), created_by, created_at, updated_at`

func (repo Repository) scanReferral(row pgx.Row) (domain.Referral, error) {
	var r domain.Referral
	var dob, phone, email *string
	var status string
	err := row.Scan(&r.ID, &r.ClinicID, &r.Source, &r.GivenName, &r.FamilyName, &dob, &phone, &email,
		&r.PreferredTrack, &r.Notes, &r.FirstContactAt, &status, &r.PatientID, &r.CreatedBy, &r.CreatedAt, &r.UpdatedAt)
	if err != nil {
		return domain.Referral{}, err
	}
	if r.DateOfBirth, err = repo.openDate(dob, "referrals", r.ID); err != nil {
		return domain.Referral{}, err
	}
	if r.Phone, err = repo.open(phone, "referrals", "phone", r.ID); err != nil {
		return domain.Referral{}, err
	}
	if r.Email, err = repo.open(email, "referrals", "email", r.ID); err != nil {
		return domain.Referral{}, err
	}
	r.Status = domain.ReferralStatus(status)
	r.FirstContactAt, r.CreatedAt, r.UpdatedAt = r.FirstContactAt.UTC(), r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	return r, nil
}

// orNull is nil for "" (a NULL column), else s.
func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// AddReferral inserts a new referral, its possible duplicates and its first history entry.
func (repo Repository) AddReferral(ctx context.Context, tx pgx.Tx, r domain.Referral, dups []domain.Duplicate, created domain.StatusChange) error {
	var enc, hashes [3]any
	for i, f := range []struct {
		column, value string
		kind          fieldcrypt.Kind
	}{
		{"date_of_birth", dateText(r.DateOfBirth), fieldcrypt.KindDateOfBirth},
		{"phone", r.Phone, fieldcrypt.KindPhone},
		{"email", r.Email, fieldcrypt.KindEmail},
	} {
		var err error
		if enc[i], err = repo.seal(f.value, "referrals", f.column, r.ID); err != nil {
			return err
		}
		if hashes[i], err = repo.hash(f.kind, f.value); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO referrals (id, clinic_id, source, given_name, family_name,
			date_of_birth_enc, date_of_birth_hash, phone_enc, phone_hash, email_enc, email_hash,
			preferred_track, notes, first_contact_at, status, created_by, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
		r.ID, r.ClinicID, r.Source, r.GivenName, r.FamilyName, enc[0], hashes[0], enc[1], hashes[1], enc[2], hashes[2],
		orNull(r.PreferredTrack), r.Notes, r.FirstContactAt, string(r.Status), r.CreatedBy, r.CreatedAt, r.UpdatedAt); err != nil {
		return fmt.Errorf("insert referral: %w", err)
	}
	for _, d := range dups {
		on := make([]string, len(d.MatchedOn))
		for i, m := range d.MatchedOn {
			on[i] = string(m)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO referral_duplicates (referral_id, clinic_id, kind, other_id, other_clinic_id, matched_on)
			VALUES ($1, $2, $3, $4, $5, $6)`, r.ID, r.ClinicID, d.Kind, d.ID, d.ClinicID, on); err != nil {
			return fmt.Errorf("insert referral duplicate: %w", err)
		}
	}
	return addHistory(ctx, tx, created)
}

func addHistory(ctx context.Context, tx pgx.Tx, c domain.StatusChange) error {
	if _, err := tx.Exec(ctx, `INSERT INTO referral_status_history (id, referral_id, clinic_id, from_status, to_status, reason, changed_by, changed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		c.ID, c.ReferralID, c.ClinicID, orNull(string(c.From)), string(c.To), c.Reason, c.By, c.At); err != nil {
		return fmt.Errorf("insert referral status history: %w", err)
	}
	return nil
}

// matchLockSpace prefixes the match keys before hashing, so that intake's locks do not share
// values with other users of the database's advisory locks (which are database-wide).
const matchLockSpace = "trellis.intake.duplicates\x00"

// LockMatchKeys takes a transaction-scoped advisory lock on a 64-bit hash of each key, in
// ascending order of the hashes (one order for every transaction, so none deadlock). Only the
// hash reaches Postgres (the keys hold PHI). Two keys with the same hash share a lock: that
// makes unrelated calls wait for each other, never miss a duplicate.
func (Repository) LockMatchKeys(ctx context.Context, tx pgx.Tx, keys []string) error {
	ids := make([]int64, 0, len(keys))
	for _, k := range keys {
		h := fnv.New64a()
		h.Write([]byte(matchLockSpace + k))
		ids = append(ids, int64(h.Sum64()))
	}
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, id); err != nil {
			return fmt.Errorf("lock match key: %w", err)
		}
	}
	return nil
}

// duplicateCandidatesSQL finds the records sharing the hash of a date of birth ($1), phone ($2)
// or e-mail ($3); the partial hash indexes of migration 00007 serve it.
const duplicateCandidatesSQL = `
		SELECT 'referral', id::text, clinic_id::text, given_name, family_name, date_of_birth_enc, phone_enc, email_enc
		FROM referrals
		WHERE status IN ` + openStatuses + ` AND (date_of_birth_hash = $1 OR phone_hash = $2 OR email_hash = $3)
		UNION ALL
		SELECT 'patient', id::text, clinic_id::text, given_name, family_name, date_of_birth_enc, phone_enc, contact_email_enc
		FROM patients
		WHERE date_of_birth_hash = $1 OR phone_hash = $2 OR contact_email_hash = $3`

// DuplicateCandidates returns the open referrals and patients of every clinic that share p's
// date of birth, phone number or email address: a superset of what domain.MatchOn matches,
// since a name match needs the same date of birth too. The values are compared by their keyed
// hashes (fieldcrypt.Hash: phone numbers as "+" and their digits, e-mail addresses trimmed and
// lower-cased, as domain.PhoneKey and domain.EmailKey compare them), and the candidates'
// values decrypted for the rules.
//
// Finding a person who is already known at another clinic is the point, so this one query
// runs in system scope (every clinic) and the transaction's clinic scope is restored after it:
// the only place intake widens a caller's scope (docs/security.md, "Row-level security"). The
// app reports to the caller only the candidates of clinics it may see.
func (repo Repository) DuplicateCandidates(ctx context.Context, tx pgx.Tx, p domain.Person) ([]domain.Candidate, error) {
	dob, err := repo.hash(fieldcrypt.KindDateOfBirth, dateText(p.DateOfBirth))
	if err != nil {
		return nil, err
	}
	phone, err := repo.hash(fieldcrypt.KindPhone, p.Phone)
	if err != nil {
		return nil, err
	}
	email, err := repo.hash(fieldcrypt.KindEmail, p.Email)
	if err != nil {
		return nil, err
	}
	// The one deliberate widening (docs/security.md): every clinic for this query, then the
	// caller's scope again.
	if err := bus.SetClinicScope(auth.WithSystemScope(ctx), tx); err != nil {
		return nil, fmt.Errorf("find duplicate candidates: widen the clinic scope: %w", err)
	}
	rows, err := tx.Query(ctx, duplicateCandidatesSQL, dob, phone, email)
	if err != nil {
		return nil, fmt.Errorf("find duplicate candidates: %w", err)
	}
	type found struct {
		kind, id, clinic, given, family string
		dob, phone, email               *string
	}
	raw, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (found, error) {
		var f found
		err := row.Scan(&f.kind, &f.id, &f.clinic, &f.given, &f.family, &f.dob, &f.phone, &f.email)
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("find duplicate candidates: %w", err)
	}
	if err := bus.SetClinicScope(ctx, tx); err != nil {
		return nil, fmt.Errorf("find duplicate candidates: restore the clinic scope: %w", err)
	}
	out := make([]domain.Candidate, 0, len(raw))
	for _, f := range raw {
		c := domain.Candidate{Kind: f.kind, ID: f.id, ClinicID: f.clinic}
		c.Person.GivenName, c.Person.FamilyName = f.given, f.family
		table, emailColumn := "referrals", "email"
		if c.Kind == domain.DuplicatePatient {
			table, emailColumn = "patients", "contact_email"
		}
		var err error
		if c.Person.DateOfBirth, err = repo.openDate(f.dob, table, c.ID); err != nil {
			return nil, err
		}
		if c.Person.Phone, err = repo.open(f.phone, table, "phone", c.ID); err != nil {
			return nil, err
		}
		if c.Person.Email, err = repo.open(f.email, table, emailColumn, c.ID); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// Referral returns the referral, or nil if there is none; forUpdate locks its row until the
// transaction ends.
func (repo Repository) Referral(ctx context.Context, tx pgx.Tx, id string, forUpdate bool) (*domain.Referral, error) {
	q := `SELECT ` + referralColumns + ` FROM referrals WHERE id = $1`
	if forUpdate {
		q += ` FOR UPDATE`
	}
	r, err := repo.scanReferral(tx.QueryRow(ctx, q, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read referral: %w", err)
	}
	return &r, nil
}

// Duplicates returns the possible duplicates of each referral, from both sides of each pair,
// ordered by kind and id.
func (Repository) Duplicates(ctx context.Context, tx pgx.Tx, referralIDs []string) (map[string][]domain.Duplicate, error) {
	out := map[string][]domain.Duplicate{}
	if len(referralIDs) == 0 {
		return out, nil
	}
	rows, err := tx.Query(ctx, `
		SELECT referral_id::text, kind, other_id::text, other_clinic_id::text, matched_on
		FROM referral_duplicates WHERE referral_id = ANY($1::uuid[])
		UNION ALL
		SELECT other_id::text, 'referral', referral_id::text, clinic_id::text, matched_on
		FROM referral_duplicates WHERE kind = 'referral' AND other_id = ANY($1::uuid[])
		ORDER BY 1, 2, 3`, referralIDs)
	if err != nil {
		return nil, fmt.Errorf("read referral duplicates: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var of string
		var d domain.Duplicate
		var on []string
		if err := rows.Scan(&of, &d.Kind, &d.ID, &d.ClinicID, &on); err != nil {
			return nil, fmt.Errorf("read referral duplicates: %w", err)
		}
		for _, m := range on {
			d.MatchedOn = append(d.MatchedOn, domain.Match(m))
		}
		out[of] = append(out[of], d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read referral duplicates: %w", err)
	}
	return out, nil
}

// ListReferrals returns up to q.Limit referrals matching q, by (first_contact_at, id).
func (repo Repository) ListReferrals(ctx context.Context, tx pgx.Tx, q app.ReferralQuery) ([]domain.Referral, error) {
	sql, args := listReferralsSQL(q)
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list referrals: %w", err)
	}
	rs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Referral, error) { return repo.scanReferral(row) })
	if err != nil {
		return nil, fmt.Errorf("list referrals: %w", err)
	}
	return rs, nil
}

// listReferralsSQL is ListReferrals' query. Only the filters in use are in the SQL, so the
// planner sees each query as it is. One clinic is "clinic_id = $1", which an index scan of
// referrals_clinic_contact (clinic_id, first_contact_at, id) returns in the listing's order,
// from the keyset position on, stopping at the limit; "= ANY" of several clinics (or of one)
// would need every matching row read and sorted. Every clinic is a scan of referrals_contact.
func listReferralsSQL(q app.ReferralQuery) (string, []any) {
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	switch {
	case q.AllClinics:
	case len(q.ClinicIDs) == 1:
		where = append(where, "clinic_id = "+arg(q.ClinicIDs[0])+"::uuid")
	default:
		where = append(where, "clinic_id = ANY("+arg(q.ClinicIDs)+"::uuid[])")
	}
	if len(q.Statuses) > 0 {
		st := make([]string, len(q.Statuses))
		for i, s := range q.Statuses {
			st[i] = string(s)
		}
		where = append(where, "status = ANY("+arg(st)+"::text[])")
	}
	if !q.ContactedAfter.IsZero() {
		where = append(where, "first_contact_at > "+arg(q.ContactedAfter))
	}
	if !q.ContactedBy.IsZero() {
		where = append(where, "first_contact_at <= "+arg(q.ContactedBy))
	}
	if q.AfterID != "" {
		where = append(where, "(first_contact_at, id) > ("+arg(q.AfterAt)+"::timestamptz, "+arg(q.AfterID)+"::uuid)")
	}
	sql := `SELECT ` + referralColumns + ` FROM referrals`
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, " AND ")
	}
	// Qualified: a bare "id" would be the output column id::text, sorted as text (which no
	// index serves, and which need not be the uuid order the keyset compares in).
	sql += ` ORDER BY referrals.first_contact_at, referrals.id LIMIT ` + arg(q.Limit)
	return sql, args
}

// MoveReferral stores r's status, patient id and update time, and records c.
func (Repository) MoveReferral(ctx context.Context, tx pgx.Tx, r domain.Referral, c domain.StatusChange) error {
	tag, err := tx.Exec(ctx, `UPDATE referrals SET status = $2, patient_id = $3, updated_at = $4 WHERE id = $1 AND status = $5`,
		r.ID, string(r.Status), orNull(r.PatientID), r.UpdatedAt, string(c.From))
	if err != nil {
		return fmt.Errorf("update referral status: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("update referral status: referral %s is no longer %s", r.ID, c.From)
	}
	return addHistory(ctx, tx, c)
}

// ReferOutReferral stores the move to referred_out with its decision, and records c.
func (Repository) ReferOutReferral(ctx context.Context, tx pgx.Tx, r domain.Referral, c domain.StatusChange, d domain.ReferOutDecision) error {
	tag, err := tx.Exec(ctx, `UPDATE referrals SET status = $2, updated_at = $3,
			referred_out_level = $4, referred_out_to = $5, referred_out_reason = $6
		WHERE id = $1 AND status = $7`,
		r.ID, string(r.Status), r.UpdatedAt, d.Level, d.Destination, d.Reason, string(c.From))
	if err != nil {
		return fmt.Errorf("refer out referral: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("refer out referral: referral %s is no longer %s", r.ID, c.From)
	}
	return addHistory(ctx, tx, c)
}

// AddAssessment inserts an assessment.
func (Repository) AddAssessment(ctx context.Context, tx pgx.Tx, a domain.Assessment) error {
	ratings := make([]int16, len(a.Ratings))
	for i, r := range a.Ratings {
		ratings[i] = int16(r)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO assessments (id, referral_id, clinic_id, edition, population, ratings, dimension_notes,
			withdrawal, co_occurring, recommended_level, recommendation_reasons, override_level, override_reason, final_level,
			assessed_by, assessed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		a.ID, a.ReferralID, a.ClinicID, a.Edition, a.Population, ratings, a.Notes[:], a.Withdrawal,
		append([]string{}, a.CoOccurring...), a.RecommendedLevel, append([]string{}, a.Reasons...),
		orNull(a.OverrideLevel), orNull(a.OverrideReason), a.FinalLevel, a.AssessedBy, a.AssessedAt); err != nil {
		return fmt.Errorf("insert assessment: %w", err)
	}
	return nil
}

// LatestAssessment returns the referral's most recent assessment, or nil if it has none.
func (Repository) LatestAssessment(ctx context.Context, tx pgx.Tx, referralID string) (*domain.Assessment, error) {
	var a domain.Assessment
	var ratings []int16
	var notes []string
	err := tx.QueryRow(ctx, `SELECT id::text, referral_id::text, clinic_id::text, edition, population, ratings, dimension_notes,
			withdrawal, co_occurring, recommended_level, recommendation_reasons, COALESCE(override_level, ''),
			COALESCE(override_reason, ''), final_level, assessed_by, assessed_at
		FROM assessments WHERE referral_id = $1 ORDER BY assessed_at DESC, id DESC LIMIT 1`, referralID).Scan(
		&a.ID, &a.ReferralID, &a.ClinicID, &a.Edition, &a.Population, &ratings, &notes, &a.Withdrawal, &a.CoOccurring,
		&a.RecommendedLevel, &a.Reasons, &a.OverrideLevel, &a.OverrideReason, &a.FinalLevel, &a.AssessedBy, &a.AssessedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read assessment: %w", err)
	}
	if len(ratings) != 6 || len(notes) != 6 {
		return nil, fmt.Errorf("read assessment %s: %d ratings and %d notes, want 6", a.ID, len(ratings), len(notes))
	}
	for i := range 6 {
		a.Ratings[i], a.Notes[i] = int(ratings[i]), notes[i]
	}
	a.AssessedAt = a.AssessedAt.UTC()
	return &a, nil
}
