// Command intake runs the intake service: `intake [serve|migrate|seed-demo|encrypt-fields]`, `intake --help`
// lists the configuration.
package main

import (
	"time"
	_ "time/tzdata" // clinic time zones must resolve even in images without a zoneinfo database

	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/services/intake"
)

// Config is intake's configuration.
type Config struct {
	service.Base
	IdempotencyRetention time.Duration `env:"IDEMPOTENCY_RETENTION" default:"720h" help:"how long idempotency keys, and the responses they replay (which hold PHI), are kept; at least 24h"`
	FieldKeys            string        `env:"FIELD_KEYS" secret:"true" help:"field encryption keys, kid:base64 (32 bytes) comma separated, the first seals new values; required unless AUTH_DEV_MODE=true (then fixed dev keys)"`
	FieldHashKey         string        `env:"FIELD_HASH_KEY" secret:"true" help:"key of the lookup hashes of encrypted fields (base64, at least 32 bytes); required with FIELD_KEYS"`
}

func main() {
	var cfg Config
	keys := intake.FieldKeys{Keys: &cfg.FieldKeys, HashKey: &cfg.FieldHashKey, DevMode: &cfg.AuthDevMode}
	service.Main(intake.SpecWithKeys(&cfg.IdempotencyRetention, &keys), &cfg)
}
