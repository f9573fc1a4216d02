// Command intake runs the intake service: `intake [serve|migrate|seed-demo]`, `intake --help`
// lists the configuration.
package main

import (
	_ "time/tzdata" // clinic time zones must resolve even in images without a zoneinfo database

	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/services/intake"
)

// Config is intake's configuration (only the shared settings so far).
type Config struct {
	service.Base
}

func main() {
	var cfg Config
	service.Main(intake.Spec(), &cfg)
}
