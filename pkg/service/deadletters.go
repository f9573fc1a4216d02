package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/rpc"
)

// deadLetters runs `<service> deadletters list|show|replay`: the operator's tools for the
// DEADLETTER stream. Listing and showing print metadata and reasons only, never a payload (it
// may hold patient data). Replay hands dead letters back to this service's own consumers, in
// this process, through the same inbox transaction as live delivery: a replay applies an event
// at most once however often it is run, and a replayed dead letter leaves the stream.
func deadLetters(ctx context.Context, spec Spec, cfg Config, log *slog.Logger, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("deadletters: want list, show SEQ or replay (SEQ... | -consumer NAME -all)")
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("deadletters "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	consumer := fs.String("consumer", "", "only this consumer's dead letters (list: default all; replay -all: required)")
	from := fs.Uint64("from", 0, "list: start at this DEADLETTER sequence")
	limit := fs.Int("limit", 100, "list: at most this many")
	all := fs.Bool("all", false, "replay: every dead letter of -consumer")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("deadletters %s: %w", sub, err)
	}
	b := cfg.base()
	return withPlatform(ctx, spec, b, log, true, func(ctx context.Context, p *Platform) error {
		switch sub {
		case "list":
			dls, err := bus.ListDeadLetters(ctx, p.JS, *consumer, *from, *limit)
			if err != nil {
				return err
			}
			printDeadLetters(stdout, dls)
			return nil
		case "show":
			for _, a := range fs.Args() {
				seq, err := strconv.ParseUint(a, 10, 64)
				if err != nil {
					return fmt.Errorf("deadletters show: %q is not a DEADLETTER sequence", a)
				}
				d, err := bus.GetDeadLetter(ctx, p.JS, seq)
				if err != nil {
					return err
				}
				printDeadLetter(stdout, d)
			}
			return nil
		case "replay":
			return replayDeadLetters(ctx, spec, b, log, p, fs.Args(), *consumer, *all, stdout)
		default:
			return fmt.Errorf("deadletters: unknown action %q (want list, show or replay)", sub)
		}
	})
}

func replayDeadLetters(ctx context.Context, spec Spec, b *Base, log *slog.Logger, p *Platform, seqs []string, consumer string, all bool, stdout io.Writer) error {
	// The consumers are the service's own, registered by its Setup as when it serves.
	verifier, err := newVerifier(b, log)
	if err != nil {
		return err
	}
	if p.Server, err = rpc.NewServer(log, p.Metrics, verifier, spec.Policy); err != nil {
		return err
	}
	if spec.Setup != nil {
		if err := spec.Setup(ctx, p); err != nil {
			return err
		}
	}
	byName := map[string]*bus.Consumer{}
	for _, c := range p.consumers {
		byName[c.Name()] = c
	}
	var dls []bus.DeadLetter
	switch {
	case all && consumer == "":
		return errors.New("deadletters replay -all needs -consumer NAME")
	case all:
		for from := uint64(0); ; {
			page, err := bus.ListDeadLetters(ctx, p.JS, consumer, from, 500)
			if err != nil {
				return err
			}
			dls = append(dls, page...)
			if len(page) < 500 {
				break
			}
			from = page[len(page)-1].Seq + 1
		}
	case len(seqs) == 0:
		return errors.New("deadletters replay: give DEADLETTER sequences, or -consumer NAME -all")
	default:
		for _, a := range seqs {
			seq, err := strconv.ParseUint(a, 10, 64)
			if err != nil {
				return fmt.Errorf("deadletters replay: %q is not a DEADLETTER sequence", a)
			}
			d, err := bus.GetDeadLetter(ctx, p.JS, seq)
			if errors.Is(err, bus.ErrNoDeadLetter) {
				fmt.Fprintf(stdout, "%d\tgone (already replayed or deleted)\n", seq)
				continue
			}
			if err != nil {
				return err
			}
			dls = append(dls, d)
		}
	}
	failed := 0
	for _, d := range dls {
		c, ok := byName[d.Consumer]
		if !ok {
			failed++
			fmt.Fprintf(stdout, "%d\tskipped: consumer %s is not %s's\n", d.Seq, d.Consumer, spec.Name)
			continue
		}
		out, err := c.Replay(ctx, p.JS, d)
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "%d\tfailed, kept: %v\n", d.Seq, err)
			continue
		}
		fmt.Fprintf(stdout, "%d\t%s\n", d.Seq, out)
	}
	if failed > 0 {
		return fmt.Errorf("deadletters replay: %d of %d not replayed", failed, len(dls))
	}
	return nil
}

func printDeadLetters(w io.Writer, dls []bus.DeadLetter) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tAT\tCONSUMER\tSUBJECT\tEVENT ID\tATTEMPTS\tREASON")
	for _, d := range dls {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", d.Seq, d.At.Format(time.RFC3339), d.Consumer, d.Subject,
			orDash(d.EventID), d.Deliveries, d.Reason)
	}
	_ = tw.Flush()
	if len(dls) == 0 {
		fmt.Fprintln(w, "(no dead letters)")
	}
}

func printDeadLetter(w io.Writer, d bus.DeadLetter) {
	occurred := "-"
	if !d.OccurredAt.IsZero() {
		occurred = d.OccurredAt.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "sequence:     %d\ndead-lettered: %s\nconsumer:     %s\nsubject:      %s\nstream:       %s (sequence %d)\n"+
		"attempts:     %d\nreason:       %s\nevent id:     %s\nevent type:   %s\nclinic:       %s\noccurred at:  %s\n\n",
		d.Seq, d.At.Format(time.RFC3339), d.Consumer, d.Subject, d.Stream, d.StreamSeq, d.Deliveries, d.Reason,
		orDash(d.EventID), orDash(d.EventType), orDash(d.ClinicID), occurred)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
