package app

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/services/intake/internal/domain"
)

// ReferralStore is the storage for the referral queue, assessments' referral updates and decisions; every method runs in the caller's transaction.
type ReferralStore interface {
	// AddReferral inserts a new referral, its possible duplicates and its first history entry.
	AddReferral(ctx context.Context, tx pgx.Tx, r domain.Referral, dups []domain.Duplicate, created domain.StatusChange) error
	// LockMatchKeys takes a lock for each of keys (domain.MatchKeys), held until tx ends, in an
	// order every caller shares (so two callers never deadlock): a caller about to look for
	// duplicates of a person, or to add one, waits for another doing the same for one who may
	// be the same person, and then sees what it added.
	LockMatchKeys(ctx context.Context, tx pgx.Tx, keys []string) error
	// DuplicateCandidates returns open referrals and patients, of every clinic, that may match p:
	// at least every one domain.MatchOn would match (the caller applies the rules).
	DuplicateCandidates(ctx context.Context, tx pgx.Tx, p domain.Person) ([]domain.Candidate, error)
	// Referral returns the referral, or nil if there is none; forUpdate locks its row.
	Referral(ctx context.Context, tx pgx.Tx, id string, forUpdate bool) (*domain.Referral, error)
	// Duplicates returns the possible duplicates flagged on each referral, seen from both sides
	// (a pair stored on the newer referral is listed on the older one too).
	Duplicates(ctx context.Context, tx pgx.Tx, referralIDs []string) (map[string][]domain.Duplicate, error)
	// ListReferrals returns up to q.Limit referrals matching q, by (first_contact_at, id).
	ListReferrals(ctx context.Context, tx pgx.Tx, q ReferralQuery) ([]domain.Referral, error)
	// MoveReferral stores r's new status (and patient id, once admitted) and records the change
	// c in its history. The row must still have c.From (else an error: the caller's lock was lost).
	MoveReferral(ctx context.Context, tx pgx.Tx, r domain.Referral, c domain.StatusChange) error
	// ReferOutReferral is MoveReferral to referred_out, storing the decision d with it.
	ReferOutReferral(ctx context.Context, tx pgx.Tx, r domain.Referral, c domain.StatusChange, d domain.ReferOutDecision) error
	// AddAssessment inserts an assessment.
	AddAssessment(ctx context.Context, tx pgx.Tx, a domain.Assessment) error
	// LatestAssessment returns the referral's most recent assessment, or nil if it has none.
	LatestAssessment(ctx context.Context, tx pgx.Tx, referralID string) (*domain.Assessment, error)
}

// ReferralQuery selects referrals for the queue.
type ReferralQuery struct {
	AllClinics bool                    // every clinic; else only ClinicIDs
	ClinicIDs  []string                // when not AllClinics
	Statuses   []domain.ReferralStatus // empty: every status
	// Bounds on first_contact_at (zero: none): ContactedAfter is exclusive, ContactedBy inclusive.
	ContactedAfter time.Time
	ContactedBy    time.Time
	// After is the keyset position: only referrals after (AfterAt, AfterID) in (first_contact_at, id) order.
	AfterAt time.Time
	AfterID string
	Limit   int
}
