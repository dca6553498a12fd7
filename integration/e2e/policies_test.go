//go:build e2e

package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const release = "backup-oracle"

// chartDir is the chart in this repository.
var chartDir = filepath.Join("..", "..", "chart") //nolint:gochecknoglobals // a constant path

// render renders the chart with one of its test value files (default: the chart's defaults
// plus the repository location) and args.
func render(t testing.TB, helm, values string, args ...string) string {
	t.Helper()

	// The scenarios' oracle serves plain HTTP to everyone: the chart rendered for that
	// (tls.enabled=false, auth.enabled=false). The secured path (TLS, the tokens Kyverno and the
	// CEL set send, RBAC) is the who-may-ask step's (secured_test.go), on every version and set.
	cmd := exec.Command(helm, append([]string{"template", release, chartDir, "--namespace", release,
		"-f", filepath.Join(chartDir, "testdata", "values", values+".yaml"), "--set", "tls.enabled=false", "--set", "auth.enabled=false"},
		args...)...) //nolint:gosec // pinned tool
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "helm template:\n%s", out)

	return string(out)
}

// policySet is one of the chart's policy engines, installed on its own.
type policySet struct {
	engine    string   // policies.engine
	templates []string // the chart's admission and generate policy templates of this engine
	cleanup   string   // the chart's cleanup policy template of this engine
	kinds     []string // kubectl resource names of its policies, to wait for
}

var policySets = []policySet{ //nolint:gochecknoglobals // test table
	{"clusterpolicy", []string{"clusterpolicy-admission", "clusterpolicy-generate"}, "clusterpolicy-cleanup",
		[]string{"clusterpolicies.kyverno.io", "clustercleanuppolicies.kyverno.io"}},
	{"cel", []string{"cel-validate", "cel-mutate", "cel-generate"}, "cel-cleanup",
		[]string{"validatingpolicies.policies.kyverno.io", "mutatingpolicies.policies.kyverno.io",
			"generatingpolicies.policies.kyverno.io", "deletingpolicies.policies.kyverno.io"}},
}

// shippedCleanupSchedule is the cleanup policies' schedule in the chart; the test runs them
// every minute instead (the cron granularity), its only change to the shipped policies.
const (
	shippedCleanupSchedule = `schedule: "*/15 * * * *"`
	testCleanupSchedule    = `schedule: "* * * * *"`
)

// render renders the set's admission and generate policies, and its cleanup policy, pointed
// at oracleURL.
func (p policySet) render(t *testing.T, helm, oracleURL string) (policies, cleanup string) {
	t.Helper()

	args := []string{"--set", "policies.engine=" + p.engine, "--set", "policies.oracleURL=" + oracleURL}
	for _, tpl := range p.templates {
		args = append(args, "--show-only", "templates/policies/"+tpl+".yaml")
	}

	policies = render(t, helm, "default", args...)
	require.NotContains(t, policies, shippedCleanupSchedule, "a cleanup policy among the %s admission and generate policies", p.engine)

	cleanup = render(t, helm, "default", "--set", "policies.engine="+p.engine, "--show-only", "templates/policies/"+p.cleanup+".yaml")
	require.Equal(t, 1, strings.Count(cleanup, shippedCleanupSchedule), "cleanup schedule in the rendered %s set", p.engine)

	return policies, strings.Replace(cleanup, shippedCleanupSchedule, testCleanupSchedule, 1)
}

// install applies the set and waits until every policy is ready and Kyverno's resource
// webhooks carry PVC rules (policy readiness comes a little before the webhooks).
func (p policySet) install(t *testing.T, k *kube, manifests string) {
	t.Helper()

	k.apply(t, manifests)

	took, ok := eventually(60*time.Second, 100*time.Millisecond, func() bool {
		for _, kind := range p.kinds {
			if !policiesReady(t, k, kind) {
				return false
			}
		}

		return webhooksMatchPVCs(t, k)
	})
	require.True(t, ok, "%s policies not ready", p.engine)
	t.Logf("%s policies ready and in the webhooks after %s", p.engine, took.Round(time.Millisecond))
}

// uninstall deletes the set's admission and generate policies (manifests) and waits until no
// webhook matches PVCs any more.
func (p policySet) uninstall(t *testing.T, k *kube, manifests string) {
	t.Helper()

	out, err := k.kubectlRun(manifests, "delete", "--wait", "-f", "-")
	require.NoError(t, err, out)

	_, ok := eventually(60*time.Second, 200*time.Millisecond, func() bool { return !webhooksMatchPVCs(t, k) })
	require.True(t, ok, "Kyverno's webhooks still match PVCs after the %s set was deleted", p.engine)
}

// policiesReady reports whether every policy of the kubectl resource kind says it is ready.
func policiesReady(t *testing.T, k *kube, kind string) bool {
	t.Helper()

	gv := map[string]string{
		"clusterpolicies.kyverno.io":             "kyverno.io/v1",
		"clustercleanuppolicies.kyverno.io":      "kyverno.io/v2",
		"validatingpolicies.policies.kyverno.io": "policies.kyverno.io/v1",
		"mutatingpolicies.policies.kyverno.io":   "policies.kyverno.io/v1",
		"generatingpolicies.policies.kyverno.io": "policies.kyverno.io/v1",
		"deletingpolicies.policies.kyverno.io":   "policies.kyverno.io/v1",
	}[kind]

	r := k.get(t, "/apis/"+gv+"/"+strings.SplitN(kind, ".", 2)[0])
	require.Equal(t, 200, r.Code, r.Raw)

	items, _ := r.Body["items"].([]any)
	for _, it := range items {
		obj, _ := it.(map[string]any)
		if kind == "clustercleanuppolicies.kyverno.io" || kind == "deletingpolicies.policies.kyverno.io" {
			continue // no readiness status; the cleanup scenarios prove they run
		}

		if nested(obj, "status", "ready") != true && !conditionTrue(obj, "Ready") &&
			nested(obj, "status", "conditionStatus", "ready") != true {
			return false
		}
	}

	return len(items) > 0
}

// webhooksMatchPVCs reports whether both of Kyverno's resource webhook configurations have a
// rule for persistentvolumeclaims.
func webhooksMatchPVCs(t *testing.T, k *kube) bool {
	t.Helper()

	for _, cfg := range []string{"mutatingwebhookconfigurations/kyverno-resource-mutating-webhook-cfg",
		"validatingwebhookconfigurations/kyverno-resource-validating-webhook-cfg"} {
		r := k.get(t, "/apis/admissionregistration.k8s.io/v1/"+cfg)
		if r.Code != 200 || !strings.Contains(r.Raw, `"persistentvolumeclaims"`) {
			return false
		}
	}

	return true
}
