// Command notification sends patients their messages: it keeps a minimal copy of how to reach
// each admitted patient (the start date from intake's PatientAdmitted, the contact details from
// intake's PatientContactRecorded, which only notification subscribes to), queues a welcome
// when billing opens the patient's account, and delivers it by email (SMTP) with neutral wording.
package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/smtp"
	"github.com/trellis-health/trellis/services/notification/internal/app"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
	"github.com/trellis-health/trellis/services/notification/internal/ports/events"
	"github.com/trellis-health/trellis/services/notification/internal/ports/rpc"
	"github.com/trellis-health/trellis/services/notification/migrations"
)

// Config is notification's configuration.
type Config struct {
	service.Base
	SMTPAddr     string        `env:"SMTP_ADDR" default:"127.0.0.1:1025" help:"SMTP server host:port (TLS as SMTP_TLS says)"`
	SMTPTLS      string        `env:"SMTP_TLS" help:"require (STARTTLS, refuse to send without it), starttls-optional (STARTTLS when offered, else clear text; dev stacks) or implicit (TLS from the first byte, port 465); empty: require, starttls-optional with AUTH_DEV_MODE=true"`
	SMTPFrom     string        `env:"SMTP_FROM" default:"Care Team <care@trellis.local>" help:"sender address; keep it neutral (it must not name the kind of care)"`
	SMTPUsername string        `env:"SMTP_USERNAME" help:"SMTP AUTH PLAIN user (empty: no auth)"`
	SMTPPassword string        `env:"SMTP_PASSWORD" secret:"true" help:"SMTP AUTH PLAIN password"`
	SMTPTimeout  time.Duration `env:"SMTP_TIMEOUT" default:"30s" help:"longest one SMTP delivery may take"`
	PollInterval time.Duration `env:"NOTIFY_POLL_INTERVAL" default:"1s" help:"how often the dispatcher looks for due messages"`
	MaxAttempts  int           `env:"NOTIFY_MAX_ATTEMPTS" default:"8" help:"send attempts before a message is marked failed"`
	RetryBase    time.Duration `env:"NOTIFY_RETRY_BASE" default:"30s" help:"delay after the first failed send; doubles after each further one"`
	RetryMax     time.Duration `env:"NOTIFY_RETRY_MAX" default:"1h" help:"longest delay between send attempts"`
	DeliveryConfig
	TemplatesConfig
	FieldKeysConfig // fields.go
}

func main() {
	var cfg Config
	service.Main(newSpec(&cfg), &cfg)
}

// check refuses settings that would break the privacy rules: the sender is what a patient's
// inbox shows first, so it must not name the kind of care; the fake SMS provider serves every
// text it records to anyone (GET /fake-sms/messages), so only a dev stack may run it.
func (c *Config) check() error {
	if found := domain.SensitiveTermsIn(c.SMTPFrom); len(found) > 0 {
		return fmt.Errorf("SMTP_FROM must be neutral; it names %q", found)
	}
	if c.SMSProviderURL == fakeMode && !c.AuthDevMode {
		return errors.New("SMS_PROVIDER_URL=fake needs AUTH_DEV_MODE=true: the fake provider sends nothing and shows every text to anyone (dev stacks only)")
	}
	if _, err := c.smtpTLS(); err != nil {
		return err
	}
	return nil
}

// smtpTLS is SMTP_TLS, or its default: TLS required, optional in dev mode (Mailpit has none).
func (c *Config) smtpTLS() (smtp.TLSMode, error) {
	switch {
	case c.SMTPTLS != "":
		return smtp.ParseTLSMode(c.SMTPTLS)
	case c.AuthDevMode:
		return smtp.TLSOptional, nil
	}
	return smtp.TLSRequire, nil
}

// newSpec describes the service; cfg is read when Setup runs, after it has been loaded.
func newSpec(cfg *Config) service.Spec {
	return service.Spec{
		Name:        "notification",
		Summary:     "sends patients privacy-safe messages (welcome email over SMTP)",
		DefaultAddr: ":8084",
		Migrations:  migrations.FS,
		Consumes:    []string{"intake", "billing", "scheduling"},
		Policy:      rpc.Policy,
		Commands: map[string]func(context.Context, *service.Platform, []string) error{
			// Encrypts what is still plaintext; -rotate, -rehash after a key change (fields.go).
			"encrypt-fields": func(ctx context.Context, p *service.Platform, args []string) error {
				return encryptFields(ctx, p, cfg, args)
			},
		},
		Setup: func(ctx context.Context, p *service.Platform) error {
			if err := cfg.check(); err != nil {
				return err
			}
			tlsMode, err := cfg.smtpTLS()
			if err != nil {
				return err
			}
			if tlsMode == smtp.TLSOptional {
				p.Log.Warn("SMTP_TLS=starttls-optional: email goes in clear text when the SMTP server does not offer STARTTLS (dev only)")
			}
			sender, err := smtp.New(smtp.Config{Addr: cfg.SMTPAddr, From: cfg.SMTPFrom,
				Username: cfg.SMTPUsername, Password: cfg.SMTPPassword, Timeout: cfg.SMTPTimeout, TLS: tlsMode})
			if err != nil {
				return err
			}
			k, err := keyring(cfg)
			if err != nil {
				return err
			}
			// Clinic isolation (docs/security.md, "Row-level security"): every transaction sets
			// the clinic scope of its context, which the row-level security policies of
			// migration 00005 compare clinic_id with. API calls carry the caller's clinics;
			// consumers run in system scope (pkg/bus), and the work below that acts for no
			// caller declares it (auth.WithSystemScope): the encryption pass, the dispatcher,
			// the dead-letter watcher (wire_triggers.go) and the SMS webhooks (ports/http).
			// Anything else sees no clinic's rows.
			p.Store.EnableClinicScope()
			// The repository reads the sealed columns once this pass is done.
			if err := encryptAtStart(auth.WithSystemScope(ctx), p, k); err != nil {
				return err
			}
			repo := postgres.New(p.Store, k)
			a := app.New(repo, p.Log)

			dcfg := app.DispatcherConfig{
				PollInterval: cfg.PollInterval,
				Lease:        2*max(sender.Timeout(), cfg.SMSTimeout) + 30*time.Second, // a claim outlives any send
				Retry:        domain.RetryPolicy{MaxAttempts: cfg.MaxAttempts, Base: cfg.RetryBase, Max: cfg.RetryMax},
			}
			if err := setupDelivery(p, cfg.DeliveryConfig, repo, &dcfg); err != nil {
				return err
			}
			dcfg.Renderer = setupTemplates(p, cfg.TemplatesConfig, a) // templates, and the API
			d := app.NewDispatcher(p.Store, repo, sender, dcfg, p.Log)
			// A platform worker: it stops with the service after finishing the message in
			// hand, and Serve waits for it before closing Postgres and NATS. It sends every
			// clinic's messages: system scope.
			p.Go(func(ctx context.Context) error { return d.Run(auth.WithSystemScope(ctx)) })

			h := events.Handlers{App: a, Queued: d.Wake}
			admissions, contacts, accounts := events.Consumers()
			p.Consume(admissions, h.PatientAdmitted)
			p.Consume(contacts, h.PatientContactRecorded)
			p.Consume(accounts, h.AccountOpened)
			if err := setupTriggers(ctx, p, repo, d.Wake); err != nil {
				return err
			}
			return nil
		},
	}
}
