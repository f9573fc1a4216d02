// Package authztest checks a service's role policy (rpc.Policy) against its API and its
// running server:
//
//   - CheckPolicy: every RPC of the service's proto services has a policy entry, every entry is
//     an RPC, and every role named is one of auth.Roles;
//   - CheckDoc: the service's part of the role x RPC matrix in docs/security.md is the one the
//     policy gives (TRELLIS_UPDATE_DOCS=1 rewrites it);
//   - EveryRoleEveryRPC: every RPC called with a token of every role: allowed roles never get
//     permission_denied, every other role always does, and no token is unauthenticated;
//   - OtherClinic: a token for clinic A asking about clinic B's data gets permission_denied or
//     not_found, never data, for every RPC whose request names a clinic.
//
// Calls use the Connect protocol with JSON bodies over plain HTTP, so one helper speaks to every
// procedure without its generated client.
package authztest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/rpc"
)

// Matrix is one service's authorization: the proto services it serves and its policy.
type Matrix struct {
	Service string     // the service's name, e.g. "billing": its section of docs/security.md
	APIs    []string   // full names of the proto services it serves, e.g. trellis.billing.v1.BillingService
	Policy  rpc.Policy // its role policy (service.Spec.Policy)
}

// Procedure is one RPC.
type Procedure struct {
	Path  string // "/trellis.billing.v1.BillingService/GetAccount"
	Input protoreflect.MessageDescriptor
}

// Procedures lists the RPCs of m's proto services, in path order.
func Procedures(t testing.TB, m Matrix) []Procedure {
	t.Helper()
	var out []Procedure
	for _, name := range m.APIs {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			t.Fatalf("authztest: proto service %s: %v", name, err)
		}
		sd, ok := d.(protoreflect.ServiceDescriptor)
		if !ok {
			t.Fatalf("authztest: %s is not a service", name)
		}
		for i := 0; i < sd.Methods().Len(); i++ {
			md := sd.Methods().Get(i)
			out = append(out, Procedure{Path: "/" + name + "/" + string(md.Name()), Input: md.Input()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// APIServices lists the full names of every service of every trellis.* proto package linked
// into the test binary.
func APIServices() []string {
	var out []string
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(fd.Package()), "trellis.") {
			return true
		}
		for i := 0; i < fd.Services().Len(); i++ {
			out = append(out, string(fd.Services().Get(i).FullName()))
		}
		return true
	})
	sort.Strings(out)
	return out
}

// CheckPolicy fails t unless every RPC of m.APIs has a policy entry granting at least one role,
// every policy entry names an RPC of m.APIs, and every role is one of auth.Roles.
func CheckPolicy(t testing.TB, m Matrix) {
	t.Helper()
	procs := Procedures(t, m)
	if len(procs) == 0 {
		t.Fatalf("authztest: %s serves no RPCs", m.Service)
	}
	known := map[string]bool{}
	for _, p := range procs {
		known[p.Path] = true
		roles, ok := m.Policy[p.Path]
		switch {
		case !ok:
			t.Errorf("%s: RPC %s has no policy entry (it is refused to everyone)", m.Service, p.Path)
		case len(roles) == 0:
			t.Errorf("%s: RPC %s grants no role", m.Service, p.Path)
		}
	}
	for path, roles := range m.Policy {
		if !known[path] {
			t.Errorf("%s: policy names %s, which is not an RPC of %v", m.Service, path, m.APIs)
		}
		for _, r := range roles {
			if !slices.Contains(auth.Roles, r) {
				t.Errorf("%s: policy of %s names role %q, which is not one of auth.Roles %v", m.Service, path, r, auth.Roles)
			}
		}
	}
}

// Table renders m's policy as a Markdown table: one row per RPC, one column per role.
func Table(t testing.TB, m Matrix) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("| " + m.Service + " RPC | " + strings.Join(auth.Roles, " | ") + " |\n")
	b.WriteString("| --- |" + strings.Repeat(" :-: |", len(auth.Roles)) + "\n")
	for _, p := range Procedures(t, m) {
		name := strings.TrimPrefix(p.Path, "/")
		if i := strings.LastIndex(name, "."); i >= 0 {
			name = name[i+1:] // BillingService/GetAccount
		}
		b.WriteString("| `" + name + "` |")
		for _, r := range auth.Roles {
			if slices.Contains(m.Policy[p.Path], r) {
				b.WriteString(" ✓ |")
			} else {
				b.WriteString("   |")
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// DocPath is the document the matrix lives in, relative to the repository root.
const DocPath = "docs/security.md"

// RepoRoot walks up from the working directory to the directory holding go.work.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("authztest: no go.work above the working directory")
		}
		dir = parent
	}
}

func markers(service string) (begin, end string) {
	return "<!-- authz:" + service + " (generated from the policy; TRELLIS_UPDATE_DOCS=1 go test -run TestAuthzMatrix rewrites it) -->\n",
		"<!-- /authz:" + service + " -->"
}

// CheckDoc fails t unless docs/security.md holds, between the service's markers, the table
// Table renders from its policy. With TRELLIS_UPDATE_DOCS=1 it rewrites that section instead.
func CheckDoc(t testing.TB, m Matrix) {
	t.Helper()
	path := filepath.Join(RepoRoot(t), DocPath)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("authztest: %v", err)
	}
	doc := string(raw)
	begin, end := markers(m.Service)
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("authztest: %s has no section for %s: add the lines\n%s%s", DocPath, m.Service, begin, end)
	}
	want := Table(t, m)
	got := doc[i+len(begin) : j]
	if got == want {
		return
	}
	if os.Getenv("TRELLIS_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(path, []byte(doc[:i+len(begin)]+want+doc[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("authztest: rewrote the %s matrix in %s", m.Service, DocPath)
		return
	}
	t.Errorf("authztest: the %s matrix in %s differs from the policy; run TRELLIS_UPDATE_DOCS=1 go test -run TestAuthzMatrix in the service's cmd package.\nwant:\n%s\ngot:\n%s", m.Service, DocPath, want, got)
}

// Tokens mints a token the service accepts for roles and clinics.
type Tokens func(roles, clinics []string) string

var client = &http.Client{Timeout: 30 * time.Second}

// Call sends body (JSON) to procedure with the Connect protocol and returns the Connect code
// ("ok" on success) and the response body.
func Call(t testing.TB, baseURL, procedure, token, body string) (string, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, baseURL+procedure, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connect-Protocol-Version", "1")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", procedure, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: read response: %v", procedure, err)
	}
	if resp.StatusCode == http.StatusOK {
		return "ok", out
	}
	var e struct {
		Code string `json:"code"`
	}
	if err := json.Unmarshal(out, &e); err != nil || e.Code == "" {
		return fmt.Sprintf("http_%d", resp.StatusCode), out
	}
	return e.Code, out
}

// EveryRoleEveryRPC calls every RPC of m with an empty request and a token of each role in
// auth.Roles (for every clinic, "*"), and with no token. A role the policy allows must not get
// permission_denied (invalid_argument for the empty request is expected, and so is any other
// answer); every other role must get permission_denied; no token must get unauthenticated.
// It returns the number of calls made.
func EveryRoleEveryRPC(t testing.TB, baseURL string, m Matrix, token Tokens) int {
	t.Helper()
	calls := 0
	tokens := map[string]string{}
	for _, r := range auth.Roles {
		tokens[r] = token([]string{r}, []string{auth.AllClinics})
	}
	for _, p := range Procedures(t, m) {
		if code, _ := Call(t, baseURL, p.Path, "", "{}"); code != "unauthenticated" {
			t.Errorf("%s without a token: %s, want unauthenticated", p.Path, code)
		}
		calls++
		for _, r := range auth.Roles {
			code, body := Call(t, baseURL, p.Path, tokens[r], "{}")
			calls++
			allowed := slices.Contains(m.Policy[p.Path], r)
			switch {
			case allowed && code == "permission_denied":
				t.Errorf("%s as %s (allowed by the policy): permission_denied: %s", p.Path, r, body)
			case !allowed && code != "permission_denied":
				t.Errorf("%s as %s (not in the policy): %s, want permission_denied", p.Path, r, code)
			case code == "internal" || code == "unknown" || strings.HasPrefix(code, "http_"):
				t.Errorf("%s as %s with an empty request: %s (%s), want a classified error", p.Path, r, code, body)
			}
		}
	}
	return calls
}

// Case is one cross-clinic probe: a request (JSON) about clinic B's data.
type Case struct {
	Procedure string
	Request   string
	// Role makes the calls (an allowed role; default admin).
	Role string
	// NotOK: clinic B's own token is not expected to succeed either (e.g. an id that only
	// exists at B, asked for in a way B's token gets a not_found for other reasons); the probe
	// then only checks clinic A's answer.
	NotOK bool
	// EmptyOK: clinic A's token may also get ok with an empty response ("{}"), for a list that
	// is filtered to the caller's clinics rather than refused.
	EmptyOK bool
	// Unscoped: the request names no clinic (a list over every clinic the caller sees). Clinic
	// A's token may get ok, but the response must not contain clinic B's id nor any of Markers
	// (ids of B's records); clinic B's token must get ok with one of them in the response
	// (unless NotOK), so the probe looks where B's data is.
	Unscoped bool
	Markers  []string
}

// ClinicScoped lists m's RPCs whose request names a clinic (a top-level clinic_id or
// clinic_ids field).
func ClinicScoped(t testing.TB, m Matrix) []string {
	t.Helper()
	var out []string
	for _, p := range Procedures(t, m) {
		f := p.Input.Fields()
		if f.ByName("clinic_id") != nil || f.ByName("clinic_ids") != nil {
			out = append(out, p.Path)
		}
	}
	return out
}

// OtherClinic runs each case in order: first with a token of the case's role for clinic A only,
// which must answer permission_denied or not_found (never data; or, when the case says EmptyOK,
// ok with an empty response; or, when it is Unscoped, a response without B's ids), then with
// the same role for clinic B, which must answer ok (so the request is one that would return or
// change B's data) unless the case says NotOK. Every RPC ClinicScoped lists must have a case
// naming clinic B (not Unscoped) or an entry in exempt saying why not.
func OtherClinic(t testing.TB, baseURL string, m Matrix, token Tokens, clinicA, clinicB string, cases []Case, exempt map[string]string) {
	t.Helper()
	covered := map[string]bool{}
	for _, c := range cases {
		if !c.Unscoped {
			covered[c.Procedure] = true
		}
	}
	for _, p := range ClinicScoped(t, m) {
		if !covered[p] && exempt[p] == "" {
			t.Errorf("%s takes a clinic but has no cross-clinic case (nor an exemption with its reason)", p)
		}
	}
	for _, c := range cases {
		role := c.Role
		if role == "" {
			role = auth.RoleAdmin
		}
		if !slices.Contains(m.Policy[c.Procedure], role) {
			t.Errorf("%s: case role %s is not allowed by the policy", c.Procedure, role)
			continue
		}
		markers := append([]string{clinicB}, c.Markers...)
		code, body := Call(t, baseURL, c.Procedure, token([]string{role}, []string{clinicA}), c.Request)
		emptyOK := c.EmptyOK && code == "ok" && strings.TrimSpace(string(body)) == "{}"
		switch {
		case c.Unscoped:
			if code != "ok" && code != "permission_denied" && code != "not_found" {
				t.Errorf("%s (no clinic) with a clinic-A token: %s, want ok, permission_denied or not_found: %s", c.Procedure, code, body)
			}
			for _, m := range markers {
				if strings.Contains(string(body), m) {
					t.Errorf("%s (no clinic) with a clinic-A token: the response holds clinic B's %s: %s", c.Procedure, m, body)
				}
			}
		case code != "permission_denied" && code != "not_found" && !emptyOK:
			t.Errorf("%s with a clinic-A token asking about clinic B: %s, want permission_denied or not_found: %s", c.Procedure, code, body)
		}
		if c.NotOK {
			continue
		}
		code, body = Call(t, baseURL, c.Procedure, token([]string{role}, []string{clinicB}), c.Request)
		if code != "ok" {
			t.Errorf("%s with clinic B's own token: %s, want ok (the probe must ask for data that exists): %s", c.Procedure, code, body)
		}
		if c.Unscoped && !slices.ContainsFunc(markers, func(m string) bool { return strings.Contains(string(body), m) }) {
			t.Errorf("%s (no clinic) with clinic B's own token: none of %v in the response, so the probe proves nothing: %s", c.Procedure, markers, body)
		}
	}
}
