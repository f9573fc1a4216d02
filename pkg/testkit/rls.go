package testkit

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// InitPlansRun runs query under EXPLAIN (ANALYZE, FORMAT JSON) in tx and returns how many of
// its InitPlans were computed (actual loops > 0). A row-level security policy's conditions are
// InitPlans that Postgres computes only when an OR reaches them, so this counts which of a
// policy's conditions a statement paid for (the clinic_isolation policies: docs/security.md).
func InitPlansRun(t testing.TB, ctx context.Context, tx pgx.Tx, query string, args ...any) int {
	t.Helper()
	var out []byte
	if err := tx.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+query, args...).Scan(&out); err != nil {
		t.Fatalf("explain %s: %v", query, err)
	}
	type node struct {
		Parent      string  `json:"Parent Relationship"`
		SubplanName string  `json:"Subplan Name"`
		Loops       float64 `json:"Actual Loops"`
		Plans       []node  `json:"Plans"`
	}
	var plans []struct {
		Plan node `json:"Plan"`
	}
	if err := json.Unmarshal(out, &plans); err != nil || len(plans) != 1 {
		t.Fatalf("explain %s: %v (%d plans)", query, err, len(plans))
	}
	var count func(n node) int
	count = func(n node) int {
		c := 0
		if n.Parent == "InitPlan" || strings.HasPrefix(n.SubplanName, "InitPlan") {
			if n.Loops > 0 {
				c++
			}
		}
		for _, p := range n.Plans {
			c += count(p)
		}
		return c
	}
	return count(plans[0].Plan)
}
