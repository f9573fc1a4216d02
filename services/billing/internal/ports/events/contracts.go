package events

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/trellis-health/trellis/pkg/bus"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"

	"github.com/trellis-health/trellis/services/billing/internal/app"
)

// Contracts consumer: billing's own ContractConfigured re-decides the charges a contract
// change affects (a charge held for a missing contract, or priced under the old terms). It
// runs apart from the configuration call so that a contract edit stays quick however many
// charges it touches, and is retried like any event if it fails.
const (
	ContractsConsumer         = "billing--contracts"
	SubjectContractConfigured = app.SubjectContractConfigured
)

// ContractsConfig is the durable consumer of contract changes on the BILLING stream. One
// message per transaction: its handler locks every patient with charges the contract may
// affect, found by a query, so a group could not declare its locks (LockKeys) in advance;
// several such messages in one transaction would hold many patients' locks taken message by
// message, which deadlocked with the other consumers. Contract changes are rare.
func ContractsConfig() bus.ConsumerConfig {
	return bus.ConsumerConfig{Name: ContractsConsumer, Stream: "BILLING", Subjects: []string{SubjectContractConfigured}, TxBatch: 1}
}

// Contracts handles ContractConfigured.
type Contracts struct {
	charges *app.Charges
	log     *slog.Logger
}

// NewContracts returns the handler.
func NewContracts(c *app.Charges, log *slog.Logger) *Contracts {
	return &Contracts{charges: c, log: log}
}

// Handle is a bus.Handler. Re-deciding is idempotent: a redelivery finds the charges already
// decided and changes nothing.
func (h *Contracts) Handle(ctx context.Context, tx *bus.Tx, d *bus.Delivery) error {
	var m billingv1.ContractConfigured
	if err := d.Decode(&m); err != nil {
		return err
	}
	c := m.GetContract()
	if err := d.MatchClinic(c.GetClinicId()); err != nil {
		return err
	}
	if c.GetPayerId() == "" {
		return bus.Permanent(fmt.Errorf("ContractConfigured: contract.payer_id: required"))
	}
	n, err := h.charges.ContractChanged(ctx, tx, c.GetClinicId(), c.GetPayerId())
	if err != nil {
		return err
	}
	h.log.InfoContext(ctx, "contract change applied to open charges", "contract_id", c.GetContractId(),
		"clinic_id", c.GetClinicId(), "patients", n, "event_id", d.Envelope.GetEventId())
	return nil
}
