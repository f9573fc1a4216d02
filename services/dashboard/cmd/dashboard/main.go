// Command dashboard serves the operators' and billing staff's web app: it projects every
// context's events (intake, scheduling, billing, notification) into its own schema and serves
// server-rendered pages and JSON over them. The projections can be rebuilt by replaying the
// streams: `dashboard rebuild`.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/trellis-health/trellis/pkg/audit"
	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/services/dashboard/internal/projection"
	"github.com/trellis-health/trellis/services/dashboard/internal/store"
	"github.com/trellis-health/trellis/services/dashboard/internal/web"
	"github.com/trellis-health/trellis/services/dashboard/migrations"
)

// Config is the dashboard's configuration: the shared base (AUTH_DEV_MODE and AUTH_DEV_KEY
// enable the dev sign-in) and the OpenID Connect sign-in (on when OIDC_ISSUER is set).
type Config struct {
	service.Base
	BillingURL string `env:"BILLING_URL" default:"http://127.0.0.1:8083" help:"billing's API (work queues and 835 uploads on the billing page, called with the signed-in user's token; empty: off)"`

	OIDCIssuer       string        `env:"OIDC_ISSUER" help:"OpenID Connect issuer URL for \"Sign in with your organization\" (empty: off)"`
	OIDCClientID     string        `env:"OIDC_CLIENT_ID" help:"the dashboard's client id at the issuer (required with OIDC_ISSUER)"`
	OIDCClientSecret string        `env:"OIDC_CLIENT_SECRET" secret:"true" help:"client secret (empty for a public client: PKCE only)"`
	OIDCRedirectURL  string        `env:"OIDC_REDIRECT_URL" default:"http://127.0.0.1:8080/auth/callback" help:"this dashboard's /auth/callback URL as registered at the issuer"`
	OIDCScopes       string        `env:"OIDC_SCOPES" default:"openid profile email" help:"scopes asked for, separated by spaces (openid is always asked for)"`
	OIDCRolesClaim   string        `env:"OIDC_ROLES_CLAIM" default:"roles" help:"ID token claim with the user's roles (operator, billing, admin); a.b names a nested claim"`
	OIDCClinicsClaim string        `env:"OIDC_CLINICS_CLAIM" default:"clinics" help:"ID token claim with the clinic ids the user may see (* for all)"`
	SessionKey       string        `env:"DASHBOARD_SESSION_KEY" secret:"true" help:"secret (at least 32 bytes) the sign-in cookie's encryption and session signing keys are derived from (required with OIDC_ISSUER)"`
	SessionTTL       time.Duration `env:"DASHBOARD_SESSION_TTL" default:"12h" help:"how long an OpenID Connect sign-in lasts"`

	// Dev sign-in attempts per client IP (POST /signin): a token bucket; over it the answer is
	// 429 with Retry-After (docs/security.md#limits). OpenID Connect sign-in checks credentials
	// at the issuer, which limits them.
	SignInRatePerMinute int `env:"DASHBOARD_SIGNIN_RATE_PER_MINUTE" default:"10" help:"dev sign-in requests (POST /signin) per client IP per minute (0: no limit)"`
	SignInBurst         int `env:"DASHBOARD_SIGNIN_BURST" default:"10" help:"dev sign-in requests a client IP may make at once"`
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
			// Row-level security (migration 00007, docs/security.md): every transaction sets the
			// clinic scope from its context. The projections are consumers, which pkg/bus runs in
			// system scope; the pages read in the signed-in user's scope (web.withUser);
			// `dashboard rebuild` declares system scope (Store.Truncate).
			p.Store.EnableClinicScope()
			for _, s := range projection.Streams {
				p.Consume(projection.Consumer(s), projection.Handler(s))
			}
			var verifier *auth.Verifier
			if cfg.AuthJWKSURL != "" {
				verifier = auth.NewJWKSVerifier(cfg.AuthJWKSURL, cfg.AuthIssuer, cfg.AuthAudience, nil)
			} else if cfg.AuthDevMode {
				verifier = auth.NewDevVerifier([]byte(cfg.AuthDevKey), cfg.AuthIssuer, cfg.AuthAudience)
			}
			h, err := web.New(store.New(p.Store), web.Config{
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
				DeadLetters: func(ctx context.Context) (map[string]uint64, error) { return deadLetters(ctx, p.JS) },
				RecentDeadLetters: func(ctx context.Context) ([]web.DeadLetterItem, error) {
					return recentDeadLetters(ctx, p.JS, 50)
				},
				Log: p.Log, OIDC: oidcConfig(cfg),
				Billing: web.NewBillingClient(cfg.BillingURL, nil),
				// The pages' reads of patient data go to the same audit_log as GET /audit serves
				// (pkg/service's log of the same table: the chain is locked in the database).
				Audit: audit.New(p.Pool, "dashboard"),
			})
			if err != nil {
				return err
			}
			signins := auth.NewLimiter(cfg.SignInRatePerMinute, cfg.SignInBurst)
			h.Register(func(pattern string, handler http.Handler) {
				if pattern == "POST /signin" {
					handler = signins.Middleware(auth.ClientIP, handler)
				}
				p.Server.Handle(pattern, handler)
			})
			return nil
		},
		Commands: map[string]func(ctx context.Context, p *service.Platform, args []string) error{
			"rebuild": func(ctx context.Context, p *service.Platform, _ []string) error { return rebuild(ctx, cfg, p) },
		},
	}
}

// deadLetters counts the DEADLETTER stream's messages per consumer from the stream's
// per-subject state (trellis.deadletter.<consumer>): stream info only, never a message.
func deadLetters(ctx context.Context, js jetstream.JetStream) (map[string]uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, bus.DeadLetterStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return map[string]uint64{}, nil
	}
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(bus.DeadLetterSubject(">")))
	if err != nil {
		return nil, err
	}
	out := make(map[string]uint64, len(info.State.Subjects))
	for subject, n := range info.State.Subjects {
		if c, ok := strings.CutPrefix(subject, bus.DeadLetterSubject("")); ok && c != "" {
			out[c] += n
		}
	}
	return out, nil
}

// recentDeadLetters reads the newest n dead letters' headers and envelope metadata (through
// pkg/bus: never a payload), newest first.
func recentDeadLetters(ctx context.Context, js jetstream.JetStream, n int) ([]web.DeadLetterItem, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, bus.DeadLetterStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	// Dead letters are removed when replayed, so look back further than n sequences.
	from := uint64(0)
	if back := uint64(20 * n); info.State.LastSeq > back {
		from = info.State.LastSeq - back
	}
	dls, err := bus.ListDeadLetters(ctx, js, "", from, 20*n)
	if err != nil {
		return nil, err
	}
	out := make([]web.DeadLetterItem, 0, min(n, len(dls)))
	for i := len(dls) - 1; i >= 0 && len(out) < n; i-- {
		d := dls[i]
		out = append(out, web.DeadLetterItem{Seq: d.Seq, At: d.At, Consumer: d.Consumer, Subject: d.Subject,
			EventType: d.EventType, Attempts: d.Deliveries, Reason: d.Reason})
	}
	return out, nil
}

// oidcConfig is the web layer's OpenID Connect settings, nil when OIDC_ISSUER is not set.
func oidcConfig(cfg *Config) *web.OIDC {
	if cfg.OIDCIssuer == "" {
		return nil
	}
	return &web.OIDC{Issuer: cfg.OIDCIssuer, ClientID: cfg.OIDCClientID, ClientSecret: cfg.OIDCClientSecret,
		RedirectURL: cfg.OIDCRedirectURL, Scopes: strings.Fields(cfg.OIDCScopes), RolesClaim: cfg.OIDCRolesClaim,
		ClinicsClaim: cfg.OIDCClinicsClaim, SessionKey: cfg.SessionKey, SessionTTL: cfg.SessionTTL}
}

// rebuild empties the projections and the dashboard consumers' inbox rows, then deletes the
// durable consumers: a running dashboard creates them again within seconds (a stopped one when
// it starts), delivering every stream from its start, and the projections fill up again.
func rebuild(ctx context.Context, cfg *Config, p *service.Platform) error {
	// As the dashboard's own NATS user (credentials, nkey, TLS, its inbox prefix).
	opts, err := service.NATSOptions("dashboard", &cfg.Base)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(cfg.NATSURL, append(opts, nats.Name("dashboard-rebuild"))...)
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
	// The platform of a command has the scope off (Setup does not run): turn it on, so this
	// runs as the service does (Truncate declares system scope).
	p.Store.EnableClinicScope()
	if err := store.New(p.Store).Truncate(ctx, consumers()); err != nil {
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
