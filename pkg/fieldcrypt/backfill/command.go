package backfill

import (
	"context"
	"flag"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
)

// Pass is a service's encryption pass over its own tables on pool (its EncryptFields).
type Pass func(ctx context.Context, pool *pgxpool.Pool, k *fieldcrypt.Keyring, opts Options) (Stats, error)

// parseFlags parses the arguments of an `encrypt-fields` command: -rotate, and -rehash when
// the service has lookup hashes (hashes); nothing else.
func parseFlags(args []string, hashes bool) (Options, error) {
	fs := flag.NewFlagSet("encrypt-fields", flag.ContinueOnError)
	rotate := fs.Bool("rotate", false, "re-encrypt values sealed by a key other than the first of FIELD_KEYS")
	rehash := new(bool)
	if hashes {
		fs.BoolVar(rehash, "rehash", false, "recompute every lookup hash (after FIELD_HASH_KEY changed)")
	}
	if err := fs.Parse(args); err != nil {
		return Options{}, err
	}
	if fs.NArg() > 0 {
		if hashes {
			return Options{}, fmt.Errorf("encrypt-fields takes only -rotate and -rehash, got %q", fs.Args())
		}
		return Options{}, fmt.Errorf("encrypt-fields takes only -rotate, got %q", fs.Args())
	}
	return Options{Rotate: *rotate, Rehash: *rehash}, nil
}

// Command is `<service> encrypt-fields [-rotate] [-rehash]` (-rehash when hashes): it
// encrypts what is still plaintext, and re-encrypts under the active key (-rotate) or
// recomputes the lookup hashes (-rehash) after a key change, in system scope (every clinic's
// rows); it logs counts, never values. The flags are checked before the keys.
func Command(ctx context.Context, log *slog.Logger, pool *pgxpool.Pool, args []string, hashes bool, keyring func() (*fieldcrypt.Keyring, error), pass Pass) error {
	opts, err := parseFlags(args, hashes)
	if err != nil {
		return err
	}
	k, err := keyring()
	if err != nil {
		return err
	}
	st, err := pass(auth.WithSystemScope(ctx), pool, k, opts)
	if err != nil {
		return err
	}
	attrs := []any{"active_key", k.ActiveKeyID(), "encrypted", Total(st.Encrypted), "resealed", Total(st.Resealed)}
	if hashes {
		attrs = append(attrs, "rehashed", Total(st.Rehashed))
	}
	log.InfoContext(ctx, "fields encrypted", attrs...)
	return nil
}

// AtStart is the pass a service runs before it serves, in system scope: it encrypts the rows
// still holding plaintext (written before field encryption, or by an older binary) and logs
// how many. Quick when there are none.
func AtStart(ctx context.Context, log *slog.Logger, pool *pgxpool.Pool, k *fieldcrypt.Keyring, pass Pass) error {
	st, err := pass(auth.WithSystemScope(ctx), pool, k, Options{})
	if err != nil {
		return err
	}
	if n := Total(st.Encrypted); n > 0 {
		log.InfoContext(ctx, "encrypted plaintext fields", "rows", n)
	}
	return nil
}
