package postgres

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
)

// LockRiskFacts reads the enrollment's open episode as OpenEpisode does, and reads after its
// lock is granted, though in the lock's round trip: a call
// waiting for another transaction's risk lock reads what that transaction committed (here:
// the open episode it cleared), not what was there when the call began.
func TestLockRiskFactsReadsAfterTheLock(t *testing.T) {
	_, store, a, _ := rlsSetup(t)
	c := NewCompliance(store)
	ctx := auth.WithSystemScope(context.Background())
	// The seeded open episode comes back with the enrollment, as OpenEpisode reads it.
	if err := store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		st, err := c.LockRiskFacts(ctx, tx, a.enrollment, time.Now().UTC().AddDate(0, 0, -1), 2)
		if err != nil {
			return err
		}
		want, open, err := c.OpenEpisode(ctx, tx, a.enrollment)
		if err != nil {
			return err
		}
		if !open || !st.Open || !st.Found || !reflect.DeepEqual(st.Episode, want) {
			t.Errorf("LockRiskFacts: found %v, open %v, episode %+v; OpenEpisode: open %v, %+v", st.Found, st.Open, st.Episode, open, want)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	locked, release := make(chan struct{}), make(chan struct{})
	holder := make(chan error, 1)
	go func() {
		holder <- store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
			if _, err := c.LockRisk(ctx, tx, a.enrollment, true); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE risk_episodes SET cleared_at = now() WHERE enrollment_id = $1`, a.enrollment); err != nil {
				return err
			}
			close(locked)
			<-release
			return nil
		})
	}()
	select {
	case <-locked:
	case err := <-holder:
		t.Fatal(err)
	}
	type result struct {
		open, found bool
		err         error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		r.err = store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
			st, err := c.LockRiskFacts(ctx, tx, a.enrollment, time.Now().UTC().AddDate(0, 0, -1), 2)
			r.open, r.found = st.Open, st.Found && st.Facts.Enrollment.ID == a.enrollment
			return err
		})
		done <- r
	}()
	select {
	case r := <-done:
		t.Fatalf("LockRiskFacts returned while another transaction held the lock: %+v", r)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	if err := <-holder; err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !r.found || r.open {
		t.Errorf("found %v, open episode %v: want the enrollment, and the episode the lock holder cleared closed", r.found, r.open)
	}
}
