package bus

import (
	"context"
	"testing"
	"time"
)

func TestRepublishSendsTheSameEventsAgainInOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{duplicates: 100 * time.Millisecond})
	ctx := context.Background()
	f.emit("first")
	f.emit("second")
	r := f.relay(RelayConfig{})
	if n := f.drain(r); n != 2 {
		t.Fatalf("published %d, want 2", n)
	}
	if _, err := Republish(ctx, f.pool, time.Now().Add(time.Hour), time.Now(), ""); err == nil {
		t.Fatal("an empty window was accepted")
	}
	if n, err := Republish(ctx, f.pool, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "trellis.other.thing.done.v1"); err != nil || n != 0 {
		t.Fatalf("another subject marked %d rows (err %v), want 0", n, err)
	}
	time.Sleep(300 * time.Millisecond) // past the stream's duplicate window
	n, err := Republish(ctx, f.pool, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), testSubject)
	if err != nil || n != 2 {
		t.Fatalf("marked %d rows (err %v), want 2", n, err)
	}
	if got := f.drain(r); got != 2 {
		t.Fatalf("re-published %d, want 2", got)
	}
	markers := f.streamMarkers(testStream)
	want := []string{"first", "second", "first", "second"}
	if len(markers) != len(want) {
		t.Fatalf("stream holds %v, want %v", markers, want)
	}
	for i := range want {
		if markers[i] != want[i] {
			t.Fatalf("stream holds %v, want %v", markers, want)
		}
	}
	msgs := f.streamMsgs(testStream)
	if a, b := msgs[0].Header.Get(HeaderMsgID), msgs[2].Header.Get(HeaderMsgID); a == "" || a != b {
		t.Errorf("re-published message id %q, want the original %q", b, a)
	}
}
