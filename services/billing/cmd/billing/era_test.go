package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The shared sample, as x12 keeps a copy of it in the repository.
const eraSample = "../../internal/x12/testdata/835-two-claims-service-lines.txt"

func TestEraInspectSample(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := runEra([]string{"inspect", eraSample}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("want one JSON line, got %q", out.String())
	}
	var got struct {
		Transactions   *int              `json:"transactions"`
		Claims         *int              `json:"claims"`
		ServiceLines   *int              `json:"service_lines"`
		TotalPaidCents *int64            `json:"total_paid_cents"`
		Deviations     []json.RawMessage `json:"deviations"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Transactions == nil || *got.Transactions != 1 || *got.Claims != 2 || *got.ServiceLines != 4 || *got.TotalPaidCents != 39105 {
		t.Fatalf("summary %s", out.String())
	}
	if got.Deviations == nil {
		t.Fatal("deviations must be an array")
	}
	t.Logf("%s", out.String())
}

func TestEraInspectDeviationsAndErrors(t *testing.T) {
	dir := t.TempDir()
	// Readable but unbalanced (CLP paid does not match the adjustments, BPR differs, SE wrong).
	unbalanced := filepath.Join(dir, "unbalanced.835")
	if err := os.WriteFile(unbalanced, []byte("ST*835*0001~BPR*I*90*C*ACH~CLP*A1*1*100*80*0~SVC*HC:H0015*100*80~SE*3*0001~"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.835")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := runEra([]string{"inspect", unbalanced}, &out, &errOut); code != 0 {
		t.Fatalf("unbalanced file: exit %d (%s), want 0", code, errOut.String())
	}
	var s struct {
		Deviations []struct {
			Rule string `json:"rule"`
		} `json:"deviations"`
	}
	if err := json.Unmarshal(out.Bytes(), &s); err != nil || len(s.Deviations) == 0 {
		t.Fatalf("want deviations, got %s (%v)", out.String(), err)
	}
	for _, c := range []struct {
		name string
		args []string
		want int
	}{
		{"missing file", []string{"inspect", filepath.Join(dir, "nope.835")}, 1},
		{"empty file", []string{"inspect", empty}, 1},
		{"no file", []string{"inspect"}, 2},
		{"unknown subcommand", []string{"post", unbalanced}, 2},
	} {
		out.Reset()
		if code := runEra(c.args, &out, &errOut); code != c.want {
			t.Errorf("%s: exit %d, want %d", c.name, code, c.want)
		}
		if out.Len() != 0 {
			t.Errorf("%s: printed %q", c.name, out.String())
		}
	}
}
