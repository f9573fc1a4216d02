package intake_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/pkg/testkit"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/intake/v1/intakev1connect"
	"github.com/trellis-health/trellis/services/intake"
	"github.com/trellis-health/trellis/services/intake/demo"
	"github.com/trellis-health/trellis/services/intake/migrations"
)

// sealedField is the decrypted value of table.column of row id (sealed with the dev keys the
// tests run with), failing when the plaintext column still holds a value.
func (e *env) sealedField(t *testing.T, table, column, id string) string {
	t.Helper()
	var plain, sealed *string
	if err := e.Pool.QueryRow(context.Background(), `SELECT NULLIF(`+column+`::text, ''), `+column+`_enc FROM `+table+` WHERE id = $1`, id).
		Scan(&plain, &sealed); err != nil {
		t.Fatalf("%s.%s of %s: %v", table, column, id, err)
	}
	if plain != nil {
		t.Errorf("%s.%s of %s holds plaintext", table, column, id)
	}
	if sealed == nil {
		t.Fatalf("%s.%s_enc of %s is NULL", table, column, id)
	}
	v, err := fieldcrypt.Dev().Open(*sealed, fieldcrypt.AAD(table, column, id))
	if err != nil {
		t.Fatalf("%s.%s of %s: %v", table, column, id, err)
	}
	return v
}

func phoneHash(t *testing.T, phone string) []byte {
	t.Helper()
	h, err := fieldcrypt.Dev().Hash(fieldcrypt.KindPhone, phone)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// tableDump is every row of every intake table but outbox and idempotency_keys, as text (a
// bytea column in hex), with the table's name.
func tableDump(t *testing.T, pool *pgxpool.Pool) map[string][]string {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'intake' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	if rows.Err() != nil || len(tables) < 10 {
		t.Fatalf("tables %v: %v", tables, rows.Err())
	}
	out := map[string][]string{}
	for _, tb := range tables {
		// The outbox holds the events, which carry what other services need (docs/events.md);
		// idempotency keys hold the responses they replay: both are out of field encryption's
		// scope (docs/security.md#field-encryption).
		if tb == "outbox" || tb == "idempotency_keys" {
			continue
		}
		rs, err := pool.Query(ctx, `SELECT t::text FROM intake.`+tb+` t`)
		if err != nil {
			t.Fatal(err)
		}
		for rs.Next() {
			var s string
			if err := rs.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out[tb] = append(out[tb], s)
		}
		if rs.Err() != nil {
			t.Fatal(rs.Err())
		}
	}
	return out
}

// plaintextIn names the tables holding any of values, as text or as hex (a bytea).
func plaintextIn(dump map[string][]string, values ...string) []string {
	var found []string
	for tb, rows := range dump {
		for _, r := range rows {
			low := strings.ToLower(r)
			for _, v := range values {
				if strings.Contains(low, strings.ToLower(v)) || strings.Contains(low, hex.EncodeToString([]byte(v))) {
					found = append(found, tb+": "+v)
				}
			}
		}
	}
	slices.Sort(found)
	return slices.Compact(found)
}

// A patient who went through the whole funnel (referral with date of birth, phone and email,
// admission, coverage, consent with confidential contacts): no table of intake holds any of
// those values in plaintext, yet the API returns them all.
func TestNoPlaintextIdentifiersInTables(t *testing.T) {
	e := start(t)
	tok := e.rfTokens(t)
	admin := e.Token(t, "admin-1", []string{"admin"}, []string{auth.AllClinics})
	ctx := context.Background()

	ref := e.rfScreened(t, tok.coordinator, rfReferral("fields-ref-1"))
	if _, err := e.rfAssess(tok.clinician, rfAssessment(ref.GetReferralId(), "fields-assess-1")); err != nil {
		t.Fatal(err)
	}
	adm := validRequest("fields-admit-1")
	adm.GivenName, adm.FamilyName, adm.DateOfBirth, adm.ContactEmail = rfGiven, rfFamily, rfDOB, rfEmail
	adm.ReferralId = ref.GetReferralId()
	resp, err := e.admit(admin, adm)
	if err != nil {
		t.Fatal(err)
	}
	patientID := resp.Msg.GetPatientId()
	cov := validCoverage(patientID, "fields-cov-1")
	if _, err := e.setCoverage(admin, cov); err != nil {
		t.Fatal(err)
	}
	cov.CoverageId, cov.Eligibility, cov.IdempotencyKey = "", intakev1.Eligibility_ELIGIBILITY_ELIGIBLE, "fields-cov-2"
	covs, err := e.listCoverage(admin, patientID)
	if err != nil || len(covs) != 1 {
		t.Fatalf("coverages %v, %v", covs, err)
	}
	cov.CoverageId = covs[0].GetCoverageId()
	if _, err := e.setCoverage(admin, cov); err != nil { // a second version
		t.Fatal(err)
	}
	consent := validConsent(patientID, "fields-consent-1")
	if _, err := e.grant(admin, consent); err != nil {
		t.Fatal(err)
	}
	// A second referral of the same person: flagged by the hashes.
	dup := e.rfCreate(t, tok.coordinator, rfReferral("fields-ref-2"))
	if ds := dup.GetPossibleDuplicates(); len(ds) != 1 || ds[0].GetId() != patientID {
		t.Errorf("possible duplicates %v, want the patient", ds)
	}

	secrets := []string{rfDOB, rfPhone, strings.TrimPrefix(rfPhone, "+"), rfEmail, cov.GetMemberId(),
		consent.GetConfidentialEmail(), consent.GetConfidentialPhone()}
	if found := plaintextIn(tableDump(t, e.Pool), secrets...); len(found) > 0 {
		t.Errorf("plaintext in tables: %v", found)
	}
	// Still the same values through the API.
	got, err := e.client.GetReferral(ctx, rfReq(tok.coordinator, &intakev1.GetReferralRequest{ReferralId: dup.GetReferralId()}))
	if err != nil {
		t.Fatal(err)
	}
	if r := got.Msg.GetReferral(); r.GetDateOfBirth() != rfDOB || r.GetPhone() != rfPhone || r.GetEmail() != rfEmail {
		t.Errorf("referral read back as %s %s %s", r.GetDateOfBirth(), r.GetPhone(), r.GetEmail())
	}
	covs, err = e.listCoverage(admin, patientID)
	if err != nil || len(covs) != 1 || covs[0].GetMemberId() != cov.GetMemberId() {
		t.Errorf("coverage read back as %v, %v", covs, err)
	}
	cs, err := e.listConsents(admin, patientID)
	if err != nil || len(cs) != 1 || cs[0].GetConfidentialEmail() != consent.GetConfidentialEmail() ||
		cs[0].GetConfidentialPhone() != consent.GetConfidentialPhone() {
		t.Errorf("consent read back as %v, %v", cs, err)
	}
	if e.sealedField(t, "patients", "date_of_birth", patientID) != rfDOB {
		t.Error("the patient's sealed date of birth is not the one admitted")
	}
	// A sealed value moved to another row does not open there (it is bound to its row): the
	// read fails rather than return another person's value.
	if _, err := e.Pool.Exec(ctx, `UPDATE referrals SET email_enc = (SELECT email_enc FROM referrals WHERE id = $1) WHERE id = $2`,
		ref.GetReferralId(), dup.GetReferralId()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.GetReferral(ctx, rfReq(tok.coordinator, &intakev1.GetReferralRequest{ReferralId: dup.GetReferralId()})); err == nil {
		t.Error("a referral with another row's sealed email was read")
	}
}

type keysConfig struct {
	service.Base
	FieldKeys    string `env:"FIELD_KEYS"`
	FieldHashKey string `env:"FIELD_HASH_KEY"`
}

// Rows written before field encryption are encrypted when the service starts (and read back
// the same); `intake encrypt-fields -rotate -rehash` moves every value to a new key and every
// hash to a new hash key; production refuses to start without keys.
func TestEncryptFieldsOfExistingRowsAndRotation(t *testing.T) {
	ctx := context.Background()
	url := testkit.Database(t)
	pool, err := pg.Open(ctx, systemURL(t, url), "intake", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE SCHEMA intake`); err != nil {
		t.Fatal(err)
	}
	if err := pg.Migrate(ctx, pool, "intake", "goose_db_version", migrations.FS, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	clinic := demo.RiversideClinicID
	patient, referral, consent, coverage := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO clinics (id, name, time_zone) VALUES ($1, 'Riverside', 'America/Chicago')`, []any{clinic}},
		{`INSERT INTO patients (id, clinic_id, given_name, family_name, date_of_birth, contact_email, phone, created_at)
			VALUES ($1, $2, 'Legacy', 'Person', '1970-01-02', 'Legacy.Person@example.com', '+13125550777', now())`, []any{patient, clinic}},
		{`INSERT INTO referrals (id, clinic_id, source, given_name, family_name, date_of_birth, phone, email, first_contact_at,
				created_by, created_at, updated_at)
			VALUES ($1, $2, 'self', 'Old', 'Referral', '1980-03-04', '+13125550888', 'old.referral@example.com', now(), 'seed', now(), now())`,
			[]any{referral, clinic}},
		{`INSERT INTO consents (id, patient_id, clinic_id, version, scopes, channels, confidential_email, confidential_phone,
				language, effective_from, status, recorded_by, created_at)
			VALUES ($1, $2, $3, 1, '{treatment}', '{sms}', 'secret.legacy@example.com', '+13125550999', 'en', now(), 'active', 'seed', now())`,
			[]any{consent, patient, clinic}},
		{`INSERT INTO coverages (id, patient_id, clinic_id, payer_id, member_id, subscriber_relationship, effective_from,
				eligibility, priority, version, updated_at, updated_by, created_at)
			VALUES ($1, $2, $3, 'medicaid-il', 'LEGACY-MEMBER-1', 'self', '2026-01-01', 'eligible', 'primary', 1, now(), 'seed', now())`,
			[]any{coverage, patient, clinic}},
		{`INSERT INTO coverage_versions (coverage_id, version, patient_id, clinic_id, payer_id, plan, member_id, group_number,
				subscriber_relationship, effective_from, eligibility, priority, changed_at, changed_by)
			VALUES ($1, 1, $2, $3, 'medicaid-il', '', 'LEGACY-MEMBER-1', '', 'self', '2026-01-01', 'eligible', 'primary', now(), 'seed')`,
			[]any{coverage, patient, clinic}},
	} {
		if _, err := pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	secrets := []string{"1970-01-02", "Legacy.Person@example.com", "+13125550777", "1980-03-04", "+13125550888",
		"old.referral@example.com", "secret.legacy@example.com", "+13125550999", "LEGACY-MEMBER-1"}
	if found := plaintextIn(tableDump(t, pool), secrets...); len(found) < len(secrets) {
		t.Fatalf("the legacy rows hold only %v of the %d values", found, len(secrets))
	}

	var cfg testConfig
	s := servicetest.Start(t, intake.Spec(nil), &cfg, map[string]string{"DATABASE_URL": url, "NATS_STREAM_STORAGE": "memory", "LOG_LEVEL": "info"})
	systemScoped(t, s)
	if found := plaintextIn(tableDump(t, pool), secrets...); len(found) > 0 {
		t.Errorf("plaintext left after the service started: %v", found)
	}
	client := intakev1connect.NewIntakeServiceClient(http.DefaultClient, s.URL)
	admin := s.Token(t, "admin-1", []string{"admin"}, []string{auth.AllClinics})
	got, err := client.GetReferral(ctx, rfReq(admin, &intakev1.GetReferralRequest{ReferralId: referral}))
	if err != nil {
		t.Fatal(err)
	}
	if r := got.Msg.GetReferral(); r.GetDateOfBirth() != "1980-03-04" || r.GetPhone() != "+13125550888" || r.GetEmail() != "old.referral@example.com" {
		t.Errorf("legacy referral read back as %s %s %s", r.GetDateOfBirth(), r.GetPhone(), r.GetEmail())
	}
	covs, err := client.ListCoverage(ctx, rfReq(admin, &intakev1.ListCoverageRequest{PatientId: patient}))
	if err != nil || len(covs.Msg.GetCoverages()) != 1 || covs.Msg.GetCoverages()[0].GetMemberId() != "LEGACY-MEMBER-1" {
		t.Errorf("legacy coverage read back as %v, %v", covs, err)
	}
	cs, err := client.ListConsents(ctx, rfReq(admin, &intakev1.ListConsentsRequest{PatientId: patient}))
	if err != nil || len(cs.Msg.GetConsents()) != 1 || cs.Msg.GetConsents()[0].GetConfidentialPhone() != "+13125550999" {
		t.Errorf("legacy consent read back as %v, %v", cs, err)
	}
	// The legacy patient and referral are found by their (now hashed) phone and email, the
	// email in another case.
	dup, err := client.CreateReferral(ctx, rfReq(admin, &intakev1.CreateReferralRequest{
		ClinicId: clinic, Source: intakev1.ReferralSource_REFERRAL_SOURCE_SELF, GivenName: "New", FamilyName: "Caller",
		Phone: "+13125550777", Email: "OLD.REFERRAL@example.com", IdempotencyKey: "legacy-dup-1",
	}))
	if err != nil {
		t.Fatal(err)
	}
	var dupIDs []string
	for _, d := range dup.Msg.GetReferral().GetPossibleDuplicates() {
		dupIDs = append(dupIDs, d.GetId())
	}
	slices.Sort(dupIDs)
	want := []string{patient, referral}
	slices.Sort(want)
	if !slices.Equal(dupIDs, want) {
		t.Errorf("possible duplicates %v, want the legacy patient and referral %v", dupIDs, want)
	}

	// Rotation: a new first key and a new hash key; the dev key stays to open the old values.
	newKey, newHash := fieldcrypt.NewKey(), fieldcrypt.NewKey()
	run := func(keys, hash string, args ...string) (int, string) {
		t.Setenv("DATABASE_URL", url)
		t.Setenv("LOG_LEVEL", "info")
		t.Setenv("AUTH_DEV_MODE", "false")
		t.Setenv("FIELD_KEYS", keys)
		t.Setenv("FIELD_HASH_KEY", hash)
		var kc keysConfig
		var stderr bytes.Buffer
		fk := intake.FieldKeys{Keys: &kc.FieldKeys, HashKey: &kc.FieldHashKey, DevMode: &kc.AuthDevMode}
		code := service.Run(ctx, intake.SpecWithKeys(nil, &fk), &kc, args, io.Discard, &stderr)
		return code, stderr.String()
	}
	if code, out := run("", "", "encrypt-fields"); code == 0 || !strings.Contains(out, "FIELD_KEYS is not set") {
		t.Errorf("without keys and not in dev mode: exit %d, %s", code, out)
	}
	devKeys := strings.TrimPrefix(fieldcrypt.DevKeys, "dev1:")
	code, out := run("k2:"+newKey+",dev1:"+devKeys, newHash, "encrypt-fields", "-rotate", "-rehash")
	if code != 0 {
		t.Fatalf("encrypt-fields -rotate -rehash exited %d: %s", code, out)
	}
	if !strings.Contains(out, `"active_key":"k2"`) || strings.Contains(out, newKey) {
		t.Errorf("log: %s", out)
	}
	if n := s.Count(t, `SELECT count(*) FROM (
			SELECT date_of_birth_enc AS v FROM patients UNION ALL SELECT contact_email_enc FROM patients
			UNION ALL SELECT phone_enc FROM patients UNION ALL SELECT date_of_birth_enc FROM referrals
			UNION ALL SELECT phone_enc FROM referrals UNION ALL SELECT email_enc FROM referrals
			UNION ALL SELECT confidential_email_enc FROM consents UNION ALL SELECT confidential_phone_enc FROM consents
			UNION ALL SELECT member_id_enc FROM coverages UNION ALL SELECT member_id_enc FROM coverage_versions) x
		WHERE v IS NOT NULL AND v NOT LIKE 'v1:k2:%'`); n != 0 {
		t.Errorf("%d values not under the new key", n)
	}
	onlyNew, err := fieldcrypt.Parse("k2:"+newKey, newHash)
	if err != nil {
		t.Fatal(err)
	}
	var sealed string
	var phoneH []byte
	if err := pool.QueryRow(ctx, `SELECT member_id_enc FROM coverage_versions WHERE coverage_id = $1 AND version = 1`, coverage).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if v, err := onlyNew.Open(sealed, fieldcrypt.AAD("coverage_versions", "member_id", coverage, "1")); err != nil || v != "LEGACY-MEMBER-1" {
		t.Errorf("the old key retired, a member id opens as %q, %v", v, err)
	}
	if err := pool.QueryRow(ctx, `SELECT phone_hash FROM patients WHERE id = $1`, patient).Scan(&phoneH); err != nil {
		t.Fatal(err)
	}
	if want, _ := onlyNew.Hash(fieldcrypt.KindPhone, "+13125550777"); !bytes.Equal(phoneH, want) {
		t.Error("the phone hash is not the new hash key's")
	}
	// A second run has nothing left to do.
	if code, out := run("k2:"+newKey+",dev1:"+devKeys, newHash, "encrypt-fields", "-rotate"); code != 0 ||
		!strings.Contains(out, `"encrypted":0,"resealed":0`) {
		t.Errorf("second run: exit %d, %s", code, out)
	}
}
