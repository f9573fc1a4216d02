package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/deploy/devstack/stack"
	"github.com/trellis-health/trellis/deploy/devstack/stack/stacktest"
	"github.com/trellis-health/trellis/pkg/testkit"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/intake/v1/intakev1connect"
	notificationv1 "github.com/trellis-health/trellis/proto/gen/trellis/notification/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/notification/v1/notificationv1connect"
)

// TestNoPHIInTelemetry runs the admission flow and the revenue-cycle demo with every service
// logging at debug, and captures what leaves the services as telemetry: every log line, every
// span (name, attributes, events, status, resource), every /metrics page, and every NATS
// subject and header used. It fails when any seeded patient value appears in any of them:
// names, dates of birth (as written and in the other usual forms), phone numbers (digits),
// email addresses and member ids. Event payloads and the 837 are not telemetry and are not
// checked (they carry PHI by design, encrypted in transit and at rest).
func TestNoPHIInTelemetry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	spans := &spanCapture{}
	otlp := httptest.NewServer(spans)
	t.Cleanup(otlp.Close)
	// The services' OTLP exporter prefers the traces endpoint over the stack's sink.
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", otlp.URL+"/v1/traces")

	logs := &lineCapture{}
	s := stacktest.Start(ctx, t, stacktest.Options{Prefix: "e2e", LogLevel: "debug", Logs: logs})

	nc, err := nats.Connect(s.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	subjects := &subjectCapture{seen: map[string]bool{}}
	sub, err := nc.Subscribe(">", subjects.add) // subjects, headers, and bodies for the control
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// The flows: the demo referral queue and admissions (with consent and coverage), the
	// revenue cycle to a posted 835, and one more admission with a phone number.
	if _, err := s.SeedDemo(ctx); err != nil {
		t.Fatalf("demo: %v", err)
	}
	demo, err := s.SeedBillingDemo(ctx)
	if err != nil {
		t.Fatalf("billing demo: %v", err)
	}
	admin := bearer(t, s, []string{"admin"}, []string{"*"})
	claims := billingv1connect.NewClaimsServiceClient(http.DefaultClient, s.URL("billing"))
	remit := billingv1connect.NewRemittanceServiceClient(http.DefaultClient, s.URL("billing"))
	for _, f := range demo.Files {
		file, err := claims.DownloadClaimFile(ctx, withToken(connect.NewRequest(&billingv1.DownloadClaimFileRequest{FileId: f.GetFileId()}), admin))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := remit.UploadRemittance(ctx, withToken(connect.NewRequest(&billingv1.UploadRemittanceRequest{
			Content: []byte(answer835(t, string(file.Msg.GetContent()), 21000, 4000)), FileName: "medicaid.835"}), admin)); err != nil {
			t.Fatalf("835: %v", err)
		}
	}
	intake := intakev1connect.NewIntakeServiceClient(http.DefaultClient, s.URL("intake"))
	extra, err := intake.AdmitPatient(ctx, withToken(connect.NewRequest(&intakev1.AdmitPatientRequest{
		GivenName: "Zephyrine", FamilyName: "Oakenshield", DateOfBirth: "1979-08-23", ContactEmail: "zephyrine.oakenshield@example.net",
		ClinicId: clinicID, ProgramTrack: "adult-evening",
		StartDate: time.Now().AddDate(0, 0, 7).Format(time.DateOnly), IdempotencyKey: "e2e-privacy-admit-1",
	}), admin))
	if err != nil {
		t.Fatalf("admit: %v", err)
	}
	// Refused requests carrying PHI: their errors end up in logs and span statuses.
	for _, bad := range []*intakev1.AdmitPatientRequest{
		{GivenName: "Zephyrine", FamilyName: "Oakenshield", DateOfBirth: "1979-02-30", ContactEmail: "zephyrine.oakenshield@",
			ClinicId: clinicID, ProgramTrack: "adult-evening", StartDate: "2020-01-01", IdempotencyKey: "e2e-privacy-bad-1"},
		{GivenName: "Zephyrine", FamilyName: "Oakenshield", DateOfBirth: "2099-08-23", ContactEmail: "zephyrine.oakenshield@example.net",
			ClinicId: clinicID, ProgramTrack: "no-such-track", StartDate: time.Now().AddDate(0, 0, 7).Format(time.DateOnly), IdempotencyKey: "e2e-privacy-bad-2"},
		{GivenName: "Zephyrine", FamilyName: "Oakenshield-Changed", DateOfBirth: "1979-08-23", ContactEmail: "zephyrine.oakenshield@example.net",
			ClinicId: clinicID, ProgramTrack: "adult-evening", StartDate: time.Now().AddDate(0, 0, 7).Format(time.DateOnly), IdempotencyKey: "e2e-privacy-admit-1"},
	} {
		if _, err := intake.AdmitPatient(ctx, withToken(connect.NewRequest(bad), admin)); err == nil {
			t.Fatalf("a bad admission was accepted: %v", bad)
		}
	}
	// Events that consumers refuse, carrying PHI: their reasons end up in logs and dead-letter
	// headers.
	poisonEvents(ctx, t, nc)
	// The dashboard's pages and JSON, read by an operator.
	for _, p := range []string{"/overview", "/billing", "/health", "/clinics/" + clinicID,
		"/api/overview.json", "/api/billing.json", "/api/health.json", "/api/clinics/" + clinicID + ".json"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL("dashboard")+p, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("dashboard %s: %d", p, resp.StatusCode)
		}
	}
	notif := notificationv1connect.NewNotificationServiceClient(http.DefaultClient, s.URL("notification"))
	testkit.Eventually(t, 60*time.Second, "the last admission's welcome sent", func() bool {
		r, err := notif.ListMessages(ctx, withToken(connect.NewRequest(&notificationv1.ListMessagesRequest{PatientId: extra.Msg.GetPatientId()}), admin))
		if err != nil {
			return false
		}
		for _, m := range r.Msg.GetMessages() {
			if m.GetKind() == "welcome" && m.GetStatus() == "sent" {
				return true
			}
		}
		return false
	})

	// What intake holds is the list of values that must not leak.
	values := seededValues(ctx, t, s, admin, &intakev1.Referral{GivenName: "Zephyrine", FamilyName: "Oakenshield",
		DateOfBirth: "1979-08-23", Email: "zephyrine.oakenshield@example.net", PatientId: extra.Msg.GetPatientId()})
	if len(values) < 40 {
		t.Fatalf("only %d seeded values found: %v", len(values), values)
	}

	// Every service has exported spans (the batch exporter flushes every 200 ms).
	testkit.Eventually(t, 30*time.Second, "spans from every service", func() bool {
		got := spans.services()
		for _, svc := range stack.Services {
			if !got[svc] {
				return false
			}
		}
		return true
	})
	metrics := map[string]string{}
	for _, svc := range stack.Services {
		metrics[svc] = getText(ctx, t, s.URL(svc)+"/metrics")
	}

	var leaks []string
	check := func(where, text string) {
		for _, v := range values {
			if v.re.MatchString(text) {
				leaks = append(leaks, fmt.Sprintf("%s: %s (%s) in %q", where, v.what, v.value, clip(text, v.re)))
			}
		}
	}
	nLines, perService := 0, map[string]int{}
	for _, line := range logs.lines() {
		if strings.HasPrefix(line, "[mailpit]") {
			continue // the SMTP sink stands in for a mail provider, outside Trellis
		}
		nLines++
		if name, _, ok := strings.Cut(strings.TrimPrefix(line, "["), "]"); ok {
			perService[name]++
		}
		check("log", line)
	}
	for _, svc := range stack.Services {
		if perService[svc] == 0 {
			t.Errorf("no log lines from %s were captured", svc)
		}
	}
	t.Logf("log lines per service: %v", perService)
	nSpans := 0
	for _, sp := range spans.all() {
		nSpans++
		check("span", sp)
	}
	for svc, page := range metrics {
		check(svc+" /metrics", page)
	}
	subs := subjects.list()
	for _, subj := range subs {
		check("NATS", subj)
	}
	// The control: the event payloads (not telemetry) do carry these values, so the patterns
	// would find them if they leaked.
	found := 0
	for _, v := range values {
		if v.re.Match(subjects.payloads()) {
			found++
		}
	}
	if found < 10 {
		t.Fatalf("only %d seeded values found even in the event payloads: the patterns are broken", found)
	}
	t.Logf("%d of the values are in the event payloads (the control)", found)
	t.Logf("checked %d seeded values against %d log lines, %d spans, %d metrics pages (%d bytes), %d NATS subjects and headers",
		len(values), nLines, nSpans, len(metrics), len(strings.Join(slices.Collect(mapValues(metrics)), "")), len(subs))
	if nLines < 100 || nSpans < 100 || len(subs) < 10 {
		t.Fatalf("too little captured to mean anything: %d log lines, %d spans, %d subjects", nLines, nSpans, len(subs))
	}
	slices.Sort(leaks)
	leaks = slices.Compact(leaks)
	for i, l := range leaks {
		if i == 50 {
			t.Errorf("... and %d more", len(leaks)-50)
			break
		}
		t.Error(l)
	}
}

func mapValues(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

// poisonEvents publishes, as intake's relay would, events every consumer of them refuses, each
// carrying a demo person's email and phone, and waits until they are dead-lettered.
func poisonEvents(ctx context.Context, t *testing.T, nc *nats.Conn) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	deadLetters := func() uint64 {
		st, err := js.Stream(ctx, "DEADLETTER")
		if err != nil {
			return 0
		}
		info, err := st.Info(ctx)
		if err != nil {
			return 0
		}
		return info.State.Msgs
	}
	before := deadLetters()
	p := stack.DemoPeople[0]
	const subject = "trellis.intake.patient.contact_recorded.v1"
	bad := &intakev1.PatientContactRecorded{PatientId: "not-a-patient " + p.Given + " " + p.Family, ClinicId: clinicID,
		PreferredName: p.Given, Email: p.Email, Phone: p.Phone, ClinicTimeZone: "America/Chicago", RecordedAt: timestamppb.Now()}
	env := servicetest.Envelope(t, bad, clinicID, "intake")
	body, err := proto.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	for i, data := range [][]byte{body, append([]byte{0x0a, 0xff}, []byte(p.Email+" "+p.Phone)...)} {
		msg := servicetest.Message(subject, fmt.Sprintf("privacy-poison-%d-%d", i, time.Now().UnixNano()), data, env, "")
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatalf("publish poison: %v", err)
		}
	}
	testkit.Eventually(t, 60*time.Second, "the poison events dead-lettered", func() bool { return deadLetters() >= before+2 })
}

// phiValue is one seeded value and the pattern that finds it.
type phiValue struct {
	what, value string
	re          *regexp.Regexp
}

// seededValues reads every referral intake holds (the demo people, the walk-in and the extra
// admission) and the coverage of each admitted patient, and returns the patterns of their
// names, dates of birth, phones, emails and member ids.
func seededValues(ctx context.Context, t *testing.T, s *stack.Stack, admin string, more ...*intakev1.Referral) []phiValue {
	t.Helper()
	intake := intakev1connect.NewIntakeServiceClient(http.DefaultClient, s.URL("intake"))
	refs := more
	for page := ""; ; {
		r, err := intake.ListReferrals(ctx, withToken(connect.NewRequest(&intakev1.ListReferralsRequest{PageSize: 100, PageToken: page}), admin))
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, r.Msg.GetReferrals()...)
		if page = r.Msg.GetNextPageToken(); page == "" {
			break
		}
	}
	seen := map[string]bool{}
	var out []phiValue
	add := func(what, value, pattern string) {
		if value == "" || seen[what+value] {
			return
		}
		seen[what+value] = true
		out = append(out, phiValue{what: what, value: value, re: regexp.MustCompile(pattern)})
	}
	word := func(s string) string { return `(?i)\b` + regexp.QuoteMeta(s) + `\b` }
	for _, r := range refs {
		add("family name", r.GetFamilyName(), word(r.GetFamilyName()))
		add("given name", r.GetGivenName(), word(r.GetGivenName()))
		add("name", r.GetGivenName()+" "+r.GetFamilyName(), word(r.GetGivenName()+" "+r.GetFamilyName()))
		if dob, err := time.Parse(time.DateOnly, r.GetDateOfBirth()); err == nil {
			for _, layout := range []string{time.DateOnly, "20060102", "01/02/2006", "1/2/2006", "01-02-2006"} {
				add("date of birth", dob.Format(layout), `\b`+regexp.QuoteMeta(dob.Format(layout))+`\b`)
			}
		}
		if digits := strings.TrimPrefix(r.GetPhone(), "+1"); len(digits) == 10 {
			// +13125550101, 3125550101, (312) 555-0101, 312-555-0101, 312.555.0101
			add("phone", r.GetPhone(), `\(?`+digits[:3]+`\)?[\s.-]?`+digits[3:6]+`[\s.-]?`+digits[6:]+`\b`)
		}
		add("email", r.GetEmail(), `(?i)`+regexp.QuoteMeta(r.GetEmail()))
		if local, _, ok := strings.Cut(r.GetEmail(), "@"); ok && len(local) > 6 {
			add("email local part", local, `(?i)\b`+regexp.QuoteMeta(local)+`\b`)
		}
		if r.GetPatientId() == "" {
			continue
		}
		cov, err := intake.ListCoverage(ctx, withToken(connect.NewRequest(&intakev1.ListCoverageRequest{PatientId: r.GetPatientId()}), admin))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cov.Msg.GetCoverages() {
			add("member id", c.GetMemberId(), `(?i)`+regexp.QuoteMeta(c.GetMemberId()))
			add("member id digits", c.GetMemberId(), strings.Join(regexp.MustCompile(`[0-9]+`).FindAllString(c.GetMemberId(), -1), `[\s-]?`)+`\b`)
		}
	}
	for _, p := range stack.DemoPeople { // also those a failed step may not have stored
		add("family name", p.Family, word(p.Family))
		add("email", p.Email, `(?i)`+regexp.QuoteMeta(p.Email))
		add("member id", p.MedicaidMemberNumber, `(?i)`+regexp.QuoteMeta(p.MedicaidMemberNumber))
	}
	return out
}

// clip returns the text around re's first match.
func clip(text string, re *regexp.Regexp) string {
	loc := re.FindStringIndex(text)
	from, to := max(0, loc[0]-100), min(len(text), loc[1]+100)
	return text[from:to]
}

func getText(ctx context.Context, t *testing.T, url string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// lineCapture keeps every line written to it.
type lineCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *lineCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

// String is the last 200 lines, printed when the test fails.
func (c *lineCapture) String() string {
	lines := c.lines()
	return strings.Join(lines[max(0, len(lines)-200):], "\n")
}

func (c *lineCapture) lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(c.buf.Bytes()))
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// subjectCapture keeps every NATS subject seen, and each message's header values.
type subjectCapture struct {
	mu   sync.Mutex
	seen map[string]bool
	body bytes.Buffer // every payload, for the control
}

func (c *subjectCapture) payloads() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.body.Bytes())
}

func (c *subjectCapture) add(m *nats.Msg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[m.Subject] = true
	c.body.Write(m.Data)
	c.body.WriteByte('\n')
	if m.Reply != "" {
		c.seen[m.Reply] = true
	}
	for k, vs := range m.Header {
		for _, v := range vs {
			c.seen["header "+k+": "+v] = true
		}
	}
}

func (c *subjectCapture) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.seen))
	for s := range c.seen {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// spanCapture is an OTLP/HTTP trace receiver that keeps every span rendered as text: its
// service, name, attributes, events (with theirs), links, status message and resource.
type spanCapture struct {
	mu    sync.Mutex
	spans []string
	svcs  map[string]bool
}

func (c *spanCapture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, "bad gzip", http.StatusBadRequest)
			return
		}
		defer zr.Close()
		body = zr
	}
	raw, err := io.ReadAll(body)
	var req collectortrace.ExportTraceServiceRequest
	if err != nil || proto.Unmarshal(raw, &req) != nil {
		http.Error(w, "want OTLP protobuf", http.StatusBadRequest)
		return
	}
	attrs := func(kvs []*commonv1.KeyValue) string {
		var b strings.Builder
		for _, kv := range kvs {
			fmt.Fprintf(&b, " %s=%v", kv.GetKey(), kv.GetValue())
		}
		return b.String()
	}
	var got []string
	svcs := map[string]bool{}
	for _, rs := range req.GetResourceSpans() {
		res := attrs(rs.GetResource().GetAttributes())
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				svcs[a.GetValue().GetStringValue()] = true
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				var b strings.Builder
				fmt.Fprintf(&b, "resource[%s] span %q%s status=%q", res, sp.GetName(), attrs(sp.GetAttributes()), sp.GetStatus().GetMessage())
				for _, e := range sp.GetEvents() {
					fmt.Fprintf(&b, " event %q%s", e.GetName(), attrs(e.GetAttributes()))
				}
				for _, l := range sp.GetLinks() {
					fmt.Fprintf(&b, " link%s", attrs(l.GetAttributes()))
				}
				got = append(got, b.String())
			}
		}
	}
	c.mu.Lock()
	c.spans = append(c.spans, got...)
	if c.svcs == nil {
		c.svcs = map[string]bool{}
	}
	for s := range svcs {
		c.svcs[s] = true
	}
	c.mu.Unlock()
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (c *spanCapture) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.spans...)
}

func (c *spanCapture) services() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]bool{}
	for s := range c.svcs {
		out[s] = true
	}
	return out
}
