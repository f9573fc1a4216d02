package validate

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// serviceEnv lists the environment variables a service reads: pkg/service.Base's and those of
// its own config (env:"..." tags in services/<svc>/cmd/<svc>, with a nested struct's prefix tag
// applied where one is used), plus the OpenTelemetry SDK's own.
func serviceEnv(t *testing.T, svc string) map[string]bool {
	t.Helper()
	tag := regexp.MustCompile("env:\"([A-Z0-9_]+)\"")
	prefix := regexp.MustCompile("prefix:\"([A-Z0-9_]+)\"")
	known := map[string]bool{"OTEL_BSP_SCHEDULE_DELAY": true, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": true}
	var prefixes []string
	var names []string
	for _, dir := range []string{repo("pkg", "service"), repo("services", svc, "cmd", svc)} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range tag.FindAllStringSubmatch(string(b), -1) {
				names = append(names, m[1])
			}
			for _, m := range prefix.FindAllStringSubmatch(string(b), -1) {
				prefixes = append(prefixes, m[1])
			}
		}
	}
	for _, n := range names {
		known[n] = true
		for _, p := range prefixes {
			known[p+n] = true
		}
	}
	if !known["DATABASE_URL"] || !known["HTTP_ADDR"] {
		t.Fatalf("%s: could not read its configuration variables (found %v)", svc, sortedKeys(known))
	}
	return known
}

// TestDeploymentsSetOnlyVariablesTheServicesRead: a misspelt variable in compose or the chart
// would be ignored silently by the service (and its default used): every variable set must be
// one the service reads. DB_PASSWORD is only interpolated into DATABASE_URL by Kubernetes.
func TestDeploymentsSetOnlyVariablesTheServicesRead(t *testing.T) {
	p, err := loadCompose(t, composeEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	files, err := render(t, baseValues())
	if err != nil {
		t.Fatal(err)
	}
	o := decodeAll(t, files)
	for _, svc := range services {
		known := serviceEnv(t, svc)
		for _, name := range []string{svc, svc + "-migrate"} {
			for k := range p.Services[name].Environment {
				if !known[k] {
					t.Errorf("compose %s sets %s, which %s does not read", name, k, svc)
				}
			}
		}
		d := o.deployments["prod-trellis-"+svc]
		if d == nil {
			t.Fatalf("no Deployment for %s", svc)
		}
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			if !known[e.Name] && e.Name != "DB_PASSWORD" {
				t.Errorf("helm %s sets %s, which %s does not read", svc, e.Name, svc)
			}
		}
	}
}
