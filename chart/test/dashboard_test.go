package test

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestDashboardAndAlertsQueryExportedMetrics renders the Grafana dashboard and the PrometheusRule,
// parses every PromQL query in them and checks that each metric they name is exported on
// /metrics by the real backup-oracle (--demo, after one request of each kind, with a namespace
// holding backups excluded).
func TestDashboardAndAlertsQueryExportedMetrics(t *testing.T) {
	oracleBin := toolBin(t, "BACKUP_ORACLE_BIN")
	out := mustRender(t, "-f", "../testdata/values/kopia-s3-monitoring.yaml",
		"--show-only", "templates/grafana-dashboard.yaml", "--show-only", "templates/prometheusrule.yaml")

	var exprs []string

	for _, doc := range strings.Split(out, "\n---\n") {
		var obj struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Data map[string]string `yaml:"data"`
			Spec struct {
				Groups []struct {
					Rules []struct {
						Expr string `yaml:"expr"`
					} `yaml:"rules"`
				} `yaml:"groups"`
			} `yaml:"spec"`
		}

		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}

		switch obj.Kind {
		case "ConfigMap":
			if obj.Metadata.Labels["grafana_dashboard"] != "1" {
				t.Errorf("the dashboard ConfigMap lacks the sidecar label grafana_dashboard: \"1\": %v", obj.Metadata.Labels)
			}

			var dash struct {
				Panels []struct {
					Title   string `json:"title"`
					Targets []struct {
						Expr string `json:"expr"`
					} `json:"targets"`
				} `json:"panels"`
			}

			if err := json.Unmarshal([]byte(obj.Data["backup-oracle.json"]), &dash); err != nil {
				t.Fatalf("dashboard JSON: %v", err)
			}

			titles := strings.ToLower(panelTitles(dash.Panels))
			for _, want := range []string{"gate self-test", "never checked", "decisions", "latency", "index age", "ready", "stale"} {
				if !strings.Contains(titles, want) {
					t.Errorf("no dashboard panel about %q in %s", want, titles)
				}
			}

			for _, p := range dash.Panels {
				for _, tg := range p.Targets {
					exprs = append(exprs, tg.Expr)
				}
			}
		case "PrometheusRule":
			for _, g := range obj.Spec.Groups {
				for _, r := range g.Rules {
					exprs = append(exprs, r.Expr)
				}
			}
		}
	}

	if len(exprs) < 10 {
		t.Fatalf("only %d queries found in the dashboard and the rules", len(exprs))
	}

	// The demo holds backups of namespace monitoring: excluded here, so that the series of the
	// namespaces whose PVCs are never checked is exported too.
	url, _ := startOracle(t, oracleBin, "POLICIES_EXCLUDED_NAMESPACES=kube-system,monitoring")
	for _, p := range []string{"/exists/shop/postgres", "/exists/shop/redis", "/readyz"} {
		httpGet(t, url+p)
	}

	metrics := "\n" + httpGet(t, url+"/metrics")

	names := map[string]bool{}
	for _, e := range exprs {
		for _, n := range metricNames(e) {
			names[n] = true
		}
	}

	var sorted []string
	for n := range names {
		sorted = append(sorted, n)
	}

	sort.Strings(sorted)
	t.Logf("metrics queried: %v", sorted)

	for _, n := range sorted {
		if n == "up" { // Prometheus' own, per target
			continue
		}

		if !strings.Contains(metrics, "\n"+n+"{") && !strings.Contains(metrics, "\n"+n+" ") {
			t.Errorf("a query names %s, which backup-oracle does not export", n)
		}
	}
}

func panelTitles(ps []struct {
	Title   string `json:"title"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Title)
	}

	return strings.Join(out, " | ")
}

var (
	promStrings   = regexp.MustCompile(`"(\\.|[^"\\])*"`)
	promMatchers  = regexp.MustCompile(`\{[^}]*\}`)
	promRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping  = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promVariables = regexp.MustCompile(`\$\w+`)
	promIdent     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	promKeywords  = map[string]bool{"by": true, "without": true, "and": true, "or": true, "unless": true, "bool": true, "offset": true, "on": true, "ignoring": true}
)

// metricNames returns the metric names a PromQL expression selects: identifiers that are not
// functions, aggregations, keywords, labels (inside {} or by ()) or variables.
func metricNames(expr string) []string {
	e := promStrings.ReplaceAllString(expr, `""`)
	e = promMatchers.ReplaceAllString(e, " ")
	e = promRanges.ReplaceAllString(e, " ")
	e = promGrouping.ReplaceAllString(e, " ")
	e = promVariables.ReplaceAllString(e, " ")

	var out []string

	for _, m := range promIdent.FindAllString(e, -1) {
		if strings.HasSuffix(m, "(") || promKeywords[m] {
			continue
		}

		out = append(out, m)
	}

	return out
}

func TestMetricNames(t *testing.T) {
	got := metricNames(`histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{x="y{z}"}[5m]))) / on(b) c_total > $stale or vector(0) and d`)
	want := []string{"a_bucket", "c_total", "d"}

	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("metricNames = %v, want %v", got, want)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()

	resp, err := http.Get(url) //nolint:gosec,noctx // a test against 127.0.0.1
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()

	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}

	return string(b)
}

// TestDashboardIsOffByDefault: the default render holds no dashboard.
func TestDashboardIsOffByDefault(t *testing.T) {
	if strings.Contains(mustRender(t, "-f", "../testdata/values/default.yaml"), "grafana-dashboard.yaml") {
		t.Error("the dashboard is rendered by default")
	}
}
