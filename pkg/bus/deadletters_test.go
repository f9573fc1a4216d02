package bus

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A dead letter is listed without its payload, then replayed once the handler is fixed: the
// event is applied exactly once, the dead letter leaves the stream, and a second replay (or a
// replay of an event the inbox already has) applies nothing.
func TestDeadLetterListAndReplay(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	const name = "test--replay"
	var fixed atomic.Bool
	handler := effectHandler(name, func(d *Delivery, marker string) error {
		if marker == "poison" && !fixed.Load() {
			return Permanent(errors.New("clinic is not known"))
		}
		return nil
	})
	f.publishRaw(testSubject, "p1", f.envelopeBytes(event("poison")))
	f.publishRaw(testSubject, "g1", f.envelopeBytes(event("good")))
	c := f.startConsumer(ConsumerConfig{Name: name, HandlerTimeout: 500 * time.Millisecond, AckWait: time.Second}, handler)
	f.publishRaw("trellis.test.garbage.arrived.v1", "x1", []byte{0xff, 0x01})
	eventually(t, "2 dead letters", func() bool { return len(f.streamMsgs(DeadLetterStream)) == 2 })
	eventually(t, "good applied", func() bool { return f.effects(name)["good"] == 1 })

	ctx := context.Background()
	all, err := ListDeadLetters(ctx, f.js, "", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	mine, err := ListDeadLetters(ctx, f.js, name, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || len(mine) != 1 || mine[0].Seq != all[0].Seq {
		t.Fatalf("listed %d (all) and %d (consumer, limit 1); want 2 and 1", len(all), len(mine))
	}
	poison, garbage := all[0], all[1]
	if poison.Consumer != name || poison.Subject != testSubject || poison.StreamSeq != 1 || poison.Deliveries != 1 ||
		!strings.Contains(poison.Reason, "clinic is not known") || poison.EventID == "" || poison.EventType == "" {
		t.Fatalf("dead letter = %+v", poison)
	}
	if garbage.EventID != "" || !strings.Contains(garbage.Reason, "decode envelope") {
		t.Fatalf("garbage dead letter = %+v", garbage)
	}
	if rest, _ := ListDeadLetters(ctx, f.js, "", poison.Seq+1, 100); len(rest) != 1 || rest[0].Seq != garbage.Seq {
		t.Fatalf("listing from %d = %+v", poison.Seq+1, rest)
	}

	// Before the fix a replay fails and keeps the dead letter.
	if _, err := c.Replay(ctx, f.js, poison); err == nil {
		t.Fatal("replay before the fix succeeded")
	}
	if _, err := GetDeadLetter(ctx, f.js, poison.Seq); err != nil {
		t.Fatalf("dead letter gone after a failed replay: %v", err)
	}
	// An unreadable one cannot be replayed; another consumer's is refused.
	if out, err := c.Replay(ctx, f.js, garbage); err == nil || out != ReplayUnreadable {
		t.Fatalf("garbage replay = %q, %v", out, err)
	}
	other := poison
	other.Consumer = "test--other"
	if _, err := c.Replay(ctx, f.js, other); err == nil {
		t.Fatal("replayed another consumer's dead letter")
	}

	fixed.Store(true)
	if out, err := c.Replay(ctx, f.js, poison); err != nil || out != Replayed {
		t.Fatalf("replay = %q, %v", out, err)
	}
	if got := f.effects(name); !maps.Equal(got, map[string]int{"good": 1, "poison": 1}) {
		t.Fatalf("effects after replay %v", got)
	}
	if _, err := GetDeadLetter(ctx, f.js, poison.Seq); !errors.Is(err, ErrNoDeadLetter) {
		t.Fatalf("dead letter still there after replay: %v", err)
	}
	// Replaying the same (stale) dead letter again applies nothing.
	if out, err := c.Replay(ctx, f.js, poison); err != nil || out != ReplayDuplicate {
		t.Fatalf("second replay = %q, %v", out, err)
	}
	if got := f.effects(name); got["poison"] != 1 {
		t.Fatalf("poison applied %d times", got["poison"])
	}
}
