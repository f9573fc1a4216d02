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

// encryptAtStart encrypts the rows still holding plaintext (written before migration 00010,
// or by an older binary) before the service serves, in system scope. Quick when there are none.
func encryptAtStart(ctx context.Context, p *service.Platform, k *fieldcrypt.Keyring) error {
	return backfill.AtStart(ctx, p.Log, p.Pool, k, postgres.EncryptFields)
}

// encryptFields is `billing encrypt-fields [-rotate]`: it encrypts what is still plaintext,
// and re-encrypts under the active key (-rotate) after a key change; it prints counts, never
// values. No -rehash: billing keeps no lookup hashes.
func encryptFields(ctx context.Context, p *service.Platform, cfg *Config, args []string) error {
	keys := func() (*fieldcrypt.Keyring, error) { return keyring(cfg) }
	return backfill.Command(ctx, p.Log, p.Pool, args, false, keys, postgres.EncryptFields)
}
