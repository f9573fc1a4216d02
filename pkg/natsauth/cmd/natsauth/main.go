// Command natsauth generates the NATS configurations of the compose stack and the Helm chart
// from pkg/natsauth, and issues service keys.
//
//	go run ./pkg/natsauth/cmd/natsauth conf [-root DIR]   rewrite the generated files
//	go run ./pkg/natsauth/cmd/natsauth keys -dir DIR      new seeds in DIR/<service>.nk (0600);
//	                                                      prints TRELLIS_NKEY_<SERVICE>=<public key> lines
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/trellis-health/trellis/pkg/natsauth"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "natsauth:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("want `conf [-root DIR]` or `keys -dir DIR`")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	root := fs.String("root", ".", "conf: the repository root")
	dir := fs.String("dir", "", "keys: where to write the seeds (keep it secret)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "conf":
		files, err := natsauth.Generated(*root)
		if err != nil {
			return err
		}
		paths := make([]string, 0, len(files))
		for p := range files {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			if err := os.WriteFile(filepath.Join(*root, p), []byte(files[p]), 0o644); err != nil {
				return err
			}
			fmt.Println("wrote", p)
		}
		return nil
	case "keys":
		if *dir == "" {
			return fmt.Errorf("keys: -dir is required")
		}
		pubs, err := natsauth.WriteSeeds(*dir)
		if err != nil {
			return err
		}
		for _, s := range natsauth.Names() {
			fmt.Printf("%s=%s\n", natsauth.KeyEnv(s), pubs[s])
		}
		fmt.Fprintf(os.Stderr, "seeds written to %s/<service>.nk; give each service only its own (NATS_NKEY_SEED_FILE)\n", *dir)
		return nil
	default:
		return fmt.Errorf("unknown command %q (want conf or keys)", args[0])
	}
}
