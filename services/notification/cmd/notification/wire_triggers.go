package main

import (
	"context"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/notification/internal/app"
	"github.com/trellis-health/trellis/services/notification/internal/ports/events"
)

// setupTriggers registers the consumers that queue and cancel messages from other services'
// events (appointments, discharges, attendance, statements, staff alerts) and the dead-letter
// watcher. queued wakes the dispatcher after a message was queued. The watcher's durable
// consumer is created here, before the service reports ready, so no dead letter is missed.
func setupTriggers(ctx context.Context, p *service.Platform, repo *postgres.Repository, queued func()) error {
	t := app.NewTriggers(repo, p.Log, nil)
	h := events.TriggerHandlers{T: t, Queued: queued}
	for _, tr := range h.Triggers() {
		p.Consume(tr.Config, tr.Handler)
	}
	w := &events.DeadLetters{JS: p.JS, Store: p.Store, T: t, Log: p.Log, Queued: queued}
	if _, err := w.Ensure(ctx); err != nil {
		return err
	}
	// It alerts about every clinic's dead letters: system scope.
	p.Go(func(ctx context.Context) error { return w.Run(auth.WithSystemScope(ctx)) })
	return nil
}
