package app

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-health/trellis/services/intake/internal/domain"
)

// ConsentStore is the storage for consents and coverage; every method runs in the caller's transaction.
type ConsentStore interface {
	// ConsentPatientClinic returns the clinic of the patient, or domain.ErrNotFound. With lock,
	// the patient's row stays locked until tx ends, so that consent and coverage changes for
	// one patient run one at a time (versions, the single active consent, priority overlaps).
	ConsentPatientClinic(ctx context.Context, tx pgx.Tx, patientID string, lock bool) (string, error)
	// LatestConsent returns the patient's highest consent version whatever its status (the
	// active one when there is one), locked, or nil if the patient has none.
	LatestConsent(ctx context.Context, tx pgx.Tx, patientID string) (*domain.Consent, error)
	// AddConsent stores a new consent version; superseded, when not nil, is the previously
	// active version now marked superseded, and is stored first.
	AddConsent(ctx context.Context, tx pgx.Tx, c domain.Consent, superseded *domain.Consent) error
	// Consent returns the consent with id, locked, or domain.ErrNotFound.
	Consent(ctx context.Context, tx pgx.Tx, id string) (domain.Consent, error)
	// SaveRevocation stores the revocation of c (status and revocation fields).
	SaveRevocation(ctx context.Context, tx pgx.Tx, c domain.Consent) error
	// Consents lists the patient's consent versions, newest first.
	Consents(ctx context.Context, tx pgx.Tx, patientID string) ([]domain.Consent, error)

	// Coverages lists the patient's coverages by priority (primary first), then the latest
	// effective_from first.
	Coverages(ctx context.Context, tx pgx.Tx, patientID string) ([]domain.Coverage, error)
	// AddCoverage stores a new coverage and records it as its version 1.
	AddCoverage(ctx context.Context, tx pgx.Tx, c domain.Coverage) error
	// UpdateCoverage stores c's new state and appends it to the coverage's versions.
	UpdateCoverage(ctx context.Context, tx pgx.Tx, c domain.Coverage) error
}
