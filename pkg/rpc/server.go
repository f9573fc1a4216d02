package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"buf.build/go/protovalidate"
	"connectrpc.com/connect"
	"connectrpc.com/otelconnect"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/telemetry"
)

// MaxRequestBytes caps a request body (Connect reads it before any interceptor runs, so this
// also bounds what an unauthenticated caller can make the server hold).
const MaxRequestBytes = 1 << 20

// MaxUploadBytes is the default cap of the few procedures that take a file (billing's
// UploadRemittance: an 835 of 100,000 service lines is ~15-20 MB), raised for them alone with
// WithRequestLimit.
const MaxUploadBytes = 64 << 20

// WithRequestLimit raises the request cap of the named procedures (e.g.
// "/trellis.billing.v1.RemittanceService/UploadRemittance") to max bytes; every other procedure
// of the handler keeps MaxRequestBytes. Add it after HandlerOptions() (the later option wins).
// Connect reads the body before the interceptors run, so an unauthenticated caller can make the
// server hold max bytes per call of these procedures: keep them few.
func WithRequestLimit(max int, procedures ...string) connect.HandlerOption {
	return connect.WithConditionalHandlerOptions(func(spec connect.Spec) []connect.HandlerOption {
		if slices.Contains(procedures, spec.Procedure) {
			return []connect.HandlerOption{connect.WithReadMaxBytes(max)}
		}
		return nil
	})
}

// Check is a readiness probe: nil means ready.
type Check struct {
	Name string
	Fn   func(context.Context) error
}

// Server is a service's HTTP server: Connect handlers, health, readiness and metrics.
type Server struct {
	mux     *http.ServeMux
	log     *slog.Logger
	checks  []Check
	opts    []connect.HandlerOption
	metrics *telemetry.Metrics
	tls     *tls.Config // nil: plain HTTP (h2c)
	audit   auditor     // the PHI audit trail (audit.go), on after UseAudit
}

// NewServer builds the server. Every Connect handler gets, in order: tracing, metrics and
// logging, request and correlation ids, the PHI audit trail (audit.go; on after UseAudit: it
// wraps what follows, so refused calls are recorded too), authentication and role authorization
// (policy), then protovalidate. Streaming procedures are refused (unimplemented) until those
// interceptors cover them.
func NewServer(log *slog.Logger, m *telemetry.Metrics, verifier *auth.Verifier, policy Policy, checks ...Check) (*Server, error) {
	validator, err := protovalidate.New()
	if err != nil {
		return nil, fmt.Errorf("rpc: validator: %w", err)
	}
	tracing, err := otelconnect.NewInterceptor(otelconnect.WithoutMetrics(), otelconnect.WithTrustRemote())
	if err != nil {
		return nil, err
	}
	s := &Server{mux: http.NewServeMux(), log: log, checks: checks, metrics: m}
	s.opts = []connect.HandlerOption{connect.WithReadMaxBytes(MaxRequestBytes), connect.WithInterceptors(
		tracing, observeInterceptor(m, log), causeInterceptor(), s.auditCalls(verifier), authInterceptor(verifier, policy),
		validateInterceptor(validator), s.auditAllowed(), refuseStreaming{},
	)}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", s.ready)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
	return s, nil
}

// HandlerOptions are the options every Connect handler must be built with.
func (s *Server) HandlerOptions() []connect.HandlerOption { return s.opts }

// Handle mounts a Connect handler (as returned by New<Service>Handler).
func (s *Server) Handle(path string, h http.Handler) { s.mux.Handle(path, h) }

// Handler is the server's HTTP handler (for httptest in tests).
func (s *Server) Handler() http.Handler { return s.mux }

// AddCheck adds a readiness check.
func (s *Server) AddCheck(c Check) { s.checks = append(s.checks, c) }

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status := http.StatusOK
	body := ""
	for _, c := range s.checks {
		if err := c.Fn(ctx); err != nil {
			status = http.StatusServiceUnavailable
			body += c.Name + ": not ready\n"
			s.log.WarnContext(ctx, "readiness check failed", "check", c.Name, "error", err)
		} else {
			body += c.Name + ": ok\n"
		}
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// UseTLS makes the server serve HTTPS (HTTP/1.1 and HTTP/2) with the certificate and key in
// PEM files (TLS_CERT_FILE, TLS_KEY_FILE); both empty leaves it on plain HTTP. The files are
// read again when they change (checked at most every 10 s), so a renewed certificate is served
// without a restart.
func (s *Server) UseTLS(certFile, keyFile string) error {
	if certFile == "" && keyFile == "" {
		return nil
	}
	if certFile == "" || keyFile == "" {
		return errors.New("TLS_CERT_FILE and TLS_KEY_FILE go together: set both or neither")
	}
	kp, err := newKeyPairReloader(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("TLS_CERT_FILE/TLS_KEY_FILE: %w", err)
	}
	s.tls = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: kp.get, NextProtos: []string{"h2", "http/1.1"}}
	return nil
}

// TLS reports whether the server serves HTTPS.
func (s *Server) TLS() bool { return s.tls != nil }

// Serve listens on addr until ctx ends, then shuts down gracefully within grace.
func (s *Server) Serve(ctx context.Context, addr string, grace time.Duration) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("rpc: listen %s: %w", addr, err)
	}
	return s.ServeListener(ctx, ln, grace)
}

// ServeListener is Serve on an open listener (tests use port 0).
func (s *Server) ServeListener(ctx context.Context, ln net.Listener, grace time.Duration) error {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	if s.tls != nil {
		p.SetHTTP2(true)
		ln = tls.NewListener(ln, s.tls)
	} else {
		p.SetUnencryptedHTTP2(true) // gRPC without TLS inside the cluster
	}
	srv := &http.Server{Handler: s.mux, Protocols: p, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, TLSConfig: s.tls}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// keyPairReloader serves a certificate from PEM files and loads them again when their
// modification time changes, so a renewed certificate (cert-manager, a rotated Secret) is
// picked up without a restart. A renewal that cannot be loaded keeps the previous pair.
type keyPairReloader struct {
	certFile, keyFile string
	mu                sync.Mutex
	cert              *tls.Certificate
	modTime           time.Time
	checked           time.Time
}

func newKeyPairReloader(certFile, keyFile string) (*keyPairReloader, error) {
	k := &keyPairReloader{certFile: certFile, keyFile: keyFile}
	if err := k.load(); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *keyPairReloader) load() error {
	st, err := os.Stat(k.certFile)
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		return err
	}
	k.cert, k.modTime = &cert, st.ModTime()
	return nil
}

func (k *keyPairReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if now := time.Now(); now.Sub(k.checked) > 10*time.Second {
		k.checked = now
		if st, err := os.Stat(k.certFile); err == nil && !st.ModTime().Equal(k.modTime) {
			_ = k.load() // on error the previous pair stays
		}
	}
	return k.cert, nil
}
