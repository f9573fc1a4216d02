package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"

	"github.com/trellis-health/trellis/services/billing/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/billing/internal/x12"
)

const (
	subjectIdentity       = "trellis.intake.patient.billing_identity_recorded.v1"
	subjectClaimSubmitted = "trellis.billing.claim.submitted.v1"
	subjectClaimFile      = "trellis.billing.claim_file.created.v1"
	subjectChargeStatus   = "trellis.billing.charge.status_changed.v1"
)

type claimsEnv struct {
	*servicetest.Service
	config billingv1connect.BillingServiceClient
	claims billingv1connect.ClaimsServiceClient
	admin  string
	// Contract ids of clinic A: Medicaid per diem (837I), Acme per service (837P).
	medicaidContract, acmeContract string
}

func riverside(clinic string) *billingv1.BillingProvider {
	return &billingv1.BillingProvider{ClinicId: clinic, Name: "Riverside Health Center", Npi: "1990000014", TaxId: "990000001",
		TaxonomyCode: "261QR0405X", AddressLine: "100 River Rd", City: "Springfield", State: "IL", PostalCode: "62701"}
}

// startClaims runs billing with clinic A configured: Medicaid (per diem, 837I) and Acme
// (per service, 837P) contracts effective since 200 days ago, and a billing provider.
func startClaims(t *testing.T) *claimsEnv {
	s := start(t)
	e := &claimsEnv{Service: s, config: billingv1connect.NewBillingServiceClient(http.DefaultClient, s.URL),
		claims: billingv1connect.NewClaimsServiceClient(http.DefaultClient, s.URL)}
	e.admin = s.Token(t, "admin-1", []string{"admin"}, []string{auth.AllClinics})
	ctx := context.Background()
	acme := &billingv1.Payer{PayerId: "acme-health", Name: "Acme Health", Kind: billingv1.PayerKind_PAYER_KIND_COMMERCIAL, X12PayerId: "ACME1"}
	for _, p := range []*billingv1.Payer{medicaid(), acme} {
		if _, err := e.config.UpsertPayer(ctx, req(e.admin, &billingv1.UpsertPayerRequest{Payer: p})); err != nil {
			t.Fatal(err)
		}
	}
	from := time.Now().UTC().AddDate(0, 0, -200).Format(time.DateOnly)
	pd := perDiemContract(clinicA)
	pd.EffectiveFrom, pd.EffectiveTo = from, ""
	ps := &billingv1.Contract{PayerId: "acme-health", ClinicId: clinicA, BillingMode: billingv1.BillingMode_BILLING_MODE_PER_SERVICE,
		ClaimType: billingv1.ClaimType_CLAIM_TYPE_PROFESSIONAL, EffectiveFrom: from,
		Codes: []*billingv1.ServiceCode{{Service: billingv1.BillableService_BILLABLE_SERVICE_GROUP, ProcedureCode: "90853", RateCents: 8500}}}
	for i, c := range []*billingv1.Contract{pd, ps} {
		resp, err := e.config.UpsertContract(ctx, req(e.admin, &billingv1.UpsertContractRequest{Contract: c}))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			e.medicaidContract = resp.Msg.GetContract().GetContractId()
		} else {
			e.acmeContract = resp.Msg.GetContract().GetContractId()
		}
	}
	if _, err := e.claims.SetBillingProvider(ctx, req(e.admin, &billingv1.SetBillingProviderRequest{Provider: riverside(clinicA)})); err != nil {
		t.Fatal(err)
	}
	// The fixture charges the claims tests insert have no attendance behind them: a contract
	// change applied after them would void them.
	contractsSettled(t, s, 2)
	return e
}

// identity publishes intake's PatientBillingIdentityRecorded and waits for billing to take it.
func (e *claimsEnv) identity(t *testing.T, patient, given string, recordedAt time.Time) {
	t.Helper()
	env := servicetest.Envelope(t, &intakev1.PatientBillingIdentityRecorded{PatientId: patient, ClinicId: clinicA,
		GivenName: given, FamilyName: "Doe", DateOfBirth: "1980-04-02", RecordedAt: timestamppb.New(recordedAt)}, clinicA, "intake")
	seq := e.Publish(t, subjectIdentity, env.GetEventId(), env, "")
	e.Settled(t, "INTAKE", "billing--identity", seq)
}

// claimable gives a patient of clinic A what a claim needs besides the charge: an identity
// (through the event), diagnoses (through the API), and billing's copies of a coverage and,
// when consent is true, a payment consent (test fixture SQL: rows as the charges area's
// consumers store them).
func (e *claimsEnv) claimable(t *testing.T, patient, payer string, consent bool) (coverageID string) {
	t.Helper()
	ctx := context.Background()
	e.identity(t, patient, "Pat", time.Now())
	if _, err := e.claims.SetPatientDiagnoses(ctx, req(e.admin, &billingv1.SetPatientDiagnosesRequest{PatientId: patient,
		ClinicId: clinicA, Codes: []string{"F1020", "Z630"}})); err != nil {
		t.Fatal(err)
	}
	coverageID = bus.NewID()
	e.exec(t, `INSERT INTO coverages (id, patient_id, clinic_id, payer_id, member_id, group_number, effective_from,
		source_updated_at, source_event_id) VALUES ($1, $2, $3, $4, $5, 'GRP1', current_date - 300, now(), $6)`,
		coverageID, patient, clinicA, payer, "MEM"+patient[len(patient)-6:], bus.NewID())
	e.sealFixtures(t)
	if consent {
		e.exec(t, `INSERT INTO consents (id, patient_id, clinic_id, version, payment, effective_from, source_event_id)
			VALUES ($1, $2, $3, 1, true, now() - interval '1 day', $4)`, bus.NewID(), patient, clinicA, bus.NewID())
	}
	return coverageID
}

// readyChargeFixture inserts a ready charge as the charges area would (test fixture SQL, so
// the claims tests do not depend on how attendance becomes charges). daysAgo is its service
// date; replaces names the charge it replaces ("" for none).
func (e *claimsEnv) readyChargeFixture(t *testing.T, patient, payer, coverageID string, daysAgo int, replaces string) string {
	t.Helper()
	id := bus.NewID()
	contract, service, code, rev, cents := e.medicaidContract, "per_diem", "H0015", "0906", int64(25000)
	if payer == "acme-health" {
		contract, service, code, rev, cents = e.acmeContract, "group", "90853", "", 8500
	}
	var rep any
	if replaces != "" {
		rep = replaces
	}
	e.exec(t, `INSERT INTO charges (id, billable_unit, patient_id, clinic_id, enrollment_id, payer_id, contract_id, coverage_id,
		service_date, service, procedure_code, revenue_code, units, rate_cents, amount_cents, status, source_event_ids,
		appointment_ids, replaces_charge_id)
		VALUES ($1, $14, $2, $3, $4, $5, $6, $7, current_date - $8::int, $9, $10, $11, 1, $12, $12, 'ready',
		ARRAY[$4::uuid], ARRAY[$4::uuid], $13)`,
		id, patient, clinicA, bus.NewID(), payer, contract, coverageID, daysAgo, service, code, rev, cents, rep, "fixture:"+id)
	return id
}

func (e *claimsEnv) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := e.Pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// sealFixtures encrypts the member ids fixture SQL wrote in plaintext, as billing does at
// start for rows an older binary wrote (the claims read the encrypted column).
func (e *claimsEnv) sealFixtures(t *testing.T) {
	t.Helper()
	if _, err := postgres.EncryptFields(auth.WithSystemScope(context.Background()), e.Pool, fieldcrypt.Dev(), postgres.EncryptOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (e *claimsEnv) run(t *testing.T, token string) *billingv1.CreateClaimFilesResponse {
	t.Helper()
	resp, err := e.claims.CreateClaimFiles(context.Background(), req(token, &billingv1.CreateClaimFilesRequest{ClinicId: clinicA}))
	if err != nil {
		t.Fatal(err)
	}
	return resp.Msg
}

// parsed downloads a file and parses it back with the x12 reader.
func (e *claimsEnv) parsed(t *testing.T, fileID string) ([]x12.Segment, *billingv1.DownloadClaimFileResponse) {
	t.Helper()
	resp, err := e.claims.DownloadClaimFile(context.Background(), req(e.admin, &billingv1.DownloadClaimFileRequest{FileId: fileID}))
	if err != nil {
		t.Fatal(err)
	}
	segs, _, err := x12.Parse(resp.Msg.GetContent())
	if err != nil {
		t.Fatalf("parse our own 837: %v", err)
	}
	return segs, resp.Msg
}

func segmentsWith(segs []x12.Segment, id string) []x12.Segment {
	var out []x12.Segment
	for _, s := range segs {
		if s.ID == id {
			out = append(out, s)
		}
	}
	return out
}

func element(s x12.Segment, n int) string {
	if n-1 < len(s.Elements) {
		return s.Elements[n-1]
	}
	return ""
}

// checkEnvelope checks the counts and control numbers an 837 must carry.
func checkEnvelope(t *testing.T, segs []x12.Segment, isa int64) {
	t.Helper()
	st, se := -1, -1
	for i, s := range segs {
		switch s.ID {
		case "ST":
			st = i
		case "SE":
			se = i
		}
	}
	if st < 0 || se < st || element(segs[se], 1) != strconv.Itoa(se-st+1) {
		t.Errorf("SE01 = %q, want %d segments", element(segs[se], 1), se-st+1)
	}
	if got := strings.TrimLeft(element(segs[0], 13), "0"); segs[0].ID != "ISA" || got != strconv.FormatInt(isa, 10) {
		t.Errorf("ISA13 = %q, want %d", element(segs[0], 13), isa)
	}
	if iea := segmentsWith(segs, "IEA"); len(iea) != 1 || element(iea[0], 2) != element(segs[0], 13) {
		t.Errorf("IEA = %v", iea)
	}
	refs := map[string]bool{}
	for _, r := range segmentsWith(segs, "REF") {
		if element(r, 1) == "6R" {
			if refs[element(r, 2)] {
				t.Errorf("line control number %q twice", element(r, 2))
			}
			refs[element(r, 2)] = true
		}
	}
	for _, c := range segmentsWith(segs, "CLM") {
		if n := element(c, 1); len(n) == 0 || len(n) > 20 {
			t.Errorf("CLM01 %q", n)
		}
	}
	if len(refs) != len(segmentsWith(segs, "LX")) {
		t.Errorf("%d REF*6R for %d lines", len(refs), len(segmentsWith(segs, "LX")))
	}
}

func TestClaimRun(t *testing.T) {
	e := startClaims(t)
	ctx := context.Background()
	p1, p2, p3, p4 := bus.NewID(), bus.NewID(), bus.NewID(), bus.NewID()
	cov1 := e.claimable(t, p1, "medicaid-il", true)
	cov2 := e.claimable(t, p2, "medicaid-il", true)
	cov3 := e.claimable(t, p3, "acme-health", true)
	cov4 := e.claimable(t, p4, "medicaid-il", false) // no payment consent
	c1a := e.readyChargeFixture(t, p1, "medicaid-il", cov1, 10, "")
	c1b := e.readyChargeFixture(t, p1, "medicaid-il", cov1, 9, "")
	c2 := e.readyChargeFixture(t, p2, "medicaid-il", cov2, 9, "")
	c3 := e.readyChargeFixture(t, p3, "acme-health", cov3, 8, "")
	c4 := e.readyChargeFixture(t, p4, "medicaid-il", cov4, 8, "")

	// Roles: operators and clinicians do not run claims.
	_, err := e.claims.CreateClaimFiles(ctx, req(e.Token(t, "op", []string{"operator"}, []string{clinicA}),
		&billingv1.CreateClaimFilesRequest{ClinicId: clinicA}))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = e.claims.CreateClaimFiles(ctx, req(e.Token(t, "b", []string{"billing"}, []string{clinicB}),
		&billingv1.CreateClaimFilesRequest{ClinicId: clinicA}))
	wantCode(t, err, connect.CodePermissionDenied)

	billingA := e.Token(t, "biller", []string{"billing"}, []string{clinicA})
	first := e.run(t, billingA)
	if len(first.GetHeld()) != 1 || first.GetHeld()[0].GetReason() != "consent" || first.GetHeld()[0].GetCharges() != 1 {
		t.Fatalf("held = %v, want 1 for consent", first.GetHeld())
	}
	if len(first.GetFiles()) != 2 {
		t.Fatalf("files = %v, want one per payer", first.GetFiles())
	}
	acme, mcd := first.GetFiles()[0], first.GetFiles()[1]
	if acme.GetPayerId() != "acme-health" || acme.GetClaimType() != billingv1.ClaimType_CLAIM_TYPE_PROFESSIONAL ||
		acme.GetClaimCount() != 1 || acme.GetLineCount() != 1 || acme.GetTotalCents() != 8500 {
		t.Errorf("acme file = %v", acme)
	}
	if mcd.GetPayerId() != "medicaid-il" || mcd.GetClaimType() != billingv1.ClaimType_CLAIM_TYPE_INSTITUTIONAL ||
		mcd.GetClaimCount() != 2 || mcd.GetLineCount() != 3 || mcd.GetTotalCents() != 75000 {
		t.Errorf("medicaid file = %v", mcd)
	}

	// The Medicaid file parses back: envelope counts, two claims (p1 with two lines), MC.
	segs, dl := e.parsed(t, mcd.GetFileId())
	checkEnvelope(t, segs, mcd.GetInterchangeControlNumber())
	if want := fmt.Sprintf("837I-%09d.x12", mcd.GetInterchangeControlNumber()); dl.GetFileName() != want {
		t.Errorf("file name %q, want %q", dl.GetFileName(), want)
	}
	clms := segmentsWith(segs, "CLM")
	if len(clms) != 2 || len(segmentsWith(segs, "LX")) != 3 {
		t.Fatalf("CLM %d, LX %d", len(clms), len(segmentsWith(segs, "LX")))
	}
	for _, sbr := range segmentsWith(segs, "SBR") {
		if element(sbr, 9) != "MC" {
			t.Errorf("SBR09 = %q, want MC", element(sbr, 9))
		}
	}
	if isa := segs[0]; strings.TrimSpace(element(isa, 6)) != "TRELLIS" || element(isa, 15) != "T" ||
		strings.TrimSpace(element(isa, 8)) != "ILMCD" {
		t.Errorf("ISA sender %q receiver %q usage %q", element(isa, 6), element(isa, 8), element(isa, 15))
	}
	acmeSegs, _ := e.parsed(t, acme.GetFileId())
	checkEnvelope(t, acmeSegs, acme.GetInterchangeControlNumber())
	if sbr := segmentsWith(acmeSegs, "SBR"); len(sbr) != 1 || element(sbr[0], 9) != "CI" {
		t.Errorf("acme SBR = %v", sbr)
	}

	// Charges: submitted on their claims; p4's held for consent.
	for _, id := range []string{c1a, c1b, c2, c3} {
		if n := e.Count(t, `SELECT count(*) FROM charges WHERE id = $1 AND status = 'submitted' AND claim_id IS NOT NULL`, id); n != 1 {
			t.Errorf("charge %s not submitted", id)
		}
	}
	if n := e.Count(t, `SELECT count(*) FROM charges WHERE id = $1 AND status = 'held' AND hold_reason = 'consent' AND claim_id IS NULL`, c4); n != 1 {
		t.Error("p4's charge is not held for consent")
	}
	if n := e.Count(t, `SELECT count(*) FROM claims WHERE patient_id = $1`, p4); n != 0 {
		t.Error("a claim went out without consent")
	}
	if n := e.Count(t, `SELECT count(DISTINCT claim_id) FROM charges WHERE id = ANY($1::uuid[])`, []string{c1a, c1b}); n != 1 {
		t.Errorf("p1's two days are on %d claims, want 1", n)
	}

	// Disclosures: one per claim, to the payer, for payment, under the consent, without codes.
	ds, err := e.claims.ListDisclosures(ctx, req(billingA, &billingv1.ListDisclosuresRequest{PatientId: p1, ClinicId: clinicA}))
	if err != nil {
		t.Fatal(err)
	}
	if got := ds.Msg.GetDisclosures(); len(got) != 1 || got[0].GetPurpose() != "payment" || got[0].GetConsentId() == "" ||
		!strings.HasPrefix(got[0].GetDescription(), "claim for services on ") || strings.Contains(got[0].GetDescription(), "H0015") ||
		strings.Count(got[0].GetDescription(), "-") != 4 || !strings.Contains(got[0].GetRecipient(), "Illinois Medicaid") {
		t.Fatalf("disclosures = %v", got)
	}
	if n := e.Count(t, `SELECT count(*) FROM disclosures`); n != 3 {
		t.Errorf("disclosures = %d, want 3", n)
	}
	_, err = e.claims.ListDisclosures(ctx, req(e.Token(t, "op", []string{"operator"}, []string{clinicA}),
		&billingv1.ListDisclosuresRequest{PatientId: p1, ClinicId: clinicA}))
	wantCode(t, err, connect.CodePermissionDenied)

	// Events: 3 ClaimSubmitted, 2 ClaimFileCreated, 4 charges READY->SUBMITTED + 1 READY->HELD.
	e.Relayed(t)
	for subject, want := range map[string]uint64{subjectClaimSubmitted: 3, subjectClaimFile: 2} {
		if n := e.StreamCount(t, "BILLING", subject); n != want {
			t.Errorf("%s: %d messages, want %d", subject, n, want)
		}
	}
	if n := e.Count(t, `SELECT count(*) FROM outbox WHERE subject = $1`, subjectChargeStatus); n < 5 {
		t.Errorf("ChargeStatusChanged in the outbox = %d, want at least 5", n)
	}

	// A second run finds nothing to claim.
	second := e.run(t, billingA)
	if len(second.GetFiles()) != 0 || len(second.GetHeld()) != 0 {
		t.Fatalf("second run = %v", second)
	}
	if n := e.Count(t, `SELECT count(*) FROM claim_lines GROUP BY charge_id ORDER BY 1 DESC LIMIT 1`); n != 1 {
		t.Fatalf("a charge is on %d claim lines", n)
	}

	// A correction: p1's first day is voided and replaced. The original claim is replaced by a
	// claim of frequency 7 with every line it should now have (the unchanged second day and
	// the replacing charge), naming the original by the payer's claim number; a new day goes on
	// an original claim. The new file's ISA13 is new.
	var origClaim, origControl string
	if err := e.Pool.QueryRow(ctx, `SELECT c.id::text, c.control_number FROM claims c JOIN charges ch ON ch.claim_id = c.id WHERE ch.id = $1`,
		c1a).Scan(&origClaim, &origControl); err != nil {
		t.Fatal(err)
	}
	e.exec(t, `UPDATE claims SET payer_claim_number = 'PCN-0042' WHERE id = $1`, origClaim)
	e.exec(t, `UPDATE charges SET status = 'void' WHERE id = $1`, c1a)
	rep := e.readyChargeFixture(t, p1, "medicaid-il", cov1, 10, c1a)
	e.readyChargeFixture(t, p1, "medicaid-il", cov1, 7, "")
	third := e.run(t, billingA)
	if len(third.GetFiles()) != 1 || third.GetFiles()[0].GetClaimCount() != 2 {
		t.Fatalf("third run = %v", third)
	}
	f3 := third.GetFiles()[0]
	if slices.Contains([]int64{acme.GetInterchangeControlNumber(), mcd.GetInterchangeControlNumber()}, f3.GetInterchangeControlNumber()) {
		t.Fatalf("ISA13 %d reused", f3.GetInterchangeControlNumber())
	}
	segs3, _ := e.parsed(t, f3.GetFileId())
	checkEnvelope(t, segs3, f3.GetInterchangeControlNumber())
	var freqs []string
	for _, c := range segmentsWith(segs3, "CLM") {
		parts := strings.Split(element(c, 5), ":")
		freqs = append(freqs, parts[len(parts)-1])
	}
	slices.Sort(freqs)
	if !slices.Equal(freqs, []string{"1", "7"}) {
		t.Errorf("frequencies = %q, want 1 and 7", freqs)
	}
	var f8 []string
	for _, r := range segmentsWith(segs3, "REF") {
		if element(r, 1) == "F8" {
			f8 = append(f8, element(r, 2))
		}
	}
	if !slices.Equal(f8, []string{"PCN-0042"}) {
		t.Errorf("REF*F8 = %q", f8)
	}
	list, err := e.claims.ListClaims(ctx, req(e.Token(t, "op", []string{"operator"}, []string{clinicA}),
		&billingv1.ListClaimsRequest{ClinicId: clinicA, PatientId: p1}))
	if err != nil {
		t.Fatal(err)
	}
	var replacement *billingv1.ClaimInfo
	for _, c := range list.Msg.GetClaims() {
		if c.GetFrequencyCode() == "7" {
			replacement = c
		}
	}
	var lineCharges []string
	for _, l := range replacement.GetLines() {
		lineCharges = append(lineCharges, l.GetChargeId())
	}
	if len(list.Msg.GetClaims()) != 3 || replacement == nil || replacement.GetReplacesClaimId() != origClaim ||
		!slices.Equal(lineCharges, []string{rep, c1b}) || replacement.GetTotalCents() != 50000 ||
		replacement.GetStatus() != billingv1.ClaimStatus_CLAIM_STATUS_SUBMITTED || replacement.GetControlNumber() == origControl {
		t.Fatalf("claims = %v", list.Msg.GetClaims())
	}
	for _, c := range list.Msg.GetClaims() {
		if c.GetClaimId() == origClaim && (c.GetStatus() != billingv1.ClaimStatus_CLAIM_STATUS_REPLACED ||
			c.GetCorrectedByClaimId() != replacement.GetClaimId()) {
			t.Errorf("original claim = %v", c)
		}
	}
	if n := e.Count(t, `SELECT count(*) FROM charges WHERE id = ANY($1::uuid[]) AND status = 'submitted' AND claim_id = $2`,
		[]string{rep, c1b}, replacement.GetClaimId()); n != 2 {
		t.Errorf("%d charges submitted on the replacement, want 2", n)
	}

	// Files list; downloads are billing/admin only and a file of another clinic is not found.
	files, err := e.claims.ListClaimFiles(ctx, req(e.Token(t, "op", []string{"operator"}, []string{clinicA}),
		&billingv1.ListClaimFilesRequest{ClinicId: clinicA, PayerId: "medicaid-il"}))
	if err != nil || len(files.Msg.GetFiles()) != 2 {
		t.Fatalf("files = %v, %v", files, err)
	}
	_, err = e.claims.DownloadClaimFile(ctx, req(e.Token(t, "op", []string{"operator"}, []string{clinicA}),
		&billingv1.DownloadClaimFileRequest{FileId: f3.GetFileId()}))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = e.claims.DownloadClaimFile(ctx, req(e.Token(t, "b", []string{"billing"}, []string{clinicB}),
		&billingv1.DownloadClaimFileRequest{FileId: f3.GetFileId()}))
	wantCode(t, err, connect.CodeNotFound)

	// Names and dates of birth never reach the logs.
	if logs := e.Logs.String(); strings.Contains(logs, "1980-04-02") || strings.Contains(logs, "Doe") {
		t.Error("the logs hold a patient's name or date of birth")
	}
}

func TestClaimHoldsAndRelease(t *testing.T) {
	e := startClaims(t)
	ctx := context.Background()
	p1, p2 := bus.NewID(), bus.NewID()
	cov1 := e.claimable(t, p1, "medicaid-il", true)
	// p2 has a consent and coverage but no diagnoses yet, and an old service (timely filing).
	cov2 := bus.NewID()
	e.exec(t, `INSERT INTO coverages (id, patient_id, clinic_id, payer_id, member_id, effective_from, source_updated_at, source_event_id)
		VALUES ($1, $2, $3, 'medicaid-il', 'M2', current_date - 300, now(), $4)`, cov2, p2, clinicA, bus.NewID())
	e.sealFixtures(t)
	e.exec(t, `INSERT INTO consents (id, patient_id, clinic_id, version, payment, effective_from, source_event_id)
		VALUES ($1, $2, $3, 1, true, now() - interval '1 day', $4)`, bus.NewID(), p2, clinicA, bus.NewID())
	e.identity(t, p2, "Sam", time.Now())
	late := e.readyChargeFixture(t, p1, "medicaid-il", cov1, 95, "") // contract: 90 days to file
	noDx := e.readyChargeFixture(t, p2, "medicaid-il", cov2, 5, "")

	run := e.run(t, e.admin)
	held := map[string]int32{}
	for _, h := range run.GetHeld() {
		held[h.GetReason()] = h.GetCharges()
	}
	if len(run.GetFiles()) != 0 || held["timely filing"] != 1 || held["diagnosis"] != 1 || len(held) != 2 {
		t.Fatalf("run = %v", run)
	}
	if n := e.Count(t, `SELECT count(*) FROM charges WHERE id = $1 AND hold_reason = 'timely filing'`, late); n != 1 {
		t.Error("late charge not held for timely filing")
	}
	// Setting the diagnoses releases the charge held for them; the next run claims it.
	resp, err := e.claims.SetPatientDiagnoses(ctx, req(e.admin, &billingv1.SetPatientDiagnosesRequest{PatientId: p2, ClinicId: clinicA,
		Codes: []string{"F1120"}}))
	if err != nil || resp.Msg.GetReleasedCharges() != 1 {
		t.Fatalf("diagnoses: %v, %v", resp, err)
	}
	again := e.run(t, e.admin)
	if len(again.GetFiles()) != 1 || again.GetFiles()[0].GetClaimCount() != 1 {
		t.Fatalf("run after release = %v", again)
	}
	if n := e.Count(t, `SELECT count(*) FROM charges WHERE id = $1 AND status = 'submitted'`, noDx); n != 1 {
		t.Error("released charge not submitted")
	}

	// An older identity does not overwrite a newer one; a replay changes nothing.
	e.identity(t, p2, "Older", time.Now().Add(-time.Hour))
	if n := e.Count(t, `SELECT count(*) FROM patient_identities WHERE patient_id = $1 AND given_name = 'Sam'`, p2); n != 1 {
		t.Error("an older identity overwrote a newer one")
	}

	// Clinic B has no billing provider: nothing can be claimed there.
	_, err = e.claims.CreateClaimFiles(ctx, req(e.admin, &billingv1.CreateClaimFilesRequest{ClinicId: clinicB}))
	wantCode(t, err, connect.CodeFailedPrecondition)
}

func TestBillingProviderAndDiagnosesValidation(t *testing.T) {
	e := start(t)
	client := billingv1connect.NewClaimsServiceClient(http.DefaultClient, e.URL)
	ctx := context.Background()
	billingA := e.Token(t, "biller", []string{"billing"}, []string{clinicA})

	bad := riverside(clinicA)
	bad.Npi = "1990000015"
	_, err := client.SetBillingProvider(ctx, req(billingA, &billingv1.SetBillingProviderRequest{Provider: bad}))
	wantViolations(t, err, "provider.npi npi.check_digit")
	bad = riverside(clinicA)
	bad.TaxId, bad.State = "99-0000001", "Illinois"
	_, err = client.SetBillingProvider(ctx, req(billingA, &billingv1.SetBillingProviderRequest{Provider: bad}))
	wantViolations(t, err, "provider.tax_id string.pattern", "provider.state string.pattern")
	_, err = client.SetBillingProvider(ctx, req(billingA, &billingv1.SetBillingProviderRequest{Provider: riverside(clinicB)}))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = client.GetBillingProvider(ctx, req(billingA, &billingv1.GetBillingProviderRequest{ClinicId: clinicA}))
	wantCode(t, err, connect.CodeNotFound)
	if _, err := client.SetBillingProvider(ctx, req(billingA, &billingv1.SetBillingProviderRequest{Provider: riverside(clinicA)})); err != nil {
		t.Fatal(err)
	}
	got, err := client.GetBillingProvider(ctx, req(e.Token(t, "op", []string{"operator"}, []string{clinicA}),
		&billingv1.GetBillingProviderRequest{ClinicId: clinicA}))
	if err != nil || got.Msg.GetProvider().GetNpi() != "1990000014" {
		t.Fatalf("provider = %v, %v", got, err)
	}

	_, err = client.SetPatientDiagnoses(ctx, req(billingA, &billingv1.SetPatientDiagnosesRequest{PatientId: bus.NewID(), ClinicId: clinicA,
		Codes: []string{"F10.20"}}))
	wantViolations(t, err, "codes[0] string.pattern")
	_, err = client.SetPatientDiagnoses(ctx, req(billingA, &billingv1.SetPatientDiagnosesRequest{PatientId: bus.NewID(), ClinicId: clinicA}))
	wantViolations(t, err, "codes repeated.min_items")
	if n := e.Count(t, `SELECT count(*) FROM patient_diagnoses`); n != 0 {
		t.Fatalf("a refused request stored diagnoses")
	}
}

// A claim whose data cannot be written to an 837 (here a member id with an X12 separator) is
// set aside with its field and rule, without stopping the other claims; each run tries it
// again, quietly while nothing changed, and it goes out once the data is fixed.
func TestClaimDataHoldDoesNotBlockTheRun(t *testing.T) {
	e := startClaims(t)
	good, bad := bus.NewID(), bus.NewID()
	goodCharge := e.readyChargeFixture(t, good, "medicaid-il", e.claimable(t, good, "medicaid-il", true), 3, "")
	badCharge := e.readyChargeFixture(t, bad, "medicaid-il", e.claimable(t, bad, "medicaid-il", true), 3, "")
	e.exec(t, `UPDATE coverages SET member_id = 'M*123' WHERE patient_id = $1`, bad)
	e.sealFixtures(t)
	const reason = "claim data: MemberID must not contain the separators * : ^ ~"

	run := e.run(t, e.admin)
	if len(run.GetFiles()) != 1 || run.GetFiles()[0].GetClaimCount() != 1 || len(run.GetHeld()) != 1 ||
		run.GetHeld()[0].GetReason() != reason || run.GetHeld()[0].GetCharges() != 1 {
		t.Fatalf("run = %v, want one claim out and one charge held for its member id", run)
	}
	if n := e.Count(t, `SELECT count(*) FROM charges WHERE id = $1 AND status = 'submitted'`, goodCharge); n != 1 {
		t.Error("the good charge was not submitted")
	}
	if n := e.Count(t, `SELECT count(*) FROM charges WHERE id = $1 AND status = 'held' AND hold_reason = $2`, badCharge, reason); n != 1 {
		t.Error("the bad charge is not held for its claim data")
	}
	e.Relayed(t)
	events := e.StreamCount(t, "BILLING", subjectChargeStatus)

	// Nothing changed: the next run holds it again without announcing anything.
	if again := e.run(t, e.admin); len(again.GetFiles()) != 0 {
		t.Fatalf("second run = %v, want no file", again)
	}
	e.Relayed(t)
	if got := e.StreamCount(t, "BILLING", subjectChargeStatus); got != events {
		t.Errorf("a run that changed nothing announced %d status changes", got-events)
	}

	// Fixed: the next run claims it.
	e.exec(t, `UPDATE coverages SET member_id = 'M123' WHERE patient_id = $1`, bad)
	e.sealFixtures(t)
	if fixed := e.run(t, e.admin); len(fixed.GetFiles()) != 1 || len(fixed.GetHeld()) != 0 {
		t.Fatalf("run after the fix = %v, want one file", fixed)
	}
	if n := e.Count(t, `SELECT count(*) FROM charges WHERE id = $1 AND status = 'submitted'`, badCharge); n != 1 {
		t.Error("the fixed charge was not submitted")
	}
}
