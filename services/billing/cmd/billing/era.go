package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/trellis-health/trellis/pkg/service"

	"github.com/trellis-health/trellis/services/billing/internal/x12"
)

// `billing era inspect <file>` reads an 835 without posting it and prints one JSON object:
// {"transactions","claims","service_lines","total_paid_cents","deviations":[...]}. It exits 0
// whenever the file could be read (deviations are findings, not failures), 1 when it cannot
// be read at all, 2 on a usage error. It needs neither Postgres nor NATS: main() runs it
// before service.Main, whose commands get a Platform connected to Postgres.

// runEra runs `billing era <args>` and returns the exit code.
func runEra(args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 || args[0] != "inspect" {
		fmt.Fprintln(stderr, "usage: billing era inspect <file>")
		return 2
	}
	data, err := os.ReadFile(args[1])
	if err != nil {
		fmt.Fprintf(stderr, "billing era inspect: %v\n", err)
		return 1
	}
	era, err := x12.ParseERA(data)
	if err != nil {
		fmt.Fprintf(stderr, "billing era inspect: %s: not a readable 835: %v\n", args[1], err)
		return 1
	}
	s := era.Summary()
	if s.Deviations == nil {
		s.Deviations = []x12.Deviation{}
	}
	out, err := json.Marshal(s)
	if err != nil {
		fmt.Fprintf(stderr, "billing era inspect: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, string(out))
	return 0
}

// eraCommand is the same command as a service subcommand (listed by `billing --help`); main()
// normally runs it first, without connecting anything.
func eraCommand(_ context.Context, _ *service.Platform, args []string) error {
	if code := runEra(args, os.Stdout, os.Stderr); code != 0 {
		return errors.New("era inspect failed")
	}
	return nil
}
