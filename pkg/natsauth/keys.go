package natsauth

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// AdminUser is the name of the operators' user (the dev stack and its tests, the `nats` CLI):
// it has no restrictions. Services never use it.
const AdminUser = "admin"

// KeyEnv is the environment variable a NATS server's configuration reads the service's
// public nkey from: TRELLIS_NKEY_BILLING.
func KeyEnv(service string) string { return "TRELLIS_NKEY_" + strings.ToUpper(service) }

// AdminPasswordEnv is the environment variable with the admin user's password.
const AdminPasswordEnv = "NATS_ADMIN_PASSWORD"

// NewUserKey creates an nkey user pair: the public key (U...) the server is configured with,
// and the seed (SU...) the service keeps secret.
func NewUserKey() (public string, seed []byte, err error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", nil, err
	}
	if public, err = kp.PublicKey(); err != nil {
		return "", nil, err
	}
	seed, err = kp.Seed()
	return public, seed, err
}

// WriteSeeds creates a new key for every declared service, writes each seed to
// dir/<service>.nk (mode 0600, the file NATS_NKEY_SEED_FILE names) and returns the public keys
// by service.
func WriteSeeds(dir string) (map[string]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	pubs := map[string]string{}
	for _, s := range Services {
		pub, seed, err := NewUserKey()
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(SeedFile(dir, s.Name), append(seed, '\n'), 0o600); err != nil {
			return nil, fmt.Errorf("natsauth: write seed of %s: %w", s.Name, err)
		}
		pubs[s.Name] = pub
	}
	return pubs, nil
}

// SeedFile is where WriteSeeds puts a service's seed.
func SeedFile(dir, service string) string { return filepath.Join(dir, service+".nk") }

// ServerPermissions converts p to the embedded server's type.
func (p Permissions) ServerPermissions() *natsserver.Permissions {
	return &natsserver.Permissions{
		Publish:   &natsserver.SubjectPermission{Allow: append([]string(nil), p.Publish...)},
		Subscribe: &natsserver.SubjectPermission{Allow: append([]string(nil), p.Subscribe...)},
	}
}

// ConfigureServer sets the embedded server's users: one nkey user per declared service with
// its permissions (pubs: public keys by service; every declared service needs one), and the
// unrestricted admin user with adminPassword.
func ConfigureServer(o *natsserver.Options, pubs map[string]string, adminPassword string) error {
	if len(adminPassword) < 16 {
		return fmt.Errorf("natsauth: the admin password must be at least 16 characters")
	}
	o.Nkeys = nil
	for _, s := range Services {
		pub, ok := pubs[s.Name]
		if !ok || !nkeys.IsValidPublicUserKey(pub) {
			return fmt.Errorf("natsauth: no valid public user nkey for %s", s.Name)
		}
		o.Nkeys = append(o.Nkeys, &natsserver.NkeyUser{Nkey: pub, Permissions: s.Permissions().ServerPermissions()})
	}
	o.Users = []*natsserver.User{{Username: AdminUser, Password: adminPassword}}
	return nil
}
