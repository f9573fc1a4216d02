package fieldcrypt_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/trellis-health/trellis/pkg/fieldcrypt"
)

func keyring(t *testing.T, keys, hash string) *fieldcrypt.Keyring {
	t.Helper()
	k, err := fieldcrypt.Parse(keys, hash)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRoundTrip(t *testing.T) {
	k := fieldcrypt.Dev()
	aad := fieldcrypt.AAD("patients", "date_of_birth", "row-1")
	for _, v := range []string{"1987-06-05", "", "zq.test@example.org", strings.Repeat("é", 300)} {
		s, err := k.Seal(v, aad)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(s, "v1:dev1:") {
			t.Errorf("sealed value %q does not start with v1:dev1:", s)
		}
		if v != "" && strings.Contains(s, v) {
			t.Errorf("sealed value contains its plaintext")
		}
		got, err := k.Open(s, aad)
		if err != nil || got != v {
			t.Errorf("Open = %q, %v; want %q", got, err, v)
		}
		again, _ := k.Seal(v, aad)
		if again == s {
			t.Error("two seals of one value are equal (nonce reused?)")
		}
	}
}

func TestWrongAADFails(t *testing.T) {
	k := fieldcrypt.Dev()
	s, err := k.Seal("1987-06-05", fieldcrypt.AAD("patients", "date_of_birth", "row-1"))
	if err != nil {
		t.Fatal(err)
	}
	for name, aad := range map[string][]byte{
		"another row":    fieldcrypt.AAD("patients", "date_of_birth", "row-2"),
		"another column": fieldcrypt.AAD("patients", "contact_email", "row-1"),
		"another table":  fieldcrypt.AAD("referrals", "date_of_birth", "row-1"),
		"none":           nil,
	} {
		if _, err := k.Open(s, aad); !errors.Is(err, fieldcrypt.ErrOpen) {
			t.Errorf("%s: Open = %v, want ErrOpen", name, err)
		}
	}
	// A flipped bit in the ciphertext fails too.
	kid, _ := fieldcrypt.KeyID(s)
	body, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "v1:"+kid+":"))
	body[len(body)-1] ^= 1
	tampered := "v1:" + kid + ":" + base64.StdEncoding.EncodeToString(body)
	if _, err := k.Open(tampered, fieldcrypt.AAD("patients", "date_of_birth", "row-1")); !errors.Is(err, fieldcrypt.ErrOpen) {
		t.Errorf("tampered: Open = %v, want ErrOpen", err)
	}
	for _, bad := range []string{"", "1987-06-05", "v2:dev1:AAAA", "v1:dev1:not base64!", "v1:dev1:AAAA", "v1::AAAA"} {
		if _, err := k.Open(bad, nil); !errors.Is(err, fieldcrypt.ErrMalformed) {
			t.Errorf("Open(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

func TestUnknownKeyIDFailsClearly(t *testing.T) {
	old := keyring(t, "k2024:"+fieldcrypt.NewKey(), fieldcrypt.NewKey())
	s, err := old.Seal("+13125550100", nil)
	if err != nil {
		t.Fatal(err)
	}
	k := fieldcrypt.Dev()
	_, err = k.Open(s, nil)
	if !errors.Is(err, fieldcrypt.ErrUnknownKey) {
		t.Fatalf("Open = %v, want ErrUnknownKey", err)
	}
	if msg := err.Error(); !strings.Contains(msg, `"k2024"`) || !strings.Contains(msg, "FIELD_KEYS") {
		t.Errorf("error %q does not name the key id and FIELD_KEYS", msg)
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKey, hash := fieldcrypt.NewKey(), fieldcrypt.NewKey(), fieldcrypt.NewKey()
	before := keyring(t, "k1:"+oldKey, hash)
	aad := fieldcrypt.AAD("coverages", "member_id", "c-1")
	s, err := before.Seal("XYZ123456", aad)
	if err != nil {
		t.Fatal(err)
	}
	after := keyring(t, "k2:"+newKey+", k1:"+oldKey, hash)
	if after.ActiveKeyID() != "k2" {
		t.Fatalf("active key = %s, want the first, k2", after.ActiveKeyID())
	}
	if got, err := after.Open(s, aad); err != nil || got != "XYZ123456" {
		t.Fatalf("the old key no longer opens: %q, %v", got, err)
	}
	n, err := after.Seal("XYZ123456", aad)
	if err != nil {
		t.Fatal(err)
	}
	if kid, _ := fieldcrypt.KeyID(n); kid != "k2" {
		t.Errorf("a new write used key %s, want k2", kid)
	}
	re, changed, err := after.Reseal(s, aad)
	if err != nil || !changed {
		t.Fatalf("Reseal = %v, %v", changed, err)
	}
	if kid, _ := fieldcrypt.KeyID(re); kid != "k2" {
		t.Errorf("resealed with %s, want k2", kid)
	}
	if _, changed, err := after.Reseal(re, aad); err != nil || changed {
		t.Errorf("second Reseal = %v, %v; want unchanged", changed, err)
	}
	// Once every value is resealed the old key can go.
	final := keyring(t, "k2:"+newKey, hash)
	if got, err := final.Open(re, aad); err != nil || got != "XYZ123456" {
		t.Errorf("after retiring k1: %q, %v", got, err)
	}
	if _, err := final.Open(s, aad); !errors.Is(err, fieldcrypt.ErrUnknownKey) {
		t.Errorf("a k1 value after retiring k1: %v, want ErrUnknownKey", err)
	}
	// The hash does not depend on the encryption keys.
	h1, _ := before.Hash(fieldcrypt.KindMemberID, "XYZ123456")
	h2, _ := final.Hash(fieldcrypt.KindMemberID, "XYZ123456")
	if !bytes.Equal(h1, h2) {
		t.Error("rotating the encryption key changed the hash")
	}
}

func TestHashStableNormalisedAndKeyed(t *testing.T) {
	k := fieldcrypt.Dev()
	same := map[fieldcrypt.Kind][]string{
		fieldcrypt.KindEmail:       {"Zq.Test@Example.org", " zq.test@example.org\t"},
		fieldcrypt.KindPhone:       {"+13125550100", "+1 (312) 555-0100", "1-312-555-0100"},
		fieldcrypt.KindDateOfBirth: {"1987-06-05", " 1987-06-05 "},
		fieldcrypt.KindMemberID:    {"xyz-123 456", "XYZ123456"},
	}
	for kind, vs := range same {
		first, err := k.Hash(kind, vs[0])
		if err != nil || len(first) != 32 {
			t.Fatalf("%s: Hash = %x, %v", kind, first, err)
		}
		for _, v := range vs[1:] {
			if h, _ := k.Hash(kind, v); !bytes.Equal(h, first) {
				t.Errorf("%s: %q and %q hash differently", kind, vs[0], v)
			}
		}
		if again, _ := fieldcrypt.Dev().Hash(kind, vs[0]); !bytes.Equal(again, first) {
			t.Errorf("%s: not stable across keyrings with the same key", kind)
		}
		other := keyring(t, fieldcrypt.DevKeys, fieldcrypt.NewKey())
		if h, _ := other.Hash(kind, vs[0]); bytes.Equal(h, first) {
			t.Errorf("%s: another hash key gives the same hash", kind)
		}
	}
	a, _ := k.Hash(fieldcrypt.KindEmail, "a@example.org")
	b, _ := k.Hash(fieldcrypt.KindEmail, "b@example.org")
	if bytes.Equal(a, b) {
		t.Error("different e-mails hash equal")
	}
	p, _ := k.Hash(fieldcrypt.KindPhone, "13125550100")
	m, _ := k.Hash(fieldcrypt.KindMemberID, "+13125550100")
	if bytes.Equal(p, m) {
		t.Error("the kind is not part of the hash")
	}
	if h, err := k.Hash(fieldcrypt.KindPhone, "no digits"); h != nil || err != nil {
		t.Errorf("blank phone: %x, %v; want nil, nil", h, err)
	}
	if _, err := k.Hash(fieldcrypt.KindDateOfBirth, "05/06/1987"); err == nil {
		t.Error("a date of birth that is not YYYY-MM-DD hashed")
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	good, hash := "k1:"+fieldcrypt.NewKey(), fieldcrypt.NewKey()
	short := base64.StdEncoding.EncodeToString(make([]byte, 16))
	for _, c := range []struct{ keys, hash, want string }{
		{"", hash, "FIELD_KEYS is not set"},
		{good, "", "FIELD_HASH_KEY is not set"},
		{"k1", hash, "FIELD_KEYS entry 1"},
		{"k1:" + short, hash, "must be 32 bytes"},
		{"bad id:" + fieldcrypt.NewKey(), hash, "key id"},
		{good + "," + good, hash, "appears twice"},
		{"k1:***", hash, "not standard base64"},
		{good, short, "FIELD_HASH_KEY: must be at least 32 bytes"},
	} {
		_, err := fieldcrypt.Parse(c.keys, c.hash)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%.12q..., ...) = %v, want an error with %q", c.keys, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), strings.TrimPrefix(good, "k1:")) || strings.Contains(err.Error(), hash) {
			t.Errorf("the error shows a key: %v", err)
		}
	}
	if _, err := fieldcrypt.Load("", "", false); err == nil || !strings.Contains(err.Error(), "FIELD_KEYS") {
		t.Errorf("production without keys: %v", err)
	}
	k, err := fieldcrypt.Load("", "", true)
	if err != nil || k.ActiveKeyID() != "dev1" {
		t.Errorf("dev mode without keys: %v", err)
	}
	if _, err := fieldcrypt.Load(good, "", true); err == nil {
		t.Error("dev mode with only FIELD_KEYS set was accepted")
	}
}

func BenchmarkSealOpenHash(b *testing.B) {
	k := fieldcrypt.Dev()
	aad := fieldcrypt.AAD("referrals", "email", "0190a000-0000-7000-8000-000000000001")
	sealed, _ := k.Seal("p.thistlewood@example.net", aad)
	b.Run("seal", func(b *testing.B) {
		for b.Loop() {
			if _, err := k.Seal("p.thistlewood@example.net", aad); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open", func(b *testing.B) {
		for b.Loop() {
			if _, err := k.Open(sealed, aad); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hash", func(b *testing.B) {
		for b.Loop() {
			if _, err := k.Hash(fieldcrypt.KindEmail, "p.thistlewood@example.net"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
