package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/pkg/testkit"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"

	"github.com/trellis-health/trellis/services/billing/internal/adapters/postgres"
)

// Dates of birth and member ids are encrypted at rest (docs/security.md#field-encryption):
// billing's tables, read as text, hold none of the seeded values, while the 837 billing writes
// from them carries them; rows an older binary wrote in plaintext are encrypted by the pass
// billing runs at start (and `billing encrypt-fields`), and -rotate moves them to a new key.
func TestFieldsEncryptedAtRest(t *testing.T) {
	e := startClaims(t)
	ctx := context.Background()
	const dob, member, legacyMember = "1971-09-17", "ZQX98765432", "LEGACY55501"
	p1, p2 := bus.NewID(), bus.NewID()

	// p1: identity and coverage as intake announces them.
	idEnv := servicetest.Envelope(t, &intakev1.PatientBillingIdentityRecorded{PatientId: p1, ClinicId: clinicA,
		GivenName: "Pat", FamilyName: "Doe", DateOfBirth: dob, RecordedAt: timestamppb.Now()}, clinicA, "intake")
	e.Settled(t, "INTAKE", "billing--identity", e.Publish(t, subjectIdentity, idEnv.GetEventId(), idEnv, ""))
	cov1 := bus.NewID()
	// An id in upper case is the same row: the value is bound to the id as Postgres prints it.
	covEnv := servicetest.Envelope(t, &intakev1.CoverageChanged{Coverage: &intakev1.Coverage{CoverageId: strings.ToUpper(cov1), PatientId: p1,
		ClinicId: clinicA, PayerId: "medicaid-il", MemberId: member, EffectiveFrom: "2025-01-01",
		Priority: intakev1.CoveragePriority_COVERAGE_PRIORITY_PRIMARY, Eligibility: intakev1.Eligibility_ELIGIBILITY_ELIGIBLE,
		UpdatedAt: timestamppb.Now()}}, clinicA, "intake")
	e.Settled(t, "INTAKE", coverageConsumer, e.Publish(t, subjectCoverageChanged, covEnv.GetEventId(), covEnv, ""))
	if _, err := e.claims.SetPatientDiagnoses(ctx, req(e.admin, &billingv1.SetPatientDiagnosesRequest{PatientId: p1,
		ClinicId: clinicA, Codes: []string{"F1020"}})); err != nil {
		t.Fatal(err)
	}
	e.exec(t, `INSERT INTO consents (id, patient_id, clinic_id, version, payment, effective_from, source_event_id)
		VALUES ($1, $2, $3, 1, true, now() - interval '1 day', $4)`, bus.NewID(), p1, clinicA, bus.NewID())
	e.readyChargeFixture(t, p1, "medicaid-il", cov1, 3, "")
	if n := e.Count(t, `SELECT count(*) FROM coverages WHERE id = $1 AND member_id = '' AND member_id_enc LIKE 'v1:dev1:%'`, cov1); n != 1 {
		t.Fatal("the coverage's member id is not sealed")
	}
	if n := e.Count(t, `SELECT count(*) FROM patient_identities WHERE patient_id = $1 AND date_of_birth IS NULL AND date_of_birth_enc LIKE 'v1:dev1:%'`, p1); n != 1 {
		t.Fatal("the identity's date of birth is not sealed")
	}

	// p2: a coverage and an identity written in plaintext (an older binary): the pass billing
	// runs at start encrypts them, once.
	e.exec(t, `INSERT INTO coverages (id, patient_id, clinic_id, payer_id, member_id, effective_from, source_updated_at, source_event_id)
		VALUES ($1, $2, $3, 'medicaid-il', $4, current_date - 300, now(), $5)`, bus.NewID(), p2, clinicA, legacyMember, bus.NewID())
	e.exec(t, `INSERT INTO patient_identities (patient_id, given_name, family_name, date_of_birth, source_event_id, recorded_at)
		VALUES ($1, 'Sam', 'Roe', '1966-02-03', $2, now())`, p2, bus.NewID())
	remID, file835 := bus.NewID(), []byte("ISA*00~NM1*QC*1*ROE*SAM****MI*"+legacyMember+"~\xff")
	e.exec(t, `INSERT INTO remittances (id, sha256, content, summary, total_paid_cents, posted_at)
		VALUES ($1, 'legacy', $2, '{}', 0, now())`, remID, file835)
	st, err := postgres.EncryptFields(auth.WithSystemScope(ctx), e.Pool, fieldcrypt.Dev(), postgres.EncryptOptions{})
	if err != nil || st.Encrypted["coverages"] != 1 || st.Encrypted["patient_identities"] != 1 || st.Encrypted["remittances"] != 1 {
		t.Fatalf("encrypt pass = %+v, %v; want one coverage, one identity, one remittance", st, err)
	}
	if st, err := postgres.EncryptFields(auth.WithSystemScope(ctx), e.Pool, fieldcrypt.Dev(), postgres.EncryptOptions{}); err != nil || len(st.Encrypted) != 0 {
		t.Fatalf("second pass = %+v, %v; want nothing to do", st, err)
	}
	var sealed []byte
	if err := e.Pool.QueryRow(ctx, `SELECT content FROM remittances WHERE id = $1`, remID).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if got, err := fieldcrypt.Dev().Open(string(sealed), fieldcrypt.AAD("remittances", "content", remID)); err != nil || got != string(file835) {
		t.Fatalf("sealed 835 opens to %q, %v; want the file as uploaded, byte for byte", got, err)
	}

	// The 837 carries the decrypted member id and date of birth.
	run := e.run(t, e.admin)
	if len(run.GetFiles()) != 1 {
		t.Fatalf("run = %v", run)
	}
	segs, _ := e.parsed(t, run.GetFiles()[0].GetFileId())
	var sawMember, sawDOB bool
	for _, s := range segs {
		line := strings.Join(s.Elements, "*")
		sawMember = sawMember || (s.ID == "NM1" && strings.Contains(line, member))
		sawDOB = sawDOB || (s.ID == "DMG" && strings.Contains(line, "19710917"))
	}
	if !sawMember || !sawDOB {
		t.Fatalf("837 member id %v, date of birth %v: want both", sawMember, sawDOB)
	}

	if n := e.Count(t, `SELECT count(*) FROM claim_files WHERE content NOT LIKE 'v1:dev1:%'`); n != 0 {
		t.Errorf("%d claim files not sealed", n)
	}

	// Every table read as text: no seeded value.
	noPlaintext(t, e, dob, "1966-02-03", member, legacyMember)

	// Rotation: a new active key re-seals every value; the old key can then go.
	k2, err := fieldcrypt.Parse("k2:"+fieldcrypt.NewKey()+","+fieldcrypt.DevKeys, fieldcrypt.DevHashKey)
	if err != nil {
		t.Fatal(err)
	}
	st, err = postgres.EncryptFields(auth.WithSystemScope(ctx), e.Pool, k2, postgres.EncryptOptions{Rotate: true})
	if err != nil || st.Resealed["coverages"] < 2 || st.Resealed["patient_identities"] != 2 ||
		st.Resealed["claim_files"] != 1 || st.Resealed["remittances"] != 1 {
		t.Fatalf("rotate = %+v, %v", st, err)
	}
	if n := e.Count(t, `SELECT count(*) FROM coverages WHERE member_id_enc LIKE 'v1:dev1:%'`); n != 0 {
		t.Errorf("%d member ids still sealed by the old key", n)
	}
	if st, err := postgres.EncryptFields(auth.WithSystemScope(ctx), e.Pool, k2, postgres.EncryptOptions{Rotate: true}); err != nil || len(st.Resealed) != 0 {
		t.Errorf("second rotation = %+v, %v; want nothing left", st, err)
	}
}

// noPlaintext reads every table of billing's schema as text and fails on any of values.
func noPlaintext(t *testing.T, e *claimsEnv, values ...string) {
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
	if rows.Err() != nil || len(tables) < 10 {
		t.Fatalf("tables %v, %v", tables, rows.Err())
	}
	for _, table := range tables {
		var text string
		if err := e.Pool.QueryRow(ctx, `SELECT coalesce(string_agg(t::text, E'\n'), '') FROM `+table+` t`).Scan(&text); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		for _, v := range values {
			if strings.Contains(text, v) || strings.Contains(text, strings.ReplaceAll(v, "-", "")) {
				t.Errorf("table %s holds a seeded value in plaintext", table)
			}
		}
	}
}

// Outside dev mode billing needs its own keys: `encrypt-fields` without them fails naming
// FIELD_KEYS (serve does too: the same keyring); with them it runs, and it takes only its flags.
func TestEncryptFieldsCommandNeedsKeys(t *testing.T) {
	t.Setenv("DATABASE_URL", testkit.Database(t))
	t.Setenv("LOG_LEVEL", "warn")
	t.Setenv("AUTH_DEV_MODE", "false")
	run := func(args ...string) (int, string) {
		var cfg Config
		var stderr bytes.Buffer
		code := service.Run(context.Background(), spec(&cfg), &cfg, args, &bytes.Buffer{}, &stderr)
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
