package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"
)

// TestDemoRevenueCycle runs the revenue cycle across the services, as `make run` shows it: the
// demo patient whose program started two weeks ago is admitted (intake, with coverage and
// consent), scheduled and attended (scheduling), charged and claimed (billing, from the events
// alone); the payer's 835, built here from the 837 billing wrote, is uploaded and reconciles
// every charge.
func TestDemoRevenueCycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := startStack(ctx, t)
	if _, err := s.SeedDemo(ctx); err != nil {
		t.Fatalf("demo: %v", err)
	}
	demo, err := s.SeedBillingDemo(ctx)
	if err != nil {
		t.Fatalf("billing demo: %v", err)
	}
	if demo.Sessions == 0 || demo.BillableDays == 0 || demo.Charges != demo.BillableDays {
		t.Fatalf("demo = %+v, want attended sessions and one charge per billable day", demo)
	}
	if len(demo.Files) != 1 || demo.Files[0].GetClaimCount() != 1 || demo.Files[0].GetLineCount() != int32(demo.BillableDays) ||
		demo.Files[0].GetTotalCents() != int64(demo.BillableDays)*25000 {
		t.Fatalf("claim files = %v, want one 837I claim with a $250.00 line per billable day", demo.Files)
	}

	biller := bearer(t, s, []string{"billing"}, []string{"*"})
	claims := billingv1connect.NewClaimsServiceClient(http.DefaultClient, s.URL("billing"))
	file, err := claims.DownloadClaimFile(ctx, withToken(connect.NewRequest(&billingv1.DownloadClaimFileRequest{
		FileId: demo.Files[0].GetFileId()}), biller))
	if err != nil {
		t.Fatal(err)
	}
	content := string(file.Msg.GetContent())
	for _, want := range []string{"ST*837*0001*005010X223A2", "SBR*P*18", "NM1*IL*1*Ellis*Morgan", "HI*ABK:F1020", "SV2*0906*HC:H0015*250*UN*1"} {
		if !strings.Contains(content, want) {
			t.Errorf("837I lacks %q", want)
		}
	}

	// Medicaid pays $210.00 of each $250.00 day, $40.00 contractual (CO-45).
	era := answer835(t, content, 21000, 4000)
	remit := billingv1connect.NewRemittanceServiceClient(http.DefaultClient, s.URL("billing"))
	up, err := remit.UploadRemittance(ctx, withToken(connect.NewRequest(&billingv1.UploadRemittanceRequest{
		Content: []byte(era), FileName: "medicaid.835"}), biller))
	if err != nil {
		t.Fatal(err)
	}
	if sum := up.Msg.GetSummary(); sum.GetMatchedClaims() != 1 || sum.GetUnmatchedLines() != 0 || len(sum.GetDeviations()) != 0 ||
		sum.GetTotalPaidCents() != int64(demo.BillableDays)*21000 {
		t.Fatalf("remittance summary = %v", sum)
	}
	list, err := claims.ListClaims(ctx, withToken(connect.NewRequest(&billingv1.ListClaimsRequest{
		ClinicId: demo.ClinicID, PatientId: demo.PatientID}), biller))
	if err != nil {
		t.Fatal(err)
	}
	if cs := list.Msg.GetClaims(); len(cs) != 1 || cs[0].GetStatus() != billingv1.ClaimStatus_CLAIM_STATUS_PAID {
		t.Fatalf("claims = %v, want the one claim paid", cs)
	}
	if n := count(ctx, t, s, `SELECT count(*) FROM billing.charges WHERE patient_id = $1 AND status = 'paid'`, demo.PatientID); n != demo.BillableDays {
		t.Errorf("%d paid charges, want %d", n, demo.BillableDays)
	}
	if n := count(ctx, t, s, `SELECT count(*) FROM billing.disclosures WHERE patient_id = $1`, demo.PatientID); n != 1 {
		t.Errorf("%d disclosures recorded, want 1 (the claim)", n)
	}

	// The demo again: what was claimed is not claimed twice (a session that ended meanwhile
	// would make a new charge and a new claim of its own).
	again, err := s.SeedBillingDemo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fresh := again.Charges - demo.Charges; fresh < 0 || fresh > 1 || len(again.Files) != fresh {
		t.Errorf("second demo run = %+v after %+v: want no new file, unless a session ended meanwhile", again, demo)
	}
	if n := count(ctx, t, s, `SELECT count(*) FROM (SELECT charge_id FROM billing.claim_lines GROUP BY charge_id HAVING count(*) > 1) twice`); n != 0 {
		t.Errorf("%d charges on two claim lines", n)
	}
}

// answer835 is the payer's 835 for an 837: each claim paid with every line at paid cents and
// a CO-45 adjustment of co cents, echoing CLM01 and each line's REF*6R.
func answer835(t *testing.T, claim837 string, paid, co int64) string {
	t.Helper()
	amount := func(c int64) string { return fmt.Sprintf("%d.%02d", c/100, c%100) }
	var body []string
	var total int64
	var clp int // index in body of the current claim's CLP, filled once its lines are known
	var charged, claimPaid int64
	closeClaim := func() {
		if clp > 0 {
			body[clp] = strings.Replace(body[clp], "{AMOUNTS}", amount(charged)+"*"+amount(claimPaid), 1)
		}
	}
	for _, seg := range strings.Split(claim837, "~") {
		el := strings.Split(strings.TrimSpace(seg), "*")
		switch el[0] {
		case "CLM":
			closeClaim()
			body = append(body, fmt.Sprintf("LX*%d", len(body)+1), "CLP*"+el[1]+"*1*{AMOUNTS}*0*MC*PAYER"+el[1]+"*13*1")
			clp, charged, claimPaid = len(body)-1, 0, 0
		case "SV2":
			charged += 25000
			claimPaid += paid
			total += paid
			body = append(body, "SVC*HC:"+strings.Split(el[2], ":")[1]+"*250*"+amount(paid)+"*"+el[1]+"*1")
		case "DTP":
			if el[1] == "472" {
				body = append(body, "DTM*472*"+el[3])
			}
		case "REF":
			if el[1] == "6R" { // the line's last segment in billing's 837: SVC, DTM, CAS, REF
				body = append(body, "CAS*CO*45*"+amount(co), "REF*6R*"+el[2])
			}
		}
	}
	closeClaim()
	if clp == 0 {
		t.Fatal("the 837 has no claim")
	}
	segs := append([]string{"ST*835*0001",
		"BPR*I*" + amount(total) + "*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999988880*DA*98765*20261130",
		"TRN*1*E2E" + fmt.Sprint(time.Now().UnixNano()) + "*1512345678", "N1*PR*ILLINOIS MEDICAID*XV*ILMCD",
		"N1*PE*RIVERSIDE HEALTH CENTER*XX*1990000014"}, body...)
	segs = append(segs, fmt.Sprintf("SE*%d*0001", len(segs)+1))
	return strings.Join(segs, "~\n") + "~\n"
}
