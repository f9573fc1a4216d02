package events

import (
	"testing"

	"github.com/trellis-health/trellis/pkg/bus"
)

// The consumers whose handlers lock a clinic's tracks and bookings apply one event per
// transaction (clinicLockTxBatch): grouped, they took those locks out of order and deadlocked
// with each other.
func TestClinicLockingConsumersAreNotBatched(t *testing.T) {
	for _, c := range []bus.ConsumerConfig{AdmissionsConfig(), DischargesConfig(), ConsentsConfig()} {
		if c.TxBatch != 1 {
			t.Errorf("%s: TxBatch %d, want 1", c.Name, c.TxBatch)
		}
	}
}
