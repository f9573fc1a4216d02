package main

import (
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
)

// A repeat of a write-off answers the stored response only to a caller who still sees its
// clinic: the same subject, after losing clinic A, gets not_found, not the write-off and the
// item (issue 10, finding 8).
func TestWriteOffReplayChecksTheClinicAgain(t *testing.T) {
	w := startWriteOffs(t)
	first := &billingv1.WriteOffRequest{WorkItemId: w.denial.GetId(), Reason: "timely_filing", AmountCents: 500, IdempotencyKey: "moved-1"}
	resp, err := w.writeOff(w.Token(t, "biller-moved", []string{"billing"}, []string{clinicA}), first)
	if err != nil {
		t.Fatal(err)
	}
	// Still in clinic A (with B as well): the first answer.
	again, err := w.writeOff(w.Token(t, "biller-moved", []string{"billing"}, []string{clinicA, clinicB}), first)
	if err != nil || !proto.Equal(again, resp) {
		t.Fatalf("repeat in clinic A: %v %v, want %v", again, err, resp)
	}
	// Moved to clinic B only: not found, as for an item of another clinic.
	lost, err := w.writeOff(w.Token(t, "biller-moved", []string{"billing"}, []string{clinicB}), first)
	wantCode(t, err, connect.CodeNotFound)
	if lost != nil {
		t.Errorf("a caller who lost the clinic got %v", lost)
	}
	if n := w.Count(t, `SELECT count(*) FROM write_offs`); n != 1 {
		t.Errorf("write-offs = %d, want 1", n)
	}
}
