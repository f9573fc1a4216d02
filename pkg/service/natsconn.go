package service

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nats.go"
)

// NATSOptions are the connection options of the named service's NATS user: its name, its
// credentials (an nkey seed file, NATS_NKEY_SEED_FILE, or a creds file, NATS_CREDS), its own
// inbox prefix (_INBOX.<service>: its user may subscribe only there, so no other service
// can read its deliveries or replies; pkg/natsauth), and TLS when NATS_TLS_CA_FILE is set
// (with a client certificate when NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE are). Tools that
// connect on a service's behalf (its subcommands) use them too.
func NATSOptions(service string, b *Base) ([]nats.Option, error) {
	opts := []nats.Option{nats.Name(service), nats.CustomInboxPrefix("_INBOX." + service)}
	switch {
	case b.NATSCreds != "" && b.NATSNkeySeed != "":
		return nil, errors.New("NATS_CREDS and NATS_NKEY_SEED_FILE are both set: a service connects as one user, set one")
	case b.NATSCreds != "":
		opts = append(opts, nats.UserCredentials(b.NATSCreds))
	case b.NATSNkeySeed != "":
		opt, err := nats.NkeyOptionFromSeed(b.NATSNkeySeed)
		if err != nil {
			return nil, fmt.Errorf("NATS_NKEY_SEED_FILE: %w", err)
		}
		opts = append(opts, opt)
	}
	tlsCfg, err := natsTLS(b)
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil {
		opts = append(opts, nats.Secure(tlsCfg))
	}
	return opts, nil
}

func natsTLS(b *Base) (*tls.Config, error) {
	if (b.NATSTLSCertFile == "") != (b.NATSTLSKeyFile == "") {
		return nil, errors.New("NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE go together: set both or neither")
	}
	if b.NATSTLSCAFile == "" {
		if b.NATSTLSCertFile != "" {
			return nil, errors.New("NATS_TLS_CERT_FILE needs NATS_TLS_CA_FILE (the CA that verifies the servers)")
		}
		return nil, nil
	}
	pem, err := os.ReadFile(b.NATSTLSCAFile)
	if err != nil {
		return nil, fmt.Errorf("NATS_TLS_CA_FILE: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("NATS_TLS_CA_FILE: %s holds no PEM certificate", b.NATSTLSCAFile)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if b.NATSTLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(b.NATSTLSCertFile, b.NATSTLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("NATS_TLS_CERT_FILE/NATS_TLS_KEY_FILE: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
