package validate

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// composeEnv is a complete .env: every required secret set (the file refuses to start without).
func composeEnv(t *testing.T) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, line := range strings.Split(string(read(t, "deploy", "compose", ".env.example")), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	return env
}

func loadCompose(t *testing.T, env map[string]string) (*types.Project, error) {
	t.Helper()
	dir, err := filepath.Abs(repo("deploy", "compose"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "compose.yaml")
	content, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: file, Content: content}},
		Environment: env,
	}, func(o *loader.Options) { o.SetProjectName("trellis", true); o.ResolvePaths = true })
}

// TestCompose loads deploy/compose/compose.yaml with the Compose specification's reference
// loader (schema validation, interpolation, consistency checks), then checks the stack's shape.
func TestCompose(t *testing.T) {
	p, err := loadCompose(t, composeEnv(t))
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	for _, want := range []string{"postgres", "provision", "nats-1", "nats-2", "nats-3", "mailpit", "otel-collector",
		"jaeger", "prometheus", "grafana", "nats-exporter", "postgres-exporter"} {
		if _, ok := p.Services[want]; !ok {
			t.Errorf("no service %s", want)
		}
	}

	// Stages of the one Dockerfile, for the build targets.
	df := read(t, "deploy", "images", "Dockerfile")
	ast, err := parser.Parse(bytes.NewReader(df))
	if err != nil {
		t.Fatal(err)
	}
	stages, _, err := instructions.Parse(ast.AST, nil)
	if err != nil {
		t.Fatal(err)
	}
	var stageNames []string
	for _, s := range stages {
		stageNames = append(stageNames, s.Name)
	}

	ports := map[string]string{}
	for name, s := range p.Services {
		// Every long-running service has a healthcheck, except the two images without any
		// shell or probe binary (collector, Jaeger), which others wait for as "started".
		oneShot := s.Restart == "no"
		if !oneShot && s.HealthCheck == nil && name != "otel-collector" && name != "jaeger" && !strings.HasSuffix(name, "-exporter") {
			t.Errorf("%s: no healthcheck", name)
		}
		for dep, d := range s.DependsOn {
			target, ok := p.Services[dep]
			if !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
				continue
			}
			switch d.Condition {
			case types.ServiceConditionHealthy:
				if target.HealthCheck == nil {
					t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
				}
			case types.ServiceConditionCompletedSuccessfully:
				if target.Restart != "no" {
					t.Errorf("%s waits for %s to complete, but %s restarts", name, dep, dep)
				}
			case types.ServiceConditionStarted:
			default:
				t.Errorf("%s -> %s: condition %q", name, dep, d.Condition)
			}
		}
		for _, port := range s.Ports {
			key := port.HostIP + ":" + port.Published + "/" + port.Protocol
			if other, dup := ports[key]; dup {
				t.Errorf("host port %s published by %s and %s", key, other, name)
			}
			ports[key] = name
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes %s on %q: publish on 127.0.0.1 only (a reverse proxy fronts the host)", name, port.Published, port.HostIP)
			}
		}
	}

	for _, svc := range services {
		s, ok := p.Services[svc]
		if !ok {
			t.Errorf("no service %s", svc)
			continue
		}
		m, ok := p.Services[svc+"-migrate"]
		if !ok {
			t.Errorf("no one-shot %s-migrate", svc)
			continue
		}
		// Images come from deploy/images/Dockerfile, target = the service.
		for _, c := range []types.ServiceConfig{s, m} {
			if c.Build == nil || !strings.HasSuffix(c.Build.Dockerfile, "deploy/images/Dockerfile") || c.Build.Target != svc {
				t.Errorf("%s: build %+v: want deploy/images/Dockerfile, target %s", c.Name, c.Build, svc)
			} else if !slices.Contains(stageNames, c.Build.Target) {
				t.Errorf("%s: target %s is not a stage of deploy/images/Dockerfile", c.Name, c.Build.Target)
			}
			if c.Image != s.Image {
				t.Errorf("%s: image %s, want the service's %s", c.Name, c.Image, s.Image)
			}
			if !c.ReadOnly || c.User != "65532:65532" {
				t.Errorf("%s: read_only %v user %q: want a read-only root fs and the image's non-root user", c.Name, c.ReadOnly, c.User)
			}
		}
		if got := strings.Join(m.Command, " "); got != "migrate" {
			t.Errorf("%s-migrate runs %q, want migrate", svc, got)
		}
		if d, ok := s.DependsOn[svc+"-migrate"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s must wait for %s-migrate to complete", svc, svc)
		}
		if d, ok := m.DependsOn["provision"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s-migrate must wait for provision to complete", svc)
		}
		env := s.Environment
		for _, k := range []string{"HTTP_ADDR", "DATABASE_URL", "DB_SCHEMA", "NATS_URL", "NATS_STREAM_REPLICAS", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
			if v, ok := env[k]; !ok || v == nil || *v == "" {
				t.Errorf("%s: %s not set", svc, k)
			}
		}
		if v := env["DB_SCHEMA"]; v == nil || *v != svc {
			t.Errorf("%s: DB_SCHEMA %v", svc, v)
		}
		if v := env["NATS_STREAM_REPLICAS"]; v == nil || *v != "3" {
			t.Errorf("%s: NATS_STREAM_REPLICAS %v, want 3 (R3 on the 3-node cluster)", svc, v)
		}
		if v := env["DATABASE_URL"]; v == nil || !strings.HasPrefix(*v, "postgres://"+svc+":") {
			t.Errorf("%s: DATABASE_URL must use the service's own role", svc)
		}
		if s.HealthCheck == nil || len(s.HealthCheck.Test) < 2 || s.HealthCheck.Test[1] != "/healthcheck" {
			t.Errorf("%s: healthcheck %+v: want the image's /healthcheck probe", svc, s.HealthCheck)
		}
		for _, n := range []string{"nats-1", "nats-2", "nats-3"} {
			if d, ok := s.DependsOn[n]; !ok || d.Condition != types.ServiceConditionHealthy {
				t.Errorf("%s must wait for %s to be healthy", svc, n)
			}
		}
	}

	// Mounted configuration files exist.
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s mounts %s: %v", name, v.Source, err)
				}
			}
		}
	}
}

// TestComposeRequiresSecrets: without the .env, compose refuses to start and names the variable.
func TestComposeRequiresSecrets(t *testing.T) {
	env := composeEnv(t)
	delete(env, "BILLING_DB_PASSWORD")
	_, err := loadCompose(t, env)
	if err == nil || !strings.Contains(err.Error(), "BILLING_DB_PASSWORD") {
		t.Fatalf("want an error naming BILLING_DB_PASSWORD, got %v", err)
	}
}

// TestNATSConfig: the cluster config every NATS server of the compose stack reads.
func TestNATSConfig(t *testing.T) {
	conf := string(read(t, "deploy", "compose", "nats", "nats.conf"))
	for _, want := range []string{"sync_interval: always", "jetstream {", "cluster {", "nats-route://nats-1:6222",
		"nats-route://nats-2:6222", "nats-route://nats-3:6222", "server_name: $NATS_SERVER_NAME", "http: 0.0.0.0:8222"} {
		if !strings.Contains(conf, want) {
			t.Errorf("nats.conf lacks %q", want)
		}
	}
}

// TestProvisionScript: compose mounts the Helm chart's provisioning script (one copy), and it
// provisions every service.
func TestProvisionScript(t *testing.T) {
	script := read(t, "deploy", "helm", "trellis", "files", "provision.sh")
	if compose := string(read(t, "deploy", "compose", "compose.yaml")); !strings.Contains(compose, "../helm/trellis/files/provision.sh:/provision.sh:ro") {
		t.Error("compose does not mount deploy/helm/trellis/files/provision.sh")
	}
	for _, svc := range services {
		if !strings.Contains(string(script), svc) {
			t.Errorf("provision.sh does not provision %s", svc)
		}
	}
}
