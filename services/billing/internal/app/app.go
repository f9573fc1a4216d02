// Package app holds billing's use cases: opening patient accounts and reading them.
package app

import (
	"context"

	"github.com/trellis-health/trellis/pkg/bus"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"

	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// SubjectAccountOpened is the subject of AccountOpened.
const SubjectAccountOpened = "trellis.billing.account.opened.v1"

// Accounts stores accounts (implemented by adapters/postgres).
type Accounts interface {
	// Add inserts a in tx unless an account from the same source event or for the same patient
	// and clinic exists; it reports whether it inserted.
	Add(ctx context.Context, tx *bus.Tx, a domain.Account) (bool, error)
	// ForPatient returns all of a patient's accounts, in any clinic.
	ForPatient(ctx context.Context, patientID string) ([]domain.Account, error)
}

// App is billing's application layer.
type App struct {
	accounts Accounts
	newID    func() string
}

// New returns the app over its repository.
func New(accounts Accounts) *App { return &App{accounts: accounts, newID: bus.NewID} }

// OpenAccount opens the patient's account at the enrollment's clinic, in tx, and emits
// AccountOpened there (the outbox). If the patient already has an account at that clinic (a
// replayed event, or a later enrollment such as a track change) nothing changes and nothing is
// emitted: opened is false. Invalid input returns an error wrapping domain.ErrInvalid.
func (a *App) OpenAccount(ctx context.Context, tx *bus.Tx, sourceEventID string, e domain.Enrollment) (acc domain.Account, opened bool, err error) {
	acc, err = domain.OpenAccount(a.newID(), sourceEventID, e)
	if err != nil {
		return acc, false, err
	}
	opened, err = a.accounts.Add(ctx, tx, acc)
	if err != nil || !opened {
		return acc, false, err
	}
	tx.Emit(bus.Event{
		Subject:  SubjectAccountOpened,
		ClinicID: acc.ClinicID,
		Payload: &billingv1.AccountOpened{
			AccountId:    acc.ID,
			PatientId:    acc.PatientID,
			ClinicId:     acc.ClinicID,
			EnrollmentId: acc.EnrollmentID,
		},
	})
	return acc, true, nil
}

// GetAccount returns the patient's account as viewer may see it, or domain.ErrNotFound (also
// when accounts exist only in clinics viewer cannot see).
func (a *App) GetAccount(ctx context.Context, viewer domain.Viewer, patientID string) (domain.Account, error) {
	all, err := a.accounts.ForPatient(ctx, patientID)
	if err != nil {
		return domain.Account{}, err
	}
	acc, ok := domain.Visible(viewer, all)
	if !ok {
		return domain.Account{}, domain.ErrNotFound
	}
	return acc, nil
}
