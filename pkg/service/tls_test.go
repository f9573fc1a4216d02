package service_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/pkg/testkit"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
	dir  string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "trellis test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), dir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(ca.dir, "ca.pem"), ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return ca
}

// issue writes name.pem and name-key.pem, a leaf for 127.0.0.1 and localhost, and returns their paths.
func (ca *testCA) issue(t *testing.T, name string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(ca.dir, name+".pem"), filepath.Join(ca.dir, name+"-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(ca.pem)
	return p
}

// TestServeOverTLS: with TLS_CERT_FILE/TLS_KEY_FILE the service serves HTTPS (HTTP/2 and
// HTTP/1.1) and no plain HTTP; with NATS_TLS_CA_FILE and a client certificate it connects to a
// NATS server that requires mutual TLS. The CA is made by the test.
func TestServeOverTLS(t *testing.T) {
	ca := newTestCA(t)
	natsCert, natsKey := ca.issue(t, "nats", x509.ExtKeyUsageServerAuth)
	clientCert, clientKey := ca.issue(t, "demo-client", x509.ExtKeyUsageClientAuth)
	httpCert, httpKey := ca.issue(t, "demo-https", x509.ExtKeyUsageServerAuth)

	tc, err := natsserver.GenTLSConfig(&natsserver.TLSConfigOpts{CertFile: natsCert, KeyFile: natsKey,
		CaFile: filepath.Join(ca.dir, "ca.pem"), Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true, TLSConfig: tc, TLS: true, TLSVerify: true, TLSTimeout: 5})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats did not start")
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	natsURL := ns.ClientURL()

	// Without TLS, or with TLS but no client certificate, NATS refuses the connection.
	if nc, err := nats.Connect(natsURL, nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("a plain connection to the TLS-only NATS succeeded")
	}
	noClient := &service.Base{NATSTLSCAFile: filepath.Join(ca.dir, "ca.pem")}
	opts, err := service.NATSOptions("demo", noClient)
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(natsURL, append(opts, nats.MaxReconnects(0))...); err == nil {
		nc.Close()
		t.Fatal("a TLS connection without a client certificate was accepted by a server that requires one")
	}

	var cfg demoConfig
	spec := demoSpec(nil, &cfg)
	err = service.LoadConfig(spec, &cfg, map[string]string{
		"DATABASE_URL": testkit.Database(t), "NATS_URL": natsURL, "HTTP_ADDR": "127.0.0.1:0",
		"AUTH_DEV_KEY": "dev-key-for-tests-0123", "AUTH_DEV_MODE": "true", "NATS_STREAM_STORAGE": "memory",
		"TLS_CERT_FILE": httpCert, "TLS_KEY_FILE": httpKey,
		"NATS_TLS_CA_FILE": filepath.Join(ca.dir, "ca.pem"), "NATS_TLS_CERT_FILE": clientCert, "NATS_TLS_KEY_FILE": clientKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() { done <- service.Serve(ctx, spec, &cfg, log, ready) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the service did not start")
	}

	for _, h2 := range []bool{true, false} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool()}, ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		var resp *http.Response
		for range 100 { // readiness: the consumer starts just after the listener
			resp, err = client.Get("https://" + addr + "/readyz")
			if err != nil {
				t.Fatalf("https (h2 %v): %v", h2, err)
			}
			if resp.StatusCode == http.StatusOK {
				break
			}
			resp.Body.Close()
			time.Sleep(100 * time.Millisecond)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("https /readyz (NATS over mutual TLS): %s", resp.Status)
		}
		if want := map[bool]int{true: 2, false: 1}[h2]; resp.ProtoMajor != want {
			t.Errorf("HTTP/%d over TLS, want HTTP/%d", resp.ProtoMajor, want)
		}
	}
	// Plain HTTP is not served, and a client that does not trust the CA is refused.
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/healthz"); err == nil {
		if resp.StatusCode < 400 {
			t.Errorf("plain HTTP answered %s", resp.Status)
		}
		resp.Body.Close()
	}
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get("https://" + addr + "/healthz"); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client without the CA: %v, want a certificate error", err)
	}
}

func TestTLSSettingsAreChecked(t *testing.T) {
	for name, b := range map[string]*service.Base{
		"NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE go together": {NATSTLSCAFile: "ca.pem", NATSTLSCertFile: "c.pem"},
		"needs NATS_TLS_CA_FILE":                               {NATSTLSCertFile: "c.pem", NATSTLSKeyFile: "k.pem"},
		"NATS_TLS_CA_FILE":                                     {NATSTLSCAFile: filepath.Join(t.TempDir(), "missing.pem")},
		"both set":                                             {NATSCreds: "a.creds", NATSNkeySeed: "a.nk"},
		"NATS_NKEY_SEED_FILE":                                  {NATSNkeySeed: filepath.Join(t.TempDir(), "missing.nk")},
	} {
		if _, err := service.NATSOptions("demo", b); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%+v: error %v, want one naming %q", b, err, name)
		}
	}
}
