package app

import (
	"context"
	"fmt"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"

	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// SubjectContractConfigured is the subject of ContractConfigured.
const SubjectContractConfigured = "trellis.billing.contract.configured.v1"

// ConfigRepo stores payers, contracts and the sliding scale (implemented by adapters/postgres).
type ConfigRepo interface {
	UpsertPayer(ctx context.Context, tx *bus.Tx, p domain.Payer) (changed bool, err error)
	Payers(ctx context.Context) ([]domain.Payer, error)
	PayerExists(ctx context.Context, tx *bus.Tx, code string) (bool, error)
	LockPayerClinic(ctx context.Context, tx *bus.Tx, payerID, clinicID string) error
	Contract(ctx context.Context, tx *bus.Tx, id string) (domain.Contract, bool, error)
	PayerClinicContracts(ctx context.Context, tx *bus.Tx, payerID, clinicID string) ([]domain.Contract, error)
	ClinicContracts(ctx context.Context, clinicID string) ([]domain.Contract, error)
	SaveContract(ctx context.Context, tx *bus.Tx, c domain.Contract) error
	SlidingScale(ctx context.Context) ([]domain.Tier, error)
	ReplaceSlidingScale(ctx context.Context, tx *bus.Tx, tiers []domain.Tier) (changed bool, err error)
}

// Configuration is the use cases of payers, contracts and the sliding scale.
type Configuration struct {
	store *bus.Store
	repo  ConfigRepo
	newID func() string
}

// NewConfiguration returns the configuration use cases.
func NewConfiguration(store *bus.Store, repo ConfigRepo) *Configuration {
	return &Configuration{store: store, repo: repo, newID: bus.NewID}
}

// Payers and the sliding scale are network-wide: changing them needs every clinic.
func networkWide(viewer domain.Viewer) error {
	if !viewer.CanSeeClinic(auth.AllClinics) {
		return fmt.Errorf("%w: payers and the sliding scale are network-wide; the caller needs every clinic", domain.ErrForbidden)
	}
	return nil
}

// UpsertPayer creates or changes a payer.
func (c *Configuration) UpsertPayer(ctx context.Context, viewer domain.Viewer, p domain.Payer) (domain.Payer, error) {
	if err := networkWide(viewer); err != nil {
		return p, err
	}
	p, err := domain.ValidatePayer(p)
	if err != nil {
		return p, err
	}
	err = c.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		_, err := c.repo.UpsertPayer(ctx, tx, p)
		return err
	})
	return p, err
}

// Payers lists every payer.
func (c *Configuration) Payers(ctx context.Context) ([]domain.Payer, error) {
	return c.repo.Payers(ctx)
}

// UpsertContract creates (empty id) or changes a contract, and emits ContractConfigured when
// something changed. A caller must see the contract's clinic; payer and clinic of an existing
// contract are fixed (ErrConflict); a contract effective on a day another of the same payer
// and clinic is effective is refused (ErrConflict).
func (c *Configuration) UpsertContract(ctx context.Context, viewer domain.Viewer, in domain.Contract) (out domain.Contract, changed bool, err error) {
	if in.ClinicID != "" && !viewer.CanSeeClinic(in.ClinicID) {
		if _, err := domain.ParseID(in.ClinicID); err == nil {
			return in, false, fmt.Errorf("%w: clinic", domain.ErrForbidden)
		}
	}
	err = c.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		known, err := c.repo.PayerExists(ctx, tx, in.PayerID)
		if err != nil {
			return err
		}
		out, err = domain.ValidateContract(in, known)
		if err != nil {
			return err
		}
		if out.ID == "" {
			out.ID = c.newID()
		}
		if err := c.repo.LockPayerClinic(ctx, tx, out.PayerID, out.ClinicID); err != nil {
			return err
		}
		old, exists, err := c.repo.Contract(ctx, tx, out.ID)
		if err != nil {
			return err
		}
		if exists {
			if !viewer.CanSeeClinic(old.ClinicID) {
				return fmt.Errorf("%w: clinic", domain.ErrForbidden)
			}
			if old.PayerID != out.PayerID || old.ClinicID != out.ClinicID {
				return fmt.Errorf("%w: a contract's payer and clinic cannot change; end it and create another", domain.ErrConflict)
			}
			if domain.SameContract(old, out) {
				return nil
			}
		}
		others, err := c.repo.PayerClinicContracts(ctx, tx, out.PayerID, out.ClinicID)
		if err != nil {
			return err
		}
		if err := domain.CheckNoOverlap(out, others); err != nil {
			return err
		}
		if err := c.repo.SaveContract(ctx, tx, out); err != nil {
			return err
		}
		changed = true
		tx.Emit(bus.Event{
			Subject:  SubjectContractConfigured,
			ClinicID: out.ClinicID,
			Payload:  &billingv1.ContractConfigured{Contract: ContractToProto(out)},
		})
		return nil
	})
	return out, changed, err
}

// ClinicContracts lists a clinic's contracts (ErrForbidden for a clinic the caller cannot see).
func (c *Configuration) ClinicContracts(ctx context.Context, viewer domain.Viewer, clinicID string) ([]domain.Contract, error) {
	if !viewer.CanSeeClinic(clinicID) {
		return nil, fmt.Errorf("%w: clinic", domain.ErrForbidden)
	}
	return c.repo.ClinicContracts(ctx, clinicID)
}

// SetSlidingScale replaces the self-pay sliding scale.
func (c *Configuration) SetSlidingScale(ctx context.Context, viewer domain.Viewer, tiers []domain.Tier) error {
	if err := networkWide(viewer); err != nil {
		return err
	}
	if err := domain.ValidateSlidingScale(tiers); err != nil {
		return err
	}
	return c.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		_, err := c.repo.ReplaceSlidingScale(ctx, tx, tiers)
		return err
	})
}

// SlidingScale returns the self-pay sliding scale.
func (c *Configuration) SlidingScale(ctx context.Context) ([]domain.Tier, error) {
	return c.repo.SlidingScale(ctx)
}
