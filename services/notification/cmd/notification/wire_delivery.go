package main

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/sms"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/sms/smsfake"
	"github.com/trellis-health/trellis/services/notification/internal/app"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
	"github.com/trellis-health/trellis/services/notification/internal/ports/events"
	webhooks "github.com/trellis-health/trellis/services/notification/internal/ports/http"
)

// DeliveryConfig configures delivery (embedded in Config): SMS provider, texting caps, staff
// alert address.
type DeliveryConfig struct {
	SMSProviderURL      string        `env:"SMS_PROVIDER_URL" help:"base URL of a Twilio-compatible SMS API (e.g. https://api.twilio.com); empty: texting disabled (patients get email); \"fake\": a local fake provider mounted at /fake-sms/ records texts instead of sending them (needs AUTH_DEV_MODE=true)"`
	SMSAccountSID       string        `env:"SMS_ACCOUNT_SID" help:"SMS provider account sid"`
	SMSAuthToken        string        `env:"SMS_AUTH_TOKEN" secret:"true" help:"SMS provider auth token (API auth and webhook signatures)"`
	SMSFrom             string        `env:"SMS_FROM" help:"sending number, E.164"`
	SMSMessagingService string        `env:"SMS_MESSAGING_SERVICE_SID" help:"messaging service sid, instead of SMS_FROM"`
	SMSTimeout          time.Duration `env:"SMS_TIMEOUT" default:"15s" help:"longest one SMS API call may take"`
	PublicBaseURL       string        `env:"PUBLIC_BASE_URL" default:"http://localhost:8084" help:"URL the SMS provider reaches this service at (status callbacks, inbound texts; signatures cover it)"`
	SMSPerDay           int           `env:"NOTIFY_SMS_PER_DAY" default:"1" help:"most texts one patient gets per local day"`
	SMSPerWeek          int           `env:"NOTIFY_SMS_PER_WEEK" default:"3" help:"most texts one patient gets in 7 local days"`
	StaffEmail          string        `env:"NOTIFY_STAFF_EMAIL" default:"care-team@trellis.local" help:"staff alert address when the clinic has none for the team, and for operations alerts"`
}

// fakeMode is SMS_PROVIDER_URL's value for the local fake provider.
const fakeMode = "fake"

// setupDelivery wires delivery: the consent consumer, the SMS sender (real or fake) and its
// webhooks, and the dispatcher's delivery settings (in dcfg).
func setupDelivery(p *service.Platform, cfg DeliveryConfig, repo app.DeliveryRepository, dcfg *app.DispatcherConfig) error {
	del := app.NewDelivery(p.Store, repo, p.Log)
	p.Consume(events.ConsentsConsumer(), events.Consents{Delivery: del}.Handle)

	dcfg.TextLimits = domain.TextLimits{PerDay: cfg.SMSPerDay, PerWeek: cfg.SMSPerWeek}
	if cfg.SMSPerDay <= 0 || cfg.SMSPerWeek <= 0 {
		return errors.New("NOTIFY_SMS_PER_DAY and NOTIFY_SMS_PER_WEEK must be at least 1")
	}
	dcfg.StaffEmail = domain.NormalizeEmail(cfg.StaffEmail)
	if cfg.StaffEmail != "" && dcfg.StaffEmail == "" {
		return errors.New("NOTIFY_STAFF_EMAIL is not an email address")
	}
	if cfg.SMSProviderURL == "" {
		p.Log.Info("texting disabled (SMS_PROVIDER_URL is empty): patients get email")
		return nil
	}
	base := strings.TrimRight(cfg.PublicBaseURL, "/")
	sc := sms.Config{BaseURL: cfg.SMSProviderURL, AccountSID: cfg.SMSAccountSID, AuthToken: cfg.SMSAuthToken,
		From: cfg.SMSFrom, MessagingServiceSID: cfg.SMSMessagingService, Timeout: cfg.SMSTimeout}
	if base != "" {
		sc.StatusCallback = base + webhooks.PathStatus
	}
	if cfg.SMSProviderURL == fakeMode {
		sc.BaseURL = base + "/fake-sms"
		sc.AccountSID = or(sc.AccountSID, "ACfake")
		sc.AuthToken = or(sc.AuthToken, "fake-token")
		if sc.MessagingServiceSID == "" {
			sc.From = or(sc.From, "+15555550100")
		}
		fake := smsfake.New(sc.AccountSID, sc.AuthToken)
		fake.AutoDeliver = true
		p.Server.Handle("/fake-sms/", http.StripPrefix("/fake-sms", fake))
		p.Log.Warn("SMS_PROVIDER_URL=fake: texts are NOT sent; the fake provider records them at /fake-sms/messages (dev only)")
	}
	client, err := sms.New(sc)
	if err != nil {
		return err
	}
	dcfg.SMS = client
	webhooks.Webhooks{Delivery: del, Token: sc.AuthToken, PublicBaseURL: base, Log: p.Log}.Mount(p.Server.Handle)
	return nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
