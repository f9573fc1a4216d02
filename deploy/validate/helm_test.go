package validate

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

const chartDir = "../helm/trellis"

// The NATS chart is a dependency fetched at install time (no network in CI, and it is not
// vendored), so the validation renders with it disabled and an external NATS URL.
func baseValues() map[string]any {
	return map[string]any{
		"nats":   map[string]any{"enabled": false},
		"config": map[string]any{"natsURL": "nats://nats.messaging:4222", "otlpEndpoint": "http://otel-collector.observability:4318"},
		"database": map[string]any{
			"host":        "postgres.databases.svc",
			"adminSecret": "trellis-db-admin",
		},
	}
}

func cnpgValues() map[string]any {
	return map[string]any{
		"nats":     map[string]any{"enabled": false},
		"config":   map[string]any{"natsURL": "nats://nats.messaging:4222"},
		"database": map[string]any{"cnpg": map[string]any{"enabled": true}},
	}
}

var kubeVersion = &chartutil.KubeVersion{Version: "v1.33.0", Major: "1", Minor: "33"}

// TestHelmLint is `helm lint` (the library it runs) on the chart.
func TestHelmLint(t *testing.T) {
	for name, vals := range map[string]map[string]any{"external database": baseValues(), "cnpg": cnpgValues()} {
		l := lint.AllWithKubeVersion(chartDir, vals, "trellis", kubeVersion)
		for _, m := range l.Messages {
			// The one expected finding: the NATS dependency is fetched at install time.
			if m.Severity == support.WarningSev && strings.Contains(m.Err.Error(), "missing these dependencies: nats") {
				continue
			}
			if m.Severity >= support.WarningSev {
				t.Errorf("%s: %s", name, m)
			} else {
				t.Logf("%s: %s", name, m)
			}
		}
	}
}

// render is `helm template`: the chart rendered with the values, split into documents.
func render(t *testing.T, vals map[string]any) (map[string]string, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := chartutil.ProcessDependenciesWithMerge(ch, vals); err != nil {
		t.Fatal(err)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = *kubeVersion
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: "prod", Namespace: "trellis", IsInstall: true}, caps)
	if err != nil {
		t.Fatal(err)
	}
	return engine.Render(ch, rv)
}

// cnpgCluster is the part of CloudNativePG's postgresql.cnpg.io/v1 Cluster the chart sets (the
// operator's Go module is not published to the module proxy); strict decoding keeps the
// template to these fields.
type cnpgCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Instances             int    `json:"instances"`
		ImageName             string `json:"imageName"`
		EnableSuperuserAccess bool   `json:"enableSuperuserAccess"`
		PrimaryUpdateStrategy string `json:"primaryUpdateStrategy"`
		PostgreSQL            struct {
			Parameters map[string]string `json:"parameters"`
		} `json:"postgresql"`
		Bootstrap struct {
			InitDB struct {
				Database string `json:"database"`
				Owner    string `json:"owner"`
			} `json:"initdb"`
		} `json:"bootstrap"`
		Storage struct {
			Size         string `json:"size"`
			StorageClass string `json:"storageClass,omitempty"`
		} `json:"storage"`
		WalStorage struct {
			Size         string `json:"size"`
			StorageClass string `json:"storageClass,omitempty"`
		} `json:"walStorage"`
		Resources  corev1.ResourceRequirements `json:"resources"`
		Monitoring struct {
			EnablePodMonitor bool `json:"enablePodMonitor"`
		} `json:"monitoring"`
		Backup map[string]any `json:"backup,omitempty"`
	} `json:"spec"`
}

type objects struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	pdbs        map[string]*policyv1.PodDisruptionBudget
	hpas        map[string]*autoscalingv2.HorizontalPodAutoscaler
	netpols     map[string]*networkingv1.NetworkPolicy
	jobs        map[string]*batchv1.Job
	configMaps  map[string]*corev1.ConfigMap
	monitors    []*monitoringv1.ServiceMonitor
	rules       []*monitoringv1.PrometheusRule
	clusters    []*cnpgCluster
}

// decodeAll decodes every rendered document strictly (unknown or misspelt fields fail) into its
// Kubernetes API type.
func decodeAll(t *testing.T, files map[string]string) objects {
	t.Helper()
	o := objects{deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		netpols: map[string]*networkingv1.NetworkPolicy{}, jobs: map[string]*batchv1.Job{}, configMaps: map[string]*corev1.ConfigMap{}}
	names := sortedKeys(files)
	for _, file := range names {
		if strings.HasSuffix(file, "NOTES.txt") {
			continue
		}
		docs := releaseutil.SplitManifests(files[file])
		keys := sortedKeys(docs)
		for _, k := range keys {
			doc := docs[k]
			var meta metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Errorf("%s: %v\n%s", file, err, doc)
				continue
			}
			if meta.Kind == "" {
				continue
			}
			var obj any
			switch meta.APIVersion + "/" + meta.Kind {
			case "apps/v1/Deployment":
				obj = &appsv1.Deployment{}
			case "v1/Service":
				obj = &corev1.Service{}
			case "v1/ConfigMap":
				obj = &corev1.ConfigMap{}
			case "policy/v1/PodDisruptionBudget":
				obj = &policyv1.PodDisruptionBudget{}
			case "autoscaling/v2/HorizontalPodAutoscaler":
				obj = &autoscalingv2.HorizontalPodAutoscaler{}
			case "networking.k8s.io/v1/NetworkPolicy":
				obj = &networkingv1.NetworkPolicy{}
			case "batch/v1/Job":
				obj = &batchv1.Job{}
			case "monitoring.coreos.com/v1/ServiceMonitor":
				obj = &monitoringv1.ServiceMonitor{}
			case "monitoring.coreos.com/v1/PrometheusRule":
				obj = &monitoringv1.PrometheusRule{}
			case "postgresql.cnpg.io/v1/Cluster":
				obj = &cnpgCluster{}
			default:
				t.Errorf("%s: unexpected kind %s/%s", file, meta.APIVersion, meta.Kind)
				continue
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Errorf("%s: %s: %v", file, meta.Kind, err)
				continue
			}
			switch x := obj.(type) {
			case *appsv1.Deployment:
				o.deployments[x.Name] = x
			case *corev1.Service:
				o.services[x.Name] = x
			case *corev1.ConfigMap:
				o.configMaps[x.Name] = x
			case *policyv1.PodDisruptionBudget:
				o.pdbs[x.Name] = x
			case *autoscalingv2.HorizontalPodAutoscaler:
				o.hpas[x.Name] = x
			case *networkingv1.NetworkPolicy:
				o.netpols[x.Name] = x
			case *batchv1.Job:
				o.jobs[x.Name] = x
			case *monitoringv1.ServiceMonitor:
				o.monitors = append(o.monitors, x)
			case *monitoringv1.PrometheusRule:
				o.rules = append(o.rules, x)
			case *cnpgCluster:
				o.clusters = append(o.clusters, x)
			}
		}
	}
	return o
}

func envOf(c corev1.Container) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		m[e.Name] = e
	}
	return m
}

// TestHelmTemplate renders the chart (`helm template`) with an external database and checks
// each service's objects: Deployment with probes, resources and a locked-down security context,
// Service, PodDisruptionBudget, HorizontalPodAutoscaler, NetworkPolicy, migration hook Job; plus
// the provision Job, ServiceMonitor and PrometheusRule.
func TestHelmTemplate(t *testing.T) {
	files, err := render(t, baseValues())
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	o := decodeAll(t, files)
	for _, svc := range services {
		name := "prod-trellis-" + svc
		d, ok := o.deployments[name]
		if !ok {
			t.Errorf("no Deployment %s (have %v)", name, sortedKeys(o.deployments))
			continue
		}
		ps := d.Spec.Template.Spec
		if len(ps.Containers) != 1 {
			t.Fatalf("%s: %d containers", name, len(ps.Containers))
		}
		c := ps.Containers[0]
		if c.Image != "ghcr.io/trellis-health/trellis/"+svc+":0.1.0" {
			t.Errorf("%s: image %s", name, c.Image)
		}
		if !slices.Equal(c.Args, []string{"serve"}) {
			t.Errorf("%s: args %v", name, c.Args)
		}
		if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
			t.Errorf("%s: liveness probe must GET /healthz", name)
		}
		if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("%s: readiness probe must GET /readyz", name)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: resources %+v: want CPU requests and a memory limit", name, c.Resources)
		}
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s: container securityContext %+v: want read-only root fs, no privilege escalation, all capabilities dropped", name, sc)
		}
		psc := ps.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
			t.Errorf("%s: pod securityContext must run as a non-root uid", name)
		}
		env := envOf(c)
		if e := env["DATABASE_URL"]; !strings.HasPrefix(e.Value, "postgres://"+svc+":$(DB_PASSWORD)@postgres.databases.svc:5432/trellis") {
			t.Errorf("%s: DATABASE_URL %q", name, e.Value)
		}
		if e := env["DB_PASSWORD"]; e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Key != svc {
			t.Errorf("%s: DB_PASSWORD must come from a Secret (key %s)", name, svc)
		}
		if env["NATS_STREAM_REPLICAS"].Value != "3" || env["DB_SCHEMA"].Value != svc || env["HTTP_ADDR"].Value == "" {
			t.Errorf("%s: env %v", name, env)
		}
		// Every secret-looking setting comes from a Secret, never a literal value.
		for k, e := range env {
			if (strings.Contains(k, "PASSWORD") || strings.Contains(k, "TOKEN") || strings.HasSuffix(k, "_KEY") || strings.Contains(k, "SECRET")) && e.Value != "" {
				t.Errorf("%s: %s is a literal value; take it from a Secret (secretEnv)", name, k)
			}
		}
		if _, ok := o.services[name]; !ok {
			t.Errorf("no Service %s", name)
		}
		if p, ok := o.pdbs[name]; !ok || p.Spec.MinAvailable == nil {
			t.Errorf("no PodDisruptionBudget with minAvailable for %s", name)
		}
		if h, ok := o.hpas[name]; !ok || h.Spec.ScaleTargetRef.Name != name || h.Spec.MaxReplicas < 2 {
			t.Errorf("no HorizontalPodAutoscaler for %s", name)
		}
		if n, ok := o.netpols[name]; !ok || len(n.Spec.Ingress) == 0 || len(n.Spec.PolicyTypes) != 2 {
			t.Errorf("no NetworkPolicy (ingress and egress) for %s", name)
		}
		j, ok := o.jobs[name+"-migrate"]
		if !ok {
			t.Errorf("no migration Job %s-migrate", name)
			continue
		}
		if hook := j.Annotations["helm.sh/hook"]; !strings.Contains(hook, "pre-upgrade") {
			t.Errorf("%s-migrate: hook %q, want pre-upgrade", name, hook)
		}
		mc := j.Spec.Template.Spec.Containers[0]
		if !slices.Equal(mc.Args, []string{"migrate"}) || mc.Image != c.Image {
			t.Errorf("%s-migrate: runs %s %v", name, mc.Image, mc.Args)
		}
	}
	if d := o.deployments["prod-trellis-dashboard"]; d != nil {
		if u := envOf(d.Spec.Template.Spec.Containers[0])["BILLING_URL"].Value; u != "http://prod-trellis-billing:8083" {
			t.Errorf("dashboard BILLING_URL %q, want the release's billing Service", u)
		}
		if n := o.netpols["prod-trellis-dashboard"]; n == nil || len(n.Spec.Ingress[0].From) < 3 {
			t.Error("dashboard NetworkPolicy must also admit the ingress controller's namespace")
		}
	}
	prov, ok := o.jobs["prod-trellis-provision"]
	if !ok {
		t.Fatalf("no provision Job (jobs: %v)", sortedKeys(o.jobs))
	}
	if w := prov.Annotations["helm.sh/hook-weight"]; w != "-10" {
		t.Errorf("provision Job weight %q: must run before the migrations (weight 0)", w)
	}
	if cm, ok := o.configMaps["prod-trellis-provision"]; !ok || !strings.Contains(cm.Data["provision.sh"], "CREATE SCHEMA IF NOT EXISTS") {
		t.Error("provision ConfigMap does not carry provision.sh")
	}
	if len(o.monitors) != 1 || o.monitors[0].Spec.JobLabel != "app.kubernetes.io/part-of" {
		t.Errorf("want one ServiceMonitor with job label app.kubernetes.io/part-of (job=\"trellis\", as the alert rules expect), got %d", len(o.monitors))
	}
	if len(o.rules) != 1 {
		t.Fatalf("want one PrometheusRule, got %d", len(o.rules))
	}
	var alerts []string
	for _, g := range o.rules[0].Spec.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
		}
	}
	if !slices.Contains(alerts, "TrellisOutboxStale") || !slices.Contains(alerts, "TrellisNotReady") {
		t.Errorf("PrometheusRule alerts %v", alerts)
	}
	if len(o.clusters) != 0 {
		t.Error("a CloudNativePG Cluster rendered with an external database")
	}
	cm, ok := o.configMaps["prod-trellis-dashboards"]
	if !ok || cm.Labels["grafana_dashboard"] != "1" {
		t.Fatal("no dashboards ConfigMap labelled for Grafana's sidecar")
	}
	for _, f := range []string{"trellis-services.json", "trellis-events.json", "trellis-infrastructure.json", "trellis-business.json"} {
		if !bytes.Equal([]byte(cm.Data[f]), bytes.TrimRight(read(t, "deploy", "observability", "dashboards", f), "\n")) {
			t.Errorf("dashboards ConfigMap: %s differs from deploy/observability/dashboards/%s (copy it into deploy/helm/trellis/files/dashboards)", f, f)
		}
	}
}

// TestHelmDashboardsJaegerURL: the chart points the dashboards' trace links at the Jaeger given.
func TestHelmDashboardsJaegerURL(t *testing.T) {
	vals := baseValues()
	vals["grafanaDashboards"] = map[string]any{"jaegerURL": "https://jaeger.example.org"}
	files, err := render(t, vals)
	if err != nil {
		t.Fatal(err)
	}
	cm := decodeAll(t, files).configMaps["prod-trellis-dashboards"]
	if cm == nil {
		t.Fatal("no dashboards ConfigMap")
	}
	for f, d := range cm.Data {
		if strings.Contains(d, "127.0.0.1:16686") || !strings.Contains(d, "https://jaeger.example.org") {
			t.Errorf("%s: trace links not pointed at the Jaeger given", f)
		}
	}
}

// TestHelmTemplateCNPG: with database.cnpg.enabled the chart renders a CloudNativePG Cluster and
// points the services and the provision Job at it.
func TestHelmTemplateCNPG(t *testing.T) {
	files, err := render(t, cnpgValues())
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	o := decodeAll(t, files)
	if len(o.clusters) != 1 || o.clusters[0].Spec.Instances != 3 || !o.clusters[0].Spec.EnableSuperuserAccess {
		t.Fatalf("want one 3-instance CNPG Cluster with superuser access, got %+v", o.clusters)
	}
	host := o.clusters[0].Name + "-rw"
	d := o.deployments["prod-trellis-billing"]
	if d == nil {
		t.Fatal("no billing Deployment")
	}
	if u := envOf(d.Spec.Template.Spec.Containers[0])["DATABASE_URL"].Value; !strings.Contains(u, "@"+host+":5432/") {
		t.Errorf("billing DATABASE_URL %q does not point at %s", u, host)
	}
	prov := o.jobs["prod-trellis-provision"]
	if prov == nil {
		t.Fatal("no provision Job")
	}
	pe := envOf(prov.Spec.Template.Spec.Containers[0])
	if pe["PGHOST"].Value != host || pe["PGPASSWORD"].ValueFrom.SecretKeyRef.Name != o.clusters[0].Name+"-superuser" {
		t.Errorf("provision Job connects to %q with %+v", pe["PGHOST"].Value, pe["PGPASSWORD"].ValueFrom)
	}
}

// TestHelmTemplateRefusesIncompleteValues: a missing database or NATS setting fails the render
// with a message naming the value.
func TestHelmTemplateRefusesIncompleteValues(t *testing.T) {
	cases := map[string]struct {
		vals map[string]any
		want string
	}{
		"no database": {map[string]any{"nats": map[string]any{"enabled": false}, "config": map[string]any{"natsURL": "nats://x:4222"}},
			"database.host is required"},
		"no nats": {map[string]any{"nats": map[string]any{"enabled": false}, "database": map[string]any{"host": "pg", "adminSecret": "a"}},
			"config.natsURL is required"},
	}
	for name, c := range cases {
		_, err := render(t, c.vals)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: want an error with %q, got %v", name, c.want, err)
		}
	}
}

// TestHelmNATSValues: the values handed to the official NATS chart ask for a 3-server cluster,
// JetStream on volumes, and sync_interval: always.
func TestHelmNATSValues(t *testing.T) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	var dep bool
	for _, d := range ch.Metadata.Dependencies {
		dep = dep || (d.Name == "nats" && d.Condition == "nats.enabled" && strings.Contains(d.Repository, "nats-io"))
	}
	if !dep {
		t.Error("Chart.yaml does not declare the official NATS chart as a dependency (condition nats.enabled)")
	}
	get := func(path string) any {
		var cur any = ch.Values
		for _, p := range strings.Split(path, ".") {
			m, ok := cur.(map[string]any)
			if !ok {
				return nil
			}
			cur = m[p]
		}
		return cur
	}
	for path, want := range map[string]any{
		"nats.enabled":                              true,
		"nats.config.cluster.enabled":               true,
		"nats.config.cluster.replicas":              float64(3),
		"nats.config.jetstream.enabled":             true,
		"nats.config.jetstream.merge.sync_interval": "always",
		"config.streamReplicas":                     float64(3),
	} {
		got := get(path)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("values %s = %v, want %v", path, got, want)
		}
	}
	keys := []string{}
	for k := range ch.Values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("top-level values: %v", keys)
}

// TestHelmTemplateDatabaseURLsFromSecret: with database.urlsSecret each service reads its whole
// DATABASE_URL from the Secret, and no host is needed.
func TestHelmTemplateDatabaseURLsFromSecret(t *testing.T) {
	files, err := render(t, map[string]any{
		"nats":     map[string]any{"enabled": false},
		"config":   map[string]any{"natsURL": "nats://nats.messaging:4222"},
		"database": map[string]any{"urlsSecret": "trellis-db-urls", "provision": map[string]any{"enabled": false}},
	})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	o := decodeAll(t, files)
	for _, svc := range services {
		d := o.deployments["prod-trellis-"+svc]
		if d == nil {
			t.Fatalf("no Deployment for %s", svc)
		}
		env := envOf(d.Spec.Template.Spec.Containers[0])
		ref := env["DATABASE_URL"].ValueFrom
		if ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "trellis-db-urls" || ref.SecretKeyRef.Key != svc {
			t.Errorf("%s: DATABASE_URL %+v, want Secret trellis-db-urls key %s", svc, env["DATABASE_URL"], svc)
		}
		if _, ok := env["DB_PASSWORD"]; ok {
			t.Errorf("%s: DB_PASSWORD set although the URL comes whole from a Secret", svc)
		}
	}
	if _, ok := o.jobs["prod-trellis-provision"]; ok {
		t.Error("provision Job rendered although database.provision.enabled is false")
	}
}
