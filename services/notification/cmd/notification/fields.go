package main

import (
	"context"

	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/fieldcrypt/backfill"
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
// or by an older binary) before the service serves, in system scope (every clinic's rows).
// Quick when there are none.
func encryptAtStart(ctx context.Context, p *service.Platform, k *fieldcrypt.Keyring) error {
	return backfill.AtStart(ctx, p.Log, p.Pool, k, postgres.EncryptFields)
}

// encryptFields is `notification encrypt-fields [-rotate] [-rehash]`: it encrypts what is
// still plaintext, and re-encrypts under the active key (-rotate) or recomputes the lookup
// hashes (-rehash) after a key change; it prints counts, never values.
func encryptFields(ctx context.Context, p *service.Platform, cfg *Config, args []string) error {
	keys := func() (*fieldcrypt.Keyring, error) { return keyring(cfg) }
	return backfill.Command(ctx, p.Log, p.Pool, args, true, keys, postgres.EncryptFields)
}
