package domain

import (
	"fmt"
	"testing"
)

func TestChargesLockKeyIsStableAndBounded(t *testing.T) {
	seen := map[string]int{}
	for i := range 20_000 {
		p := fmt.Sprintf("0190a000-0000-7000-8000-%012x", i)
		k := ChargesLockKey(p, "0190a000-0000-7000-8000-00000000000a")
		if again := ChargesLockKey(p, "0190a000-0000-7000-8000-00000000000a"); again != k {
			t.Fatalf("key of %s changed: %s, then %s", p, k, again)
		}
		seen[k]++
	}
	if len(seen) > ChargeLockBuckets {
		t.Fatalf("%d distinct keys for 20,000 patients, more than the %d buckets", len(seen), ChargeLockBuckets)
	}
	// Spread: every bucket used, none with more than three times its share (~20 each).
	if len(seen) != ChargeLockBuckets {
		t.Fatalf("%d of %d buckets used", len(seen), ChargeLockBuckets)
	}
	for k, n := range seen {
		if n > 3*20_000/ChargeLockBuckets {
			t.Fatalf("bucket %s has %d patients", k, n)
		}
	}
	// The clinic is part of the key: the same patient at two clinics is two independent keys
	// (for most patients; a bucket may hold both).
	differ := 0
	for i := range 100 {
		p := fmt.Sprintf("p%d", i)
		if ChargesLockKey(p, "a") != ChargesLockKey(p, "b") {
			differ++
		}
	}
	if differ < 90 {
		t.Fatalf("only %d of 100 patients have different keys at two clinics", differ)
	}
}
