package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
)

// Many events in one transaction go in one INSERT of arrays: the rows, their order (seq
// follows emission, the relay's order) and their envelopes and headers are as one by one.
func TestManyEventsAreWrittenInOneStatementInEmissionOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	ctx := context.Background()
	for _, n := range []int{bulkOutbox - 1, bulkOutbox, 3 * bulkOutbox} {
		_, err := f.pool.Exec(ctx, "TRUNCATE outbox")
		must(t, err)
		must(t, f.store.InTx(WithCause(ctx, "corr", "cause"), func(ctx context.Context, tx *Tx) error {
			for i := range n {
				tx.Emit(event(fmt.Sprintf("m%03d", i)))
			}
			return nil
		}))
		rows, err := f.pool.Query(ctx, "SELECT event_id::text, headers, payload FROM outbox ORDER BY seq")
		must(t, err)
		i := 0
		for rows.Next() {
			var id string
			var hj, body []byte
			must(t, rows.Scan(&id, &hj, &body))
			env := &eventsv1.Envelope{}
			must(t, proto.Unmarshal(body, env))
			p := &intakev1.PatientAdmitted{}
			must(t, env.GetPayload().UnmarshalTo(p))
			var h map[string][]string
			must(t, json.Unmarshal(hj, &h))
			if p.GetPatientId() != fmt.Sprintf("m%03d", i) || env.GetEventId() != id || env.GetCausationId() != "cause" ||
				len(h[HeaderCorrelationID]) != 1 || h[HeaderCorrelationID][0] != "corr" {
				t.Errorf("%d events: row %d is %q (event %s, headers %v)", n, i, p.GetPatientId(), env.GetEventId(), h)
			}
			i++
		}
		must(t, rows.Err())
		if i != n {
			t.Errorf("%d events emitted, %d rows", n, i)
		}
	}
}
