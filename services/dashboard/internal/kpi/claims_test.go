package kpi

import "testing"

func TestClaimRates(t *testing.T) {
	cases := []struct {
		name                 string
		in                   ClaimInputs
		denial, clean, netCR string
	}{
		{"nothing adjudicated", ClaimInputs{}, Unknown, Unknown, Unknown},
		{"all clean, paid the contracted amount",
			ClaimInputs{Adjudicated: 4, Clean: 4, ChargedCents: 100000, ContractualCents: 16000, PaidCents: 84000}, "0.0%", "100.0%", "100.0%"},
		{"one of four denied, one partially paid",
			// 4 claims of $250.00; one denied ($0), one paid $150 of $210 allowed, two paid $210 with $40 CO each
			ClaimInputs{Adjudicated: 4, Denied: 1, Clean: 2, ChargedCents: 100000, ContractualCents: 3 * 4000, PaidCents: 57000}, "25.0%", "50.0%", "64.8%"},
		{"thirds round to one decimal", ClaimInputs{Adjudicated: 3, Denied: 1, Clean: 2, ChargedCents: 300, PaidCents: 200}, "33.3%", "66.7%", "66.7%"},
		{"everything written off contractually", ClaimInputs{Adjudicated: 1, Clean: 1, ChargedCents: 500, ContractualCents: 500}, "0.0%", "100.0%", Unknown},
		{"overpaid above 100%", ClaimInputs{Adjudicated: 1, ChargedCents: 1000, ContractualCents: 200, PaidCents: 1000}, "0.0%", "0.0%", "125.0%"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ComputeClaimRates(c.in).Map()
			want := map[string]string{"denial_rate": c.denial, "clean_claim_rate": c.clean, "net_collection_rate": c.netCR}
			for _, k := range RateNames {
				if got[k] != want[k] {
					t.Errorf("%s = %s, want %s", k, got[k], want[k])
				}
			}
		})
	}
}

func TestClaimInputsAddPoolsCounts(t *testing.T) {
	// The total of two clinics is computed from the pooled counts, never an average of rates:
	// 1 of 1 denied and 0 of 3 denied is 25%, not 50%.
	var total ClaimInputs
	total.Add(ClaimInputs{Adjudicated: 1, Denied: 1, ChargedCents: 100})
	total.Add(ClaimInputs{Adjudicated: 3, Clean: 3, ChargedCents: 300, ContractualCents: 100, PaidCents: 200})
	r := ComputeClaimRates(total).Map()
	if r["denial_rate"] != "25.0%" || r["clean_claim_rate"] != "75.0%" || r["net_collection_rate"] != "66.7%" {
		t.Errorf("pooled rates = %v", r)
	}
	if v := ComputeClaimRates(total).Values()["denial_rate"]; v == nil || *v != 0.25 {
		t.Errorf("denial_rate value = %v", v)
	}
}
