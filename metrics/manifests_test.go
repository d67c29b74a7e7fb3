package metrics_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"
)

const (
	alertsFile     = "../manifests/prometheus/alerts.yaml"
	alertTestsFile = "../manifests/prometheus/alerts_test.yaml"
	dashboardFile  = "../manifests/grafana/accessbot.json"
)

// promRule is the part of a PrometheusRule the tests read.
type promRule struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	} `yaml:"spec"`
}

func readRules(t *testing.T) (promRule, map[string]any) {
	t.Helper()
	b, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var pr promRule
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&pr); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	return pr, raw
}

// promtool finds promtool or fails the test loudly: the rule tests are
// part of make test.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found on PATH: install Debian's prometheus package (apt-get install -y prometheus), as .ci/run does: %v", err)
	}
	return p
}

// Every alert rule is checked and unit-tested by promtool on synthetic
// series (manifests/prometheus/alerts_test.yaml).
func TestAlertRulesWithPromtool(t *testing.T) {
	pt := promtool(t)
	pr, raw := readRules(t)
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" || pr.Metadata.Name == "" {
		t.Fatalf("%s is %s %s %q, want a named monitoring.coreos.com/v1 PrometheusRule", alertsFile, pr.APIVersion, pr.Kind, pr.Metadata.Name)
	}
	want := []string{"AccessbotRevocationFailing", "AccessbotRevocationLate", "AccessbotChatDisconnected",
		"AccessbotBreakGlassUsed", "AccessbotNoReconcileLeader", "AccessbotDriftFound", "AccessbotAuditSinkLagging"}
	var got []string
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			got = append(got, r.Alert)
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s lacks a severity label, a summary or a description", r.Alert)
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("alerts = %v, want %v", got, want)
	}

	dir := t.TempDir()
	rules, err := yaml.Marshal(map[string]any{"groups": raw["spec"].(map[string]any)["groups"]})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts.rules.yaml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(alertTestsFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts_test.yaml"), tests, 0o644); err != nil {
		t.Fatal(err)
	}
	// Each alert has at least one test case that expects it to fire.
	var unit struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `yaml:"alertname"`
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(tests, &unit); err != nil {
		t.Fatal(err)
	}
	fires := map[string]bool{}
	for _, tc := range unit.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	for _, a := range want {
		if !fires[a] {
			t.Errorf("no promtool test expects %s to fire", a)
		}
	}

	for _, args := range [][]string{{"check", "rules", "alerts.rules.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		cmd := exec.Command(pt, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	ID            any    `json:"id"`
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name, Type, Query string
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource *struct {
			Type, UID string
		} `json:"datasource"`
		GridPos struct{ H, W, X, Y int } `json:"gridPos"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s is not valid JSON: %v", dashboardFile, err)
	}
	return d
}

// The dashboard has what a Grafana import needs: no database id, a uid,
// a title, a Prometheus datasource variable every panel uses, unique
// panel ids, panels inside the 24-column grid, and each query a refId.
func TestDashboardImports(t *testing.T) {
	d := readDashboard(t)
	if d.ID != nil || d.UID == "" || d.Title == "" || d.SchemaVersion == 0 {
		t.Errorf("dashboard id %v uid %q title %q schemaVersion %d: want a null id, a uid, a title and a schema version", d.ID, d.UID, d.Title, d.SchemaVersion)
	}
	if len(d.Templating.List) != 1 || d.Templating.List[0].Type != "datasource" || d.Templating.List[0].Query != "prometheus" {
		t.Errorf("templating = %+v, want one Prometheus datasource variable", d.Templating.List)
	}
	ids := map[int]bool{}
	queries := 0
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.X < 0 || p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H <= 0 {
			t.Errorf("panel %q: gridPos %+v outside the grid", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %+v, want the ${datasource} variable", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			queries++
			if q.RefID == "" || q.Expr == "" {
				t.Errorf("panel %q: query %+v without refId or expr", p.Title, q)
			}
		}
	}
	if queries < 20 {
		t.Errorf("dashboard has %d queries, want the panels of every metric (20+)", queries)
	}
}

var metricName = regexp.MustCompile(`\baccessbot_[a-z0-9_]+`)

// names returns the accessbot metric names expr uses.
func names(expr string) []string { return metricName.FindAllString(expr, -1) }

// exposed reports whether name is a series /metrics had: a family, or a
// histogram's _bucket/_sum/_count.
func exposed(fams map[string]*dto.MetricFamily, name string) bool {
	if f := fams[name]; f != nil && len(f.GetMetric()) > 0 {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if f := fams[base]; ok && f != nil && f.GetType() == dto.MetricType_HISTOGRAM && len(f.GetMetric()) > 0 {
			return true
		}
	}
	return false
}

// Every metric name in the alert rules and the dashboard is one /metrics
// exposed after the flow, and every accessbot metric /metrics exposes is
// on the dashboard.
func TestManifestsUseExposedMetrics(t *testing.T) {
	fams := runFlow(t)
	pr, _ := readRules(t)
	used := map[string]bool{}
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			ns := names(r.Expr)
			if len(ns) == 0 {
				t.Errorf("alert %s uses no accessbot metric", r.Alert)
			}
			for _, n := range ns {
				if !exposed(fams, n) {
					t.Errorf("alert %s uses %s, which /metrics does not expose", r.Alert, n)
				}
			}
		}
	}
	d := readDashboard(t)
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			for _, n := range names(q.Expr) {
				used[strings.TrimSuffix(n, "_bucket")] = true
				if !exposed(fams, n) {
					t.Errorf("dashboard panel %q uses %s, which /metrics does not expose", p.Title, n)
				}
			}
		}
	}
	for name := range fams {
		if strings.HasPrefix(name, "accessbot_") && !used[name] && name != "accessbot_store_gauge_errors_total" {
			t.Errorf("/metrics exposes %s but the dashboard does not show it", name)
		}
	}
}
