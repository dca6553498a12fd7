//go:build e2e

package e2e

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// setKinds are the kinds of each policy set as the chart renders them (generate mode).
var setKinds = map[string][]string{ //nolint:gochecknoglobals // test table
	"cel":           {"DeletingPolicy", "GeneratingPolicy", "MutatingPolicy", "ValidatingPolicy"},
	"clusterpolicy": {"ClusterCleanupPolicy", "ClusterPolicy"},
}

var renderedKind = regexp.MustCompile(`(?m)^kind: (\S+)$`)

// policySetAuto renders the chart with policies.engine auto (the default) as helm install
// --dry-run=server on this version's stack, so the API versions Helm sees are those its API
// server serves with this Kyverno's CRDs: without policies.kyverno.version the install is
// refused with the sentence naming it (1.17 to 1.19 serve the same ones); with it the set is
// the version's autoSet, and on a version whose default blocklist refuses ClusterIPs to CEL
// calls, the CEL set once the override is stated.
func policySetAuto(t *testing.T, k *kube, helm string, kv kyvernoUnderTest) {
	require.Equal(t, kv.defaultBlocksPrivate || kv.mutatingNoResourceLib, kv.autoSet == "clusterpolicy",
		"the chart installs the CEL set by default except where the version's default --httpBlocklist refuses a ClusterIP (default-http-flags) "+
			"or its MutatingPolicy cannot read the token of the default authentication (who-may-ask)")

	install := func(args ...string) (string, error) {
		// Another release name: the gate scenarios' objects of release exist, without Helm's
		// ownership, and so does their canary namespace.
		cmd := exec.Command(helm, append([]string{"install", "policy-set-auto", chartDir, "--namespace", release, "--dry-run=server", //nolint:gosec // pinned tool
			"--kubeconfig", k.kubeconfig, "-f", filepath.Join(chartDir, "testdata", "values", "default.yaml"),
			"--set=gate.createCanaryNamespace=false"}, args...)...)
		out, err := cmd.CombinedOutput()

		return string(out), err
	}

	out, err := install()
	require.Error(t, err, "installed without policies.kyverno.version on a cluster serving the CEL policies:\n%s", out)
	assert.Contains(t, out, "Set policies.kyverno.version", "the refusal names the value")

	version := "--set=policies.kyverno.version=" + kv.version
	cases := [][]string{{version}}
	wants := []string{kv.autoSet}

	if kv.defaultBlocksPrivate {
		cases = append(cases, []string{version, "--set=policies.kyverno.httpBlocklistOverridden=true"})
		wants = append(wants, "cel")
	}

	for i, args := range cases {
		out, err := install(args...)
		require.NoError(t, err, "%v:\n%s", args, out)

		var kinds []string

		for _, m := range renderedKind.FindAllStringSubmatch(out, -1) {
			if slices.Contains(setKinds["cel"], m[1]) || slices.Contains(setKinds["clusterpolicy"], m[1]) {
				kinds = append(kinds, m[1])
			}
		}

		slices.Sort(kinds)
		assert.Equal(t, setKinds[wants[i]], slices.Compact(kinds), "%v: the policy kinds installed", args)

		name := map[string]string{"cel": "CEL", "clusterpolicy": "ClusterPolicy"}[wants[i]]
		assert.Contains(t, strings.Join(strings.Fields(out), " "), "Kyverno policies: the "+name+" set; policies.engine=auto: Kyverno "+kv.version,
			"%v: the notes say which set and why", args)
	}
}
