// Command devstack runs the whole Trellis network on one machine (`make run`) and mints dev
// tokens (`devstack token`).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/trellis-health/trellis/deploy/devstack/demonet"
	"github.com/trellis-health/trellis/deploy/devstack/stack"
	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/money"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
)

const defaultAdminURL = "postgres://trellis:trellis@127.0.0.1:5432/trellis?sslmode=disable"

// devKey is the dev stack's token signing key. It is a well-known dev value on purpose:
// services accept it only with AUTH_DEV_MODE=true, which production never sets.
const devKey = "trellis-dev-signing-key-not-for-production"

func main() {
	cmd := "up"
	if len(os.Args) > 1 {
		cmd = os.Args[1]
	}
	var err error
	switch cmd {
	case "up":
		err = up()
	case "token":
		err = token(os.Args[2:])
	case "demonet":
		err = demonetCmd(os.Args[2:])
	case "-h", "--help", "help":
		fmt.Print(`Usage: devstack [up|token|demonet]
  up     start Postgres roles/schemas, NATS (embedded unless NATS_URL), Mailpit, a trace viewer and
         the services; walk demo referrals through the intake funnel and generate the demo
         network (docs/demo.md); stop everything on Ctrl-C
  token  print a dev bearer token: devstack token -role intake -clinics <id,id|*> [-ttl 12h]
  demonet  generate a demo network into a running stack (make run): devstack demonet
         [-clinics 5] [-patients 30] [-weeks 8] [-seed 7] [-parallel 6] [-prefix network] [-json]
         (docs/demo.md; another seed and prefix make another network beside the first)

Environment: DATABASE_URL (admin role with CREATEROLE; default the local trellis role),
NATS_URL (external NATS; default embedded on 127.0.0.1:14222), TRELLIS_RUN_DIR (default .run),
LOG_LEVEL, DEMO_DATA (default true).
`)
	default:
		err = fmt.Errorf("unknown command %q (try --help)", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func token(args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	role := fs.String("role", "admin", "comma-separated roles")
	clinics := fs.String("clinics", "*", "comma-separated clinic ids, or * for all")
	subject := fs.String("sub", "dev-user", "subject")
	ttl := fs.Duration("ttl", 12*time.Hour, "validity")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tok, err := auth.MintDev([]byte(devKey), "trellis-dev", "trellis", *subject,
		strings.Split(*role, ","), strings.Split(*clinics, ","), *ttl)
	if err != nil {
		return err
	}
	fmt.Println(tok)
	return nil
}

// demonetCmd generates a demo network of the given size into the services of a running dev
// stack (default ports), for example a bigger one for a benchmark.
func demonetCmd(args []string) error {
	d := demonet.Default()
	fs := flag.NewFlagSet("demonet", flag.ContinueOnError)
	fs.IntVar(&d.Clinics, "clinics", d.Clinics, fmt.Sprintf("clinics (at most %d; those the stack does not seed are configured through scheduling)", demonet.MaxClinics))
	fs.IntVar(&d.PatientsPerClinic, "patients", d.PatientsPerClinic, "people per clinic")
	fs.IntVar(&d.Weeks, "weeks", d.Weeks, "weeks of history (1 to 12)")
	fs.Int64Var(&d.Seed, "seed", d.Seed, "seed")
	fs.IntVar(&d.Parallel, "parallel", d.Parallel, "API calls in flight")
	fs.IntVar(&d.PayerLagDays, "payer-lag", d.PayerLagDays, "days after the last service the payers answer a claim")
	fs.StringVar(&d.Prefix, "prefix", d.Prefix, "prefix of the people's keys (another prefix: other people)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tok, err := auth.MintDev([]byte(devKey), "trellis-dev", "trellis", "devstack-demonet", []string{"admin"}, []string{auth.AllClinics}, time.Hour)
	if err != nil {
		return err
	}
	url := func(svc string) string { return fmt.Sprintf("http://127.0.0.1:%d", stack.DefaultPorts[svc]) }
	rep, err := demonet.Generate(context.Background(), demonet.Target{IntakeURL: url("intake"), SchedulingURL: url("scheduling"),
		BillingURL: url("billing"), Token: tok, Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }}, d)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Print(rep.String())
	return nil
}

func up() error {
	root, err := stack.RepoRoot()
	if err != nil {
		return err
	}
	opts := stack.Options{
		RepoRoot: root, AdminURL: envOr("DATABASE_URL", defaultAdminURL), NATSURL: os.Getenv("NATS_URL"),
		RunDir: os.Getenv("TRELLIS_RUN_DIR"), DevKey: devKey, LogLevel: envOr("LOG_LEVEL", "info"),
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Println("Starting Trellis (Postgres roles, NATS, Mailpit, traces, 4 services and the dashboard)...")
	s, err := stack.Up(ctx, opts)
	if err != nil {
		return err
	}
	defer s.Close()
	demo := "Demo data is off (DEMO_DATA=false).\n"
	if envOr("DEMO_DATA", "true") == "true" {
		sum, err := s.SeedDemo(ctx)
		if err != nil {
			return fmt.Errorf("demo data: %w", err)
		}
		demo = demoText(sum)
		bill, err := s.SeedBillingDemo(ctx)
		if err != nil {
			return fmt.Errorf("billing demo: %w", err)
		}
		demo += billingDemoText(s, bill)
		net, err := demoNetwork(ctx, s)
		if err != nil {
			return fmt.Errorf("demo network: %w", err)
		}
		demo += net
	}
	tok, _ := s.Token("dev-admin", []string{"admin"}, []string{auth.AllClinics}, 12*time.Hour)
	fmt.Printf(`
Trellis is up.

  dashboard      %s   <- sign in at /signin (dev sign-in: pick a role and clinics, * for all)
  intake         %s   (Connect API: trellis.intake.v1.IntakeService)
  scheduling     %s
  billing        %s
  notification   %s
  mail (Mailpit) %s   <- patient emails and staff alerts
  texts          %s/fake-sms/messages   <- the fake SMS provider (texts are recorded, never sent)
  traces         %s   <- one trace per admission, across every service
  NATS           %s
  each service also serves /healthz, /readyz and /metrics

%s
The open queue (dev token valid 12h; mint more with: make token ROLE=intake_coordinator CLINICS=<id>):

  curl -s %s/trellis.intake.v1.IntakeService/ListReferrals \
    -H 'Content-Type: application/json' -H 'Authorization: Bearer %s' \
    -d '{"statuses":["REFERRAL_STATUS_NEW","REFERRAL_STATUS_CONTACTED","REFERRAL_STATUS_SCREENED","REFERRAL_STATUS_ASSESSED"]}'

A new first contact: the same headers on CreateReferral with
    -d '{"clinicId":"0190a000-0000-7000-8000-000000000001","source":"REFERRAL_SOURCE_SELF","givenName":"Casey",
         "familyName":"Morgan","email":"casey@example.com","idempotencyKey":"try-it-%d"}'
then ChangeReferralStatus (contacted, screened), RecordAssessment and AdmitPatient with its referralId
(docs/intake.md).

Press Ctrl-C to stop.
`, s.URL("dashboard"), s.URL("intake"), s.URL("scheduling"), s.URL("billing"), s.URL("notification"), s.URL("mailui"), s.URL("notification"),
		s.URL("traces"), s.NATSURL, demo, s.URL("intake"), tok, time.Now().Unix())
	<-ctx.Done()
	fmt.Println("\nStopping Trellis...")
	return nil
}

// demoNetwork generates the demo network (docs/demo.md) through the services' APIs: about
// 150 people at every stage in 5 clinics in 2 time zones, 8 weeks of attendance, claims and the
// payers' 835s. A second start finds what the first made and adds only what is new.
func demoNetwork(ctx context.Context, s *stack.Stack) (string, error) {
	tok, err := s.Token("devstack-demonet", []string{"admin"}, []string{auth.AllClinics}, time.Hour)
	if err != nil {
		return "", err
	}
	fmt.Println("Generating the demo network (docs/demo.md): referrals, admissions, 8 weeks of attendance, claims and remittances...")
	rep, err := demonet.Generate(ctx, demonet.Target{IntakeURL: s.URL("intake"), SchedulingURL: s.URL("scheduling"),
		BillingURL: s.URL("billing"), Token: tok}, demonet.Default())
	if err != nil {
		return "", err
	}
	return "\n" + rep.String() + fmt.Sprintf("  see it on the dashboard: %s (network overview, each clinic, billing)\n", s.URL("dashboard")), nil
}

// billingDemoText describes the revenue-cycle demo: the sessions attended, the charges, and
// how to fetch the claim file.
func billingDemoText(s *stack.Stack, b stack.BillingDemo) string {
	out := fmt.Sprintf(`
Revenue cycle: demo patient %s (Riverside, Medicaid per diem) attended %d sessions on %d days
so far (%d of them of 3 hours or more): %d per-diem charges.`, b.PatientID, b.Sessions, b.Days, b.BillableDays, b.Charges)
	if len(b.Files) == 0 {
		return out + " Nothing new to claim on this run.\n"
	}
	for _, f := range b.Files {
		out += fmt.Sprintf(`
Claim file %s: X12 837I, %d claim(s), %d line(s), %s. Fetch it with the token below:
  curl -s %s/trellis.billing.v1.ClaimsService/DownloadClaimFile -H 'Content-Type: application/json' \
    -H 'Authorization: Bearer <token>' -d '{"fileId":"%s"}'`,
			f.GetFileId(), f.GetClaimCount(), f.GetLineCount(), money.Cents(f.GetTotalCents()), s.URL("billing"), f.GetFileId())
	}
	return out + "\n(docs/billing.md walks on: upload the payer's 835 with RemittanceService/UploadRemittance.)\n"
}

// demoText describes what the demo left in intake's referral queue.
func demoText(sum stack.DemoSummary) string {
	n := func(st intakev1.ReferralStatus) int { return sum.ByStatus[st] }
	return fmt.Sprintf(`Demo referrals walked through the intake funnel (referral, contact, screening, ASAM assessment,
admission with consent and coverage, or referral out), plus a walk-in admitted on this run
(referral %s): its welcome email is in the mail UI and its trace in the trace viewer.
%d referrals in the queue: %d new, %d contacted, %d screened, %d assessed;
decided so far: %d admitted, %d referred out, %d closed.
`, sum.WalkIn, sum.Open(),
		n(intakev1.ReferralStatus_REFERRAL_STATUS_NEW), n(intakev1.ReferralStatus_REFERRAL_STATUS_CONTACTED),
		n(intakev1.ReferralStatus_REFERRAL_STATUS_SCREENED), n(intakev1.ReferralStatus_REFERRAL_STATUS_ASSESSED),
		n(intakev1.ReferralStatus_REFERRAL_STATUS_ADMITTED), n(intakev1.ReferralStatus_REFERRAL_STATUS_REFERRED_OUT),
		n(intakev1.ReferralStatus_REFERRAL_STATUS_CLOSED))
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
