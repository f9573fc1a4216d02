package validate

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
	"go.yaml.in/yaml/v2"
)

var promParser = parser.NewParser(parser.Options{})

// TestAlertRules parses deploy/observability/alerts.yaml with Prometheus' rule parser (strict:
// unknown fields fail), then checks every rule: the metrics it reads are exported, it has a
// severity, a summary, and a runbook_url whose page exists in docs/runbooks/.
func TestAlertRules(t *testing.T) {
	file := repo("deploy", "observability", "alerts.yaml")
	groups, errs := rulefmt.ParseFile(file, false, model.UTF8Validation, promParser, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if groups == nil {
		t.FailNow()
	}
	var names []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a recording rule %s: keep recording rules elsewhere", g.Name, r.Record)
				continue
			}
			names = append(names, r.Alert)
			expr, err := promParser.ParseExpr(r.Expr)
			if err != nil {
				t.Errorf("%s: %v", r.Alert, err)
				continue
			}
			for _, name := range metricNames(expr) {
				checkMetricName(t, r.Alert, name)
			}
			if s := r.Labels["severity"]; !slices.Contains([]string{"critical", "warning", "info"}, s) {
				t.Errorf("%s: severity %q, want critical, warning or info", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: needs a summary and a description", r.Alert)
			}
			u := r.Annotations["runbook_url"]
			if !strings.HasSuffix(u, "/docs/runbooks/"+r.Alert+".md") {
				t.Errorf("%s: runbook_url %q, want .../docs/runbooks/%s.md", r.Alert, u, r.Alert)
			} else if _, err := os.Stat(repo("docs", "runbooks", path.Base(u))); err != nil {
				t.Errorf("%s: runbook missing: %v", r.Alert, err)
			}
		}
	}
	// Each alert the operations brief asks for.
	for _, want := range []string{"TrellisOutboxStale", "TrellisConsumerLagGrowing", "TrellisDeadLetters",
		"TrellisHighErrorRate", "TrellisNotReady", "TrellisAuthorizationsExhausted"} {
		if !slices.Contains(names, want) {
			t.Errorf("no alert %s", want)
		}
	}
	// Every runbook page belongs to an alert (stale pages mislead at 3 a.m.).
	pages, _ := filepath.Glob(repo("docs", "runbooks", "Trellis*.md"))
	for _, p := range pages {
		if a := strings.TrimSuffix(filepath.Base(p), ".md"); !slices.Contains(names, a) {
			t.Errorf("docs/runbooks/%s.md has no alert", a)
		}
	}
	// The Helm chart ships the same rules as a PrometheusRule.
	if !bytes.Equal(read(t, "deploy", "observability", "alerts.yaml"), read(t, "deploy", "helm", "trellis", "files", "alerts.yaml")) {
		t.Error("deploy/helm/trellis/files/alerts.yaml differs from deploy/observability/alerts.yaml: copy it again")
	}
}

func metricNames(e parser.Expr) []string {
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			if name == "" {
				for _, m := range vs.LabelMatchers {
					if m.Name == model.MetricNameLabel {
						name = m.Value
					}
				}
			}
			if name != "" {
				out = append(out, name)
			}
		}
		return nil
	})
	return out
}

// ruleTests is the file format of `promtool test rules` (the parts used here).
type ruleTests struct {
	RuleFiles          []string       `yaml:"rule_files"`
	EvaluationInterval model.Duration `yaml:"evaluation_interval"`
	Tests              []struct {
		Name        string         `yaml:"name"`
		Interval    model.Duration `yaml:"interval"`
		InputSeries []struct {
			Series string `yaml:"series"`
			Values string `yaml:"values"`
		} `yaml:"input_series"`
		AlertRuleTests []struct {
			EvalTime  model.Duration `yaml:"eval_time"`
			Alertname string         `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels      map[string]string `yaml:"exp_labels"`
				ExpAnnotations map[string]string `yaml:"exp_annotations"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// TestAlertRuleUnitTests runs deploy/observability/alerts_test.yaml the way `promtool test rules`
// does: load the input series, evaluate every rule group at each evaluation interval with the
// Prometheus rule engine, and compare the firing alerts' labels at each eval_time. Annotations
// are expanded and must not fail, but are not compared (promtool compares them as well, so a run
// there needs exp_annotations). Every alert must be tested both firing and silent.
func TestAlertRuleUnitTests(t *testing.T) {
	var rt ruleTests
	if err := yaml.UnmarshalStrict(read(t, "deploy", "observability", "alerts_test.yaml"), &rt); err != nil {
		t.Fatalf("alerts_test.yaml: %v", err)
	}
	evalInterval := time.Duration(rt.EvaluationInterval)
	if evalInterval == 0 {
		evalInterval = time.Minute
	}
	var files []string
	for _, f := range rt.RuleFiles {
		files = append(files, repo("deploy", "observability", f))
	}
	firing, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range rt.Tests {
		t.Run(tc.Name, func(t *testing.T) {
			interval := time.Duration(tc.Interval)
			if interval == 0 {
				interval = time.Minute
			}
			var load strings.Builder
			fmt.Fprintf(&load, "load %s\n", model.Duration(interval))
			for _, s := range tc.InputSeries {
				fmt.Fprintf(&load, "  %s %s\n", s.Series, s.Values)
			}
			suite, err := promqltest.NewLazyLoader(load.String(), promqltest.LazyLoaderOpts{
				EnableAtModifier: true, EnableNegativeOffset: true, Parser: promParser})
			if err != nil {
				t.Fatalf("input series: %v", err)
			}
			defer suite.Close()
			suite.SubqueryInterval = evalInterval
			m := rules.NewManager(&rules.ManagerOptions{
				QueryFunc:    rules.EngineQueryFunc(suite.QueryEngine(), suite.Storage()),
				AppendableV2: suite.Storage(),
				Context:      context.Background(),
				NotifyFunc:   func(context.Context, string, ...*rules.Alert) {},
				Logger:       slog.New(slog.DiscardHandler),
				Parser:       promParser,
			})
			groupMap, errs := m.LoadGroups(evalInterval, labels.EmptyLabels(), "", nil, false, files...)
			if len(errs) > 0 {
				t.Fatalf("load rules: %v", errs)
			}
			var groups []*rules.Group
			for _, k := range sortedKeys(groupMap) {
				groups = append(groups, groupMap[k])
			}
			for _, g := range groups {
				for _, r := range g.Rules() {
					if ar, ok := r.(*rules.AlertingRule); ok {
						ar.SetRestored(true)
					}
				}
			}
			checks := tc.AlertRuleTests
			sort.SliceStable(checks, func(i, j int) bool { return checks[i].EvalTime < checks[j].EvalTime })
			start := time.Unix(0, 0).UTC()
			end := start
			if len(checks) > 0 {
				end = start.Add(time.Duration(checks[len(checks)-1].EvalTime))
			}
			next := 0
			for ts := start; !ts.After(end); ts = ts.Add(evalInterval) {
				suite.WithSamplesTill(ts, func(err error) {
					if err != nil {
						t.Fatal(err)
					}
					for _, g := range groups {
						g.Eval(suite.Context(), ts)
						for _, r := range g.Rules() {
							if r.LastError() != nil {
								t.Fatalf("rule %s at %s: %v", r.Name(), ts.Sub(start), r.LastError())
							}
						}
					}
				})
				for next < len(checks) && time.Duration(checks[next].EvalTime) < ts.Add(evalInterval).Sub(start) {
					c := checks[next]
					next++
					var got []string
					known := false
					for _, g := range groups {
						for _, ar := range g.AlertingRules() {
							if ar.Name() != c.Alertname {
								continue
							}
							known = true
							for _, a := range ar.ActiveAlerts() {
								if a.State != rules.StateFiring {
									continue
								}
								got = append(got, a.Labels.String())
								a.Annotations.Range(func(l labels.Label) {
									if strings.Contains(l.Value, "error expanding template") {
										t.Errorf("%s: annotation %s: %s", c.Alertname, l.Name, l.Value)
									}
								})
							}
						}
					}
					if !known {
						t.Errorf("eval_time %s: no alert named %s", c.EvalTime, c.Alertname)
						continue
					}
					var want []string
					for _, e := range c.ExpAlerts {
						l := map[string]string{labels.AlertName: c.Alertname}
						for k, v := range e.ExpLabels {
							l[k] = v
						}
						want = append(want, labels.FromMap(l).String())
					}
					sort.Strings(got)
					sort.Strings(want)
					if !slices.Equal(got, want) {
						t.Errorf("%s at %s:\n  want firing %v\n  got  firing %v", c.Alertname, c.EvalTime, want, got)
					}
					if len(want) > 0 {
						firing[c.Alertname] = true
					} else {
						silent[c.Alertname] = true
					}
				}
			}
		})
	}
	groups, _ := rulefmt.ParseFile(files[0], false, model.UTF8Validation, promParser, slog.New(slog.DiscardHandler))
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if !firing[r.Alert] || !silent[r.Alert] {
				t.Errorf("%s: tested firing %v, silent %v: test both", r.Alert, firing[r.Alert], silent[r.Alert])
			}
		}
	}
}
