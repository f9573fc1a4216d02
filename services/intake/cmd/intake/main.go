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
	intake.FieldKeys
}

func main() {
	var cfg Config
	service.Main(intake.SpecWithKeys(&cfg.IdempotencyRetention, &cfg.FieldKeys, &cfg.AuthDevMode), &cfg)
}
