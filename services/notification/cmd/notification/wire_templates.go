package main

import (
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/proto/gen/trellis/notification/v1/notificationv1connect"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/notification/internal/app"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
	"github.com/trellis-health/trellis/services/notification/internal/ports/rpc"
)

// TemplatesConfig configures the templates area (embedded in Config).
type TemplatesConfig struct {
	BlockedWords []string `env:"NOTIFY_BLOCKED_WORDS" help:"words no template may contain, comma separated, on top of the built-in list (e.g. the clinic's or program's own names)"`
}

// setupTemplates wires the content area: the template store and check, the renderer the
// dispatcher uses, and the NotificationService API (history, templates, preview,
// preferences, clinic settings). It returns the renderer.
func setupTemplates(p *service.Platform, cfg TemplatesConfig, a *app.App) *app.Content {
	content := app.NewContent(postgres.NewContent(p.Store), domain.NewChecker(cfg.BlockedWords), p.Log, nil)
	srv := rpc.Server{App: a, Content: content, Log: p.Log}
	p.Server.Handle(notificationv1connect.NewNotificationServiceHandler(srv, p.Server.HandlerOptions()...))
	return content
}
