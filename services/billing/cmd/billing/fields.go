package main

import (
	"context"

	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/fieldcrypt/backfill"
	"github.com/trellis-health/trellis/pkg/service"

	"github.com/trellis-health/trellis/services/billing/internal/adapters/postgres"
)

// keyring is the field-encryption keyring of cfg (FIELD_KEYS, FIELD_HASH_KEY;
// docs/security.md#field-encryption): required, unless AUTH_DEV_MODE is on and both are
// empty, which takes the fixed dev keys.
func keyring(cfg *Config) (*fieldcrypt.Keyring, error) {
	return fieldcrypt.Load(cfg.FieldKeys, cfg.FieldHashKey, cfg.AuthDevMode)
}

// pass is billing's encryption pass over its tables on p's database.
func pass(p *service.Platform) backfill.Pass {
	return func(ctx context.Context, k *fieldcrypt.Keyring, opts backfill.Options) (backfill.Stats, error) {
		return postgres.EncryptFields(ctx, p.Pool, k, opts)
	}
}

// encryptAtStart encrypts the rows still holding plaintext (written before migration 00010,
// or by an older binary) before the service serves, in system scope. Quick when there are none.
func encryptAtStart(ctx context.Context, p *service.Platform, k *fieldcrypt.Keyring) error {
	return backfill.AtStart(ctx, p.Log, k, pass(p))
}

// encryptFields is `billing encrypt-fields [-rotate]`: it encrypts what is still plaintext,
// and re-encrypts under the active key (-rotate) after a key change; it prints counts, never
// values. No -rehash: billing keeps no lookup hashes.
func encryptFields(ctx context.Context, p *service.Platform, cfg *Config, args []string) error {
	return backfill.Command(ctx, p.Log, args, false, func() (*fieldcrypt.Keyring, error) { return keyring(cfg) }, pass(p))
}
