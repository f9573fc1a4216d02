package validate

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
)

// services are the five Trellis services, each with an image, a compose service, a Deployment.
var services = []string{"intake", "scheduling", "billing", "notification", "dashboard"}

// repo returns the path of a file relative to the repository root.
func repo(parts ...string) string {
	return filepath.Join(append([]string{"..", ".."}, parts...)...)
}

func read(t *testing.T, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(repo(parts...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	exportedOnce sync.Once
	exported     map[string]bool
)

// exportedMetrics lists the trellis_* metric names the Go code of pkg/ and services/ defines
// (Name: "trellis_..." in collector options, or prometheus.NewDesc("trellis_...")), with the
// series names a counter or histogram produces.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	exportedOnce.Do(func() {
		exported = map[string]bool{}
		re := regexp.MustCompile(`(?:Name:\s*|NewDesc\(\s*)"(trellis_[a-z0-9_]+)"`)
		for _, root := range []string{repo("pkg"), repo("services")} {
			_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
					return nil
				}
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				for _, m := range re.FindAllStringSubmatch(string(b), -1) {
					n := m[1]
					exported[n] = true
					if strings.HasSuffix(n, "_seconds") || strings.HasSuffix(n, "_bytes") {
						for _, s := range []string{"_bucket", "_sum", "_count"} {
							exported[n+s] = true
						}
					}
				}
				return nil
			})
		}
	})
	if len(exported) == 0 {
		t.Fatal("found no trellis_* metric definitions in pkg/ or services/")
	}
	return exported
}

// otherMetrics are the series of the exporters and collectors the stack runs next to the
// services (Prometheus itself, Go/process collectors, postgres-exporter, prometheus-nats-exporter).
var otherMetricPrefixes = []string{"up", "go_", "process_", "pg_", "gnatsd_", "jetstream_"}

func checkMetricName(t *testing.T, where, name string) {
	t.Helper()
	if strings.HasPrefix(name, "trellis_") {
		if !exportedMetrics(t)[name] {
			t.Errorf("%s: metric %s is not exported by any service (known: %s)", where, name, strings.Join(sortedKeys(exportedMetrics(t)), ", "))
		}
		return
	}
	for _, p := range otherMetricPrefixes {
		if name == p || (strings.HasSuffix(p, "_") && strings.HasPrefix(name, p)) {
			return
		}
	}
	t.Errorf("%s: metric %s is neither a Trellis metric nor one of the exporters' (%v)", where, name, otherMetricPrefixes)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
