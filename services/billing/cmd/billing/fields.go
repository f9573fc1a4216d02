package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/service"

	"github.com/trellis-health/trellis/services/billing/internal/adapters/postgres"
)

// keyring is the field-encryption keyring of cfg (FIELD_KEYS, FIELD_HASH_KEY;
// docs/security.md#field-encryption): required, unless AUTH_DEV_MODE is on and both are
// empty, which takes the fixed dev keys.
func keyring(cfg *Config) (*fieldcrypt.Keyring, error) {
	return fieldcrypt.Load(cfg.FieldKeys, cfg.FieldHashKey, cfg.AuthDevMode)
}

// encryptAtStart encrypts the rows still holding plaintext (written before migration 00010,
// or by an older binary) before the service serves. Quick when there are none.
func encryptAtStart(ctx context.Context, p *service.Platform, k *fieldcrypt.Keyring) error {
	st, err := postgres.EncryptFields(auth.WithSystemScope(ctx), p.Pool, k, postgres.EncryptOptions{})
	if err != nil {
		return err
	}
	if n := total(st.Encrypted); n > 0 {
		p.Log.InfoContext(ctx, "encrypted plaintext fields", "rows", n)
	}
	return nil
}

// encryptFields is `billing encrypt-fields [-rotate]`: it encrypts what is still plaintext,
// and re-encrypts under the active key (-rotate) after a key change; it prints counts, never
// values.
func encryptFields(ctx context.Context, p *service.Platform, cfg *Config, args []string) error {
	fs := flag.NewFlagSet("encrypt-fields", flag.ContinueOnError)
	rotate := fs.Bool("rotate", false, "re-encrypt values sealed by a key other than the first of FIELD_KEYS")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("encrypt-fields takes only -rotate, got %q", fs.Args())
	}
	k, err := keyring(cfg)
	if err != nil {
		return err
	}
	st, err := postgres.EncryptFields(auth.WithSystemScope(ctx), p.Pool, k, postgres.EncryptOptions{Rotate: *rotate})
	if err != nil {
		return err
	}
	p.Log.InfoContext(ctx, "fields encrypted", "active_key", k.ActiveKeyID(),
		"encrypted", total(st.Encrypted), "resealed", total(st.Resealed))
	return nil
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
