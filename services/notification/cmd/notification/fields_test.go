package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/pkg/testkit"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/postgres"
)

// Phone numbers and e-mail addresses are encrypted at rest (docs/security.md#field-encryption):
// notification's tables, read as text, hold none of a patient's seeded numbers and addresses
// (contact copy, consent's confidential ones, the address a message went to, the number that
// texted STOP), while messages still reach them and STOP still holds; plaintext rows an older
// binary wrote are sealed and hashed by the pass notification runs at start, and rotation and
// a new hash key keep the opt-outs.
func TestFieldsEncryptedAtRest(t *testing.T) {
	e, sink, fake := dvStart(t, nil)
	ctx := context.Background()
	const phone, confEmail, confPhone, legacyPhone = "+13125550987", "hidden.box@example.org", "+13125550456", "+13125550999"
	p := newPatient(clinicA, "Ines", "ines.fields@example.org")
	e.admit(p)
	e.publish("trellis.intake.patient.contact_recorded.v1", "intake", p.clinic, bus.NewID(), "", "",
		&intakev1.PatientContactRecorded{PatientId: p.id, ClinicId: p.clinic, PreferredName: p.name, Email: p.email,
			Phone: phone, ClinicTimeZone: "America/Chicago", RecordedAt: timestamppb.Now()})
	e.waitRecipient(p.id, "phone_hash IS NOT NULL AND email = '' AND email_enc LIKE 'v1:dev1:%'")
	seq := e.publish("trellis.intake.consent.granted.v1", "intake", p.clinic, bus.NewID(), "", "", &intakev1.ConsentGranted{
		// An id in upper case is the same patient: values are bound to the id as Postgres prints it.
		ConsentId: bus.NewID(), PatientId: strings.ToUpper(p.id), ClinicId: p.clinic, Version: 1, Language: "en",
		Channels:          []intakev1.Channel{intakev1.Channel_CHANNEL_EMAIL, intakev1.Channel_CHANNEL_SMS},
		Scopes:            []intakev1.ConsentScope{intakev1.ConsentScope_CONSENT_SCOPE_TREATMENT},
		ConfidentialEmail: confEmail, ConfidentialPhone: confPhone})
	e.Settled(t, "INTAKE", "notification--consents", seq)

	// A text goes to the confidential number (opened from its sealed copy).
	if ch, _ := e.dvWait(e.dvQueue(p, "sms", 0), "sent"); ch != "sms" {
		t.Fatalf("first message went by %s, want sms", ch)
	}
	if texts := fake.Messages(); len(texts) != 1 || texts[0].To != confPhone {
		t.Fatalf("texts = %+v; want one to the confidential number", texts)
	}
	// The confidential number texts STOP: found by its hash, the next message goes by e-mail
	// to the confidential address.
	if err := fake.Inbound(ctx, dvPublic+"/webhooks/sms/inbound", confPhone, "+15555550100", "STOP"); err != nil {
		t.Fatal(err)
	}
	if !e.dvOptedOut(confPhone) {
		t.Fatal("STOP did not opt the number out")
	}
	if ch, _ := e.dvWait(e.dvQueue(p, "sms", 0), "sent"); ch != "email" {
		t.Fatalf("after STOP the message went by %s, want email", ch)
	}
	testkit.Eventually(t, 5*time.Second, "the email", func() bool { return len(emailsTo(sink, confEmail)) == 1 })

	// An opt-out an older binary kept by number: the pass at start turns it into a hash.
	if _, err := e.Pool.Exec(ctx, `INSERT INTO sms_optouts (phone, opted_out, updated_at) VALUES ($1, true, now())`, legacyPhone); err != nil {
		t.Fatal(err)
	}
	st, err := postgres.EncryptFields(auth.WithSystemScope(ctx), e.Pool, fieldcrypt.Dev(), postgres.EncryptOptions{})
	if err != nil || st.Encrypted["sms_optouts"] != 1 || len(st.Encrypted) != 1 {
		t.Fatalf("encrypt pass = %+v, %v; want the one opt-out", st, err)
	}
	if !e.dvOptedOut(legacyPhone) {
		t.Fatal("the plaintext opt-out was lost")
	}

	noPlaintext(t, e, p.email, phone, confEmail, confPhone, legacyPhone)

	// A new active key and a new hash key: every value re-sealed, every hash recomputed, the
	// opt-outs still found.
	hashKey := fieldcrypt.NewKey()
	k2, err := fieldcrypt.Parse("k2:"+fieldcrypt.NewKey()+","+fieldcrypt.DevKeys, hashKey)
	if err != nil {
		t.Fatal(err)
	}
	st, err = postgres.EncryptFields(auth.WithSystemScope(ctx), e.Pool, k2, postgres.EncryptOptions{Rotate: true, Rehash: true})
	if err != nil || st.Resealed["recipients"] != 1 || st.Resealed["preferences"] != 1 || st.Resealed["messages"] != 2 ||
		st.Resealed["sms_optouts"] != 2 || st.Rehashed["recipients"] != 1 || st.Rehashed["sms_optouts"] != 2 {
		t.Fatalf("rotate and rehash = %+v, %v", st, err)
	}
	for _, number := range []string{confPhone, legacyPhone} {
		h, _ := k2.Hash(fieldcrypt.KindPhone, number)
		if e.Count(t, `SELECT count(*) FROM sms_optouts WHERE phone_hash = $1 AND opted_out AND phone_enc LIKE 'v1:k2:%'`, h) != 1 {
			t.Errorf("an opt-out is not found by the new hash key")
		}
	}
	if n := e.Count(t, `SELECT count(*) FROM recipients WHERE email_enc LIKE 'v1:dev1:%' OR phone_enc LIKE 'v1:dev1:%'`); n != 0 {
		t.Errorf("%d recipients still sealed by the old key", n)
	}
}

// noPlaintext reads every table of notification's schema as text and fails on any of values
// (numbers also without their +, and as hex).
func noPlaintext(t *testing.T, e *env, values ...string) {
	t.Helper()
	ctx := context.Background()
	rows, err := e.Pool.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if rows.Err() != nil || len(tables) < 5 {
		t.Fatalf("tables %v, %v", tables, rows.Err())
	}
	var forms []string
	for _, v := range values {
		forms = append(forms, v, strings.TrimPrefix(v, "+"), hex.EncodeToString([]byte(v)))
	}
	for _, table := range tables {
		var text string
		if err := e.Pool.QueryRow(ctx, `SELECT coalesce(string_agg(t::text, E'\n'), '') FROM `+table+` t`).Scan(&text); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		for _, f := range forms {
			if strings.Contains(text, f) {
				t.Errorf("table %s holds a seeded number or address in plaintext", table)
			}
		}
	}
}

// Outside dev mode notification needs its own keys: `encrypt-fields` without them fails naming
// FIELD_KEYS (serve does too: the same keyring); with them it runs, and it takes only its flags.
func TestEncryptFieldsCommandNeedsKeys(t *testing.T) {
	t.Setenv("DATABASE_URL", testkit.Database(t))
	t.Setenv("LOG_LEVEL", "warn")
	t.Setenv("AUTH_DEV_MODE", "false")
	run := func(args ...string) (int, string) {
		var cfg Config
		var stderr bytes.Buffer
		code := service.Run(context.Background(), newSpec(&cfg), &cfg, args, &bytes.Buffer{}, &stderr)
		return code, stderr.String()
	}
	t.Setenv("FIELD_KEYS", "")
	t.Setenv("FIELD_HASH_KEY", "")
	if code, out := run("encrypt-fields"); code == 0 || !strings.Contains(out, "FIELD_KEYS is not set") {
		t.Fatalf("without keys: exit %d, %s", code, out)
	}
	t.Setenv("FIELD_KEYS", "k1:"+fieldcrypt.NewKey())
	t.Setenv("FIELD_HASH_KEY", fieldcrypt.NewKey())
	if code, out := run("encrypt-fields", "-rotate"); code != 0 {
		t.Fatalf("with keys: exit %d, %s", code, out)
	}
	if code, _ := run("encrypt-fields", "extra"); code == 0 {
		t.Fatal("encrypt-fields took an argument")
	}
}
