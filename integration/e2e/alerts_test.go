//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// alertRules are the chart's rendered PrometheusRule: its groups, as a Prometheus rule file, and
// each alert's expression.
type alertRules struct {
	file  string
	exprs map[string]string
}

// renderAlerts renders the chart's PrometheusRule with its default values.
func renderAlerts(t *testing.T, helm string) alertRules {
	t.Helper()

	var rule struct {
		Spec struct {
			Groups []map[string]any `yaml:"groups"`
		} `yaml:"spec"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(render(t, helm, "default", "--set", "prometheusRule.enabled=true",
		"--show-only", "templates/prometheusrule.yaml")), &rule))
	require.NotEmpty(t, rule.Spec.Groups)

	file, err := yaml.Marshal(map[string]any{"groups": rule.Spec.Groups})
	require.NoError(t, err)

	a := alertRules{file: string(file), exprs: map[string]string{}}

	for _, g := range rule.Spec.Groups {
		rules, _ := g["rules"].([]any)
		for _, r := range rules {
			m, _ := r.(map[string]any)
			if name, ok := m["alert"].(string); ok {
				a.exprs[name], _ = m["expr"].(string)
			}
		}
	}

	return a
}

// scrapeLabels are the target labels Prometheus gives the oracle's series through the chart's
// ServiceMonitor; the alerts select on namespace and service.
const scrapeLabels = `namespace="` + release + `",service="` + release + `",job="` + release + `",pod="backup-oracle-e2e",`

// metricLine is one sample line of the text exposition format: name{labels} value.
var metricLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$`)

// check evaluates, with Prometheus' own rule engine (promtool test rules), each alert's
// expression of want on the samples of metrics (the oracle's /metrics, labelled as the
// ServiceMonitor's scrape labels them, held for 20 minutes) and requires it to hold (a result)
// or not (none), as want says.
func (a alertRules) check(t *testing.T, promtool, metrics string, want map[string]bool) {
	t.Helper()

	names := map[string]bool{}
	for alert := range want {
		expr, ok := a.exprs[alert]
		require.True(t, ok, "the chart has no alert %s", alert)

		for _, n := range regexp.MustCompile(`backup_oracle_[a-z_]+`).FindAllString(expr, -1) {
			names[n] = true
		}
	}

	var series []map[string]string

	for _, line := range strings.Split(metrics, "\n") {
		m := metricLine.FindStringSubmatch(line)
		if m == nil || !names[m[1]] {
			continue
		}

		v, err := strconv.ParseFloat(m[3], 64)
		require.NoError(t, err, line)

		labels := strings.TrimSuffix(strings.TrimPrefix(m[2], "{"), "}")
		series = append(series, map[string]string{
			"series": m[1] + "{" + scrapeLabels + labels + "}",
			"values": strconv.FormatFloat(v, 'f', -1, 64) + "+0x20",
		})
	}

	require.NotEmpty(t, series, "none of %v on /metrics", names)

	var tests []map[string]any

	alerts := make([]string, 0, len(want))
	for alert := range want {
		alerts = append(alerts, alert)
	}

	slices.Sort(alerts)

	for _, alert := range alerts {
		holds := 0
		if want[alert] {
			holds = 1
		}

		tests = append(tests, map[string]any{
			"expr":        fmt.Sprintf("clamp_max(count(%s) or vector(0), 1)", a.exprs[alert]),
			"eval_time":   "20m",
			"exp_samples": []map[string]any{{"labels": "{}", "value": holds}},
		})
	}

	test, err := yaml.Marshal(map[string]any{
		"rule_files": []string{"rules.yaml"}, "evaluation_interval": "1m",
		"tests": []map[string]any{{"interval": "1m", "input_series": series, "promql_expr_test": tests}},
	})
	require.NoError(t, err)

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(a.file), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "test.yaml"), test, 0o600))

	cmd := exec.Command(promtool, "test", "rules", "test.yaml") //nolint:gosec // pinned tool
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the alert expressions disagree with /metrics (want %v):\n%s\nseries: %v", want, out, series)
	t.Logf("alert expressions on /metrics (promtool): %v", want)
}
