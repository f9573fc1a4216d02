package validate

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v2"
)

// dashboard is Grafana's dashboard JSON model as far as these dashboards use it; decoding is
// strict, so a misspelt key fails.
type dashboard struct {
	UID           string          `json:"uid"`
	Title         string          `json:"title"`
	Description   string          `json:"description"`
	Tags          []string        `json:"tags"`
	Timezone      string          `json:"timezone"`
	SchemaVersion int             `json:"schemaVersion"`
	Version       int             `json:"version"`
	Editable      bool            `json:"editable"`
	GraphTooltip  int             `json:"graphTooltip"`
	Refresh       string          `json:"refresh"`
	Time          json.RawMessage `json:"time"`
	Templating    json.RawMessage `json:"templating"`
	Annotations   json.RawMessage `json:"annotations"`
	Links         json.RawMessage `json:"links"`
	Panels        []panel         `json:"panels"`
}

type panel struct {
	ID          int             `json:"id"`
	Type        string          `json:"type"`
	Title       string          `json:"title"`
	Description string          `json:"description"`
	Datasource  *datasource     `json:"datasource"`
	GridPos     gridPos         `json:"gridPos"`
	Targets     []target        `json:"targets"`
	FieldConfig json.RawMessage `json:"fieldConfig"`
	Options     json.RawMessage `json:"options"`
	Collapsed   bool            `json:"collapsed"`
	Panels      []panel         `json:"panels"`
	Links       json.RawMessage `json:"links"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type gridPos struct{ X, Y, W, H int }

type target struct {
	Datasource   *datasource `json:"datasource"`
	Expr         string      `json:"expr"`
	LegendFormat string      `json:"legendFormat"`
	RefID        string      `json:"refId"`
}

var grafanaVar = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*(:[a-z]+)?\}?`)

// TestGrafanaDashboards parses every dashboard JSON, checks uids, layout and datasources against
// the provisioned ones, and parses every PromQL expression (Grafana variables substituted) with
// the Prometheus parser; the metrics they read must be exported.
func TestGrafanaDashboards(t *testing.T) {
	var prov struct {
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(read(t, "deploy", "compose", "grafana", "provisioning", "datasources", "datasources.yaml"), &prov); err != nil {
		t.Fatal(err)
	}
	dsUIDs := map[string]string{}
	for _, d := range prov.Datasources {
		dsUIDs[d.UID] = d.Type
	}
	files, _ := filepath.Glob(repo("deploy", "observability", "dashboards", "*.json"))
	if len(files) < 4 {
		t.Fatalf("want the four dashboards (services, events, infrastructure, business), found %d", len(files))
	}
	uids := map[string]string{}
	sawMetric := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&d); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		name := filepath.Base(f)
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: uid and title required", name)
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s share uid %s", name, other, d.UID)
		}
		uids[d.UID] = name
		ids := map[int]bool{}
		var walk func(ps []panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				if ids[p.ID] {
					t.Errorf("%s: panel id %d used twice", name, p.ID)
				}
				ids[p.ID] = true
				if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 {
					t.Errorf("%s: panel %q: gridPos %+v outside the 24-column grid", name, p.Title, p.GridPos)
				}
				walk(p.Panels)
				if p.Type == "row" {
					continue
				}
				if len(p.Targets) == 0 {
					t.Errorf("%s: panel %q has no query", name, p.Title)
				}
				for _, tg := range p.Targets {
					ds := tg.Datasource
					if ds == nil {
						ds = p.Datasource
					}
					if ds == nil || dsUIDs[ds.UID] != ds.Type {
						t.Errorf("%s: panel %q: datasource %+v is not a provisioned one %v", name, p.Title, ds, dsUIDs)
					}
					expr := grafanaVar.ReplaceAllStringFunc(tg.Expr, func(v string) string {
						if strings.Contains(v, "interval") {
							return "5m"
						}
						return ".*"
					})
					e, err := promParser.ParseExpr(expr)
					if err != nil {
						t.Errorf("%s: panel %q: %q: %v", name, p.Title, tg.Expr, err)
						continue
					}
					for _, m := range metricNames(e) {
						checkMetricName(t, name+": "+p.Title, m)
						sawMetric[m] = true
					}
				}
			}
		}
		walk(d.Panels)
	}
	// The event-flow views the operations brief asks for are all on a dashboard.
	for _, m := range []string{"trellis_events_published_total", "trellis_events_processed_total", "trellis_consumer_pending_messages",
		"trellis_outbox_backlog", "trellis_outbox_oldest_age_seconds", "trellis_dead_letters_total", "trellis_rpc_requests_total",
		"trellis_rpc_duration_seconds_bucket", "pg_up", "trellis_ready"} {
		if !sawMetric[m] {
			t.Errorf("no dashboard shows %s", m)
		}
	}
}

// TestOtelCollectorConfig: the collector receives OTLP and sends traces to Jaeger over OTLP.
func TestOtelCollectorConfig(t *testing.T) {
	var cfg struct {
		Receivers  map[string]any `yaml:"receivers"`
		Processors map[string]any `yaml:"processors"`
		Exporters  map[string]struct {
			Endpoint string `yaml:"endpoint"`
		} `yaml:"exporters"`
		Extensions map[string]any `yaml:"extensions"`
		Service    struct {
			Extensions []string       `yaml:"extensions"`
			Telemetry  map[string]any `yaml:"telemetry"`
			Pipelines  map[string]struct {
				Receivers  []string `yaml:"receivers"`
				Processors []string `yaml:"processors"`
				Exporters  []string `yaml:"exporters"`
			} `yaml:"pipelines"`
		} `yaml:"service"`
	}
	b := read(t, "deploy", "observability", "otel-collector.yaml")
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	p, ok := cfg.Service.Pipelines["traces"]
	if !ok {
		t.Fatal("no traces pipeline")
	}
	for _, r := range p.Receivers {
		if _, ok := cfg.Receivers[r]; !ok {
			t.Errorf("pipeline receiver %s not defined", r)
		}
	}
	for _, r := range p.Processors {
		if _, ok := cfg.Processors[r]; !ok {
			t.Errorf("pipeline processor %s not defined", r)
		}
	}
	var toJaeger bool
	for _, e := range p.Exporters {
		x, ok := cfg.Exporters[e]
		if !ok {
			t.Errorf("pipeline exporter %s not defined", e)
		}
		toJaeger = toJaeger || (strings.HasPrefix(e, "otlp") && strings.HasPrefix(x.Endpoint, "jaeger:4317"))
	}
	if !toJaeger {
		t.Error("the traces pipeline does not export to Jaeger over OTLP (jaeger:4317)")
	}
	for _, e := range cfg.Service.Extensions {
		if _, ok := cfg.Extensions[e]; !ok {
			t.Errorf("extension %s not defined", e)
		}
	}
}
