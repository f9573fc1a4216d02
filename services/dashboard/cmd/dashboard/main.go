// Command dashboard serves the operators' and billing staff's web app: it projects every
// context's events (intake, scheduling, billing, notification) into its own schema and serves
// server-rendered pages and JSON over them. The projections can be rebuilt by replaying the
// streams: `dashboard rebuild`.
package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/services/dashboard/internal/projection"
	"github.com/trellis-health/trellis/services/dashboard/internal/store"
	"github.com/trellis-health/trellis/services/dashboard/internal/web"
	"github.com/trellis-health/trellis/services/dashboard/migrations"
)

// Config is the dashboard's configuration: the shared base (AUTH_DEV_MODE and AUTH_DEV_KEY
// enable the dev sign-in).
type Config struct {
	service.Base
}

func main() {
	var cfg Config
	service.Main(newSpec(&cfg), &cfg)
}

func consumers() []string {
	out := make([]string, 0, len(projection.Streams))
	for _, s := range projection.Streams {
		out = append(out, projection.ConsumerName(s))
	}
	return out
}

// newSpec describes the service; cfg is read when Setup runs, after it has been loaded.
func newSpec(cfg *Config) service.Spec {
	return service.Spec{
		Name:        "dashboard",
		Summary:     "the operators' and billing staff's web app over projections of every context's events",
		DefaultAddr: ":8080",
		Migrations:  migrations.FS,
		Consumes:    []string{"intake", "scheduling", "billing", "notification"},
		Setup: func(ctx context.Context, p *service.Platform) error {
			for _, s := range projection.Streams {
				p.Consume(projection.Consumer(s), projection.Handler(s))
			}
			var verifier *auth.Verifier
			if cfg.AuthJWKSURL != "" {
				verifier = auth.NewJWKSVerifier(cfg.AuthJWKSURL, cfg.AuthIssuer, cfg.AuthAudience, nil)
			} else if cfg.AuthDevMode {
				verifier = auth.NewDevVerifier([]byte(cfg.AuthDevKey), cfg.AuthIssuer, cfg.AuthAudience)
			}
			h, err := web.New(store.New(p.Pool), web.Config{
				Verifier: verifier, DevMode: cfg.AuthDevMode, DevKey: cfg.AuthDevKey,
				Issuer: cfg.AuthIssuer, Audience: cfg.AuthAudience,
				Streams: projection.Streams, Consumer: projection.ConsumerName,
				Pending: func(ctx context.Context, stream string) *uint64 {
					ctx, cancel := context.WithTimeout(ctx, time.Second)
					defer cancel()
					c, err := p.JS.Consumer(ctx, stream, projection.ConsumerName(stream))
					if err != nil {
						return nil
					}
					info, err := c.Info(ctx)
					if err != nil {
						return nil
					}
					n := info.NumPending + uint64(info.NumAckPending)
					return &n
				},
				Log: p.Log,
			})
			if err != nil {
				return err
			}
			h.Register(p.Server.Handle)
			return nil
		},
		Commands: map[string]func(ctx context.Context, p *service.Platform, args []string) error{
			"rebuild": func(ctx context.Context, p *service.Platform, _ []string) error { return rebuild(ctx, cfg, p) },
		},
	}
}

// rebuild empties the projections and the dashboard consumers' inbox rows, then deletes the
// durable consumers: a running dashboard creates them again within seconds (a stopped one when
// it starts), delivering every stream from its start, and the projections fill up again.
func rebuild(ctx context.Context, cfg *Config, p *service.Platform) error {
	opts := []nats.Option{nats.Name("dashboard-rebuild")}
	if cfg.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(cfg.NATSCreds))
	}
	nc, err := nats.Connect(cfg.NATSURL, opts...)
	if err != nil {
		return fmt.Errorf("nats: connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	// Empty first, then delete: an event a running service applies in between is either replayed
	// (and applied again, harmlessly) or already in the emptied tables.
	if err := store.New(p.Pool).Truncate(ctx, consumers()); err != nil {
		return err
	}
	for _, s := range projection.Streams {
		err := js.DeleteConsumer(ctx, s, projection.ConsumerName(s))
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("delete consumer %s: %w", projection.ConsumerName(s), err)
		}
	}
	p.Log.Info("projections emptied and consumers deleted; the service replays the streams (start it if it is stopped)")
	return nil
}
