package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/postgres"
)

// FieldKeysConfig is the field-encryption configuration (docs/security.md#field-encryption):
// notification's own keys, never another service's.
type FieldKeysConfig struct {
	FieldKeys    string `env:"FIELD_KEYS" secret:"true" help:"field encryption keys, kid:base64 (32 bytes) comma separated, the first seals new values; required unless AUTH_DEV_MODE=true (then fixed dev keys)"`
	FieldHashKey string `env:"FIELD_HASH_KEY" secret:"true" help:"key of the lookup hashes of encrypted fields (the opt-out numbers; base64, at least 32 bytes); required with FIELD_KEYS"`
}

// keyring is the keyring of cfg: required, unless AUTH_DEV_MODE is on and both variables are
// empty, which takes the fixed dev keys.
func keyring(cfg *Config) (*fieldcrypt.Keyring, error) {
	return fieldcrypt.Load(cfg.FieldKeys, cfg.FieldHashKey, cfg.AuthDevMode)
}

// encryptAtStart encrypts the rows still holding plaintext (written before migration 00004,
// or by an older binary) before the service serves. Quick when there are none. ctx must be in
// system scope (every clinic's rows).
func encryptAtStart(ctx context.Context, p *service.Platform, k *fieldcrypt.Keyring) error {
	st, err := postgres.EncryptFields(ctx, p.Pool, k, postgres.EncryptOptions{})
	if err != nil {
		return err
	}
	if n := total(st.Encrypted); n > 0 {
		p.Log.InfoContext(ctx, "encrypted plaintext fields", "rows", n)
	}
	return nil
}

// encryptFields is `notification encrypt-fields [-rotate] [-rehash]`: it encrypts what is
// still plaintext, and re-encrypts under the active key (-rotate) or recomputes the lookup
// hashes (-rehash) after a key change; it prints counts, never values.
func encryptFields(ctx context.Context, p *service.Platform, cfg *Config, args []string) error {
	fs := flag.NewFlagSet("encrypt-fields", flag.ContinueOnError)
	rotate := fs.Bool("rotate", false, "re-encrypt values sealed by a key other than the first of FIELD_KEYS")
	rehash := fs.Bool("rehash", false, "recompute every lookup hash (after FIELD_HASH_KEY changed)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("encrypt-fields takes only -rotate and -rehash, got %q", fs.Args())
	}
	k, err := keyring(cfg)
	if err != nil {
		return err
	}
	// Every clinic's rows: system scope.
	st, err := postgres.EncryptFields(auth.WithSystemScope(ctx), p.Pool, k, postgres.EncryptOptions{Rotate: *rotate, Rehash: *rehash})
	if err != nil {
		return err
	}
	p.Log.InfoContext(ctx, "fields encrypted", "active_key", k.ActiveKeyID(),
		"encrypted", total(st.Encrypted), "resealed", total(st.Resealed), "rehashed", total(st.Rehashed))
	return nil
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
