// Package fieldcrypt encrypts the most sensitive identifiers (date of birth, member id, phone,
// email) in the application before they reach the database, and computes keyed hashes of them
// for exact-match lookups.
//
// A Keyring holds AES-256-GCM keys by key id; the first is the active key, which seals new
// values, and the others still open what they sealed (rotation). A sealed value is the text
//
//	v1:<key id>:<base64 of the 12-byte nonce followed by the ciphertext and tag>
//
// and is bound to where it is stored by the additional data (AAD): a value sealed for
// patients.date_of_birth of row A does not open as row B's, or as another column's, so a
// ciphertext cannot be moved or swapped by someone who can write the table.
//
// Hashes are HMAC-SHA256 under a separate key of the normalised value (see Normalize), with the
// kind of value in the input: equal values of one kind hash equal, and without the key a hash
// cannot be checked against a guessed value (dates of birth and phone numbers are few enough to
// guess all of them).
//
// Configuration: FIELD_KEYS ("kid:base64key,kid2:base64key", the first active; each key 32
// bytes) and FIELD_HASH_KEY (base64, at least 32 bytes). Keys are secrets: never log them, nor
// a plaintext this package handles.
package fieldcrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
)

// Environment variables of the keys.
const (
	EnvKeys    = "FIELD_KEYS"
	EnvHashKey = "FIELD_HASH_KEY"
)

// Version is the prefix of every sealed value this package writes.
const Version = "v1"

// KeySize is the size of an encryption key (AES-256) and the minimum size of the hash key.
const KeySize = 32

// Dev keys: fixed, public, for dev stacks and tests only (DevKeys is what they use when
// FIELD_KEYS is not set and dev mode is on). Never use them for real data.
const (
	DevKeys    = "dev1:ZGV2LW9ubHktZmllbGQta2V5LTAwMDAwMDAwMDAwMDE="
	DevHashKey = "ZGV2LW9ubHktZmllbGQtaGFzaC1rZXktMDAwMDAwMDE="
)

// Errors Open returns (wrapped, with the key id where it helps).
var (
	ErrMalformed  = errors.New("fieldcrypt: not a sealed value")
	ErrUnknownKey = errors.New("fieldcrypt: unknown key id")
	ErrOpen       = errors.New("fieldcrypt: cannot open: wrong key or additional data, or tampered")
)

var kidPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Keyring seals, opens and hashes field values. The zero value is not usable; build one with
// Parse or Load. Safe for concurrent use.
type Keyring struct {
	active  string
	aeads   map[string]cipher.AEAD
	order   []string
	hashKey []byte
}

// Parse builds a keyring from FIELD_KEYS and FIELD_HASH_KEY values. Errors name the variable
// and the rule, never a key.
func Parse(keys, hashKey string) (*Keyring, error) {
	k := &Keyring{aeads: map[string]cipher.AEAD{}}
	if strings.TrimSpace(keys) == "" {
		return nil, fmt.Errorf("%s is not set: give kid:base64key[,kid:base64key...], the first the active key", EnvKeys)
	}
	for i, part := range strings.Split(keys, ",") {
		part = strings.TrimSpace(part)
		kid, b64, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("%s entry %d: want kid:base64key", EnvKeys, i+1)
		}
		if !kidPattern.MatchString(kid) {
			return nil, fmt.Errorf("%s entry %d: key id must be 1-32 letters, digits, '-' or '_'", EnvKeys, i+1)
		}
		if _, dup := k.aeads[kid]; dup {
			return nil, fmt.Errorf("%s: key id %q appears twice", EnvKeys, kid)
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, fmt.Errorf("%s key %q: not standard base64", EnvKeys, kid)
		}
		if len(raw) != KeySize {
			return nil, fmt.Errorf("%s key %q: must be %d bytes (AES-256), got %d", EnvKeys, kid, KeySize, len(raw))
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("%s key %q: %w", EnvKeys, kid, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("%s key %q: %w", EnvKeys, kid, err)
		}
		k.aeads[kid] = aead
		k.order = append(k.order, kid)
	}
	k.active = k.order[0]
	if strings.TrimSpace(hashKey) == "" {
		return nil, fmt.Errorf("%s is not set: give a base64 key of at least %d bytes", EnvHashKey, KeySize)
	}
	hk, err := base64.StdEncoding.DecodeString(strings.TrimSpace(hashKey))
	if err != nil {
		return nil, fmt.Errorf("%s: not standard base64", EnvHashKey)
	}
	if len(hk) < KeySize {
		return nil, fmt.Errorf("%s: must be at least %d bytes, got %d", EnvHashKey, KeySize, len(hk))
	}
	k.hashKey = hk
	return k, nil
}

// Load is Parse with a dev fallback: when both variables are empty and dev is true, the fixed
// dev keys (DevKeys, DevHashKey) are used; otherwise a missing variable is an error naming it.
// One set without the other is always an error.
func Load(keys, hashKey string, dev bool) (*Keyring, error) {
	if dev && strings.TrimSpace(keys) == "" && strings.TrimSpace(hashKey) == "" {
		return Parse(DevKeys, DevHashKey)
	}
	return Parse(keys, hashKey)
}

// Dev is the keyring of the fixed dev keys, for tests.
func Dev() *Keyring {
	k, err := Parse(DevKeys, DevHashKey)
	if err != nil {
		panic(err)
	}
	return k
}

// NewKey returns a new random key in base64, for FIELD_KEYS or FIELD_HASH_KEY.
func NewKey() string {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// ActiveKeyID is the key id new values are sealed with.
func (k *Keyring) ActiveKeyID() string { return k.active }

// AAD is the additional data that binds a value to its place: table, column and row key (for
// example AAD("patients", "date_of_birth", id)).
func AAD(table, column string, row ...string) []byte {
	return []byte(strings.Join(append([]string{table, column}, row...), "\x00"))
}

// Seal encrypts plaintext under the active key, bound to aad.
func (k *Keyring) Seal(plaintext string, aad []byte) (string, error) {
	return k.sealWith(k.active, plaintext, aad)
}

func (k *Keyring) sealWith(kid, plaintext string, aad []byte) (string, error) {
	aead := k.aeads[kid]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("fieldcrypt: nonce: %w", err)
	}
	out := aead.Seal(nonce, nonce, []byte(plaintext), aad)
	return Version + ":" + kid + ":" + base64.StdEncoding.EncodeToString(out), nil
}

// KeyID returns the key id of a sealed value, or an error when it is not one.
func KeyID(sealed string) (string, error) {
	kid, _, err := split(sealed)
	return kid, err
}

func split(sealed string) (kid string, body []byte, err error) {
	v, rest, ok := strings.Cut(sealed, ":")
	if !ok || v != Version {
		return "", nil, ErrMalformed
	}
	kid, b64, ok := strings.Cut(rest, ":")
	if !ok || !kidPattern.MatchString(kid) {
		return "", nil, ErrMalformed
	}
	body, err = base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", nil, ErrMalformed
	}
	return kid, body, nil
}

// Open decrypts a sealed value with the key it names, checking aad.
func (k *Keyring) Open(sealed string, aad []byte) (string, error) {
	kid, body, err := split(sealed)
	if err != nil {
		return "", err
	}
	aead, ok := k.aeads[kid]
	if !ok {
		return "", fmt.Errorf("%w %q (configured: %s; add the retired key to %s to read values it sealed)",
			ErrUnknownKey, kid, strings.Join(k.order, ", "), EnvKeys)
	}
	if len(body) < aead.NonceSize()+aead.Overhead() {
		return "", ErrMalformed
	}
	pt, err := aead.Open(nil, body[:aead.NonceSize()], body[aead.NonceSize():], aad)
	if err != nil {
		return "", fmt.Errorf("%w (key %q)", ErrOpen, kid)
	}
	return string(pt), nil
}

// Reseal re-encrypts a sealed value under the active key when another key sealed it (rotation);
// it returns the value unchanged and false when the active key already did.
func (k *Keyring) Reseal(sealed string, aad []byte) (string, bool, error) {
	kid, err := KeyID(sealed)
	if err != nil {
		return "", false, err
	}
	if kid == k.active {
		if _, err := k.Open(sealed, aad); err != nil {
			return "", false, err
		}
		return sealed, false, nil
	}
	pt, err := k.Open(sealed, aad)
	if err != nil {
		return "", false, err
	}
	out, err := k.Seal(pt, aad)
	return out, err == nil, err
}

// Kind is the kind of a hashed value: it selects the normalisation and is part of the hash.
type Kind string

// The kinds of value Hash knows.
const (
	KindEmail       Kind = "email"         // trimmed, lower-cased
	KindPhone       Kind = "phone"         // E.164: "+" and the digits
	KindDateOfBirth Kind = "date_of_birth" // YYYY-MM-DD
	KindMemberID    Kind = "member_id"     // trimmed, upper-cased, inner spaces and dashes removed
)

// Normalize returns value as Hash sees it: e-mail trimmed and lower-cased; phone as "+" and its
// digits (formatting ignored: "+1 (312) 555-0100" is "+13125550100"); a date of birth as
// YYYY-MM-DD (it must parse as one); a member id trimmed, upper-cased, without spaces and
// dashes. "" when there is nothing to compare (no digits, blank).
func Normalize(kind Kind, value string) (string, error) {
	switch kind {
	case KindEmail:
		return strings.ToLower(strings.TrimFunc(value, unicode.IsSpace)), nil
	case KindPhone:
		d := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, value)
		if d == "" {
			return "", nil
		}
		return "+" + d, nil
	case KindDateOfBirth:
		v := strings.TrimSpace(value)
		if v == "" {
			return "", nil
		}
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return "", fmt.Errorf("fieldcrypt: a date of birth must be YYYY-MM-DD")
		}
		return t.Format(time.DateOnly), nil
	case KindMemberID:
		return strings.Map(func(r rune) rune {
			if unicode.IsSpace(r) || r == '-' {
				return -1
			}
			return unicode.ToUpper(r)
		}, value), nil
	}
	return "", fmt.Errorf("fieldcrypt: unknown kind %q", kind)
}

// Hash is the keyed hash (HMAC-SHA256) of value's normal form, for exact-match lookups; nil
// when the normal form is empty (nothing to match on).
func (k *Keyring) Hash(kind Kind, value string) ([]byte, error) {
	n, err := Normalize(kind, value)
	if err != nil || n == "" {
		return nil, err
	}
	m := hmac.New(sha256.New, k.hashKey)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(n))
	return m.Sum(nil), nil
}
