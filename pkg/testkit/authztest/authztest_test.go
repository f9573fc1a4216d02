package authztest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	// Every service's API registers its descriptors.
	_ "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	_ "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	_ "github.com/trellis-health/trellis/proto/gen/trellis/notification/v1"
	_ "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
)

// TestMatrixCoversEveryRPC: the role x RPC matrix of docs/security.md has a row for every RPC
// of every trellis.* proto service, and no row for an RPC that does not exist. (Each service's
// TestAuthzMatrix checks that its rows are its policy.)
func TestMatrixCoversEveryRPC(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(RepoRoot(t), DocPath))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Za-z]+Service/[A-Za-z]+)` \\|").FindAllStringSubmatch(string(raw), -1) {
		rows[m[1]] = true
	}
	apis := APIServices()
	if len(apis) < 8 {
		t.Fatalf("only %d API services linked in: %v", len(apis), apis)
	}
	exists := map[string]bool{}
	for _, api := range apis {
		for _, p := range Procedures(t, Matrix{APIs: []string{api}}) {
			name := p.Path[strings.LastIndex(p.Path, ".")+1:]
			exists[name] = true
			if !rows[name] {
				t.Errorf("%s has no row in the matrix of %s: add its service's section (authztest.CheckDoc)", p.Path, DocPath)
			}
		}
	}
	for r := range rows {
		if !exists[r] {
			t.Errorf("%s lists %s, which is not an RPC", DocPath, r)
		}
	}
}

func TestTableAndPolicyChecks(t *testing.T) {
	m := Matrix{Service: "notification", APIs: []string{"trellis.notification.v1.NotificationService"}, Policy: map[string][]string{
		"/trellis.notification.v1.NotificationService/ListMessages": {"admin", "clinician"},
	}}
	table := Table(t, m)
	if !strings.Contains(table, "| `NotificationService/ListMessages` | ✓ |   |   | ✓ |   |   |\n") ||
		!strings.Contains(table, "| `NotificationService/SaveTemplate` |   |   |   |   |   |   |\n") {
		t.Fatalf("table:\n%s", table)
	}
	if got := len(ClinicScoped(t, m)); got != 4 {
		t.Errorf("clinic-scoped notification RPCs = %d, want 4", got)
	}
}
